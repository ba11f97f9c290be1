"""A namespace: its sockets, rooms and handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from entryhw.socketio import packets as sp
from entryhw.socketio.rooms import Broadcast
from entryhw.socketio.sockets import Handler, Socket

if TYPE_CHECKING:
    from entryhw.socketio.server import SocketIOServer

#: The reserved names an application handles: the socket's own life, never a packet.
_LIFECYCLE = frozenset({"connect", "disconnect"})


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
