"""The host's web side: the Socket.IO server, /modules and /status, wired to the bridge.

Built just after the port is bound, not before: importing it (Autobahn, twisted.web) is
a third of the start-up, and meanwhile the parent already has its runningModeChanged and
the kernel queues the first browser's connection. A client-mode copy never builds it
unless it takes the port over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from entryhw.fastpath.imports import loading
from entryhw.faults import Faults

if TYPE_CHECKING:
    from twisted.web.server import Site

    from entryhw.bridge import Bridge
    from entryhw.policy import RequestPolicy
    from entryhw.socketio.server import Socket, SocketIOServer

#: Engine.IO timings of the original (socket.io 2 with pingInterval 1000).
PING_INTERVAL_MS, PING_TIMEOUT_MS = 1000, 5000

_NO_PAYLOAD: Any = object()


def quiet_autobahn() -> None:
    """Autobahn logs warning lines for every peer that breaks the WebSocket protocol, and
    an error line for every TLS connection a peer garbles; we count and log peer faults
    ourselves, rate-limited (see entryhw.faults), so Autobahn's own lines below critical
    are left out unless the log level is debug."""
    import txaio
    from twisted.logger import LogLevel

    from entryhw.logs import current_level

    if current_level() > LogLevel.debug:
        txaio.use_twisted()
        txaio.set_global_log_level("critical")


def build_site(*, bridge: Bridge, faults: Faults, reactor: Any, policy: RequestPolicy,
               modules: str | None, forbidden: tuple[str, ...],
               status: Callable[[], dict[str, Any]]) -> tuple[Site, SocketIOServer]:
    """The site to serve on the host port, and its Socket.IO server."""
    quiet_autobahn()
    with loading():
        from entryhw.modules import ModulesResource
        from entryhw.socketio.server import SocketIOServer
        from entryhw.web import Root, StatusResource, make_site

        sio = SocketIOServer(ping_interval=PING_INTERVAL_MS, ping_timeout=PING_TIMEOUT_MS,
                             clock=reactor, faults=faults)
        wire(sio, bridge, faults)
        root = Root()
        root.putChild(b"socket.io", sio.resource())
        root.putChild(b"modules", ModulesResource(modules, forbidden, faults))
        root.putChild(b"status", StatusResource(status))
        return make_site(root, faults, reactor, policy), sio


def wire(sio: SocketIOServer, bridge: Bridge, faults: Faults) -> None:
    """Socket.IO events to the bridge: docs/protocol.md, "Routing on the host"."""

    @sio.on("connect")
    def connected(socket: Socket) -> None:
        bridge.socket_connected(socket.sid, socket.handshake.query, socket.handshake.headers)

    @sio.on("disconnect")
    def disconnected(socket: Socket, reason: str) -> None:
        bridge.socket_disconnected(socket.sid)

    @sio.on("message")
    def message(socket: Socket, payload: Any = _NO_PAYLOAD, *extra: Any) -> Any:
        if payload is _NO_PAYLOAD:
            faults.throttled("'message' without a payload from {sid}; ignored", sid=socket.sid)
            bridge.stats.rejected += 1
            return False
        return bridge.message(socket.sid, payload)

    @sio.on("matchTarget")
    def match_target(socket: Socket, value: Any = None, *extra: Any) -> None:
        bridge.match_target(socket.sid, value)

    @sio.on("*")
    def unknown(socket: Socket, event: Any, *args: Any) -> None:
        faults.throttled("unknown event {event!r} from {sid}; ignored", event=str(event)[:40],
                         sid=socket.sid)
        bridge.stats.rejected += 1
