"""Socket.IO server (protocol revisions 4 and 5) on top of the Engine.IO server.

The public surface is deliberately close to socket.io's own::

    sio = SocketIOServer(ping_interval=1000, ping_timeout=5000)
    site_root.putChild(b"socket.io", sio.resource())

    @sio.on("connect")
    def hello(socket):                  # return False to refuse
        socket.join(socket.handshake.query.get("roomId", "lobby"))

    @sio.on("message")
    def message(socket, *args):         # a return value answers the client's ack
        sio.to("lobby").emit("message", *args)
        return "got it"

Engine.IO v3 clients (socket.io 2.x) speak revision 4, v4 clients revision 5;
one server serves both at once, and broadcasts encode once per revision.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger, LogLevel
from twisted.web.resource import Resource

from entryhw.engineio.server import EngineServer, allow_any_origin
from entryhw.engineio.session import Session
from entryhw.faults import Faults
from entryhw.socketio import packets as sp
from entryhw.socketio.packets import (
    ACK,
    BINARY_ACK,
    BINARY_EVENT,
    CONNECT,
    CONNECT_ERROR,
    DISCONNECT,
    EVENT,
    DecodeError,
    Decoder,
    Packet,
)

log = Logger()

Handler = Callable[..., Any]

#: The reserved names an application handles: the socket's own life, never a packet.
_LIFECYCLE = frozenset({"connect", "disconnect"})


class ConnectionRefused(Exception):
    """Raise from a "connect" handler to refuse a namespace connection.

    ``message`` (and ``data``, revision 5) reach the client in CONNECT_ERROR.
    """

    def __init__(self, message: str = "Not authorized", data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


@dataclass
class Handshake:
    """What the client sent when it connected (socket.handshake in socket.io)."""

    query: dict[str, str]
    headers: dict[str, str]
    address: str
    auth: dict[str, Any] = field(default_factory=dict)
    issued: float = field(default_factory=time.time)


class _Frames:
    """Encodes one packet at most once per revision (broadcasts)."""

    __slots__ = ("_cache", "_packet")

    def __init__(self, packet: Packet) -> None:
        self._packet = packet
        self._cache: dict[int, list[str | bytes]] = {}

    def get(self, rev: int) -> list[str | bytes]:
        frames = self._cache.get(rev)
        if frames is None:
            frames = self._cache[rev] = sp.encode(self._packet, rev)
        return frames


class Socket:
    """One client connected to one namespace."""

    def __init__(self, namespace: Namespace, client: _Client, sid: str,
                 handshake: Handshake) -> None:
        self.namespace = namespace
        self.client = client
        self.sid = sid
        self.handshake = handshake
        self.rooms: set[str] = set()
        self.data: dict[str, Any] = {}
        self.connected = False
        self._handlers: dict[str, Handler] = {}
        self._lifecycle: dict[str, Handler] = {}
        self._acks: dict[int, Callable[..., Any]] = {}
        self._next_ack = 0
        self._pending: list[Packet] | None = None

    # -- receiving -----------------------------------------------------------

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Handle ``event`` on this socket only: ``handler(*args)``; also usable as decorator.

        "disconnect" gets the reason. A return value answers the client's ack.
        """
        if event in sp.RESERVED_EVENTS and event != "disconnect":
            raise ValueError(f"{event!r} is reserved and never arrives from a client")

        def register(fn: Handler) -> Handler:
            (self._lifecycle if event == "disconnect" else self._handlers)[event] = fn
            return fn

        return register(handler) if handler is not None else register

    def _on_event(self, packet: Packet) -> None:
        args = packet[2]
        event = args[0]
        handler = self._handlers.get(event)
        if handler is not None:
            result = self._call(handler, *args[1:])
        else:
            handler = self.namespace._handlers.get(event)
            if handler is None:
                handler = self.namespace._handlers.get("*")
                if handler is None:
                    if packet[3] is not None:
                        self._send_ack(packet[3], None)
                    return
                result = self._call(handler, self, *args)
            else:
                result = self._call(handler, self, *args[1:])
        if packet[3] is not None:
            if isinstance(result, Deferred):
                ack_id = packet[3]
                result.addCallbacks(lambda value: self._send_ack(ack_id, value),
                                    lambda f: self.namespace.server.faults.bug(
                                        "an ack handler", f))
            else:
                self._send_ack(packet[3], result)

    def _call(self, handler: Handler, *args: Any) -> Any:
        """Run an application handler: an exception is a contained bug, never I/O's problem."""
        return self.namespace.server.faults.guard(handler, handler, *args)

    def _send_ack(self, ack_id: int, result: Any) -> None:
        if result is None:
            args: list[Any] = []
        elif isinstance(result, tuple):
            args = list(result)
        else:
            args = [result]
        self.client.send_packet(Packet(ACK, self.namespace.name, args, ack_id))

    def _on_ack(self, packet: Packet) -> None:
        callback = self._acks.pop(packet[3], None)
        if callback is None:
            log.debug("ack {id} for socket {sid}: nobody waits for it", id=packet[3],
                      sid=self.sid)
            return
        self._call(callback, *(packet[2] or []))

    # -- sending -------------------------------------------------------------

    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """Send ``event`` to this client; ``callback(*ack_args)`` runs on its ack."""
        if not self.connected:
            return
        ack_id = None
        if callback is not None:
            ack_id = self._next_ack
            self._next_ack += 1
            self._acks[ack_id] = callback
        packet = Packet(EVENT, self.namespace.name, [event, *args], ack_id)
        if self._pending is not None:
            self._pending.append(packet)
        else:
            self.client.send_packet(packet)

    def send(self, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """``emit("message", *args)``, as socket.send in socket.io."""
        self.emit("message", *args, callback=callback)

    def join(self, room: str) -> None:
        self.namespace._join(self, room)

    def leave(self, room: str) -> None:
        self.namespace._leave(self, room)

    def to(self, *rooms: str) -> Broadcast:
        """Everyone in ``rooms`` but this socket."""
        return Broadcast(self.namespace, set(rooms), exclude={self})

    @property
    def broadcast(self) -> Broadcast:
        """Everyone in the namespace but this socket."""
        return Broadcast(self.namespace, set(), exclude={self})

    def disconnect(self, close: bool = False) -> None:
        """Leave the namespace (the client is told); ``close`` ends the whole connection."""
        if self.connected:
            self.client.send_packet(Packet(DISCONNECT, self.namespace.name))
            self._closed("server namespace disconnect")
        if close:
            self.client.session.close("forced server close")

    def _closed(self, reason: str) -> None:
        if not self.connected:
            return
        self.connected = False
        self.client.sockets.pop(self.namespace.name, None)
        self.namespace._remove(self)
        self._acks.clear()
        handler = self._lifecycle.get("disconnect")
        if handler is not None:
            self._call(handler, reason)
        handler = self.namespace._lifecycle.get("disconnect")
        if handler is not None:
            self._call(handler, self, reason)

    def __repr__(self) -> str:
        return f"<Socket {self.sid} on {self.namespace.name}>"


class Broadcast:
    """A set of target rooms minus exclusions; ``emit`` sends to what is left."""

    def __init__(self, namespace: Namespace, rooms: set[str],
                 exclude: set[Socket] | None = None, except_rooms: set[str] | None = None):
        self.namespace = namespace
        self.rooms = rooms
        self.exclude = exclude or set()
        self.except_rooms = except_rooms or set()

    def to(self, *rooms: str) -> Broadcast:
        return Broadcast(self.namespace, self.rooms | set(rooms), self.exclude,
                         self.except_rooms)

    def except_(self, *rooms: str) -> Broadcast:
        return Broadcast(self.namespace, self.rooms, self.exclude,
                         self.except_rooms | set(rooms))

    def targets(self) -> Iterable[Socket]:
        ns = self.namespace
        if len(self.rooms) == 1 and not self.exclude and not self.except_rooms:
            # The common case (one room, nobody left out): no set to build.
            (room,) = self.rooms
            return tuple(ns.rooms.get(room, ()))
        if self.rooms:
            found: set[Socket] = set()
            for room in self.rooms:
                found.update(ns.rooms.get(room, ()))
            targets: Iterable[Socket] = found
        else:
            targets = list(ns.sockets.values())
        if self.exclude or self.except_rooms:
            skip = set(self.exclude)
            for room in self.except_rooms:
                skip.update(ns.rooms.get(room, ()))
            targets = [s for s in targets if s not in skip]
        return targets

    def emit(self, event: str, *args: Any) -> int:
        """Send to every target (no acks on broadcasts); returns how many."""
        frames = _Frames(Packet(EVENT, self.namespace.name, [event, *args]))
        count = 0
        packet = frames._packet
        for socket in self.targets():
            if socket._pending is not None:  # still in its connect hook
                socket._pending.append(packet)
            else:
                try:
                    socket.client.send_frames(frames.get(socket.client.rev))
                except Exception:
                    # One target failing (a bug of ours) must not cost the others.
                    self.namespace.server.faults.bug("a broadcast to one socket")
                    continue
            count += 1
        return count


class Namespace:
    """Sockets, rooms and handlers of one namespace."""

    def __init__(self, server: SocketIOServer, name: str) -> None:
        self.server = server
        self.name = name
        self.sockets: dict[str, Socket] = {}
        self.rooms: dict[str, set[Socket]] = {}
        self._handlers: dict[str, Handler] = {}
        # Kept apart from the events: no packet from a client can reach these.
        self._lifecycle: dict[str, Handler] = {}

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """``handler(socket, *args)`` for ``event`` from any socket of this namespace.

        "connect" gets the socket (return False or raise ConnectionRefused to
        refuse), "disconnect" gets (socket, reason), "*" gets (socket, event, *args)
        for events nobody else handles. The other reserved names cannot be handled.
        """
        name = "connect" if event == "connection" else event
        if name in sp.RESERVED_EVENTS and name not in _LIFECYCLE:
            raise ValueError(f"{event!r} is reserved and never arrives from a client")

        def register(fn: Handler) -> Handler:
            (self._lifecycle if name in _LIFECYCLE else self._handlers)[name] = fn
            return fn

        return register(handler) if handler is not None else register

    def emit(self, event: str, *args: Any) -> int:
        return Broadcast(self, set()).emit(event, *args)

    def to(self, *rooms: str) -> Broadcast:
        return Broadcast(self, set(rooms))

    def _join(self, socket: Socket, room: str) -> None:
        if room not in socket.rooms:
            socket.rooms.add(room)
            self.rooms.setdefault(room, set()).add(socket)

    def _leave(self, socket: Socket, room: str) -> None:
        if room in socket.rooms:
            socket.rooms.discard(room)
            members = self.rooms.get(room)
            if members is not None:
                members.discard(socket)
                if not members:
                    del self.rooms[room]

    def _remove(self, socket: Socket) -> None:
        self.sockets.pop(socket.sid, None)
        for room in list(socket.rooms):
            self._leave(socket, room)


class _Client:
    """One Engine.IO session and the namespace sockets multiplexed on it."""

    def __init__(self, server: SocketIOServer, session: Session) -> None:
        self.server = server
        self.session = session
        self.rev = 4 if session.eio == 3 else 5
        self.decoder = Decoder(self.rev)
        self.sockets: dict[str, Socket] = {}
        self._connect_timer: Any = None
        session.on_message = self.on_data
        session.on_close = self.on_close

    def start(self) -> None:
        if self.rev == 4:
            # socket.io 2.x connects "/" implicitly, with the handshake query.
            self.connect("/", None)
        else:
            self._connect_timer = self.server.clock.callLater(
                self.server.connect_timeout, self._connect_timed_out)

    def _connect_timed_out(self) -> None:
        if not self.sockets:
            self.server.faults.peer("timeouts", "socket.io client {sid}: no namespace CONNECT "
                                    "in time, closing", sid=self.session.sid)
            self.session.close("connect timeout")

    def send_packet(self, packet: Packet) -> None:
        try:
            frames = sp.encode(packet, self.rev)
        except (TypeError, ValueError) as e:
            self.server.faults.peer("sendsDropped", "cannot encode a Socket.IO packet for "
                                    "{sid}: {err}", sid=self.session.sid, err=e,
                                    level=LogLevel.error)
            return
        self.send_frames(frames)

    def send_frames(self, frames: list[str | bytes]) -> None:
        send = self.session.send
        for frame in frames:
            send(frame)

    def on_data(self, data: str | bytes) -> None:
        try:
            packet = self.decoder.feed(data if data is not None else "")
        except DecodeError as e:
            kind = "tooDeep" if isinstance(e, sp.TooDeepError) else "protocolErrors"
            self.server.faults.peer(kind, "socket.io client {sid}: invalid packet ({err}), "
                                    "closing", sid=self.session.sid, err=e)
            self.session.close("parse error")
            return
        if packet is None:
            return
        ptype, nsp = packet[0], packet[1]
        socket = self.sockets.get(nsp)
        if ptype == EVENT or ptype == BINARY_EVENT:
            if socket is not None:
                socket._on_event(packet)
        elif ptype == ACK or ptype == BINARY_ACK:
            if socket is not None:
                socket._on_ack(packet)
        elif ptype == CONNECT:
            if socket is None:
                self.connect(nsp, packet[2])
        elif ptype == DISCONNECT:
            if socket is not None:
                socket._closed("client namespace disconnect")
                if not self.sockets:
                    # Leaving the last namespace ends the connection, as socket.io-client
                    # does when its last socket disconnects; a peer toggling DISCONNECT
                    # and CONNECT would otherwise fire connect/disconnect hooks at will.
                    self.session.close("client namespace disconnect")
        else:
            self.server.faults.peer("protocolErrors", "socket.io client {sid}: unexpected "
                                    "packet type {t}, closing", sid=self.session.sid, t=ptype)
            self.session.close("parse error")

    def connect(self, nsp: str, data: Any) -> None:
        namespace = self.server.namespaces.get(nsp)
        if namespace is None:
            self._refuse(nsp, "Invalid namespace")
            return
        query = dict(self.session.query)
        auth: dict[str, Any] = {}
        if self.rev == 4:
            if isinstance(data, dict):
                query.update(data)  # rev 4 CONNECT carries the namespace's query
        elif isinstance(data, dict):
            auth = data
        handshake = Handshake(query, self.session.headers, self.session.remote, auth)
        if self.rev == 4:
            sid = self.session.sid if nsp == "/" else f"{nsp}#{self.session.sid}"
        else:
            sid = secrets.token_urlsafe(15)
        socket = Socket(namespace, self, sid, handshake)
        socket.connected = True
        socket._pending = []  # emits from the hook wait for the CONNECT reply
        self.sockets[nsp] = socket
        namespace.sockets[sid] = socket
        namespace._join(socket, sid)
        if self._connect_timer is not None and self._connect_timer.active():
            self._connect_timer.cancel()
        hook = namespace._lifecycle.get("connect")
        if hook is not None:
            try:
                accepted = hook(socket)
            except ConnectionRefused as refused:
                self._undo(socket)
                self._refuse(nsp, refused.message, refused.data)
                return
            except Exception:
                self.server.faults.bug(f"the connect handler of {nsp}")
                accepted = False
            if accepted is False:
                self._undo(socket)
                self._refuse(nsp, "Not authorized")
                return
        if not socket.connected:  # the hook disconnected it
            return
        self.send_packet(Packet(CONNECT, nsp, {"sid": sid} if self.rev == 5 else None))
        pending, socket._pending = socket._pending, None
        for packet in pending:
            self.send_packet(packet)

    def _undo(self, socket: Socket) -> None:
        socket.connected = False
        self.sockets.pop(socket.namespace.name, None)
        socket.namespace._remove(socket)

    def _refuse(self, nsp: str, message: str, data: Any = None) -> None:
        if self.rev == 5:
            payload: Any = {"message": message}
            if data is not None:
                payload["data"] = data
        else:
            payload = message
        self.send_packet(Packet(CONNECT_ERROR, nsp, payload))

    def on_close(self, reason: str) -> None:
        if self._connect_timer is not None and self._connect_timer.active():
            self._connect_timer.cancel()
        for socket in list(self.sockets.values()):
            socket._closed(reason)


class SocketIOServer:
    """Namespaces over one Engine.IO server; "/" always exists."""

    def __init__(
        self,
        *,
        ping_interval: int = 25000,
        ping_timeout: int = 20000,
        max_payload: int = 1_000_000,
        connect_timeout: float = 45.0,
        allow_origin: Callable[[str | None], bool] = allow_any_origin,
        clock: Any = None,
        faults: Faults | None = None,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.clock = clock
        self.faults = faults if faults is not None else Faults()
        self.connect_timeout = connect_timeout
        self.engine = EngineServer(self._on_session, ping_interval=ping_interval,
                                   ping_timeout=ping_timeout, max_payload=max_payload,
                                   allow_origin=allow_origin, clock=clock, faults=self.faults)
        self.namespaces: dict[str, Namespace] = {}
        self.of("/")

    def resource(self) -> Resource:
        """Mount this at ``/socket.io/``."""
        return self.engine.resource()

    def of(self, name: str) -> Namespace:
        """The namespace ``name``, created on first use."""
        ns = self.namespaces.get(name)
        if ns is None:
            ns = self.namespaces[name] = Namespace(self, name)
        return ns

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Shorthand for ``of("/").on(...)``."""
        return self.namespaces["/"].on(event, handler)

    def emit(self, event: str, *args: Any) -> int:
        return self.namespaces["/"].emit(event, *args)

    def to(self, *rooms: str) -> Broadcast:
        return self.namespaces["/"].to(*rooms)

    def close(self) -> None:
        """Disconnect everyone (shutdown)."""
        self.engine.close_all()

    def _on_session(self, session: Session) -> None:
        _Client(self, session).start()
