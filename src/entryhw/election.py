"""Host or client, and the re-election between them, as a service.

The rules are docs/protocol.md's "Listening: host or client" and "Client mode (cloud PCs)".

On the parent's ``open`` the service binds the port through an endpoint: it hosts if
that works, and a ``CannotListenError`` means another copy hosts, so it dials that one
(client mode). When the host goes away it tries the port again. Whoever binds first
wins; the rest dial the winner. A random delay (50-500 ms) keeps simultaneous losers
from stepping on each other, and :class:`~entryhw.backoff.Backoff`, the client's own
reconnection policy, spaces the retries when a host cannot be reached (a port held by
a stranger must not make copies spin).

This service is also the bridge's :class:`~entryhw.bridge.Outputs`: the Socket.IO
server (host) or client (copy) it owns are where the bridge's emits go.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, execute, maybeDeferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.logger import Logger
from zope.interface import implementer

from entryhw import __version__
from entryhw.backoff import Backoff
from entryhw.bridge import Bridge
from entryhw.faults import Faults
from entryhw.hostsite import build_site, quiet_autobahn
from entryhw.listener import Listener
from entryhw.policy import HostPolicy, RequestPolicy

if TYPE_CHECKING:
    from twisted.web.server import Site

    from entryhw.settings import Settings
    from entryhw.socketio.server import SocketIOServer

_NO_PAYLOAD: Any = object()

#: Connections the kernel queues before we accept them: Node's default (Twisted's is 50,
#: which a burst of browsers, or of silent connections, overflows into 1 s SYN retries).
LISTEN_BACKLOG = 511


@implementer(IStreamServerEndpoint)
class TCPServerEndpoint:
    """``reactor.listenTCP`` as an endpoint, IPv4 or IPv6 by the interface.

    Twisted's own TCP4ServerEndpoint does the same, but its module imports the TLS
    verification stack (service_identity, cryptography.x509): 60 ms of every start,
    for a plain server that never verifies anything.
    """

    def __init__(self, reactor: Any, port: int, backlog: int, interface: str) -> None:
        self.reactor, self.port, self.backlog, self.interface = reactor, port, backlog, interface

    def listen(self, factory: Any) -> Deferred[Any]:
        return execute(self.reactor.listenTCP, self.port, factory, backlog=self.backlog,
                       interface=self.interface)


class ElectionService(Service):
    """Owns the listening port, the Socket.IO server and the connection to a host.

    ``stopService`` fires once the port is closed, every browser connection is closed
    and the host connection is gone; it never fails (what a peer does while we stop
    is not our error).
    """

    name = "election"
    log = Logger()

    def __init__(self, settings: Settings, *, reactor: Any, faults: Faults,
                 to_parent: Callable[..., None], max_connections: int = 1024,
                 rng: random.Random | None = None,
                 endpoint: IStreamServerEndpoint | None = None) -> None:
        self.settings = settings
        self.reactor = reactor
        self.faults = faults
        self.policy = settings.policy or RequestPolicy(
            hosts=HostPolicy.build(settings.interface))
        self._to_parent = to_parent
        self.rng = rng or random.Random()
        self.bridge = Bridge(self, settings.crypto, faults)
        self.endpoint = endpoint or TCPServerEndpoint(reactor, settings.port, LISTEN_BACKLOG,
                                                      settings.interface)
        self.backoff = Backoff(0.5, 10.0, jitter=0.5, rand=self.rng.random)
        tls = settings.tls
        # The folders of the TLS files, and the files themselves: a symlinked key (as in
        # certbot's live/ folder) really lives elsewhere, maybe under --modules. Deployment
        # material is never served, wherever it lives.
        forbidden = tuple(str(q) for p in tls.sources.paths for q in (p.parent, p)
                          ) if tls is not None else ()
        self.forbidden = forbidden + tuple(
            p for p in (settings.certs, settings.secret_file) if p is not None)
        self.factory = Listener(self._make_site, tls, settings.tls_only, clock=reactor,
                                faults=faults, max_connections=max_connections)
        self.sio: SocketIOServer | None = None  # with the web side, see entryhw.hostsite
        self.port: Any = None
        self.client: Any = None
        self.opened = False
        self._retry: Any = None

    def _make_site(self) -> Site:
        site, self.sio = build_site(
            bridge=self.bridge, faults=self.faults, reactor=self.reactor, policy=self.policy,
            modules=self.settings.modules, forbidden=self.forbidden, status=self.status)
        return site

    # -- Outputs for the bridge ----------------------------------------------

    def to_parent(self, key: str, value: Any = _NO_PAYLOAD) -> None:
        if value is _NO_PAYLOAD:
            self._to_parent(key)
        else:
            self._to_parent(key, value)

    def open(self) -> None:
        """The parent's ``open``: host if the port is free, else client; once only
        (the original flipped modes on a second ``open``)."""
        if self.opened:
            self.faults.throttled("'open' again while running: ignored")
            return
        self.opened = True
        self._try_host()

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

    def _try_host(self) -> None:
        self._retry = None
        if not self.running:
            return
        d = self.endpoint.listen(self.factory)
        d.addCallbacks(self._listening, self._cannot_listen)
        d.addErrback(lambda f: self.faults.bug("electing a host", f))  # ours only

    def _listening(self, port: Any) -> None:
        if not self.running:  # stopped while binding
            port.stopListening()
            return
        self.port = port
        self.backoff.reset()
        self.factory.listening(port)
        bound = port.getHost()
        tls = self.settings.tls
        self.log.info("listening on {scheme}://{host}:{port}/ (host mode{also})",
                      scheme="https" if tls is not None else "http", host=bound.host,
                      port=bound.port, also=", plain HTTP too"
                      if tls is not None and not self.factory.tls_only else "")
        self.bridge.became_host()
        if self.factory.site is None:
            # Two reactor turns: the first writes runningModeChanged to the parent.
            self.reactor.callLater(0, self.reactor.callLater, 0, self.factory.prepare)

    def _cannot_listen(self, failure: Any) -> None:
        if not failure.check(CannotListenError):
            self.log.error("cannot listen on {interface}:{port}: {err}; retrying",
                           interface=self.settings.interface, port=self.settings.port,
                           err=failure.getErrorMessage())
            self._schedule(self.backoff.duration())
            return
        self.log.info("cannot listen on {interface}:{port} ({err}): client mode",
                      interface=self.settings.interface, port=self.settings.port,
                      err=failure.value.socketError)
        self.bridge.became_client()
        self._dial_host()

    # -- client side ---------------------------------------------------------

    def _dial_host(self) -> None:
        from entryhw.socketio.client import SocketIOClient

        quiet_autobahn()
        settings = self.settings
        host = "127.0.0.1" if settings.interface in ("0.0.0.0", "127.0.0.1") \
            else settings.interface
        if ":" in host:
            host = f"[{host}]"
        if settings.tls is not None:
            # Verify the host as a browser would: SNI hw.playentry.org, our chain.
            from entryhw.tls import client_options

            url = f"https://{host}:{settings.port}"
            creator = client_options(settings.tls.certs, settings.insecure_client)
        else:
            url, creator = f"http://{host}:{settings.port}", None
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
        self.backoff.reset()
        self.log.info("connected to the host on port {port} (client mode)",
                      port=self.settings.port)
        self.bridge.host_up()

    def _host_lost(self, client: Any, reason: Any) -> None:
        if client is not self.client:
            return
        self.client = None
        self.bridge.host_down()
        self.log.info("lost the host ({reason}); trying to take over the port", reason=reason)
        # Small random delay: every orphaned copy races for the port; one wins.
        self._schedule(self.rng.uniform(0.05, 0.5))

    def _host_unreachable(self, client: Any, err: Any) -> None:
        if client is not self.client:
            return
        self.client = None
        self.bridge.host_down()
        if self.settings.tls is not None:
            from entryhw.tls import refusal

            why = refusal(err)
            if why is not None:
                self.log.error("{why}", why=why)
        delay = self.backoff.duration()
        failures = self.backoff.attempts
        level = self.log.warn if failures >= 3 else self.log.info
        level("cannot reach a host on port {port} ({err}); attempt {n}, retrying in {delay:.1f}s"
              "{hint}", port=self.settings.port, err=err, n=failures, delay=delay,
              hint=" (is the port held by something that is not an Entry server?)"
              if failures >= 3 else "")
        self._schedule(delay)

    def _schedule(self, delay: float) -> None:
        if not self.running:
            return
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = self.reactor.callLater(delay, self._try_host)

    # -- status and stop -----------------------------------------------------

    def status(self) -> dict[str, Any]:
        status = {"version": __version__, **self.bridge.status(),
                  "faults": self.faults.counts()}
        tls = self.settings.tls
        status["tls"] = None if tls is None else {
            "notAfter": tls.not_after.isoformat(),
            "subject": tls.certs.leaf.subject.rfc4514_string(),
            "plainHttp": not self.factory.tls_only}
        return status

    def stopService(self) -> Deferred[None]:
        super().stopService()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        waits: list[Deferred[Any]] = []
        if self.client is not None:
            client, self.client = self.client, None
            waits.append(maybeDeferred(client.disconnect))
        if self.sio is not None:
            waits.append(maybeDeferred(self.sio.close))
        waits.append(self.factory.close_all().addCallback(self._closed_all))
        if self.port is not None:
            port, self.port = self.port, None
            waits.append(maybeDeferred(port.stopListening))
        return DeferredList(waits, consumeErrors=True).addCallback(lambda _: None)

    def _closed_all(self, count: int) -> None:
        if count:
            self.log.info("closed {n} connection(s)", n=count)
