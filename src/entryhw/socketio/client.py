"""Socket.IO client over Autobahn WebSockets, for cloud mode's child server.

In cloud mode a second server process connects to the first one on 127.0.0.1:23518 (query
``childServer=true``), emits ``matchTarget`` and relays ``message`` events.  The first server
may be ours or the original Node one (socket.io 2.x), so the default speaks Engine.IO 3 with
Socket.IO revision 4; ``eio=4`` speaks Engine.IO 4 with revision 5 (socket.io 3.x/4.x).

Only the WebSocket transport is used, from the first request on (``transport=websocket``,
as socket.io-client does with ``transports: ["websocket"]``): no long-polling, no upgrade.
One client is one namespace on one connection.

The behaviour copies socket.io-client (2.x for revision 4, 4.8 for revision 5; references
are to its ``lib/manager.ts``, ``lib/socket.ts`` and ``lib/contrib/backo2.ts``, and to
engine.io-client's ``socket.ts``) wherever a caller could tell the difference: event names
and their arguments, the disconnect reasons, when it reconnects and when it does not, the
backoff schedule, ack ids, send buffering.  Differences are listed on :class:`SocketIOClient`.

The protocol decisions live in small reactor-free pieces (:class:`Backoff`,
:class:`AckRegistry`, :class:`Heartbeat` on any ``IReactorTime``, :func:`engineio_url`); the
Autobahn protocol class only forwards frames and closes to the client.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, urlsplit

from autobahn.websocket.protocol import WebSocketProtocol
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from entryhw.backoff import Backoff
from entryhw.engineio import packets as eio
from entryhw.engineio import websocket
from entryhw.engineio._autobahn import WebSocketClientFactory, WebSocketClientProtocol
from entryhw.engineio.frames import INVALID_UTF8
from entryhw.faults import Faults
from entryhw.socketio import packets as sio

__all__ = [
    "AckRegistry",
    "ConnectError",
    "Heartbeat",
    "SocketIOClient",
    "engineio_url",
]

#: Seconds a closing connection waits for the server's close reply before it is dropped.
CLOSE_WAIT = 1.0

# Client states.  CONNECTING covers everything from the TCP connect to the namespace CONNECT
# reply; WAITING is the pause before a reconnection attempt.
CLOSED, CONNECTING, CONNECTED, WAITING = "closed", "connecting", "connected", "waiting"


class ConnectError(Exception):
    """The server refused the namespace connection (CONNECT_ERROR, revision 4 ERROR).

    ``data`` is the error's ``data`` as the server middleware set it (``err.data`` in
    socket.io-client), or ``None``.
    """

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.data = data


# --------------------------------------------------------------------------- sans-I/O parts


class AckRegistry:
    """Callbacks of emitted events waiting for the server's ACK, keyed by ack id.

    Ids count up from 0 for the life of the client, across reconnections, like
    socket.io-client's ``Socket.ids``; a server never acks an id twice, so an id is never
    reused (until 2**53, where it wraps).
    """

    def __init__(self) -> None:
        self._next_id = 0
        self._callbacks: dict[int, Callable[..., Any]] = {}

    def register(self, callback: Callable[..., Any]) -> int:
        ack_id = self._next_id
        self._next_id = 0 if ack_id >= sio.MAX_ACK_ID else ack_id + 1
        self._callbacks[ack_id] = callback
        return ack_id

    def pop(self, ack_id: int | None) -> Callable[..., Any] | None:
        """The callback for an incoming ACK (once), or ``None`` for an unknown id."""
        if ack_id is None:
            return None
        return self._callbacks.pop(ack_id, None)

    def discard(self, ack_id: int) -> None:
        self._callbacks.pop(ack_id, None)

    def drop_all_except(self, keep: Iterable[int]) -> int:
        """Forget the callbacks not in ``keep``; returns how many were forgotten.

        On a lost connection the server will never ack what it got over it, so
        socket.io-client 4 (``Socket._clearAcks``) forgets those callbacks, keeping the ones
        of packets still in the send buffer.
        """
        keep = set(keep)
        dropped = [ack_id for ack_id in self._callbacks if ack_id not in keep]
        for ack_id in dropped:
            del self._callbacks[ack_id]
        return len(dropped)

    def __len__(self) -> int:
        return len(self._callbacks)

    def __contains__(self, ack_id: object) -> bool:
        return ack_id in self._callbacks


def once_ack(send: Callable[[list[Any]], None]) -> Callable[..., None]:
    """The callable an event handler gets for a server event with an ack id.

    Calling it sends one ACK with its arguments; later calls do nothing (socket.io-client
    ``Socket.ack``: "prevent double callbacks").  An argument JSON cannot carry raises from
    the call and leaves the ack unsent, so it can be retried.
    """
    sent = False

    def ack(*args: Any) -> None:
        nonlocal sent
        if sent:
            return
        send(list(args))
        sent = True

    return ack


class Heartbeat:
    """Engine.IO liveness for one connection, on any ``IReactorTime`` (a ``Clock`` in tests).

    ``send(packet_type)`` writes a bare PING or PONG; ``expired()`` is called once when the
    peer is considered gone; ``received(packet_type)`` must see every Engine.IO packet
    received after OPEN.  Times are in seconds.

    * Engine.IO 3 (engine.io-client 3.5 ``setPing``/``onHeartbeat``): the client sends a PING
      every ``ping_interval`` after the previous PONG and allows ``ping_timeout`` for the
      answer; any packet received proves liveness and moves the deadline to
      ``ping_interval + ping_timeout`` from now.
    * Engine.IO 4 (engine.io-client 6 ``_resetPingTimeout``): the server pings; the client
      answers each PING with a PONG, and expires when no PING came for
      ``ping_interval + ping_timeout``.
    """

    def __init__(self, clock: Any, eio_version: int, ping_interval: float, ping_timeout: float,
                 send: Callable[[int], None], expired: Callable[[], None]) -> None:
        if eio_version not in (3, 4):
            raise ValueError(f"unsupported Engine.IO protocol {eio_version!r}")
        self._clock = clock
        self._eio = eio_version
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self._send = send
        self._expired = expired
        self._ping_call: Any = None
        self._deadline_call: Any = None
        self._running = False

    def start(self) -> None:
        self._running = True
        if self._eio == 3:
            self._schedule_ping()
        self._arm(self.ping_interval + self.ping_timeout)

    def received(self, ptype: int) -> None:
        if not self._running:
            return
        if self._eio == 3:
            self._arm(self.ping_interval + self.ping_timeout)
            if ptype == eio.PONG:
                self._schedule_ping()
        elif ptype == eio.PING:
            self._send(eio.PONG)
            self._arm(self.ping_interval + self.ping_timeout)

    def stop(self) -> None:
        self._running = False
        for call in (self._ping_call, self._deadline_call):
            if call is not None and call.active():
                call.cancel()
        self._ping_call = self._deadline_call = None

    def _schedule_ping(self) -> None:
        if self._ping_call is not None and self._ping_call.active():
            self._ping_call.cancel()
        self._ping_call = self._clock.callLater(self.ping_interval, self._ping)

    def _ping(self) -> None:
        self._ping_call = None
        self._send(eio.PING)
        self._arm(self.ping_timeout)

    def _arm(self, delay: float) -> None:
        if self._deadline_call is not None and self._deadline_call.active():
            self._deadline_call.cancel()
        self._deadline_call = self._clock.callLater(delay, self._expire)

    def _expire(self) -> None:
        self._deadline_call = None
        self.stop()
        self._expired()


class EngineURL(NamedTuple):
    url: str  # ws:// or wss:// with path and query, for the WebSocket handshake
    host: str
    port: int
    secure: bool


def engineio_url(url: str, *, eio_version: int, path: str = "/socket.io/",
                 query: dict[str, str] | None = None) -> EngineURL:
    """The WebSocket URL of the Engine.IO endpoint for ``url`` (``http[s]://`` or ``ws[s]://``).

    The query is the URL's own, then ``query``, then ``EIO`` and ``transport=websocket``,
    which override, as engine.io-client builds it; values are escaped like
    ``encodeURIComponent``.  A path in ``url`` is refused: socket.io-client would read it as
    the namespace, which is the ``namespace`` argument here.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "ws"):
        secure = False
    elif scheme in ("https", "wss"):
        secure = True
    else:
        raise ValueError(f"URL scheme must be http, https, ws or wss: {url!r}")
    if parts.path not in ("", "/"):
        raise ValueError(f"put the namespace in namespace=, not in the URL path: {url!r}")
    host = parts.hostname
    if not host:
        raise ValueError(f"URL has no host: {url!r}")
    port = parts.port or (443 if secure else 80)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    params.update({str(k): str(v) for k, v in (query or {}).items()})
    params["EIO"] = str(eio_version)
    params["transport"] = "websocket"
    encoded = "&".join(f"{_uri_component(k)}={_uri_component(v)}" for k, v in params.items())
    netloc = f"[{host}]" if ":" in host else host
    if not path.startswith("/"):
        path = "/" + path
    ws_url = f"{'wss' if secure else 'ws'}://{netloc}:{port}{path}?{encoded}"
    return EngineURL(ws_url, host, port, secure)


