"""Engine.IO client over Autobahn WebSockets, under :mod:`entryhw.socketio.client`.

Apart so that the Socket.IO state machine never sees a WebSocket, a handshake or a
heartbeat, and so that plain Engine.IO can be spoken too.  Engine.IO 3 (engine.io 3.x, as
under socket.io 2.x) and 4, over the WebSocket transport only, from the first request on
(``transport=websocket``): no polling, no upgrade.  It behaves as engine.io-client (3.5 and
6, ``socket.ts``) where a user could tell; reconnecting is the user's decision.

The protocol decisions are reactor-free, in :mod:`entryhw.engineio.handshake` (the URL,
the OPEN packet, the heartbeat); the Autobahn protocol class only forwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from autobahn.websocket.protocol import WebSocketProtocol
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import connectionDone
from twisted.logger import LogLevel
from twisted.python.failure import Failure

from entryhw.engineio import packets as eio
from entryhw.engineio import websocket
from entryhw.engineio._autobahn import WebSocketClientFactory, WebSocketClientProtocol
from entryhw.engineio.frames import INVALID_UTF8
from entryhw.engineio.handshake import (
    EngineURL,
    Handshake,
    Heartbeat,
    engineio_url,
    parse_handshake,
)
from entryhw.faults import Faults

__all__ = [
    "EngineIOClient",
    "EngineURL",
    "Handshake",
    "Heartbeat",
    "engineio_url",
    "parse_handshake",
]

#: Seconds a closing connection waits for the server's close reply before it is dropped.
CLOSE_WAIT = 1.0

# Client states: CONNECTING lasts from connect() to the server's OPEN packet.
CLOSED, CONNECTING, OPEN = "closed", "connecting", "open"


# --------------------------------------------------------------------------- Autobahn glue


class _Factory(WebSocketClientFactory):
    """One connection attempt: tags its protocol with the attempt number."""

    noisy = False  # no "Starting factory" line per (re)connection attempt

    def __init__(self, client: EngineIOClient, attempt: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client
        self.attempt = attempt
        self.faults = client.faults


class _EngineIOProtocol(websocket.mixin(), WebSocketClientProtocol):  # type: ignore[misc]
    """Forwards WebSocket events to the client; all decisions are the client's."""

    factory: _Factory

    #: Our own wait for the server's close reply (a reactor call we can cancel: Autobahn's
    #: batched timers leave their bucket scheduled after a cancel).
    close_timer: Any = None

    def connectionMade(self) -> None:
        self.factory.client._live.add(self)
        super().connectionMade()

    #: Why the TCP (or TLS) connection ended, for onClose: a certificate the TLS layer
    #: refused arrives here, and the client's user should hear that, not "closed".
    lost_reason: Failure | None = None

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.close_timer is not None and self.close_timer.active():
            self.close_timer.cancel()
        self.lost_reason = reason
        try:
            super().connectionLost(reason)
        finally:
            self.factory.client._transport_gone(self)

    def onOpen(self) -> None:
        self.factory.client._ws_open(self.factory.attempt, self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if isBinary:
            frame: str | bytes = payload
        else:
            try:
                frame = payload.decode("utf-8")
            except UnicodeDecodeError:
                self.faults.peer("protocolErrors", "the server sent a text frame that is not "
                                 "UTF-8; closing")
                self.sendClose(INVALID_UTF8, "text frame is not valid UTF-8")
                return
        self.factory.client._ws_frame(self.factory.attempt, frame)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.client._ws_closed(self.factory.attempt, code, reason, self.lost_reason)


_Factory.protocol = _EngineIOProtocol


def _abort(proto: WebSocketClientProtocol) -> None:
    """Close at once, without a close handshake (and without Autobahn's warning line)."""
    transport = proto.transport
    if transport is None:
        return
    abort = getattr(transport, "abortConnection", None)
    if abort is not None:
        abort()
    else:
        transport.loseConnection()


# --------------------------------------------------------------------------- the client


class EngineIOClient:
    """An Engine.IO connection over a WebSocket; :meth:`connect` again after it ends.

    The user's side is three callables, each optional and replaceable as an attribute:

    * ``on_open(handshake)`` once the server's OPEN packet came (:class:`Handshake`), which
      must be its first;
    * ``on_message(data)`` for each MESSAGE packet, ``str`` or ``bytes``;
    * ``on_close(reason, error)`` once, when a connection (or an attempt) ends other than by
      :meth:`close`: ``"transport error"`` (it could not be made), ``"connect timeout"`` (no
      OPEN within ``connect_timeout``), ``"transport close"`` (the WebSocket closed or the
      server sent CLOSE), ``"ping timeout"``, ``"parse error"`` (the server broke the
      protocol; counted in ``faults``).  ``error`` is the exception that says more.

    They run synchronously from the reactor, may call any method here, and one that raises
    is logged (:meth:`Faults.bug`) without disturbing the connection.  Whatever the server
    does (close mid-send, garbage, silence) ends at ``on_close``, never in an exception.
    """

    def __init__(self, url: str, *, eio: int = 4, path: str = "/engine.io/",
                 query: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
                 connect_timeout: float = 5.0, tls_context_factory: Any = None,
                 reactor: Any = None, faults: Faults | None = None,
                 on_open: Callable[[Handshake], object] | None = None,
                 on_message: Callable[[str | bytes], object] | None = None,
                 on_close: Callable[[str, BaseException], object] | None = None) -> None:
        if eio not in (3, 4):
            raise ValueError(f"eio must be 3 or 4, not {eio!r}")
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.url = url
        self.eio = eio
        self.target = engineio_url(url, eio_version=eio, path=path, query=query)
        self.faults = faults if faults is not None else Faults()
        self.on_open = on_open
        self.on_message = on_message
        self.on_close = on_close
        self._headers = dict(headers or {})
        self._connect_timeout = connect_timeout
        self._tls = tls_context_factory
        self._reactor = reactor
        self._state = CLOSED
        self._attempt = 0  # bumped per connect() and teardown: stale events are ignored
        self._proto: _EngineIOProtocol | None = None
        self._connecting: Deferred[Any] | None = None
        self._connect_timer: Any = None
        self._heartbeat: Heartbeat | None = None
        #: The current connection's handshake, while open.
        self.handshake: Handshake | None = None
        self._live: set[_EngineIOProtocol] = set()  # connections not closed yet, stale or not
        self._close_waiters: list[Deferred[None]] = []

    @property
    def state(self) -> str:
        """``"closed"``, ``"connecting"`` or ``"open"``."""
        return self._state

    @property
    def sid(self) -> str | None:
        """The Engine.IO session id while open."""
        return self.handshake.sid if self.handshake is not None else None

    def connect(self) -> None:
        """Start one connection attempt; does nothing unless closed."""
        if self._state != CLOSED:
            return
        self._attempt += 1
        attempt = self._attempt
        self._state = CONNECTING
        factory = _Factory(self, attempt, url=self.target.url, headers=self._headers or None,
                           reactor=self._reactor)
        # Our own timer bounds the handshake; closing should not linger either.
        # onMessage decodes text frames itself, which validates UTF-8 anyway.
        factory.setProtocolOptions(openHandshakeTimeout=0, closeHandshakeTimeout=0,
                                   utf8validateIncoming=False)
        self._connect_timer = self._reactor.callLater(
            self._connect_timeout, self._on_connect_timeout, attempt)
        d = self._endpoint().connect(factory)
        self._connecting = d
        d.addCallbacks(self._tcp_connected, self._tcp_failed,
                       callbackArgs=(attempt,), errbackArgs=(attempt,))

    def send(self, data: str | bytes) -> None:
        """Send one MESSAGE packet (text or binary); dropped unless open."""
        self.send_many((data,))

    def send_many(self, messages: Iterable[str | bytes]) -> None:
        """Send MESSAGE packets in order; dropped unless open."""
        proto = self._proto
        if proto is None or self._state != OPEN:
            return
        for data in messages:
            wire = eio.encode_packet(eio.Packet(eio.MESSAGE, data), self.eio)
            if isinstance(wire, str):
                proto.sendMessage(wire.encode("utf-8"), isBinary=False)
            else:
                proto.sendMessage(wire, isBinary=True)

    def close(self, *, abort: bool = False) -> Deferred[None]:
        """End the connection or attempt: the WebSocket close handshake (at most
        ``CLOSE_WAIT`` seconds), or none with ``abort``.  ``on_close`` is not called.

        Returns :meth:`when_closed`.
        """
        self._teardown(graceful=not abort)
        return self.when_closed()

    def when_closed(self) -> Deferred[None]:
        """A Deferred that fires once none of this client's connections is open."""
        if not self._live:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._close_waiters.append(d)
        return d

    # ------------------------------------------------------------------ connecting

    def _endpoint(self) -> Any:
        from twisted.internet.endpoints import (
            HostnameEndpoint,
            TCP4ClientEndpoint,
            TCP6ClientEndpoint,
            wrapClientTLS,
        )

        host, port = self.target.host, self.target.port
        timeout = max(1, math.ceil(self._connect_timeout))
        endpoint: Any
        # An IP literal needs no name resolution (which would take a thread).
        if isIPAddress(host):
            endpoint = TCP4ClientEndpoint(self._reactor, host, port, timeout=timeout)
        elif isIPv6Address(host):
            endpoint = TCP6ClientEndpoint(self._reactor, host, port, timeout=timeout)
        else:
            endpoint = HostnameEndpoint(self._reactor, host, port, timeout=timeout)
        if self.target.secure:
            creator = self._tls
            if creator is None:
                from twisted.internet.ssl import optionsForClientTLS

                creator = optionsForClientTLS(host)
            endpoint = wrapClientTLS(creator, endpoint)
        return endpoint

    def _tcp_connected(self, proto: _EngineIOProtocol, attempt: int) -> None:
        if attempt != self._attempt:
            _abort(proto)
            return
        self._connecting = None
        self._proto = proto

    def _tcp_failed(self, failure: Failure, attempt: int) -> None:
        if attempt != self._attempt:
            return  # cancelled by a timeout or close()
        self._connecting = None
        self._fail("transport error", failure.value)

    def _on_connect_timeout(self, attempt: int) -> None:
        self._connect_timer = None
        if attempt == self._attempt and self._state == CONNECTING:
            self._fail("connect timeout", TimeoutError(f"timeout after {self._connect_timeout}s"))

    # ------------------------------------------------------------------ WebSocket events

    def _transport_gone(self, proto: _EngineIOProtocol) -> None:
        self._live.discard(proto)
        if not self._live:
            waiters, self._close_waiters = self._close_waiters, []
            for d in waiters:
                d.callback(None)

    def _ws_open(self, attempt: int, proto: _EngineIOProtocol) -> None:
        if attempt == self._attempt:
            self._proto = proto  # the server speaks first: its OPEN packet

    def _ws_closed(self, attempt: int, code: int | None, reason: str | None,
                   lost: Failure | None = None) -> None:
        if attempt != self._attempt:
            return
        self._proto = None
        if lost is not None and not lost.check(ConnectionDone, ConnectionLost):
            error: BaseException = lost.value  # e.g. the TLS layer refused the certificate
        else:
            error = ConnectionError(f"WebSocket closed: {reason or f'code {code}'}")
        self._fail("transport close", error)

    def _ws_frame(self, attempt: int, frame: str | bytes) -> None:
        if attempt != self._attempt:
            return
        try:
            packet = eio.decode_packet(frame, self.eio)
        except eio.DecodeError as exc:
            self._protocol_error(f"bad Engine.IO frame: {exc}")
            return
        ptype = packet.type
        if self._state == CONNECTING and ptype != eio.OPEN:
            # Whatever came before the handshake would run without a heartbeat.
            self._protocol_error(f"packet type {ptype} before the Engine.IO handshake")
            return
        if self._heartbeat is not None:
            self._heartbeat.received(ptype)
        if ptype == eio.MESSAGE:
            data = packet.data
            self._call("the Engine.IO message handler", self.on_message,
                       data if data is not None else "")
        elif ptype == eio.OPEN:
            self._opened(packet.data)
        elif ptype == eio.CLOSE:
            self._fail("transport close", ConnectionError("the server closed the session"))
        # PING/PONG are the heartbeat's; NOOP and UPGRADE mean nothing on a WebSocket.

    def _opened(self, data: str | bytes | None) -> None:
        if self._state != CONNECTING:
            self._protocol_error("a second Engine.IO OPEN packet")
            return
        try:
            handshake = parse_handshake(data)
        except ValueError as exc:
            self._protocol_error(str(exc))
            return
        if self._connect_timer is not None and self._connect_timer.active():
            self._connect_timer.cancel()
        self._connect_timer = None
        self._state = OPEN
        self.handshake = handshake
        self._heartbeat = Heartbeat(self._reactor, self.eio, handshake.ping_interval,
                                    handshake.ping_timeout, self._send_control,
                                    self._ping_timeout)
        self._heartbeat.start()
        self._call("the Engine.IO open handler", self.on_open, handshake)

    # ------------------------------------------------------------------ endings

    def _protocol_error(self, what: str) -> None:
        self.faults.peer("protocolErrors", "protocol error from {url}: {what}", url=self.url,
                         what=what, level=LogLevel.warn)
        self._fail("parse error", ConnectionError(what))

    def _ping_timeout(self) -> None:
        self._fail("ping timeout", TimeoutError("ping timeout"))

    def _fail(self, reason: str, error: BaseException) -> None:
        self._teardown(graceful=False)
        self._call("the Engine.IO close handler", self.on_close, reason, error)

    def _teardown(self, *, graceful: bool) -> None:
        """End the current attempt or connection; later events from it are ignored."""
        self._attempt += 1
        self._state = CLOSED
        if self._connect_timer is not None and self._connect_timer.active():
            self._connect_timer.cancel()
        self._connect_timer = None
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        self.handshake = None
        connecting, self._connecting = self._connecting, None
        if connecting is not None:
            connecting.cancel()
        proto, self._proto = self._proto, None
        if proto is not None:
            if graceful and proto.state == WebSocketProtocol.STATE_OPEN:
                proto.sendClose(1000)
                proto.close_timer = self._reactor.callLater(CLOSE_WAIT, _abort, proto)
            else:
                _abort(proto)

    def _send_control(self, ptype: int) -> None:
        if self._proto is not None:
            self._proto.sendMessage(eio.encode_packet(eio.Packet(ptype), self.eio).encode(),
                                    isBinary=False)

    def _call(self, what: str, handler: Callable[..., object] | None, *args: Any) -> None:
        if handler is not None:
            self.faults.guard(what, handler, *args)
