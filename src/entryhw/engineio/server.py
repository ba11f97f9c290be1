"""Engine.IO v3 + v4 server on twisted.web (long-polling) and Autobahn (WebSocket).

Mount :meth:`EngineServer.resource` at ``/socket.io/`` (or ``/engine.io/``);
``on_connection(session)`` is called for every new session, which the
application drives through :class:`~entryhw.engineio.session.Session`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from autobahn.websocket.types import ConnectionDeny
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from entryhw.engineio import websocket
from entryhw.engineio._autobahn import (
    WebSocketResource,
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from entryhw.engineio.frames import INVALID_UTF8
from entryhw.engineio.packets import (
    MESSAGE,
    OPEN,
    DecodeError,
    Packet,
    decode_packet,
    decode_payload,
    encode_packet,
    encode_payload,
    handshake_data,
)
from entryhw.engineio.session import Session
from entryhw.faults import Faults

log = Logger()

#: How Autobahn's ``onClose`` reason starts when it dropped a peer that broke the protocol.
_WE_FAILED = "I dropped the WebSocket TCP connection"

#: The spec's error codes and messages (HTTP 400 bodies, 403 for Forbidden).
TRANSPORT_UNKNOWN, SESSION_UNKNOWN, BAD_HANDSHAKE_METHOD, BAD_REQUEST, FORBIDDEN, \
    UNSUPPORTED_VERSION = range(6)
ERROR_MESSAGES = {
    TRANSPORT_UNKNOWN: "Transport unknown",
    SESSION_UNKNOWN: "Session ID unknown",
    BAD_HANDSHAKE_METHOD: "Bad handshake method",
    BAD_REQUEST: "Bad request",
    FORBIDDEN: "Forbidden",
    UNSUPPORTED_VERSION: "Unsupported protocol version",
}


def allow_any_origin(origin: str | None) -> bool:
    """The default origin policy: like socket.io 2's ``origins: '*:*'``."""
    return True


def cors_headers(origin: str | None, allowed: bool) -> list[tuple[bytes, bytes]]:
    """Response headers for a cross-origin polling request (none without Origin)."""
    if origin is None or not allowed:
        return []
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-credentials", b"true"),
        (b"vary", b"Origin"),
    ]


