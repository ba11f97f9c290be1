"""Autobahn's frame internals, used for the frames Engine.IO traffic is made of.

Profiling the Entry hot path showed Autobahn's general frame machinery (per-frame
masker objects, per-message observer Deferreds, debug-log arguments formatted eagerly
on every read and write) costing more than Engine.IO, Socket.IO and the bridge
together. :class:`FastFrames` overrides five of Autobahn's methods (``dataReceived``
splits a read that starts on a frame boundary itself and leaves the rest to
``consumeData``, calling ``_dataReceived`` otherwise; ``processData``, ``onMessageEnd``,
``sendData`` and ``_closeConnection``) and reads and sets its parser state (``data``,
``current_frame``, ``inside_message``, ``send_queue``, ``message_data``, ``failedByMe``,
``logOctets``, ``_perMessageCompress``): none of it is public API.

Hence :func:`usable`, run once per process before the first protocol class is built:
the fast path is taken only if it is switched on (:data:`entryhw.fastpath.ENABLED`),
Autobahn is within the tested range, every name above exists, and a self-test through
a real Autobahn server protocol passes (a simple frame, a fragmented message, a frame
we build, a close). Otherwise the protocols use
:class:`entryhw.engineio.websocket.GuardedWebSocket`, Autobahn's public path, and one
log line says why.
"""

from __future__ import annotations

import os
from typing import Any

from autobahn.websocket.protocol import WebSocketProtocol
from twisted.logger import Logger

from entryhw import fastpath, writes
from entryhw.engineio.frames import FAST_MAX, build_frame, split_frames
from entryhw.engineio.websocket import GuardedWebSocket

log = Logger()

#: Autobahn methods overridden or called; their absence turns the fast path off.
METHODS = ("_dataReceived", "consumeData", "processData", "onMessageEnd", "sendData",
           "_closeConnection", "sendMessage", "sendClose")


class FastFrames(GuardedWebSocket):
    """Simple frames parsed and written here; everything else left to Autobahn.

    ``onMessage`` gets text payloads as bytes that nothing has checked: Autobahn's
    UTF-8 validation is meant to be off, and decoding checks anyway.
    """

    data: bytes
    current_frame: Any
    inside_message: bool
    send_queue: Any
    _perMessageCompress: Any
    maxMessagePayloadSize: int
    maxFramePayloadSize: int
    failedByMe: bool
    logOctets: bool
    message_data: Any
    message_is_binary: bool

    def _fast_ok(self) -> bool:
        return (self.state == WebSocketProtocol.STATE_OPEN and self._perMessageCompress is None
                and self.current_frame is None and not self.inside_message)

    _fast_limit: int | None = None

    def _limit(self) -> int:
        limit = self._fast_limit
        if limit is None:  # the protocol's options are set before it reads anything
            limits = [x for x in (self.maxMessagePayloadSize, self.maxFramePayloadSize) if x]
            limit = self._fast_limit = min(limits, default=FAST_MAX)
        return limit

    def dataReceived(self, data: bytes) -> None:
        # Autobahn's dataReceived formats debug-log arguments on every read; a read that
        # starts on a frame boundary (nothing held from the last one) is split here
        # without Autobahn's buffer (_dataReceived, consumeData), whatever is left over
        # goes to it.
        try:
            if not self.data and self._fast_ok() and not self.logOctets:
                frames, used, waiting = split_frames(data, self._limit(),
                                                     masked=self.factory.isServer)
                self.data = data[used:] if used < len(data) else b""
                for payload, binary in frames:
                    self.onMessage(payload, binary)  # type: ignore[attr-defined]
                    if self.state != WebSocketProtocol.STATE_OPEN:
                        return
                if self.data and not waiting:
                    self.consumeData()  # type: ignore[attr-defined]
                return
            self._dataReceived(data)  # type: ignore[attr-defined]
        except Exception:
            self.faults.bug("a WebSocket read")
            if self.transport is not None:
                self.transport.abortConnection()

    def processData(self) -> bool:
        if self._fast_ok():
            frames, used, waiting = split_frames(self.data, self._limit(),
                                                 masked=self.factory.isServer)
            if used:
                self.data = self.data[used:]
                for payload, binary in frames:
                    self.onMessage(payload, binary)  # type: ignore[attr-defined]
                    if self.state != WebSocketProtocol.STATE_OPEN:
                        return False
                return len(self.data) > 0
            if waiting:
                return False
        return super().processData()  # type: ignore[misc]

    def onMessageEnd(self) -> None:
        """Deliver a message Autobahn assembled straight to ``onMessage``: Autobahn's own
        version fires an observer event per message, a Deferred that costs more than
        the whole Engine.IO decode."""
        if not self.failedByMe:
            parts = self.message_data
            self.onMessage(parts[0] if len(parts) == 1 else b"".join(parts),  # type: ignore[attr-defined]
                           self.message_is_binary)
        self.message_data = None

    def sendMessage(self, payload: bytes, isBinary: bool = False, *args: Any, **kw: Any) -> None:
        if self.state != WebSocketProtocol.STATE_OPEN:
            self.faults.count("sendsDropped")
            return
        if not args and not kw and self._perMessageCompress is None and not self.send_queue:
            mask = None if self.factory.isServer else os.urandom(4)
            self.write_batched(build_frame(payload, isBinary, mask))
            return
        # Autobahn's own framing; its bytes come back through sendData below.
        super(GuardedWebSocket, self).sendMessage(payload, isBinary, *args, **kw)  # type: ignore[misc]

    # What we batched goes first, and what the peer has not taken is held as bytes.
    _backlog_drained = writes.BatchedWrites._backlog_drained

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        # Autobahn's own frames (PONGs, closes) keep their place and count, like ours.
        send = super().sendData  # type: ignore[misc]
        self.write_direct(data, lambda d: send(d, sync, chopsize))

    def _closeConnection(self, abort: bool = False) -> None:
        if not abort:
            self.flush_writes(force=True)
        super()._closeConnection(abort)  # type: ignore[misc]


