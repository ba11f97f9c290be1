"""A namespace: its sockets, their rooms, and the handlers every socket of it shares."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from entryhw.socketio import packets as sp
from entryhw.socketio.handlers import Handler, Handlers
from entryhw.socketio.rooms import Broadcast

if TYPE_CHECKING:
    from entryhw.socketio.server import SocketIOServer
    from entryhw.socketio.sockets import Socket

#: The reserved names an application handles: the socket's own life, never a packet.
_LIFECYCLE = frozenset({"connect", "disconnect"})


class Namespace:
    """Sockets, rooms and handlers of one namespace.

    ``sockets`` maps sids to sockets; ``rooms`` maps room names to their sockets (every
    socket is in the room named by its own sid, as in socket.io).
    """

    def __init__(self, server: SocketIOServer, name: str) -> None:
        self.server = server
        self.name = name
        self.sockets: dict[str, Socket] = {}
        self.rooms: dict[str, set[Socket]] = {}
        self._handlers = Handlers()
        # Kept apart from the events: no packet from a client can reach these.
        self._lifecycle = Handlers()

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """``handler(socket, *args)`` for ``event`` from any socket of this namespace.

        Several handlers of one event all run, in registration order (the rules are in
        :mod:`entryhw.socketio.handlers`); each may return a Deferred or be a coroutine.
        "connect" gets the socket (return False or raise ConnectionRefused to refuse),
        "disconnect" gets (socket, reason), "*" gets (socket, event, *args) for events
        nobody else handles. The other reserved names cannot be handled.
        """
        name = self._name(event)

        def register(fn: Handler) -> Handler:
            (self._lifecycle if name in _LIFECYCLE else self._handlers).add(name, fn)
            return fn

        return register(handler) if handler is not None else register

    def off(self, event: str, handler: Handler | None = None) -> None:
        """Remove ``handler`` (or every handler) of ``event``."""
        name = self._name(event)
        (self._lifecycle if name in _LIFECYCLE else self._handlers).remove(name, handler)

    @staticmethod
    def _name(event: str) -> str:
        name = "connect" if event == "connection" else event
        if name in sp.RESERVED_EVENTS and name not in _LIFECYCLE:
            raise ValueError(f"{event!r} is reserved and never arrives from a client")
        return name

    def emit(self, event: str, *args: Any) -> int:
        return Broadcast(self, set()).emit(event, *args)

    def to(self, *rooms: str) -> Broadcast:
        return Broadcast(self, set(rooms))

    def close_room(self, room: str) -> int:
        """Everyone leaves ``room`` (a sid's own room too, if asked); returns how many."""
        members = self.rooms.pop(room, set())
        for socket in members:
            socket.rooms.discard(room)
        return len(members)

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
