"""Host and client mode, and the re-election between them (PROTOCOL.md 3-5).

Glue only: it binds the port (host) or dials the host (client), wires the
Socket.IO server or client to the :class:`~entryhw.bridge.Bridge`, and when
the host goes away tries to take the port over. Whoever binds first wins;
the rest dial the winner. Randomised delays keep simultaneous losers from
stepping on each other, and a growing backoff keeps a port held by a
stranger from making copies spin.

The web side (Socket.IO server, /modules, /status) is built just after the
port is bound, not before: importing it (Autobahn, twisted.web) is a third of
the start-up, and meanwhile the parent already has its runningModeChanged and
the kernel queues the first browser's connection. A client-mode copy never
builds it unless it takes the port over.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from entryhw import __version__
from entryhw.bridge import Bridge
from entryhw.deferred_imports import loading
from entryhw.faults import Faults
from entryhw.listener import Listener
from entryhw.policy import HostPolicy, RequestPolicy

if TYPE_CHECKING:
    from twisted.web.server import Site

    from entryhw.socketio.server import Socket, SocketIOServer

log = Logger()

_NO_PAYLOAD: Any = object()

#: Connections the kernel queues before we accept them: Node's default (Twisted's is 50,
#: which a burst of browsers, or of silent connections, overflows into 1 s SYN retries).
LISTEN_BACKLOG = 511

#: Engine.IO timings of the original (socket.io 2 with pingInterval 1000).
PING_INTERVAL_MS, PING_TIMEOUT_MS = 1000, 5000


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


class Modes:
    """Owns the listening port, the Socket.IO server and the host client."""

    def __init__(self, *, reactor: Any, port: int, interface: str, modules: str | None,
                 to_parent: Callable[..., None], crypto: Callable[[str, str], str] | None,
                 tls: Any = None, tls_only: bool = False, insecure_client: bool = False,
                 certs: str | None = None, secret_file: str | None = None,
                 rng: random.Random | None = None, faults: Faults | None = None,
                 max_connections: int = 1024, policy: RequestPolicy | None = None) -> None:
        self.reactor = reactor
        self.faults = faults if faults is not None else Faults()
        self.policy = policy if policy is not None else RequestPolicy(
            hosts=HostPolicy.build(interface))
        self.port_number = port
        self.interface = interface
        self._to_parent = to_parent
        self.rng = rng or random.Random()
        self.bridge = Bridge(self, crypto, self.faults)
        self.sio: SocketIOServer | None = None  # with the web side, see _make_site
        self.modules = modules
        # The folders of the TLS files, and the files themselves: a symlinked key (as
        # in certbot's live/ folder) really lives elsewhere, maybe under --modules.
        forbidden = tuple(str(q) for p in tls.sources.paths for q in (p.parent, p)
                          ) if tls is not None else ()
        # Deployment material is never served, wherever it lives.
        self.forbidden = forbidden + tuple(p for p in (certs, secret_file) if p is not None)
        self.tls = tls
        self.insecure_client = insecure_client
        self.factory = Listener(self._make_site, tls, tls_only, clock=reactor,
                                faults=self.faults, max_connections=max_connections)
        self.port: Any = None
        self.client: Any = None
        self.failures = 0
        self._election: Any = None
        self.stopped = False

    def _make_site(self) -> Site:
        quiet_autobahn()
        with loading():
            from entryhw.modules import ModulesResource
            from entryhw.socketio.server import SocketIOServer
            from entryhw.web import Root, StatusResource, make_site

            self.sio = SocketIOServer(ping_interval=PING_INTERVAL_MS,
                                      ping_timeout=PING_TIMEOUT_MS, clock=self.reactor,
                                      faults=self.faults)
            self._wire_host_events(self.sio)
            root = Root()
            root.putChild(b"socket.io", self.sio.resource())
            root.putChild(b"modules", ModulesResource(self.modules, self.forbidden, self.faults))
            root.putChild(b"status", StatusResource(self.status))
            return make_site(root, self.faults, self.reactor, self.policy)

    # -- Outputs for the bridge ----------------------------------------------

    def to_parent(self, key: str, value: Any = _NO_PAYLOAD) -> None:
        if value is _NO_PAYLOAD:
            self._to_parent(key)
        else:
            self._to_parent(key, value)

    # Before the web side exists there are no browsers to reach.

    def emit_to_socket(self, sid: str, event: str, payload: Any) -> None:
        socket = self.sio.namespaces["/"].sockets.get(sid) if self.sio is not None else None
        if socket is not None:
            socket.emit(event, payload)

    def emit_to_room(self, room: str, event: str, payload: Any) -> None:
        if self.sio is not None:
            self.sio.to(room).emit(event, payload)

    def join(self, sid: str, room: str) -> None:
        socket = self.sio.namespaces["/"].sockets.get(sid) if self.sio is not None else None
        if socket is not None:
            socket.join(room)

    def emit_to_host(self, event: str, payload: Any) -> None:
        if self.client is not None:
            self.client.emit(event, payload)

    # -- host side ---------------------------------------------------------------

    def _wire_host_events(self, sio: SocketIOServer) -> None:
        bridge = self.bridge

        @sio.on("connect")
        def connected(socket: Socket) -> None:
            bridge.socket_connected(socket.sid, socket.handshake.query, socket.handshake.headers)

        @sio.on("disconnect")
        def disconnected(socket: Socket, reason: str) -> None:
            bridge.socket_disconnected(socket.sid)

        @sio.on("message")
        def message(socket: Socket, payload: Any = _NO_PAYLOAD, *extra: Any) -> Any:
            if payload is _NO_PAYLOAD:
                self.faults.throttled("'message' without a payload from {sid}; ignored",
                                      sid=socket.sid)
                bridge.stats.rejected += 1
                return False
            return bridge.message(socket.sid, payload)

        @sio.on("matchTarget")
        def match_target(socket: Socket, value: Any = None, *extra: Any) -> None:
            bridge.match_target(socket.sid, value)

        @sio.on("*")
        def unknown(socket: Socket, event: Any, *args: Any) -> None:
            self.faults.throttled("unknown event {event!r} from {sid}; ignored",
                                  event=str(event)[:40], sid=socket.sid)
            bridge.stats.rejected += 1

    def open(self) -> None:
        """The parent's ``open``: host if the port is free, else client."""
        self._try_host()

    def _try_host(self) -> None:
        self._election = None
        if self.stopped:
            return
        try:
            self.port = self.reactor.listenTCP(self.port_number, self.factory,
                                               backlog=LISTEN_BACKLOG, interface=self.interface)
        except CannotListenError as e:
            log.info("cannot listen on {interface}:{port} ({err}): client mode",
                     interface=self.interface, port=self.port_number, err=e.socketError)
            self.bridge.became_client()
            self._dial_host()
            return
        self.failures = 0
        self.factory.listening(self.port)
        bound = self.port.getHost()
        scheme = "https" if self.tls is not None else "http"
        log.info("listening on {scheme}://{host}:{port}/ (host mode{also})", scheme=scheme,
                 host=bound.host, port=bound.port,
                 also=", plain HTTP too" if self.tls is not None and not self.factory.tls_only
                 else "")
        self.bridge.became_host()
        if self.factory.site is None:
            # Two reactor turns: the first writes runningModeChanged to the parent.
            self.reactor.callLater(0, self.reactor.callLater, 0, self.factory.prepare)

    # -- client side ---------------------------------------------------------

    def _dial_host(self) -> None:
        from entryhw.socketio.client import SocketIOClient

        quiet_autobahn()
        host = "127.0.0.1" if self.interface in ("0.0.0.0", "127.0.0.1") else self.interface
        if ":" in host:
            host = f"[{host}]"
        if self.tls is not None:
            # Verify the host as a browser would: SNI hw.playentry.org, our chain.
            from entryhw.tls import client_options

            url = f"https://{host}:{self.port_number}"
            creator = client_options(self.tls.certs, self.insecure_client)
        else:
            url, creator = f"http://{host}:{self.port_number}", None
        client = SocketIOClient(url, query={"childServer": "true"}, eio=3, reconnection=False,
                                reactor=self.reactor, tls_context_factory=creator,
                                faults=self.faults)
        self.client = client
        client.on("connect", lambda: self._host_up(client))
        client.on("message", lambda payload=None, *extra: self.bridge.host_message(payload))
        client.on("disconnect", lambda reason=None: self._host_lost(client, reason))
        client.on("connect_error", lambda err=None: self._host_unreachable(client, err))
        client.connect()

    def _host_up(self, client: Any) -> None:
        if client is not self.client:
            return
        self.failures = 0
        log.info("connected to the host on port {port} (client mode)", port=self.port_number)
        self.bridge.host_up()

    def _host_lost(self, client: Any, reason: Any) -> None:
        if client is not self.client:
            return
        self.client = None
        self.bridge.host_down()
        log.info("lost the host ({reason}); trying to take over the port", reason=reason)
        # Small random delay: every orphaned copy races for the port; one wins.
        self._schedule_election(self.rng.uniform(0.05, 0.5))

    def _host_unreachable(self, client: Any, err: Any) -> None:
        if client is not self.client:
            return
        self.client = None
        self.bridge.host_down()
        self.failures += 1
        delay = min(10.0, 0.25 * 2 ** self.failures) * self.rng.uniform(0.5, 1.5)
        level = log.warn if self.failures >= 3 else log.info
        level("cannot reach a host on port {port} ({err}); attempt {n}, retrying in {delay:.1f}s"
              "{hint}", port=self.port_number, err=err, n=self.failures, delay=delay,
              hint=" (is the port held by something that is not an Entry server?)"
              if self.failures >= 3 else "")
        self._schedule_election(delay)

    def _schedule_election(self, delay: float) -> None:
        if self.stopped:
            return
        if self._election is not None and self._election.active():
            self._election.cancel()
        self._election = self.reactor.callLater(delay, self._try_host)

    # -- status and shutdown -----------------------------------------------------

    def status(self) -> dict[str, Any]:
        status = {"version": __version__, **self.bridge.status(),
                  "faults": self.faults.counts()}
        if self.tls is not None:
            status["tls"] = {"notAfter": self.tls.not_after.isoformat(),
                             "subject": self.tls.certs.leaf.subject.rfc4514_string(),
                             "plainHttp": not self.factory.tls_only}
        else:
            status["tls"] = None
        return status

    def stop(self) -> Deferred[None]:
        """Stop listening and dialling; close every connection.

        The Deferred fires once the port is closed and the host connection is
        gone; it never fails (what a peer does while we stop is not our error).
        """
        self.stopped = True
        if self._election is not None and self._election.active():
            self._election.cancel()
        waits: list[Deferred[Any]] = []
        if self.client is not None:
            client, self.client = self.client, None
            waits.append(maybeDeferred(client.disconnect))
        if self.sio is not None:
            self.sio.close()
        closed = self.factory.close_all()
        if closed:
            log.info("closed {n} connection(s)", n=closed)
        if self.port is not None:
            port, self.port = self.port, None
            waits.append(maybeDeferred(port.stopListening))
        done = DeferredList(waits, consumeErrors=True)
        return done.addCallback(lambda _: None)
