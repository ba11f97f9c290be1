"""A fast path through Autobahn for the frames Engine.IO traffic is made of.

Profiling the Entry hot path showed Autobahn's general frame machinery
(per-frame masker objects, per-message observer Deferreds, debug-log
arguments formatted eagerly on every write) costing more than all of
Engine.IO, Socket.IO and the bridge together. Nearly every frame here is
the simplest kind: one unfragmented text or binary frame.

:func:`split_frames` (sans-I/O) peels complete frames of that kind off the
front of a byte buffer and stops at the first anything else (control frames,
fragments, oversized frames, a wrong mask bit, RSV bits), which Autobahn then
handles as before; :func:`build_frame` makes the frame we send (masked when we
are the client). Masking is one big-integer XOR, so neither direction needs
Autobahn's native (NVX) helpers. :class:`FastFramesMixin` plugs both into an
Autobahn protocol, server or client, only while the connection is open and
uncompressed.
"""

from __future__ import annotations

import os
from typing import Any

from autobahn.websocket.protocol import WebSocketProtocol

from entryhw import writes
from entryhw.faults import Faults
from entryhw.limits import MAX_BACKLOG

#: First byte of an unfragmented (FIN) text / binary frame with no RSV bits.
TEXT, BINARY = 0x81, 0x82
#: Largest payload taken when the protocol sets no message size limit.
FAST_MAX = 16 * 1024 * 1024
#: Close code for a text frame that is not UTF-8: RFC 6455's 1007 is not one an
#: application may send through Autobahn's ``sendClose``, so it is 1007 in the
#: private range (4000-4999).
INVALID_UTF8 = 4007


