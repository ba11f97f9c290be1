"""The HTTP side: the resource tree and a Site that can close what it serves."""

from __future__ import annotations

from typing import Any

from twisted.protocols.policies import WrappingFactory
from twisted.web.resource import NoResource, Resource
from twisted.web.server import Request, Site

HELLO = b"hello entry"


class Root(Resource):
    """``GET /`` answers ``hello entry`` (the original's liveness probe)."""

    def getChild(self, path: bytes, request: Request) -> Resource:
        if path == b"" and not request.postpath:
            return self
        return NoResource()

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return HELLO


class QuietSite(Site):
    """A Site that writes no access log: long-polling would log every message."""

    noisy = False

    def log(self, request: Request) -> None:
        pass


def make_site(root: Resource | None = None) -> QuietSite:
    """The Site for the resource tree (``Root`` when none is given)."""
    site = QuietSite(root if root is not None else Root())
    site.displayTracebacks = False
    return site


class ConnectionTracker(WrappingFactory):
    """Wraps the listening factory so shutdown can close every live connection."""

    noisy = False

    def close_all(self) -> int:
        """Close every connection; returns how many there were."""
        live = list(self.protocols)
        for proto in live:
            transport: Any = proto.transport
            if transport is not None:
                transport.loseConnection()
        return len(live)