_verdict: bool | None = None


def usable() -> bool:
    """Whether :class:`FastFrames` may be used in this process (checked once)."""
    global _verdict
    if _verdict is None:
        why = _why_not()
        _verdict = why is None
        if why is not None and fastpath.ENABLED:
            log.warn("WebSocket fast path off, Autobahn's own path in use: {why}", why=why)
    return _verdict


def _why_not() -> str | None:
    if not fastpath.ENABLED:
        return "ENTRYHW_FASTPATH=0"
    why = fastpath.untested("autobahn")
    if why is not None:
        return why
    from entryhw.fastpath.imports import autobahn_websocket

    ws = autobahn_websocket()
    missing = [m for m in METHODS if not all(
        callable(getattr(cls, m, None))
        for cls in (ws.WebSocketServerProtocol, ws.WebSocketClientProtocol))]
    if missing:
        return f"Autobahn has no {', '.join(missing)}"
    try:
        return self_test()
    except Exception as e:  # any surprise inside Autobahn means: not the code we know
        return f"the self-test failed ({type(e).__name__}: {e})"


def open_probe(got: list[tuple[bytes, bool]]) -> tuple[Any, _Transport]:
    """A real Autobahn server protocol with FastFrames after its opening handshake, on an
    in-memory transport; ``onMessage`` appends to ``got``. For :func:`self_test` (and tests)."""
    from entryhw.fastpath.imports import autobahn_websocket
    from entryhw.faults import Faults

    ws = autobahn_websocket()

    class Probe(FastFrames, ws.WebSocketServerProtocol):
        clock = _NoClock()

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            got.append((payload, isBinary))

    factory = ws.WebSocketServerFactory("ws://127.0.0.1:1")
    factory.protocol = Probe
    factory.faults = Faults()
    factory.setProtocolOptions(utf8validateIncoming=False, openHandshakeTimeout=0,
                               closeHandshakeTimeout=0)
    proto = factory.buildProtocol(None)
    transport = _Transport()
    proto.makeConnection(transport)
    proto.dataReceived(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:1\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       b"Sec-WebSocket-Version: 13\r\n\r\n")
    return proto, transport


def self_test() -> str | None:
    """Drive a real Autobahn server protocol with FastFrames through a handshake, a
    simple frame, a fragmented message and a close; None if all went as expected."""
    got: list[tuple[bytes, bool]] = []
    proto, transport = open_probe(got)
    if proto.state != WebSocketProtocol.STATE_OPEN or not _fast(proto):
        return "the handshake did not leave the parser state expected"
    key = b"\x01\x02\x03\x04"
    proto.dataReceived(build_frame(b"4hello", False, key))
    # A fragmented text message: Autobahn's own parser, delivered by onMessageEnd.
    first = bytes((0x01, 0x80 | 2)) + key + _xor(b"ab", key)
    last = bytes((0x80, 0x80 | 2)) + key + _xor(b"cd", key)
    proto.dataReceived(first + last)
    if got != [(b"4hello", False), (b"abcd", False)] or not _fast(proto):
        return f"frames came out as {got!r}"
    transport.clear()
    proto.sendMessage(b"3", False)
    proto.flush_writes()
    if transport.value() != build_frame(b"3"):
        return "a frame we send came out differently"
    proto.sendClose(1000)
    proto.flush_writes()
    if proto.state == WebSocketProtocol.STATE_OPEN or not transport.value().endswith(
            b"\x88\x02\x03\xe8"):
        return "a close did not go out as expected"
    return None


def _fast(proto: Any) -> bool:
    return proto._fast_ok() and proto.send_queue is not None and not proto.failedByMe


def _xor(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


class _Transport:
    """Just enough of a TCP transport for the self-test (twisted.internet.testing's
    StringTransport would import trial, and unittest with it, into every server)."""

    disconnecting = False

    def __init__(self) -> None:
        self.data = bytearray()
        self.connected = True

    def write(self, data: bytes) -> None:
        self.data += data

    def writeSequence(self, seq: Any) -> None:
        for data in seq:
            self.write(data)

    def value(self) -> bytes:
        return bytes(self.data)

    def clear(self) -> None:
        self.data.clear()

    def getPeer(self) -> Any:
        from twisted.internet.address import IPv4Address

        return IPv4Address("TCP", "127.0.0.1", 1)

    getHost = getPeer

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def loseConnection(self) -> None:
        self.disconnecting = True

    def abortConnection(self) -> None:
        self.connected = False

    def setTcpNoDelay(self, enabled: bool) -> None:
        pass


class _NoClock:
    """The self-test flushes by hand: a batch needs no reactor turn."""

    def callLater(self, delay: float, f: Any, *args: Any) -> Any:
        return _Never()


class _Never:
    def active(self) -> bool:
        return True

    def cancel(self) -> None:
        pass
