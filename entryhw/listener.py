"""The listening factory: TLS and plain HTTP on one port, and closing what it serves.

The first byte of a connection decides: 0x16 opens a TLS handshake, anything
else is plain HTTP (so ``https://hw.playentry.org:23518`` and the workspace's
``http://127.0.0.1:23518`` fallback work at once). The chosen protocol then
takes over the transport, so no wrapper stays in the data path.

The web site behind it is made on first need (see :meth:`Listener.prepare`),
so the port can be bound, and the parent told, before the web stack is loaded.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

if TYPE_CHECKING:
    from twisted.web.server import Site

log = Logger()

TLS_HANDSHAKE = 0x16


class _FirstByte(Protocol):
    """Lives until the first bytes arrive, then hands the transport over."""

    def __init__(self, listener: Listener, addr: Any) -> None:
        self.listener = listener
        self.addr = addr

    def connectionMade(self) -> None:
        self.listener.transports.add(self.transport)

    def dataReceived(self, data: bytes) -> None:
        listener = self.listener
        site = listener.prepare()
        if data[0] == TLS_HANDSHAKE and listener.tls_factory is not None:
            proto = listener.tls_factory.buildProtocol(self.addr)
        elif listener.tls_only:
            log.info("plain connection from {peer} refused (--tls-only)", peer=self.addr)
            self.transport.abortConnection()
            return
        else:
            proto = site.buildProtocol(self.addr)
        self.transport.protocol = proto
        proto.makeConnection(self.transport)
        proto.dataReceived(data)


class Listener(Factory):
    """Builds a first-byte sniffer per connection; tracks transports for shutdown."""

    noisy = False

    def __init__(self, make_site: Callable[[], Site], tls: Any = None,
                 tls_only: bool = False) -> None:
        self._make_site = make_site
        self.site: Site | None = None
        self.tls = tls
        self.tls_only = tls_only and tls is not None
        self.tls_factory: Any = None
        self.transports: weakref.WeakSet[Any] = weakref.WeakSet()

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

    def buildProtocol(self, addr: Any) -> Protocol:
        return _FirstByte(self, addr)

    def close_all(self) -> int:
        """Close every live connection (TLS ones with a close_notify); returns how many."""
        live = [t for t in list(self.transports) if getattr(t, "connected", False)]
        for transport in live:
            proto = transport.protocol
            if getattr(proto, "factory", None) is self.tls_factory is not None:
                proto.loseConnection()  # TLS: send close_notify first
            else:
                transport.loseConnection()
        return len(live)
