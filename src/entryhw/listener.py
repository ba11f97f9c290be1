"""The listening factory: TLS and plain HTTP on one port, and keeping that port usable.

The first byte of a connection decides: 0x16 opens a TLS handshake, anything
else is plain HTTP (so ``https://hw.playentry.org:23518`` and the workspace's
``http://127.0.0.1:23518`` fallback work at once). The chosen protocol then
takes over the transport, so no wrapper stays in the data path. Without
certificates a ClientHello gets a TLS alert at once, so a browser trying the
https names first falls through to http://127.0.0.1 without waiting.

No peer can hold the port hostage: a connection that stays silent is closed
after :data:`~entryhw.limits.FIRST_BYTE_TIMEOUT`; at the connection cap (the
file-descriptor limit less a reserve) the oldest connection that has not yet
completed a request makes room for the new one, and when there is none,
accepting pauses for a moment instead of spinning on a full table.

The web site behind it is made on first need (see :meth:`Listener.prepare`),
so the port can be bound, and the parent told, before the web stack is loaded.
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger, LogLevel

from entryhw.faults import Faults
from entryhw.limits import ACCEPT_PAUSE, CLOSE_TIMEOUT, FIRST_BYTE_TIMEOUT

if TYPE_CHECKING:
    from twisted.web.server import Site

log = Logger()

TLS_HANDSHAKE = 0x16
#: A TLS record holding a fatal handshake_failure alert: the answer to a
#: ClientHello on a port without certificates (browsers and Node fail at once).
TLS_REFUSAL = bytes((0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28))


def _idle(transport: Any) -> bool:
    """True for a live connection that has not made a request yet (web.GuardedChannel
    says ``served``); a WebSocket or anything else that took it over is in use."""
    if transport is None or not transport.connected or transport.disconnecting:
        return False
    proto = transport.protocol
    if isinstance(proto, _FirstByte):
        return True
    channel = getattr(proto, "wrappedProtocol", proto)  # TLS: the channel inside
    return not getattr(channel, "served", True)


def _host(transport: Any) -> str:
    peer = transport.getPeer()
    return str(getattr(peer, "host", peer))


class _FirstByte(Protocol):
    """Lives until the first bytes arrive, then hands the transport over."""

    def __init__(self, listener: Listener, addr: Any) -> None:
        self.listener = listener
        self.addr = addr
        self._timer: Any = None

    def connectionMade(self) -> None:
        self.listener.arrived(self.transport)
        self._timer = self.listener.clock.callLater(FIRST_BYTE_TIMEOUT, self._silent)

    def _silent(self) -> None:
        self._timer = None
        self.listener.faults.peer("timeouts", "closed a connection from {peer} that sent "
                                  "nothing for {n:.0f} s", peer=self.addr.host,
                                  n=FIRST_BYTE_TIMEOUT)
        self.transport.abortConnection()


    def dataReceived(self, data: bytes) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            self._hand_over(data)
        except Exception:
            self.listener.faults.bug("a new connection")
            self.transport.abortConnection()

    def _hand_over(self, data: bytes) -> None:
        listener = self.listener
        site = listener.prepare()
        if data[0] == TLS_HANDSHAKE:
            if listener.tls_factory is None:
                listener.faults.peer("tlsRefused", "TLS connection from {peer} refused: no "
                                     "certificates are configured (plain HTTP only)",
                                     peer=self.addr.host)
                self.transport.write(TLS_REFUSAL)
                self.transport.loseConnection()
                return
            proto = listener.tls_factory.buildProtocol(self.addr)
        elif listener.tls_only:
            listener.faults.throttled("plain connection from {peer} refused (--tls-only)",
                                      peer=self.addr.host)
            self.transport.abortConnection()
            return
        else:
            proto = site.buildProtocol(self.addr)
        self.transport.protocol = proto
        proto.makeConnection(self.transport)
        proto.dataReceived(data)

    def connectionLost(self, reason: Any = None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Listener(Factory):
    """Builds a first-byte sniffer per connection; bounds and tracks them for shutdown.

    ``max_connections`` is the cap (see :func:`entryhw.fdlimit.raise_limit`);
    ``clock`` times the deadlines; ``faults`` counts what peers did.
    """

    noisy = False

    def __init__(self, make_site: Callable[[], Site], tls: Any = None,
                 tls_only: bool = False, *, clock: Any = None,
                 faults: Faults | None = None, max_connections: int = 1024) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self._make_site = make_site
        self.site: Site | None = None
        self.tls = tls
        self.tls_only = tls_only and tls is not None
        self.tls_factory: Any = None
        self.clock = clock
        self.faults = faults if faults is not None else Faults()
        self.max_connections = max_connections
        self.port: Any = None  # the listening port, to pause accepting
        self.transports: weakref.WeakSet[Any] = weakref.WeakSet()
        self._arrivals: deque[weakref.ref[Any]] = deque()  # oldest first, for eviction
        self._closing: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self._paused: Any = None
        self._sweeper: Any = None

    def prepare(self) -> Site:
        """Make the site (and its TLS wrapper) now, if not done yet; returns the site."""
        site = self.site
        if site is None:
            site = self.site = self._make_site()
            if self.tls is not None:
                # Imported here: pyOpenSSL and friends cost a plain server 100 ms at start.
                from twisted.protocols.tls import TLSMemoryBIOFactory

                self.tls_factory = TLSMemoryBIOFactory(self.tls, False, site)
                self.tls_factory.noisy = False
        return site

    def listening(self, port: Any) -> None:
        """The port this factory serves (an ``IReadDescriptor``, paused at the cap)."""
        self.port = port
        if self._sweeper is None:
            self._sweeper = LoopingCall(self.sweep)
            self._sweeper.clock = self.clock
            self._sweeper.start(CLOSE_TIMEOUT / 2, now=False)

    def buildProtocol(self, addr: Any) -> Protocol | None:
        if len(self.transports) >= self.max_connections:
            if self._paused is not None or not self._make_room():
                self._pause_accepting()
                return None  # Twisted closes the new socket
        return _FirstByte(self, addr)

    def arrived(self, transport: Any) -> None:
        """A connection started (the sniffer calls this): count it and remember its age."""
        self.transports.add(transport)
        self._arrivals.append(weakref.ref(transport))
        if len(self._arrivals) & 1023 == 0:
            self._arrivals = deque(r for r in self._arrivals if _idle(r()))

    def _make_room(self) -> bool:
        """Forget closed connections; if still full, evict the oldest idle ones.

        A sixty-fourth of the cap goes at once, so that a stream of newcomers at
        the cap does not pay for a walk over every connection each time.
        """
        self.transports = weakref.WeakSet(t for t in self.transports if t.connected)
        target = self.max_connections - max(1, self.max_connections // 64)
        while len(self.transports) > target and self._arrivals:
            oldest = self._arrivals.popleft()()
            if _idle(oldest):
                self.faults.peer("evicted", "at the connection cap ({n}): closed the oldest "
                                 "connections that had not made a request yet",
                                 n=self.max_connections)
                oldest.abortConnection()
                self.transports.discard(oldest)
        return len(self.transports) < self.max_connections

    def _pause_accepting(self) -> None:
        port = self.port
        if port is None or self._paused is not None:
            return
        self.faults.throttled("{n} connections and none of them idle: not accepting new ones "
                              "for {s:.0f} s", n=self.max_connections, s=ACCEPT_PAUSE,
                              level=LogLevel.warn)
        reactor = self.clock
        reactor.removeReader(port)

        def resume() -> None:
            self._paused = None
            if self.port is port and port.connected:
                reactor.addReader(port)

        self._paused = reactor.callLater(ACCEPT_PAUSE, resume)

    def sweep(self) -> None:
        """Abort connections that have been closing for longer than CLOSE_TIMEOUT.

        A close waits for what is buffered to leave; a peer that stops reading
        would keep it (and its descriptor) for ever. Runs every half timeout.
        """
        now = self.clock.seconds()
        closing = self._closing
        for transport in list(self.transports):
            if not transport.connected:
                continue
            if not transport.disconnecting:
                closing.pop(transport, None)
                continue
            since = closing.setdefault(transport, now)
            if now - since >= CLOSE_TIMEOUT:
                self.faults.peer("timeouts", "aborted a connection from {peer} that did not "
                                 "take its last {n:.0f} s of data", peer=_host(transport),
                                 n=CLOSE_TIMEOUT)
                transport.abortConnection()

    def close_all(self) -> Deferred[int]:
        """Close every live connection (TLS ones with a close_notify).

        Fires with how many there were once all are closed; one that has not closed
        after :data:`CLOSE_TIMEOUT` (a peer that does not take its last bytes) is aborted.
        """
        if self._paused is not None and self._paused.active():
            self._paused.cancel()
        self._paused = None
        if self._sweeper is not None and self._sweeper.running:
            self._sweeper.stop()
        self._sweeper = None
        live = [t for t in list(self.transports) if getattr(t, "connected", False)]
        for transport in live:
            proto = transport.protocol
            if getattr(proto, "factory", None) is self.tls_factory is not None:
                proto.loseConnection()  # TLS: send close_notify first
            else:
                transport.loseConnection()
        return self._closed(live, self.clock.seconds() + CLOSE_TIMEOUT).addCallback(
            lambda _: len(live))

    def _closed(self, transports: list[Any], deadline: float) -> Deferred[None]:
        done: Deferred[None] = Deferred()

        def check() -> None:
            still = [t for t in transports if getattr(t, "connected", False)]
            if still and self.clock.seconds() >= deadline:
                for transport in still:
                    transport.abortConnection()
                still = []
            if not still:
                loop.stop()
                done.callback(None)

        loop = LoopingCall(check)
        loop.clock = self.clock
        loop.start(0.02, now=True)
        return done
