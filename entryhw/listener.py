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

from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from entryhw.faults import Faults
from entryhw.limits import ACCEPT_PAUSE, FIRST_BYTE_TIMEOUT

if TYPE_CHECKING:
    from twisted.web.server import Site

log = Logger()

TLS_HANDSHAKE = 0x16
#: A TLS record holding a fatal handshake_failure alert: the answer to a
#: ClientHello on a port without certificates (browsers and Node fail at once).
TLS_REFUSAL = bytes((0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28))


class _FirstByte(Protocol):
    """Lives until the first bytes arrive, then hands the transport over."""

    handed_to: Any = None

    def __init__(self, listener: Listener, addr: Any) -> None:
        self.listener = listener
        self.addr = addr
        self._timer: Any = None

    def connectionMade(self) -> None:
        self.listener.transports.add(self.transport)
        self._timer = self.listener.clock.callLater(FIRST_BYTE_TIMEOUT, self._silent)

    def _silent(self) -> None:
        self._timer = None
        self.listener.faults.peer("timeouts", "closed a connection from {peer} that sent "
                                  "nothing for {n:.0f} s", peer=self.addr.host,
                                  n=FIRST_BYTE_TIMEOUT)
        self.transport.abortConnection()

    def idle(self) -> bool:
        """True until a request has been made on this connection (see web.GuardedChannel)."""
        if not self.transport.connected or self.transport.disconnecting:
            return False
        proto = self.handed_to
        if proto is None:
            return True
        channel = getattr(proto, "wrappedProtocol", proto)  # TLS: the channel inside
        return not getattr(channel, "served", True)

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
            log.info("plain connection from {peer} refused (--tls-only)", peer=self.addr)
            self.transport.abortConnection()
            return
        else:
            proto = site.buildProtocol(self.addr)
        self.handed_to = proto
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
        self._arrivals: deque[_FirstByte] = deque()  # oldest first, for eviction
        self._paused: Any = None

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

    def buildProtocol(self, addr: Any) -> Protocol | None:
        if len(self.transports) >= self.max_connections and not self._make_room():
            self._pause_accepting()
            return None  # Twisted closes the new socket
        proto = _FirstByte(self, addr)
        self._arrivals.append(proto)
        if len(self._arrivals) > 2 * self.max_connections:
            self._prune_arrivals()
        return proto

    def _make_room(self) -> bool:
        """Forget closed connections; if still full, evict the oldest idle ones.

        A few more than one go at once, so that a stream of newcomers at the cap
        does not pay for a walk over every connection each time.
        """
        self.transports = weakref.WeakSet(
            t for t in self.transports if t.connected and not t.disconnecting)
        target = self.max_connections - max(1, self.max_connections // 64)
        while len(self.transports) > target and self._arrivals:
            oldest = self._arrivals.popleft()
            if oldest.transport is not None and oldest.idle():
                self.faults.peer("evicted", "at the connection cap ({n}): closed the oldest "
                                 "idle connection, from {peer}", n=self.max_connections,
                                 peer=oldest.addr.host)
                oldest.transport.abortConnection()
                self.transports.discard(oldest.transport)
        return len(self.transports) < self.max_connections

    def _prune_arrivals(self) -> None:
        self._arrivals = deque(p for p in self._arrivals
                               if p.transport is not None and p.idle())

    def _pause_accepting(self) -> None:
        port = self.port
        if port is None or self._paused is not None:
            return
        log.warn("{n} connections and none of them idle: not accepting new ones for {s:.0f} s",
                 n=self.max_connections, s=ACCEPT_PAUSE)
        reactor = self.clock
        reactor.removeReader(port)

        def resume() -> None:
            self._paused = None
            if self.port is port and port.connected:
                reactor.addReader(port)

        self._paused = reactor.callLater(ACCEPT_PAUSE, resume)

    def close_all(self) -> int:
        """Close every live connection (TLS ones with a close_notify); returns how many."""
        if self._paused is not None and self._paused.active():
            self._paused.cancel()
        self._paused = None
        live = [t for t in list(self.transports) if getattr(t, "connected", False)]
        for transport in live:
            proto = transport.protocol
            if getattr(proto, "factory", None) is self.tls_factory is not None:
                proto.loseConnection()  # TLS: send close_notify first
            else:
                transport.loseConnection()
        return len(live)
