"""Socket.IO client for cloud mode's child server, on the Engine.IO client.

In cloud mode a second server process connects to the first one on 127.0.0.1:23518 (query
``childServer=true``), emits ``matchTarget`` and relays ``message`` events.  The first server
may be ours or the original Node one (socket.io 2.x), so the default speaks Engine.IO 3 with
Socket.IO revision 4; ``eio=4`` speaks Engine.IO 4 with revision 5 (socket.io 3.x/4.x).

Only the Socket.IO state machine is here (namespace CONNECT/CONNECT_ERROR, events, acks,
send buffer, reconnection), for one namespace; the connection is the Engine.IO client's.
It copies socket.io-client (2.x for revision 4, 4.8 for revision 5: ``lib/manager.ts``,
``lib/socket.ts``) wherever a caller could tell: events and their arguments, disconnect
reasons, when it reconnects (on :class:`~entryhw.backoff.Backoff`), ack ids, buffering.
Differences are listed on :class:`SocketIOClient`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger, LogLevel

from entryhw.backoff import Backoff
from entryhw.engineio.client import EngineIOClient, Handshake
from entryhw.faults import Faults
from entryhw.socketio import packets as sio
from entryhw.socketio.outbox import AckRegistry, SendBuffer, once_ack

__all__ = [
    "AckRegistry",
    "ConnectError",
    "SocketIOClient",
    "once_ack",
]

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
        self._engine = EngineIOClient(
            url, eio=eio, path=path, query=self._query, headers=headers,
            connect_timeout=connect_timeout, tls_context_factory=tls_context_factory,
            reactor=reactor, faults=self.faults, on_open=self._engine_open,
            on_message=self._engine_message, on_close=self._lost)
        self._auth = auth
        self._reconnection = reconnection
        self._reconnection_attempts = reconnection_attempts
        self._connect_timeout = connect_timeout
        self._reactor = reactor
        self._backoff = Backoff(reconnection_delay, reconnection_delay_max, jitter=randomization)
        self._acks = AckRegistry()
        self._handlers: dict[str, list[Callable[..., Any]]] = {}
        self._send_buffer = SendBuffer(send_buffer_size, self._acks)
        self._decoder = sio.Decoder(self.rev)

        self._state = CLOSED
        self._attempt = 0  # bumped per connection attempt and teardown: stale acks are dropped
        self._deadline = 0.0  # of the current attempt's connect_timeout
        self._connect_timer: Any = None
        self._reconnect_timer: Any = None
        self._reconnecting = False  # the current attempt is a reconnection
        self._skip_reconnect = False
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

    @property
    def engine_sid(self) -> str | None:
        """The Engine.IO session id while its connection is open."""
        return self._engine.sid

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
            self._engine.send_many(frames)
        else:
            self._buffer(frames, ack_id)

    def disconnect(self) -> Deferred[None]:
        """Leave: DISCONNECT if connected, close the connection, stop reconnecting.

        ``connect()`` may be called again later; the send buffer is kept for it.  The
        Deferred fires once no connection of this client is open any more (the close
        handshake takes a round trip), for a clean shutdown.
        """
        was_connected = self._state == CONNECTED
        if was_connected:
            self._send_packet(sio.Packet(sio.DISCONNECT, self.namespace))
        self._finish()
        if was_connected:
            self.log.info("disconnected from {url}", url=self.url)
            self._forget_acks()
            self._emit_local("disconnect", "io client disconnect")
        return self.when_closed()

    def when_closed(self) -> Deferred[None]:
        """A Deferred that fires once none of this client's connections is open."""
        return self._engine.when_closed()

    # ------------------------------------------------------------------ the connection

    def _open(self) -> None:
        self._attempt += 1
        self._state = CONNECTING
        self._decoder.reset()
        # connect_timeout runs to the namespace CONNECT reply: the Engine.IO client's own
        # timer covers the way to its OPEN packet, ours the rest (see _engine_open).
        self._deadline = self._reactor.seconds() + self._connect_timeout
        self._engine.connect()

    def _engine_open(self, handshake: Handshake) -> None:
        self._connect_timer = self._reactor.callLater(
            max(0.0, self._deadline - self._reactor.seconds()), self._on_connect_timeout,
            self._attempt)
        # Revision 5: every namespace, "/" included, is joined with CONNECT (plus auth).
        # Revision 4: the server joins "/" by itself; others take CONNECT with the query
        # appended, as socket.io-client 2 does (Socket.onopen, Manager.packet).
        if self.rev == 5:
            self._send_packet(sio.Packet(sio.CONNECT, self.namespace, self._auth))
        elif self.namespace != "/":
            self._send_packet(sio.Packet(sio.CONNECT, self.namespace, self._query or None))

    def _on_connect_timeout(self, attempt: int) -> None:
        self._connect_timer = None
        if attempt == self._attempt and self._state == CONNECTING:
            self._attempt_failed(TimeoutError(f"timeout after {self._connect_timeout}s"))

    def _engine_message(self, data: str | bytes) -> None:
        try:
            packet = self._decoder.feed(data)
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
                self._engine.send_many(frames)
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
        """The connection ended without either side asking (the Engine.IO client's
        ``on_close``, or bad Socket.IO data): reconnect if configured."""
        was_connected = self._state == CONNECTED
        self._teardown(graceful=False)
        if not was_connected:
            self._attempt_failed(error)
            return
        self.log.info("connection to {url} lost: {reason}", url=self.url, reason=reason)
        self._forget_acks()
        self._emit_local("disconnect", reason)
        self._maybe_reconnect()

    def _attempt_failed(self, error: BaseException) -> None:
        self._teardown(graceful=False)
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
        self._finish()
        self._forget_acks()
        self._emit_local("disconnect", "io server disconnect")

    def _refused(self, error: ConnectError) -> None:
        self.log.warn("the server at {url} refused namespace {nsp}: {error}",
                      url=self.url, nsp=self.namespace, error=error)
        self._finish()
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

    def _finish(self) -> None:
        """End for good, no reconnection: disconnect(), a DISCONNECT or a refusal."""
        self._skip_reconnect = True
        self._reconnecting = False
        self._backoff.reset()
        self._teardown(graceful=True)

    def _teardown(self, *, graceful: bool) -> None:
        """End the current attempt or connection; later events from it are ignored."""
        self._attempt += 1
        self._state = CLOSED
        self.sid = None
        for name in ("_connect_timer", "_reconnect_timer"):
            call = getattr(self, name)
            if call is not None and call.active():
                call.cancel()
            setattr(self, name, None)
        self._decoder.reset()
        self._engine.close(abort=not graceful)

    def _forget_acks(self) -> None:
        dropped = self._acks.drop_all_except(self._send_buffer.ack_ids())
        if dropped:
            self.log.debug("{n} ack callback(s) will never be called", n=dropped)

    # ------------------------------------------------------------------ sending

    def _buffer(self, frames: list[str | bytes], ack_id: int | None) -> None:
        first_drop = not self._send_buffer.dropped
        self._send_buffer.add(frames, ack_id)
        if first_drop and self._send_buffer.dropped:
            self.log.warn("send buffer full ({size} packets) while not connected to {url}: "
                          "dropping the oldest", size=self._send_buffer.size, url=self.url)

    def _flush_buffer(self) -> None:
        if self._send_buffer.dropped:
            self.log.warn("{n} packet(s) were dropped from the send buffer",
                          n=self._send_buffer.dropped)
            self._send_buffer.dropped = 0
        while self._send_buffer and self._engine.state == "open":
            self._engine.send_many(self._send_buffer.popleft())

    def _send_packet(self, packet: sio.Packet) -> None:
        self._engine.send_many(sio.encode(packet, self.rev))

    # ------------------------------------------------------------------ handlers

    def _emit_local(self, event: str, *args: Any) -> None:
        for handler in list(self._handlers.get(event, ())):
            self._call(repr(event), handler, *args)

    def _call(self, what: str, handler: Callable[..., Any], *args: Any) -> None:
        self.faults.guard(f"the handler for {what}", handler, *args)
