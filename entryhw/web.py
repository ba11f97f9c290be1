"""The HTTP side: the root and /status resources, a quiet Site with bounded request bodies."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

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


class StatusResource(Resource):
    """``GET /status``: a small JSON snapshot for people and monitoring."""

    isLeaf = True

    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self.status = status

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(self.status(), indent=1).encode() + b"\n"


class BoundedRequest(Request):
    """A request that stops storing its body past ``site.max_body`` bytes.

    twisted.web buffers whole bodies before rendering; this keeps a hostile
    client from filling memory or disk. The resource sees ``body_too_large``.
    """

    body_too_large = False
    _body_size = 0

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.channel.site.max_body:
            self.body_too_large = True
            self.content = io.BytesIO()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.body_too_large:
            return
        self._body_size += len(data)
        if self._body_size > self.channel.site.max_body:
            self.body_too_large = True
            self.content = io.BytesIO()
            return
        super().handleContentChunk(data)


class QuietSite(Site):
    """A Site that writes no access log: long-polling would log every message."""

    noisy = False
    requestFactory = BoundedRequest
    #: Largest request body kept (bytes); Engine.IO's maxPayload plus framing.
    max_body = 1_000_000 + 4096

    def log(self, request: Request) -> None:
        pass


def make_site(root: Resource | None = None) -> QuietSite:
    """The Site for the resource tree (``Root`` when none is given)."""
    site = QuietSite(root if root is not None else Root())
    site.displayTracebacks = False
    return site