def mask_payload(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``mask`` (masking and unmasking alike)."""
    n = len(payload)
    if not n:
        return b""
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def split_frames(data: bytes | bytearray, limit: int = FAST_MAX, *, masked: bool = True
                 ) -> tuple[list[tuple[bytes, bool]], int, bool]:
    """Complete simple frames at the start of ``data``.

    ``masked`` says which frames are expected: masked ones from a client (we
    are the server) or unmasked ones from a server. Returns
    ``([(payload, is_binary), ...], bytes consumed, waiting)``; ``waiting`` is
    true when the rest of ``data`` is the start of a frame this function will
    take once it is complete. Anything else is left for the general parser.
    """
    out: list[tuple[bytes, bool]] = []
    pos, n = 0, len(data)
    limit = min(limit, FAST_MAX)
    mask_bit = 0x80 if masked else 0
    key_len = 4 if masked else 0
    while pos < n:
        b0 = data[pos]
        if b0 != TEXT and b0 != BINARY:
            return out, pos, False
        if n - pos < 2:
            return out, pos, True
        b1 = data[pos + 1]
        if b1 & 0x80 != mask_bit:  # a wrong mask bit fails the connection, in Autobahn
            return out, pos, False
        length = b1 & 0x7F
        head = 2
        if length == 126:
            head = 4
        elif length == 127:
            head = 10
        if n - pos < head:
            return out, pos, True
        if length == 126:
            length = (data[pos + 2] << 8) | data[pos + 3]
        elif length == 127:
            length = int.from_bytes(data[pos + 2:pos + 10], "big")
        if length > limit:
            return out, pos, False
        start = pos + head + key_len
        end = start + length
        if end > n:
            return out, pos, True
        payload = bytes(data[start:end])
        if masked:
            payload = mask_payload(payload, bytes(data[start - 4:start]))
        out.append((payload, b0 == BINARY))
        pos = end
    return out, pos, False


def build_frame(payload: bytes, binary: bool = False, mask: bytes | None = None) -> bytes:
    """One unfragmented frame: unmasked as a server sends it, or masked with ``mask``."""
    n = len(payload)
    first = BINARY if binary else TEXT
    bit = 0 if mask is None else 0x80
    if n < 126:
        head = bytes((first, bit | n))
    elif n <= 0xFFFF:
        head = bytes((first, bit | 126, n >> 8, n & 0xFF))
    else:
        head = bytes((first, bit | 127)) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + mask_payload(payload, mask)


class FastFramesMixin(writes.BatchedWrites):
    """For an Autobahn WebSocket protocol, server or client, whose ``onMessage`` does the work.

    Its ``onMessage`` gets text payloads as bytes that nothing has checked:
    Autobahn's UTF-8 validation is meant to be off, and decoding checks anyway.
    """

    state: int
    data: bytes
    current_frame: Any
    inside_message: bool
    send_queue: Any
    transport: Any
    factory: Any
    _perMessageCompress: Any
    maxMessagePayloadSize: int
    maxFramePayloadSize: int
    failedByMe: bool
    message_data: Any
    message_is_binary: bool

    @property
    def faults(self) -> Faults:
        """Where this connection's faults are counted: its factory's ``faults``."""
        return self.factory.faults  # type: ignore[no-any-return]

    _cut_off = False

    def connectionMade(self) -> None:
        super().connectionMade()  # type: ignore[misc]
        self.watch_backlog(MAX_BACKLOG)

    def backlog_exceeded(self, size: int) -> None:
        if self._cut_off:
            self.faults.count("sendsDropped")
            return
        self._cut_off = True
        if self.transport is not None:
            self.faults.peer("slowReaders", "WebSocket peer {peer} is not reading (over {n} "
                             "bytes unread); disconnecting it", peer=self.transport.getPeer(),
                             n=MAX_BACKLOG)
            self.transport.abortConnection()

    def _fast_ok(self) -> bool:
        return (self.state == WebSocketProtocol.STATE_OPEN and self._perMessageCompress is None
                and self.current_frame is None and not self.inside_message)

    def dataReceived(self, data: bytes) -> None:
        # Autobahn's version formats debug-log arguments on every read. Whatever a
        # read sets off stays with this connection: an exception (a bug of ours)
        # is logged once and costs this connection, never the reactor's caller.
        writes.begin()
        try:
            self._dataReceived(data)  # type: ignore[attr-defined]
        except Exception:
            self.faults.bug("a WebSocket read")
            if self.transport is not None:
                self.transport.abortConnection()
        finally:
            writes.end()

    def processData(self) -> bool:
        if self._fast_ok():
            limits = [x for x in (self.maxMessagePayloadSize, self.maxFramePayloadSize) if x]
            frames, used, waiting = split_frames(self.data, min(limits, default=FAST_MAX),
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
        """Deliver a message Autobahn assembled straight to ``onMessage``.

        Autobahn's own version also fires an observer event per message, which
        creates a Deferred and costs more than the whole Engine.IO decode.
        """
        if not self.failedByMe:
            parts = self.message_data
            self.onMessage(parts[0] if len(parts) == 1 else b"".join(parts),  # type: ignore[attr-defined]
                           self.message_is_binary)
        self.message_data = None

    def sendMessage(self, payload: bytes, isBinary: bool = False, *args: Any, **kw: Any) -> None:
        """Send, or drop (counted) once the connection is closing: a peer that sent its
        close frame, or broke the protocol, is gone for us before ``onClose`` says so."""
        if self.state != WebSocketProtocol.STATE_OPEN:
            self.faults.count("sendsDropped")
            return
        if not args and not kw and self._perMessageCompress is None and not self.send_queue:
            mask = None if self.factory.isServer else os.urandom(4)
            self.write_batched(build_frame(payload, isBinary, mask))
            return
        super().sendMessage(payload, isBinary, *args, **kw)  # type: ignore[misc]

    # Autobahn's own ways to the transport: what we batched goes first.

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        # Autobahn's own frames (PONGs, closes) keep their place and count, like ours.
        send = super().sendData  # type: ignore[misc]
        self.write_direct(data, lambda d: send(d, sync, chopsize))

    def _closeConnection(self, abort: bool = False) -> None:
        if not abort:
            self.flush_writes(force=True)
        super()._closeConnection(abort)  # type: ignore[misc]