def _uri_component(value: str) -> str:
    return quote(value, safe="-_.!~*'()")


# --------------------------------------------------------------------------- Autobahn glue


class _Factory(WebSocketClientFactory):
    """One connection attempt: tags its protocol with the attempt number."""

    noisy = False  # no "Starting factory" line per (re)connection attempt

    def __init__(self, client: SocketIOClient, attempt: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client
        self.attempt = attempt
        self.faults = client.faults


class _EngineIOProtocol(websocket.mixin(), WebSocketClientProtocol):  # type: ignore[misc]
    """Forwards WebSocket events to the client; all decisions are the client's."""

    factory: _Factory

    def connectionMade(self) -> None:
        self.factory.client._live.add(self)
        super().connectionMade()

    #: Our own wait for the server's close reply (a reactor call we can cancel: Autobahn's
    #: batched timers leave their bucket scheduled after a cancel).
    close_timer: Any = None

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.close_timer is not None and self.close_timer.active():
            self.close_timer.cancel()
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
        self.factory.client._ws_closed(self.factory.attempt, code, reason)


_Factory.protocol = _EngineIOProtocol


class _Outgoing(NamedTuple):
    frames: list[str | bytes]  # Socket.IO frames, encoded at emit() time
    ack_id: int | None


# --------------------------------------------------------------------------- the client


class SocketIOClient:
    """A Socket.IO client for one namespace, over the WebSocket transport only.

    Events for :meth:`on`: the server's events (handlers get the event's arguments, plus a
    callable that sends the ACK as last argument when the server asked for one), and

    * ``"connect"`` () once the namespace is joined (``sid`` is set);
    * ``"disconnect"`` (reason) after having been connected: ``"io server disconnect"``,
      ``"io client disconnect"``, ``"ping timeout"``, ``"transport close"``, ``"parse error"``;
    * ``"connect_error"`` (exception) for each failed connection attempt; a
      :class:`ConnectError` when the server refused the namespace (CONNECT_ERROR);
    * ``"reconnect_attempt"`` (n), ``"reconnect_error"`` (exception), ``"reconnect"`` (n),
      ``"reconnect_failed"`` (), as socket.io-client's Manager emits them;
    * ``"error"`` (data): a revision 4 ERROR packet while connected.

    Handlers run synchronously from the reactor; one that raises is logged and does not
    disturb the connection (socket.io-client defers them with ``nextTick`` for that reason).

    Reconnection (``Manager.reconnect``): after a lost connection (transport closed, ping
    timeout, undecodable data) or a failed attempt, wait ``Backoff.duration()`` and try
    again, at most ``reconnection_attempts`` times (``None``: no limit), then
    ``"reconnect_failed"``.  A server-side DISCONNECT, a CONNECT_ERROR and :meth:`disconnect`
    end the connection for good (``skipReconnect`` in socket.io-client, via
    ``Socket.destroy``).

    Emits while not connected wait in a send buffer (``Socket.sendBuffer``) and go out on
    connect, in order; unlike socket.io-client the buffer is bounded (``send_buffer_size``):
    the oldest packet goes first, with a log line.

    Differences from socket.io-client, all deliberate:

    * ``connect_timeout`` covers the whole way to the namespace CONNECT reply, not just the
      Engine.IO handshake, so a server that never answers CONNECT is retried too;
    * ``"reconnect"`` fires when the namespace is joined again (right before ``"connect"``),
      not at the Engine.IO open, and only then is the backoff reset: an attempt that gets a
      handshake but no CONNECT reply still counts against ``reconnection_attempts``;
    * on a revision 4 server an ERROR packet before the namespace is joined is treated like
      a revision 5 CONNECT_ERROR (``"connect_error"``, connection closed, no reconnection);
      socket.io-client 2 emits ``"error"`` and keeps the bare Engine.IO connection open;
    * reserved names (``connect``, ``disconnect``...) are refused by :meth:`emit` for both
      revisions (ValueError);
    * the last ``"reconnect_error"`` comes before ``"reconnect_failed"``, not after.
    """

    log = Logger()

    def __init__(self, url: str, *, query: dict[str, str] | None = None, eio: int = 3,
                 namespace: str = "/", auth: dict[str, Any] | None = None,
                 path: str = "/socket.io/",
                 reconnection: bool = True, reconnection_attempts: int | None = 3,
                 reconnection_delay: float = 1.0, reconnection_delay_max: float = 5.0,
                 randomization: float = 0.5, connect_timeout: float = 5.0,
                 send_buffer_size: int = 1000, tls_context_factory: Any = None,
                 reactor: Any = None, headers: dict[str, str] | None = None,
                 faults: Faults | None = None) -> None:
        if eio not in (3, 4):
            raise ValueError(f"eio must be 3 or 4, not {eio!r}")
        if not isinstance(namespace, str) or not namespace.startswith("/") or any(
                c in namespace for c in ",?#"):
            raise ValueError(f"namespace must start with '/' without ',?#': {namespace!r}")
        if auth is not None and eio == 3:
            raise ValueError("auth needs eio=4 (Socket.IO revision 5); revision 4 has no auth")
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.faults = faults if faults is not None else Faults()
        self.eio = eio
        self.rev = 4 if eio == 3 else 5
        self.namespace = namespace
        self.url = url
        self._query = {str(k): str(v) for k, v in (query or {}).items()}
        self._endpoint_url = engineio_url(url, eio_version=eio, path=path, query=self._query)
        self._auth = auth
        self._reconnection = reconnection
        self._reconnection_attempts = reconnection_attempts
        self._connect_timeout = connect_timeout
        self._send_buffer_size = max(0, send_buffer_size)
        self._tls = tls_context_factory
        self._reactor = reactor
        self._headers = dict(headers or {})
        self._backoff = Backoff(reconnection_delay, reconnection_delay_max, jitter=randomization)
        self._acks = AckRegistry()
        self._handlers: dict[str, list[Callable[..., Any]]] = {}
        self._send_buffer: deque[_Outgoing] = deque()
        self._buffer_dropped = 0
        self._decoder = sio.Decoder(self.rev)

        self._state = CLOSED
        self._attempt = 0  # bumped per connection attempt and teardown: stale events are ignored
        self._proto: _EngineIOProtocol | None = None
        self._connecting: Deferred[Any] | None = None
        self._connect_timer: Any = None
        self._reconnect_timer: Any = None
        self._heartbeat: Heartbeat | None = None
        self._live: set[_EngineIOProtocol] = set()  # connections not closed yet, stale or not
        self._close_waiters: list[Deferred[None]] = []
        self._reconnecting = False  # the current attempt is a reconnection
        self._skip_reconnect = False
        self.engine_sid: str | None = None
        #: The namespace's socket id while connected (``socket.id`` in socket.io-client).
        self.sid: str | None = None

    # ------------------------------------------------------------------ public API

    @property
    def connected(self) -> bool:
        return self._state == CONNECTED

    @property
    def state(self) -> str:
        """``"closed"``, ``"connecting"``, ``"connected"`` or ``"waiting"`` (to reconnect)."""
        return self._state

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        self._handlers.setdefault(event, []).append(handler)

    def off(self, event: str, handler: Callable[..., Any] | None = None) -> None:
        """Remove one handler of ``event``, or all of them."""
        if handler is None:
            self._handlers.pop(event, None)
        elif handler in self._handlers.get(event, ()):
            self._handlers[event].remove(handler)

    def connect(self) -> None:
        """Start connecting (and reconnecting as configured); does nothing unless closed."""
        if self._state != CLOSED:
            return
        self._skip_reconnect = False
        self._reconnecting = False
        self._backoff.reset()
        self._open()

    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """Send an event; ``callback`` gets the server's ACK arguments.

        Raises ``ValueError``/``TypeError`` at once for data that cannot be sent (reserved
        name, non-JSON values), even while not connected.
        """
        if not isinstance(event, str):
            raise TypeError(f"event name must be a str, not {type(event).__name__}")
        if event in sio.RESERVED_EVENTS:
            raise ValueError(f"{event!r} is a reserved event name")
        ack_id = self._acks.register(callback) if callback is not None else None
        try:
            frames = sio.encode(sio.Packet(sio.EVENT, self.namespace, [event, *args], ack_id),
                                self.rev)
        except Exception:
            if ack_id is not None:
                self._acks.discard(ack_id)
            raise
        if self._state == CONNECTED:
            self._send_frames(frames)
        else:
            self._buffer(_Outgoing(frames, ack_id))

    def disconnect(self) -> Deferred[None]:
        """Leave: DISCONNECT if connected, close the connection, stop reconnecting.

        ``connect()`` may be called again later; the send buffer is kept for it.  The
        Deferred fires once no connection of this client is open any more (the close
        handshake takes a round trip), for a clean shutdown.
        """
        self._skip_reconnect = True
        was_connected = self._state == CONNECTED
        if was_connected:
            self._send_frames(sio.encode(sio.Packet(sio.DISCONNECT, self.namespace), self.rev))
        self._teardown(graceful=True)
        self._closed()
        if was_connected:
            self.log.info("disconnected from {url}", url=self.url)
            self._forget_acks()
            self._emit_local("disconnect", "io client disconnect")
        return self.when_closed()

    def when_closed(self) -> Deferred[None]:
        """A Deferred that fires once none of this client's connections is open."""
        if not self._live:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._close_waiters.append(d)
        return d

    # ------------------------------------------------------------------ connection attempts

    def _open(self) -> None:
        self._attempt += 1
        attempt = self._attempt
        self._state = CONNECTING
        self._decoder.reset()
        target = self._endpoint_url
        factory = _Factory(self, attempt, url=target.url, headers=self._headers or None,
                           reactor=self._reactor)
        # Our own timer bounds the whole handshake; closing should not linger either.
        # onMessage decodes text frames itself, which validates UTF-8 anyway.
        factory.setProtocolOptions(openHandshakeTimeout=0, closeHandshakeTimeout=0,
                                   utf8validateIncoming=False)
        self._connect_timer = self._reactor.callLater(
            self._connect_timeout, self._on_connect_timeout, attempt)
        d = self._endpoint().connect(factory)
        self._connecting = d
        d.addCallbacks(self._tcp_connected, self._tcp_failed,
                       callbackArgs=(attempt,), errbackArgs=(attempt,))

    def _endpoint(self) -> Any:
        from twisted.internet.endpoints import (
            HostnameEndpoint,
            TCP4ClientEndpoint,
            TCP6ClientEndpoint,
            wrapClientTLS,
        )

        host, port = self._endpoint_url.host, self._endpoint_url.port
        timeout = max(1, math.ceil(self._connect_timeout))
        endpoint: Any
        # An IP literal needs no name resolution (which would take a thread).
        if isIPAddress(host):
            endpoint = TCP4ClientEndpoint(self._reactor, host, port, timeout=timeout)
        elif isIPv6Address(host):
            endpoint = TCP6ClientEndpoint(self._reactor, host, port, timeout=timeout)
        else:
            endpoint = HostnameEndpoint(self._reactor, host, port, timeout=timeout)
        if self._endpoint_url.secure:
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
            return  # cancelled by a timeout or disconnect()
        self._connecting = None
        self._attempt_failed(failure.value)

    def _on_connect_timeout(self, attempt: int) -> None:
        self._connect_timer = None
        if attempt == self._attempt and self._state == CONNECTING:
            self._attempt_failed(TimeoutError(f"timeout after {self._connect_timeout}s"))

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

    def _ws_closed(self, attempt: int, code: int | None, reason: str | None) -> None:
        if attempt != self._attempt:
            return
        self._proto = None
        detail = reason or f"code {code}"
        self._lost("transport close", ConnectionError(f"WebSocket closed: {detail}"))

    def _ws_frame(self, attempt: int, frame: str | bytes) -> None:
        if attempt != self._attempt:
            return
        try:
            packet = eio.decode_packet(frame, self.eio)
        except eio.DecodeError as exc:
            self._protocol_error(f"bad Engine.IO frame: {exc}")
            return
        if self._heartbeat is not None:
            self._heartbeat.received(packet.type)
        ptype = packet.type
        if ptype == eio.MESSAGE:
            self._engine_message(packet.data)
        elif ptype == eio.OPEN:
            self._engine_open(packet.data)
        elif ptype == eio.CLOSE:
            self._lost("transport close", ConnectionError("the server closed the session"))
        # PING/PONG are the heartbeat's; NOOP and UPGRADE mean nothing on a WebSocket.

    def _engine_open(self, data: str | bytes | None) -> None:
        if self.engine_sid is not None:
            self._protocol_error("a second Engine.IO OPEN packet")
            return
        try:
            handshake = json.loads(data) if isinstance(data, str) else None
            sid = handshake["sid"]
            interval = handshake["pingInterval"] / 1000
            timeout = handshake["pingTimeout"] / 1000
            if not isinstance(sid, str) or not interval > 0 or not timeout > 0:
                raise ValueError
        except (ValueError, TypeError, KeyError):
            self._protocol_error(f"bad Engine.IO handshake {str(data)[:200]!r}")
            return
        self.engine_sid = sid
        self._heartbeat = Heartbeat(self._reactor, self.eio, interval, timeout,
                                    self._send_engine, self._ping_timeout)
        self._heartbeat.start()
        # Revision 5: every namespace, "/" included, is joined with CONNECT (plus auth).
        # Revision 4: the server joins "/" by itself; others take CONNECT with the query
        # appended, as socket.io-client 2 does (Socket.onopen, Manager.packet).
        if self.rev == 5:
            self._send_packet(sio.Packet(sio.CONNECT, self.namespace, self._auth))
        elif self.namespace != "/":
            self._send_packet(sio.Packet(sio.CONNECT, self.namespace, self._query or None))

    def _engine_message(self, data: str | bytes | None) -> None:
        try:
            packet = self._decoder.feed(data if data is not None else "")
        except sio.DecodeError as exc:
            self._protocol_error(f"bad Socket.IO packet: {exc}", "tooDeep"
                                 if isinstance(exc, sio.TooDeepError) else "protocolErrors")
            return
        if packet is not None and packet.nsp == self.namespace:
            self._on_packet(packet)

    def _on_packet(self, packet: sio.Packet) -> None:
        ptype = packet.type
        if ptype == sio.EVENT or ptype == sio.BINARY_EVENT:
            self._on_event(packet)
        elif ptype == sio.ACK or ptype == sio.BINARY_ACK:
            callback = self._acks.pop(packet.id)
            if callback is None:
                self.log.debug("ACK for unknown id {id}", id=packet.id)
            else:
                self._call(f"ack {packet.id}", callback, *packet.data)
        elif ptype == sio.CONNECT:
            self._on_connect_packet(packet)
        elif ptype == sio.DISCONNECT:
            self._server_disconnect()
        elif ptype == sio.CONNECT_ERROR:
            if self._state == CONNECTED:
                self._emit_local("error", packet.data)
            else:
                self._refused(self._connect_error(packet.data))

    def _on_connect_packet(self, packet: sio.Packet) -> None:
        if self._state != CONNECTING:
            return
        if self.rev == 5:
            data = packet.data
            if not (isinstance(data, dict) and isinstance(data.get("sid"), str)):
                # socket.io-client 4 says the same of a revision 4 server's bare "40".
                self._refused(ConnectError("CONNECT without sid: is the server socket.io 2.x?"))
                return
            sid = data["sid"]
        else:
            # socket.io-client 2 Manager.generateId
            sid = (self.engine_sid if self.namespace == "/"
                   else f"{self.namespace}#{self.engine_sid}")
        self._connected(sid)

    def _on_event(self, packet: sio.Packet) -> None:
        if self._state != CONNECTED:
            self.log.debug("event before the namespace was joined, dropped")
            return
        name, *args = packet.data
        if packet.id is not None:
            args.append(once_ack(self._ack_sender(packet.id)))
        self._emit_local(str(name), *args)

    def _ack_sender(self, ack_id: int) -> Callable[[list[Any]], None]:
        attempt = self._attempt

        def send(args: list[Any]) -> None:
            frames = sio.encode(sio.Packet(sio.ACK, self.namespace, args, ack_id), self.rev)
            if attempt == self._attempt and self._state == CONNECTED:
                self._send_frames(frames)
            else:
                self.log.debug("ack {id} for a connection that is gone, dropped", id=ack_id)

        return send

    # ------------------------------------------------------------------ state changes

    def _connected(self, sid: str) -> None:
        if self._connect_timer is not None and self._connect_timer.active():
            self._connect_timer.cancel()
        self._connect_timer = None
        self._state = CONNECTED
        self.sid = sid
        attempts = self._backoff.attempts
        was_reconnecting = self._reconnecting
        self._reconnecting = False
        self._backoff.reset()
        if was_reconnecting:
            self.log.info("reconnected to {url} after {n} attempt(s)", url=self.url, n=attempts)
        else:
            self.log.info("connected to {url}", url=self.url)
        self._flush_buffer()
        if was_reconnecting:
            self._emit_local("reconnect", attempts)
        if self._state == CONNECTED:
            self._emit_local("connect")

    def _lost(self, reason: str, error: BaseException) -> None:
        """The connection ended without either side asking: reconnect if configured."""
        was_connected = self._state == CONNECTED
        self._teardown(graceful=False)
        if not was_connected:
            self._attempt_failed(error)
            return
        self.log.info("connection to {url} lost: {reason}", url=self.url, reason=reason)
        self._state = CLOSED
        self.sid = None
        self._forget_acks()
        self._emit_local("disconnect", reason)
        self._maybe_reconnect()

    def _attempt_failed(self, error: BaseException) -> None:
        self._teardown(graceful=False)
        self._state = CLOSED
        self.log.warn("connecting to {url} failed: {error}", url=self.url, error=error)
        was_reconnecting = self._reconnecting
        self._reconnecting = False
        self._emit_local("connect_error", error)
        if was_reconnecting:
            self._emit_local("reconnect_error", error)
        self._maybe_reconnect()

    def _server_disconnect(self) -> None:
        if self._state != CONNECTED:
            self._refused(ConnectError("the server disconnected before the namespace was joined"))
            return
        self.log.info("the server at {url} disconnected us", url=self.url)
        self._skip_reconnect = True
        self._teardown(graceful=True)
        self._closed()
        self._forget_acks()
        self._emit_local("disconnect", "io server disconnect")

    def _refused(self, error: ConnectError) -> None:
        self.log.warn("the server at {url} refused namespace {nsp}: {error}",
                      url=self.url, nsp=self.namespace, error=error)
        self._skip_reconnect = True
        self._teardown(graceful=True)
        self._closed()
        self._emit_local("connect_error", error)

    def _connect_error(self, data: Any) -> ConnectError:
        """The exception for a CONNECT_ERROR (revision 5) or ERROR (revision 4) payload."""
        if self.rev == 4:
            # socket.io 2.x sends err.data || err.message; socket.io-client 2 emits it as is.
            message = data if isinstance(data, str) else "connection refused"
            return ConnectError(message, data)
        if isinstance(data, dict):  # socket.io-client 4 Socket.onpacket
            return ConnectError(str(data.get("message", "connection refused")), data.get("data"))
        return ConnectError(data if isinstance(data, str) else "connection refused")

    def _protocol_error(self, what: str, kind: str = "protocolErrors") -> None:
        self.faults.peer(kind, "protocol error from {url}: {what}", url=self.url, what=what,
                         level=LogLevel.warn)
        self._lost("parse error", ConnectionError(what))

    def _ping_timeout(self) -> None:
        self._lost("ping timeout", TimeoutError("ping timeout"))

    def _maybe_reconnect(self) -> None:
        # A handler may have called disconnect() (skip) or connect() (no longer CLOSED).
        if not self._reconnection or self._skip_reconnect or self._state != CLOSED:
            return
        limit = self._reconnection_attempts
        if limit is not None and self._backoff.attempts >= limit:
            self.log.warn("giving up on {url} after {n} reconnection attempt(s)",
                          url=self.url, n=self._backoff.attempts)
            self._backoff.reset()
            self._emit_local("reconnect_failed")
            return
        delay = self._backoff.duration()
        self._state = WAITING
        self._reconnecting = True
        self._reconnect_timer = self._reactor.callLater(delay, self._reconnect_now)

    def _reconnect_now(self) -> None:
        self._reconnect_timer = None
        if self._state != WAITING:
            return
        self._emit_local("reconnect_attempt", self._backoff.attempts)
        if self._state == WAITING:  # unless a handler called disconnect()
            self._open()

    def _closed(self) -> None:
        self._state = CLOSED
        self.sid = None
        self._reconnecting = False
        self._backoff.reset()

    def _teardown(self, *, graceful: bool) -> None:
        """End the current attempt or connection; later events from it are ignored."""
        self._attempt += 1
        for name in ("_connect_timer", "_reconnect_timer"):
            call = getattr(self, name)
            if call is not None and call.active():
                call.cancel()
            setattr(self, name, None)
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        self.engine_sid = None
        self._decoder.reset()
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

    def _forget_acks(self) -> None:
        keep = {out.ack_id for out in self._send_buffer if out.ack_id is not None}
        dropped = self._acks.drop_all_except(keep)
        if dropped:
            self.log.debug("{n} ack callback(s) will never be called", n=dropped)

    # ------------------------------------------------------------------ sending

    def _buffer(self, out: _Outgoing) -> None:
        if self._send_buffer_size == 0:
            self._drop(out)
            return
        if len(self._send_buffer) >= self._send_buffer_size:
            self._drop(self._send_buffer.popleft())
        self._send_buffer.append(out)

    def _drop(self, out: _Outgoing) -> None:
        if out.ack_id is not None:
            self._acks.discard(out.ack_id)
        if not self._buffer_dropped:
            self.log.warn("send buffer full ({size} packets) while not connected to {url}: "
                          "dropping the oldest", size=self._send_buffer_size, url=self.url)
        self._buffer_dropped += 1

    def _flush_buffer(self) -> None:
        if self._buffer_dropped:
            self.log.warn("{n} packet(s) were dropped from the send buffer",
                          n=self._buffer_dropped)
            self._buffer_dropped = 0
        while self._send_buffer and self._proto is not None:
            self._send_frames(self._send_buffer.popleft().frames)

    def _send_packet(self, packet: sio.Packet) -> None:
        self._send_frames(sio.encode(packet, self.rev))

    def _send_frames(self, frames: list[str | bytes]) -> None:
        proto = self._proto
        if proto is None:
            return
        for frame in frames:
            wire = eio.encode_packet(eio.Packet(eio.MESSAGE, frame), self.eio)
            if isinstance(wire, str):
                proto.sendMessage(wire.encode("utf-8"), isBinary=False)
            else:
                proto.sendMessage(wire, isBinary=True)

    def _send_engine(self, ptype: int) -> None:
        if self._proto is not None:
            self._proto.sendMessage(eio.encode_packet(eio.Packet(ptype), self.eio).encode(),
                                    isBinary=False)

    # ------------------------------------------------------------------ handlers

    def _emit_local(self, event: str, *args: Any) -> None:
        for handler in list(self._handlers.get(event, ())):
            self._call(repr(event), handler, *args)

    def _call(self, what: str, handler: Callable[..., Any], *args: Any) -> None:
        self.faults.guard(f"the handler for {what}", handler, *args)


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
