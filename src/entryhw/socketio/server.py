"""Socket.IO server (protocol revisions 4 and 5) on top of the Engine.IO server.

The public surface is deliberately close to socket.io's own::

    sio = SocketIOServer(ping_interval=1000, ping_timeout=5000)
    site_root.putChild(b"socket.io", sio.resource())

    @sio.on("connect")
    def hello(socket):                  # return False to refuse
        socket.join(socket.handshake.query.get("roomId", "lobby"))

    @sio.on("message")
    async def message(socket, *args):   # the result answers the client's ack
        answer = await socket.call("question", *args, timeout=5.0)  # our own ack, bounded
        sio.to("lobby").emit("message", *answer)
        return "got it"

Several handlers per event all run, in registration order; the first one's result answers
the ack, and a handler that fails answers none (:mod:`entryhw.socketio.handlers`).
Engine.IO v3 clients (socket.io 2.x) speak revision 4, v4 clients revision 5; one server
serves both at once, and broadcasts encode once per revision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.web.resource import Resource

from entryhw.engineio.server import EngineServer, allow_any_origin
from entryhw.engineio.session import Session
from entryhw.faults import Faults
from entryhw.socketio.connection import Connection, ConnectionRefused
from entryhw.socketio.handlers import Handler
from entryhw.socketio.namespace import Namespace
from entryhw.socketio.rooms import Broadcast
from entryhw.socketio.sockets import Handshake, Socket

__all__ = ["Broadcast", "ConnectionRefused", "Handshake", "Namespace", "Socket",
           "SocketIOServer"]


class SocketIOServer:
    """Namespaces over one Engine.IO server; "/" always exists.

    ``connect_timeout`` (seconds, None for none) bounds both the wait for a revision 5
    client's CONNECT and the "connect" handlers' decision. ``clock`` (an
    ``IReactorTime``, the reactor by default) runs every timer, ack timeouts included.
    """

    def __init__(
        self,
        *,
        ping_interval: int = 25000,
        ping_timeout: int = 20000,
        max_payload: int = 1_000_000,
        connect_timeout: float | None = 45.0,
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

    def off(self, event: str, handler: Handler | None = None) -> None:
        """Shorthand for ``of("/").off(...)``."""
        self.namespaces["/"].off(event, handler)

    def emit(self, event: str, *args: Any) -> int:
        """To every socket of "/"; returns how many."""
        return self.namespaces["/"].emit(event, *args)

    def to(self, *rooms: str) -> Broadcast:
        return self.namespaces["/"].to(*rooms)

    # -- one socket, by sid (python-socketio's server API) -----------------------

    def socket(self, sid: str, namespace: str = "/") -> Socket | None:
        """The socket ``sid`` of ``namespace``, if connected."""
        ns = self.namespaces.get(namespace)
        return ns.sockets.get(sid) if ns is not None else None

    def disconnect(self, sid: str, namespace: str = "/") -> bool:
        """Disconnect socket ``sid`` from ``namespace`` (the client is told, as by
        ``socket.disconnect()``); False if there is no such socket."""
        socket = self.socket(sid, namespace)
        if socket is None:
            return False
        socket.disconnect()
        return True

    def rooms(self, sid: str, namespace: str = "/") -> set[str]:
        """The rooms socket ``sid`` is in, its own sid room included (empty if unknown)."""
        socket = self.socket(sid, namespace)
        return set(socket.rooms) if socket is not None else set()

    def close_room(self, room: str, namespace: str = "/") -> int:
        """Everyone in ``namespace`` leaves ``room``; returns how many left."""
        ns = self.namespaces.get(namespace)
        return ns.close_room(room) if ns is not None else 0

    def close(self) -> Deferred[None]:
        """Disconnect everyone (shutdown); fires once every session is closed."""
        return maybeDeferred(self.engine.close_all).addCallback(lambda _: None)

    def _on_session(self, session: Session) -> None:
        Connection(self, session).start()