class EngineServer:
    """Sessions by sid, the shared settings, and the HTTP/WebSocket entry points.

    Times are in milliseconds as on the wire (``ping_interval``,
    ``ping_timeout``); ``max_payload`` bounds one HTTP body or WebSocket
    message in bytes; ``allow_origin(origin)`` is the one place that decides
    which pages may connect.
    """

    def __init__(
        self,
        on_connection: Callable[[Session], None],
        *,
        ping_interval: int = 25000,
        ping_timeout: int = 20000,
        max_payload: int = 1_000_000,
        upgrade_timeout: float = 10.0,
        allow_origin: Callable[[str | None], bool] = allow_any_origin,
        clock: Any = None,
        faults: Faults | None = None,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.faults = faults if faults is not None else Faults()
        self.on_connection = on_connection
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_payload = max_payload
        self.upgrade_timeout = upgrade_timeout
        self.allow_origin = allow_origin
        self.clock = clock
        self.sessions: dict[str, Session] = {}
        factory = WebSocketServerFactory()
        factory.protocol = EngineWebSocket
        factory.engine = self
        factory.faults = self.faults
        factory.setProtocolOptions(
            maxMessagePayloadSize=max_payload,
            maxFramePayloadSize=max_payload,
            autoFragmentSize=0,
            # onMessage decodes text frames itself, which validates UTF-8 anyway.
            utf8validateIncoming=False,
            openHandshakeTimeout=10,
            closeHandshakeTimeout=2,
            # Origins are decided by allow_origin (and, in the bridge, by the site's gate)
            # for WebSocket and polling alike; Autobahn's own check would be a second policy.
            allowNullOrigin=True,
        )
        factory.noisy = False
        self._websocket = WebSocketResource(factory)

    def resource(self) -> Resource:
        """The twisted.web resource serving this server's endpoint."""
        return EngineResource(self, self._websocket)

    # -- sessions ------------------------------------------------------

    def open_session(self, eio: int, *, transport: str, query: dict[str, str],
                     headers: dict[str, str], remote: str, b64: bool = False,
                     jsonp: str | None = None) -> tuple[Session, str]:
        """Create a session; returns it and the text of its OPEN packet."""
        sid = secrets.token_urlsafe(15)
        session = Session(self, sid, eio, query=query, headers=headers, remote=remote,
                          b64=b64, jsonp=jsonp)
        self.sessions[sid] = session
        upgrades = ["websocket"] if transport == "polling" else []
        data = handshake_data(sid, upgrades, self.ping_interval, self.ping_timeout, eio,
                              self.max_payload)
        return session, encode_packet(Packet(OPEN, data), eio)  # type: ignore[return-value]

    def connected(self, session: Session) -> None:
        session.start()
        try:
            self.on_connection(session)
        except Exception:
            self.faults.bug("on_connection")
            session.close("server error")

    def forget(self, session: Session) -> None:
        self.sessions.pop(session.sid, None)

    def close_all(self, reason: str = "server shutting down") -> None:
        """Close every session (shutdown)."""
        for session in list(self.sessions.values()):
            session.terminate(reason)

    # -- HTTP responses ------------------------------------------------

    def respond(self, request: Request, code: int, body: bytes, content_type: str) -> None:
        # A held poll whose connection dropped is forgotten by its session first
        # (notifyFinish, as Twisted advises), so every request here is still connected.
        if request.finished:
            return
        request.setResponseCode(code)
        request.setHeader(b"content-type", content_type.encode())
        request.setHeader(b"content-length", b"%d" % len(body))
        request.write(body)
        request.finish()


def _first(args: dict[bytes, list[bytes]], name: bytes) -> str | None:
    values = args.get(name)
    if not values:
        return None
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        return None


class EngineResource(Resource):
    """Routes one Engine.IO HTTP request: handshake, poll, post, or WebSocket."""

    isLeaf = True

    def __init__(self, engine: EngineServer, websocket: WebSocketResource) -> None:
        super().__init__()
        self.engine = engine
        self.websocket = websocket

    def render(self, request: Request) -> Any:
        origin = _first({b"o": request.requestHeaders.getRawHeaders(b"origin") or []}, b"o")
        allowed = self.engine.allow_origin(origin)
        for name, value in cors_headers(origin, allowed):
            request.setHeader(name, value)
        if request.method == b"OPTIONS":
            return self._preflight(request, allowed)
        if not allowed:
            return self._error(request, FORBIDDEN, 403)
        args = request.args
        eio_text = _first(args, b"EIO")
        if eio_text not in ("3", "4"):
            return self._error(request, UNSUPPORTED_VERSION)
        eio = int(eio_text)
        transport = _first(args, b"transport")
        if transport not in ("polling", "websocket"):
            return self._error(request, TRANSPORT_UNKNOWN)
        sid = _first(args, b"sid")
        session = None
        if sid is not None:
            session = self.engine.sessions.get(sid)
            if session is None or session.eio != eio or session.expired():
                return self._error(request, SESSION_UNKNOWN)
        if transport == "websocket":
            upgrade = (request.getHeader(b"upgrade") or b"").lower()
            if upgrade != b"websocket" or request.method != b"GET":
                return self._error(request, BAD_REQUEST)
            # A socket for a session that cannot upgrade is accepted, then closed
            # (as engine.io does), leaving the session itself untouched.
            return self.websocket.render(request)
        if session is None:
            if request.method != b"GET":
                return self._error(request, BAD_HANDSHAKE_METHOD)
            return self._handshake(request, eio)
        if session.transport != "polling":
            return self._error(request, BAD_REQUEST)
        if request.method == b"GET":
            if not session.poll(request):
                return self._error(request, BAD_REQUEST)
            if not request.finished:
                request.notifyFinish().addErrback(lambda _: session.poll_gone(request))
            return NOT_DONE_YET
        if request.method == b"POST":
            return self._post(request, session)
        return self._error(request, BAD_REQUEST)

    def _handshake(self, request: Request, eio: int) -> Any:
        jsonp = _first(request.args, b"j") if eio == 3 else None
        b64 = bool(_first(request.args, b"b64")) or jsonp is not None
        session, frame = self.engine.open_session(
            eio, transport="polling", query=_query(request.args), headers=_headers(request),
            remote=_peer(request), b64=b64, jsonp=jsonp)
        body, content_type = encode_payload([Packet(OPEN, frame[1:])], eio, b64=b64, jsonp=jsonp)
        self.engine.respond(request, 200, body, content_type)
        self.engine.connected(session)
        return NOT_DONE_YET

    def _post(self, request: Request, session: Session) -> Any:
        body = request.content.read() if request.content is not None else b""
        if getattr(request, "body_too_large", False) or len(body) > self.engine.max_payload:
            session.fail("transport error", f"body over {self.engine.max_payload} bytes",
                         reply=False)
            return self._error(request, BAD_REQUEST, 413)
        try:
            packets = decode_payload(body, session.eio,
                                     content_type=request.getHeader(b"content-type"),
                                     jsonp=session.jsonp is not None)
        except DecodeError as e:
            session.fail("parse error", f"invalid payload ({e})", reply=False)
            return self._error(request, BAD_REQUEST)
        self.engine.respond(request, 200, b"ok", "text/html")
        for packet in packets:
            try:
                session.receive(packet)
            except Exception:
                self.engine.faults.bug("a polling request")
                session.terminate("server error")
                break
        return NOT_DONE_YET

    def _preflight(self, request: Request, allowed: bool) -> bytes:
        request.setResponseCode(204 if allowed else 403)
        if allowed:
            request.setHeader(b"access-control-allow-methods", b"GET, POST, OPTIONS")
            wanted = request.getHeader(b"access-control-request-headers")
            if wanted:
                request.setHeader(b"access-control-allow-headers", wanted)
            if (request.getHeader(b"access-control-request-private-network") or b"").lower() \
                    == b"true":
                # Chrome's Private Network Access: a public page may call 127.0.0.1.
                request.setHeader(b"access-control-allow-private-network", b"true")
            request.setHeader(b"access-control-max-age", b"86400")
        request.setHeader(b"content-length", b"0")
        return b""

    def _error(self, request: Request, code: int, status: int = 400) -> bytes:
        body = json.dumps({"code": code, "message": ERROR_MESSAGES[code]}).encode()
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        return body


def _query(args: dict[bytes, list[bytes]]) -> dict[str, str]:
    return {k.decode("utf-8", "replace"): v[0].decode("utf-8", "replace")
            for k, v in args.items() if v}


def _headers(request: Request) -> dict[str, str]:
    return {name.decode("latin-1").lower(): b", ".join(values).decode("latin-1")
            for name, values in request.requestHeaders.getAllRawHeaders()}


def _peer(request: Request) -> str:
    peer = request.getClientAddress()
    return getattr(peer, "host", str(peer))


class EngineWebSocket(websocket.mixin(), WebSocketServerProtocol):  # type: ignore[misc]
    """One WebSocket: a direct session, or the upgrade of a polling one."""

    session: Session | None = None
    upgrading = False
    refused = False

    def onConnect(self, request: Any) -> None:
        engine: EngineServer = self.factory.engine
        params = request.params
        self._eio = int(params["EIO"][0])
        sid = params.get("sid")
        if sid:
            session = engine.sessions.get(sid[0])
            if session is None:
                raise ConnectionDeny(ConnectionDeny.BAD_REQUEST, "Session ID unknown")
            if session.begin_upgrade(self):
                self.session = session
                self.upgrading = True
            else:
                self.refused = True
            return None
        self._query = {k: v[0] for k, v in params.items() if v}
        self._headers = {name.lower(): value for name, value in request.headers.items()}
        self._b64 = bool(params.get("b64", [""])[0])
        return None

    def onOpen(self) -> None:
        if self.refused:
            self.sendClose(1000)
            return
        if self.session is not None:
            return
        engine: EngineServer = self.factory.engine
        peer = self.transport.getPeer()
        session, frame = engine.open_session(
            self._eio, transport="websocket", query=self._query, headers=self._headers,
            remote=getattr(peer, "host", str(peer)), b64=self._b64)
        session.attach_websocket(self)
        self.session = session
        self.sendMessage(frame.encode(), False)
        engine.connected(session)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        session = self.session
        if session is None:
            return
        if not isBinary:
            try:
                frame: str | bytes = payload.decode("utf-8")
            except UnicodeDecodeError:
                self.sendClose(INVALID_UTF8, "text frame is not valid UTF-8")
                session.fail("parse error", "a text frame is not UTF-8", reply=False)
                return
            if not self.upgrading and frame[:1] == "4":
                session.receive((MESSAGE, frame[1:]))  # type: ignore[arg-type]
                return
        else:
            frame = payload
        try:
            packet = decode_packet(frame, session.eio)
        except DecodeError as e:
            session.fail("parse error", f"invalid WebSocket frame ({e})")
            return
        if self.upgrading:
            session.upgrade_packet(self, packet)
            if session.websocket is self:
                self.upgrading = False
            return
        session.receive(packet)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if not wasClean and reason and _WE_FAILED in reason:
            # Autobahn failed the connection for breaking the protocol (RSV bits, an
            # unmasked or oversized frame...); its own warning lines are filtered out.
            self.faults.peer("protocolErrors", "WebSocket peer {peer} broke the protocol: "
                             "{reason}", peer=self.peer, reason=reason)
        if self.session is not None:
            self.session.websocket_closed(self)
