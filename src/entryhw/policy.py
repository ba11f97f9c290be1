"""Who may use the bridge: the origin, host and hardware-client rules, as plain data.

The bridge listens on every pupil's PC, and any web page the pupil opens can
try to reach 127.0.0.1. These rules decide, in one place, which requests are
served (see the README's threat table):

* **Origin**: browsers send it on every WebSocket and every cross-origin
  request, so a page from elsewhere is recognised by it. Entry's own pages
  (``https://playentry.org`` and its subdomains) and local development pages
  (``http(s)://localhost``, ``127.0.0.1``, ``[::1]``, any port) are allowed; so
  are requests without an Origin (Node parents and tools, copies of the server
  in client mode). ``null`` (sandboxed frames of any site send it) is refused
  unless named.
* **Host**: a page on a name that its attacker re-points at 127.0.0.1 (DNS
  rebinding) sends its own name as Host; only loopback addresses, ``localhost``,
  Entry's two names and the configured interface are served.
* **Hardware clients** (``childServer=true``, copies of the server) never
  carry an Origin, so a page can never become one.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

#: Origins allowed without any option.
DEFAULT_ORIGINS = (
    "https://playentry.org",
    "https://*.playentry.org",
    "http://localhost:*",
    "https://localhost:*",
    "http://127.0.0.1:*",
    "https://127.0.0.1:*",
    "http://[::1]:*",
    "https://[::1]:*",
)
#: Host names served besides loopback addresses and the listening interface.
DEFAULT_HOSTS = ("localhost", "hw.playentry.org", "hardware.playentry.org")

_DEFAULT_PORT = {"http": 80, "https": 443}


class PolicyError(ValueError):
    """An ``--allow-origin`` or ``--allow-host`` value that is not usable; says why."""


@dataclass(frozen=True)
class _Pattern:
    scheme: str
    host: str  # exact host, or ".example.org" for "*.example.org" (subdomains only)
    port: int | None  # None: any port

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if scheme != self.scheme:
            return False
        if self.port is not None and port != self.port:
            return False
        if self.host.startswith("."):
            return host.endswith(self.host) and len(host) > len(self.host)
        return host == self.host


def _split_origin(origin: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of a serialised origin, or None if it is not one."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if (scheme not in _DEFAULT_PORT or not host or parts.path or parts.query
            or parts.fragment or parts.username is not None or parts.password is not None):
        return None
    if ":" in host:
        host = f"[{host}]"
    return scheme, host, port if port is not None else _DEFAULT_PORT[scheme]


def parse_pattern(text: str) -> _Pattern:
    """One allow-list entry: ``https://example.org``, ``http://host:8080``,
    ``https://*.example.org`` (its subdomains) or ``http://localhost:*`` (any port)."""
    match = re.fullmatch(r"(https?)://(\*\.)?([^/:\[\]*\s]+|\[[0-9a-fA-F:.]+\])(?::(\d+|\*))?/?",
                         text.strip(), re.IGNORECASE)
    if match is None:
        raise PolicyError(f"{text!r} is not an origin (scheme://host[:port], the host may "
                          f"start with '*.' and the port may be '*')")
    scheme, wildcard, host, port = match.groups()
    scheme, host = scheme.lower(), host.lower()
    if port == "*":
        number = None
    else:
        number = int(port) if port is not None else _DEFAULT_PORT[scheme]
        if not 0 < number < 65536:
            raise PolicyError(f"{text!r}: port {port} is out of range")
    return _Pattern(scheme, "." + host if wildcard else host, number)


@dataclass(frozen=True)
class OriginPolicy:
    """Which ``Origin`` header values are served; see the module docstring."""

    patterns: tuple[_Pattern, ...] = tuple(parse_pattern(p) for p in DEFAULT_ORIGINS)
    exact: frozenset[str] = frozenset()  # non-URL origins named by the user: "null", "file://"
    allow_any: bool = False

    @classmethod
    def build(cls, extra: Iterable[str] = (), allow_any: bool = False) -> OriginPolicy:
        """The default list plus ``extra`` (``--allow-origin`` values)."""
        patterns = list(cls.patterns)
        exact = set()
        for text in extra:
            if text.strip().lower() in ("null", "file://"):
                exact.add(text.strip().lower())
            else:
                patterns.append(parse_pattern(text))
        return cls(tuple(patterns), frozenset(exact), allow_any)

    def allows(self, origin: str | None) -> bool:
        """True for requests without an Origin header and for allowed origins."""
        if origin is None or self.allow_any:
            return True
        lowered = origin.strip().lower()
        if lowered in self.exact:
            return True
        parts = _split_origin(lowered)
        if parts is None:
            return False
        return any(p.matches(*parts) for p in self.patterns)


