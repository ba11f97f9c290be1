"""The HTTP side: the root and /status resources, a quiet Site with bounded request bodies."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IHandshakeListener, ISSLTransport
from twisted.web.http import HTTPChannel
from twisted.web.resource import NoResource, Resource
from twisted.web.server import Request, Site
from zope.interface import implementer

from entryhw.faults import Faults
from entryhw.limits import HANDSHAKE_TIMEOUT, IDLE_TIMEOUT, REQUEST_TIMEOUT
from entryhw.policy import REPEATED, RequestPolicy

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


@implementer(IHandshakeListener)
class GuardedChannel(HTTPChannel):
    """HTTP/1.1 with deadlines a slow or silent peer cannot stretch.

    twisted.web's own timeout is an idle timeout, reset by every byte, so a
    request head dribbled a byte a second (slowloris) would hold the
    connection for ever. Here the TLS handshake and the head must be done
    within :data:`~entryhw.limits.HANDSHAKE_TIMEOUT` of the first byte, and each
    later request within :data:`~entryhw.limits.REQUEST_TIMEOUT` of its own
    first line. ``served`` tells the listener this connection is in use.
    """

    served = False
    _deadline: Any = None
    _handshaken = False

    def connectionMade(self) -> None:
        super().connectionMade()
        self._arm(HANDSHAKE_TIMEOUT)

    def handshakeCompleted(self) -> None:
        self._handshaken = True

    def lineReceived(self, line: bytes) -> None:
        if line and self._deadline is None:  # (a stray CRLF after a POST is no request)
            self._arm(REQUEST_TIMEOUT)
        super().lineReceived(line)

    def allContentReceived(self) -> None:
        self._disarm()
        self.served = True
        super().allContentReceived()

    def connectionLost(self, reason: Any) -> None:
        self._disarm()
        super().connectionLost(reason)

    def timeoutConnection(self) -> None:
        # The idle timeout between keep-alive requests: nothing is in flight, and
        # an idle connection is no fault, so it goes quietly (twisted.web logs each).
        if self.transport is not None:
            self.transport.abortConnection()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.callLater(seconds, self._expired, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()
            self._deadline = None

    def _expired(self, seconds: float) -> None:
        self._deadline = None
        tls = ISSLTransport.providedBy(self.transport)
        what = ("the TLS handshake" if tls and not self._handshaken
                else "the request head" if not self.served else "a request")
        peer = self.transport.getPeer()
        self.factory.faults.peer("timeouts", "closed a connection from {peer}: {what} took "
                                 "more than {n:.0f} s", peer=getattr(peer, "host", peer),
                                 what=what, n=seconds)
        self.transport.abortConnection()


class Refused(Resource):
    """403 for a request the policy refuses: no CORS header, nothing reflected."""

    isLeaf = True

    def render(self, request: Request) -> bytes:
        request.setResponseCode(403)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return b"Forbidden\n"


class QuietSite(Site):
    """A Site that writes no access log (long-polling would log every message), with
    :class:`GuardedChannel` connections, bounded request bodies and, with a
    ``policy``, one gate for the origin and host of every request."""

    noisy = False
    protocol = GuardedChannel
    requestFactory = BoundedRequest
    #: Largest request body kept (bytes); Engine.IO's maxPayload plus framing.
    max_body = 1_000_000 + 4096

    def __init__(self, resource: Resource, faults: Faults | None = None,
                 reactor: Any = None, policy: RequestPolicy | None = None) -> None:
        super().__init__(resource, timeout=IDLE_TIMEOUT, reactor=reactor)
        self.faults = faults if faults is not None else Faults()
        self.policy = policy
        self._refused = Refused()

    def getResourceFor(self, request: Request) -> Resource:
        if self.policy is not None:
            refusal = self.policy.check(request.path, _header(request, b"host"),
                                        _header(request, b"origin"),
                                        _header(request, b"sec-fetch-mode"))
            if refusal is not None:
                self.faults.peer(refusal.kind, "refused a request from {peer}: {reason}",
                                 key=refusal.key, peer=_peer(request), reason=refusal.reason)
                return self._refused
        return super().getResourceFor(request)

    def log(self, request: Request) -> None:
        pass


def _header(request: Request, name: bytes) -> str | None:
    """The header's one value; a repeated Origin or Host is refused by the gate, so
    that nothing downstream can read a different copy than the one checked."""
    values = request.requestHeaders.getRawHeaders(name)
    if not values:
        return None
    if len(values) > 1:
        return REPEATED
    return values[0].decode("latin-1")


def _peer(request: Request) -> str:
    peer = request.getClientAddress()
    return str(getattr(peer, "host", peer))


def make_site(root: Resource | None = None, faults: Faults | None = None,
              reactor: Any = None, policy: RequestPolicy | None = None) -> QuietSite:
    """The Site for the resource tree (``Root`` when none is given)."""
    site = QuietSite(root if root is not None else Root(), faults, reactor, policy)
    site.displayTracebacks = False
    return site
