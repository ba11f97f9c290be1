"""The client's side of the Engine.IO handshake (sans-I/O): the request, the answer, the terms.

:func:`engineio_url` builds the WebSocket URL the handshake is requested at,
:func:`parse_handshake` reads the server's OPEN packet, and :class:`Heartbeat` keeps the
liveness terms it sets, which is where Engine.IO 3 and 4 differ most (who pings whom, what
proves the peer alive).  None of it touches a socket (the heartbeat runs on any
``IReactorTime``), so all of it is tested without one; :mod:`entryhw.engineio.client`
does the I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, urlsplit

from entryhw.engineio import packets as eio

__all__ = ["EngineURL", "Handshake", "Heartbeat", "engineio_url", "parse_handshake"]


class EngineURL(NamedTuple):
    url: str  # ws:// or wss:// with path and query, for the WebSocket handshake
    host: str
    port: int
    secure: bool


def engineio_url(url: str, *, eio_version: int, path: str = "/socket.io/",
                 query: Mapping[str, str] | None = None) -> EngineURL:
    """The WebSocket URL of the Engine.IO endpoint for ``url`` (``http[s]://`` or ``ws[s]://``).

    The query is the URL's own, then ``query``, then ``EIO`` and ``transport=websocket``,
    which override, as engine.io-client builds it; values are escaped like
    ``encodeURIComponent``.  A path in ``url`` is refused: socket.io-client would read it as
    the namespace; the endpoint's path is ``path``.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "ws"):
        secure = False
    elif scheme in ("https", "wss"):
        secure = True
    else:
        raise ValueError(f"URL scheme must be http, https, ws or wss: {url!r}")
    if parts.path not in ("", "/"):
        raise ValueError(f"put the namespace in namespace=, not in the URL path: {url!r}")
    host = parts.hostname
    if not host:
        raise ValueError(f"URL has no host: {url!r}")
    port = parts.port or (443 if secure else 80)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    params.update({str(k): str(v) for k, v in (query or {}).items()})
    params["EIO"] = str(eio_version)
    params["transport"] = "websocket"
    encoded = "&".join(f"{_uri_component(k)}={_uri_component(v)}" for k, v in params.items())
    netloc = f"[{host}]" if ":" in host else host
    if not path.startswith("/"):
        path = "/" + path
    ws_url = f"{'wss' if secure else 'ws'}://{netloc}:{port}{path}?{encoded}"
    return EngineURL(ws_url, host, port, secure)


def _uri_component(value: str) -> str:
    return quote(value, safe="-_.!~*'()")


class Handshake(NamedTuple):
    """The server's OPEN packet; times in seconds."""

    sid: str
    ping_interval: float
    ping_timeout: float
    data: dict[str, Any]  # the whole object (``upgrades``, ``maxPayload``...)


def parse_handshake(data: str | bytes | None) -> Handshake:
    """The handshake in an OPEN packet's data; ``ValueError`` for anything else."""
    try:
        obj: Any = json.loads(data) if isinstance(data, str) else None
        sid = obj["sid"]
        interval = obj["pingInterval"] / 1000
        timeout = obj["pingTimeout"] / 1000
        if not isinstance(sid, str) or not interval > 0 or not timeout > 0:
            raise ValueError
    except (ValueError, TypeError, KeyError, ArithmeticError, RecursionError):
        raise ValueError(f"bad Engine.IO handshake {str(data)[:200]!r}") from None
    return Handshake(sid, interval, timeout, obj)


class Heartbeat:
    """Engine.IO liveness for one connection, on any ``IReactorTime`` (a ``Clock`` in tests).

    ``send(packet_type)`` writes a bare PING or PONG; ``expired()`` is called once when the
    peer is considered gone; ``received(packet_type)`` must see every Engine.IO packet
    received after OPEN.  Times are in seconds.

    * Engine.IO 3 (engine.io-client 3.5 ``setPing``/``onHeartbeat``): the client sends a PING
      every ``ping_interval`` after the previous PONG and allows ``ping_timeout`` for the
      answer; any packet received proves liveness and moves the deadline to
      ``ping_interval + ping_timeout`` from now.
    * Engine.IO 4 (engine.io-client 6 ``_resetPingTimeout``): the server pings; the client
      answers each PING with a PONG, and expires when no PING came for
      ``ping_interval + ping_timeout``.
    """

    def __init__(self, clock: Any, eio_version: int, ping_interval: float, ping_timeout: float,
                 send: Callable[[int], None], expired: Callable[[], None]) -> None:
        if eio_version not in (3, 4):
            raise ValueError(f"unsupported Engine.IO protocol {eio_version!r}")
        self._clock = clock
        self._eio = eio_version
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self._send = send
        self._expired = expired
        self._ping_call: Any = None
        self._deadline_call: Any = None
        self._running = False

    def start(self) -> None:
        """Start with the handshake's OPEN packet."""
        self._running = True
        if self._eio == 3:
            self._schedule_ping()
        self._arm(self.ping_interval + self.ping_timeout)

    def received(self, ptype: int) -> None:
        """A packet of type ``ptype`` came from the peer."""
        if not self._running:
            return
        if self._eio == 3:
            self._arm(self.ping_interval + self.ping_timeout)
            if ptype == eio.PONG:
                self._schedule_ping()
        elif ptype == eio.PING:
            self._send(eio.PONG)
            self._arm(self.ping_interval + self.ping_timeout)

    def stop(self) -> None:
        """Cancel every timer; nothing is sent or expires after this."""
        self._running = False
        for call in (self._ping_call, self._deadline_call):
            if call is not None and call.active():
                call.cancel()
        self._ping_call = self._deadline_call = None

    def _schedule_ping(self) -> None:
        if self._ping_call is not None and self._ping_call.active():
            self._ping_call.cancel()
        self._ping_call = self._clock.callLater(self.ping_interval, self._ping)

    def _ping(self) -> None:
        self._ping_call = None
        self._send(eio.PING)
        self._arm(self.ping_timeout)

    def _arm(self, delay: float) -> None:
        if self._deadline_call is not None and self._deadline_call.active():
            self._deadline_call.cancel()
        self._deadline_call = self._clock.callLater(delay, self._expire)

    def _expire(self) -> None:
        self._deadline_call = None
        self.stop()
        self._expired()