@dataclass(frozen=True)
class HostPolicy:
    """Which ``Host`` header values are served (a defence against DNS rebinding)."""

    names: frozenset[str] = field(default_factory=lambda: frozenset(DEFAULT_HOSTS))

    @classmethod
    def build(cls, interface: str, extra: Iterable[str] = ()) -> HostPolicy:
        names = set(DEFAULT_HOSTS)
        for name in (interface, *extra):
            host = name.strip().lower().rstrip(".")
            if not host or "/" in host or " " in host:
                raise PolicyError(f"{name!r} is not a host name")
            names.add(host.strip("[]"))
        return cls(frozenset(names))

    def allows(self, host: str | None) -> bool:
        """True for a Host naming a loopback address or an allowed name (any port).

        A request without Host (HTTP/1.0 tools) is served: browsers always send one.
        """
        if host is None:
            return True
        name = _host_name(host)
        if name is None:
            return False
        if name in self.names:
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False


def _host_name(host: str) -> str | None:
    """The name in a Host header value (port and IPv6 brackets removed), lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        if end < 0 or (host[end + 1:] and not re.fullmatch(r":\d{1,5}", host[end + 1:])):
            return None
        return host[1:end]
    name, _, port = host.partition(":")
    if port and not port.isdigit():
        return None
    return name.rstrip(".") or None


#: Request headers only browsers send: an Origin, or the Fetch Metadata a browser
#: puts even on requests without one (an ``<img>`` or a no-cors ``fetch``).
BROWSER_HEADERS = ("origin", "sec-fetch-mode", "sec-fetch-site", "sec-fetch-dest")


def is_hardware_client(query: dict[str, str], headers: dict[str, str]) -> bool:
    """A copy of the server in client mode: ``childServer=true`` from a non-browser.

    ``headers`` has lower-case names. Browsers always send an Origin on WebSocket
    and cross-origin requests, and Fetch Metadata on the rest, so a page claiming
    ``childServer`` is still treated as the browser it is.
    """
    return query.get("childServer") == "true" and not any(
        name in headers for name in BROWSER_HEADERS)


#: What the gate passes for a header sent more than once (never a valid value).
REPEATED = "\x00repeated"


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: the fault counter, a log key, and one line for the log."""

    kind: str
    key: tuple[str, str]
    reason: str


@dataclass(frozen=True)
class RequestPolicy:
    """The gate every HTTP request passes (WebSocket handshakes and preflights included)."""

    origins: OriginPolicy = field(default_factory=OriginPolicy.build)
    hosts: HostPolicy = field(default_factory=lambda: HostPolicy.build("127.0.0.1"))

    def check(self, path: bytes, host: str | None, origin: str | None,
              fetch_mode: str | None) -> Refusal | None:
        """None if the request may be served, else why not.

        The Host check comes first (a rebinding page sends an allowed-looking
        Origin of its own name only if it also controls that name). Engine.IO
        is never the business of an ``<img>``, a frame or a form: a browser
        request marked ``no-cors`` or ``navigate`` is refused there.
        """
        for name, value in (("Host", host), ("Origin", origin)):
            if value == REPEATED:  # which copy would the rest of the stack read?
                return Refusal("hostsRefused" if name == "Host" else "originsRefused",
                               (name, "repeated"), f"{name} sent more than once")
        if not self.hosts.allows(host):
            shown = (host or "")[:100]
            return Refusal("hostsRefused", ("host", shown),
                           f"Host {shown!r} is not this server's name (DNS rebinding?)")
        if not self.origins.allows(origin):
            shown = (origin or "")[:100]
            return Refusal("originsRefused", ("origin", shown),
                           f"origin {shown!r} is not allowed (see --allow-origin)")
        if fetch_mode in ("no-cors", "navigate", "nested-navigate") and (
                path == b"/socket.io" or path.startswith(b"/socket.io/")):
            return Refusal("originsRefused", ("fetch", fetch_mode),
                           f"a {fetch_mode} browser request for Engine.IO")
        return None
