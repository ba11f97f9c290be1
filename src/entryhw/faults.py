"""What peers did wrong, counted and logged without letting any of it flood the log.

Any page can send garbage as fast as it likes, so a log line per bad frame is
itself a way to hurt the machine. :class:`Faults` counts every fault by kind
(``/status`` shows the counts) and logs each kind of fault at most once per
interval; the next line of that kind says how many were left out. Peer faults
are one plain line; only our own bugs (:meth:`Faults.bug`) carry a traceback.

:meth:`Faults.guard` is the wall between connections: where one peer's event
fans out to others (the parent's message to every browser, one browser's
message to a copy), each piece runs inside it, so an exception costs that
piece and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from entryhw.limits import LOG_INTERVAL

#: The counters of ``/status``'s ``faults``, all always present.
KINDS = (
    "sendsDropped",  # a message for a peer that was closing or gone
    "protocolErrors",  # WebSocket / Engine.IO / Socket.IO rule broken by a peer
    "tooDeep",  # JSON nested deeper than limits.MAX_DEPTH
    "ipcRejected",  # a bad line from the parent
    "slowReaders",  # a peer disconnected for leaving too much unread
    "timeouts",  # a connection closed by a deadline
    "evicted",  # an idle connection closed to make room
    "tlsRefused",  # a TLS ClientHello on a port without certificates
    "originsRefused",  # a request from a page the origin policy does not allow
    "hostsRefused",  # a request whose Host is not ours (DNS rebinding)
    "impostors",  # a browser claiming to be a hardware client (childServer=true)
    "roomClaimsRefused",  # matchTarget for a room another hardware client holds
    "bugs",  # an exception of ours, contained
)

log = Logger(namespace="entryhw.faults")


class Faults:
    """Counters by kind, and log lines rate-limited by (kind, key)."""

    def __init__(self, now: Callable[[], float] = time.monotonic,
                 interval: float = LOG_INTERVAL) -> None:
        self._now = now
        self.interval = interval
        self._counts = dict.fromkeys(KINDS, 0)
        self._last: dict[tuple[str, Any], list[float]] = {}  # key -> [when logged, left out]

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def count(self, kind: str, n: int = 1) -> None:
        """Count without logging (faults too ordinary to mention, like a closing peer)."""
        self._counts[kind] += n

    def peer(self, kind: str, format: str, *, key: Any = None,
             level: LogLevel = LogLevel.info, **fields: Any) -> None:
        """A peer misbehaved: count it, and log one line unless one like it went out lately.

        ``key`` separates lines of one kind that should each be seen (one per
        origin, say); by default the format string is the key.
        """
        self._counts[kind] += 1
        suffix = self._admit((kind, format if key is None else key))
        if suffix is not None:
            log.emit(level, format + suffix, **fields)

    def throttled(self, format: str, *, key: Any = None, level: LogLevel = LogLevel.info,
                  **fields: Any) -> None:
        """A line about something a peer can repeat at will (not a fault: nothing is
        counted), logged at most once per interval per ``key`` (default: the format)."""
        suffix = self._admit(("line", format if key is None else key))
        if suffix is not None:
            log.emit(level, format + suffix, **fields)

    def bug(self, what: object, failure: Failure | None = None) -> None:
        """An exception of ours was contained: count it and log its traceback (rate-limited).

        ``what`` names where (a string, or the handler that raised).
        """
        self._counts["bugs"] += 1
        suffix = self._admit(("bugs", what))
        if suffix is not None:
            log.failure("contained an error in {what}" + suffix,
                        failure if failure is not None else Failure(), what=str(what))

    def guard(self, what: object, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, turning an exception into :meth:`bug` and ``None``.

        ``what`` is only formatted if something fails (this runs per message)."""
        try:
            return fn(*args)
        except Exception:
            self.bug(what)
            return None

    def _admit(self, key: tuple[str, Any]) -> str | None:
        """The suffix to log with (``""`` or a count of lines left out), or None to skip."""
        now = self._now()
        last = self._last.get(key)
        if last is None:
            if len(self._last) > 1000:  # keys from peers (origins): keep the table small
                self._last.clear()
            self._last[key] = [now, 0]
            return ""
        if now - last[0] < self.interval:
            last[1] += 1
            return None
        left_out, since = int(last[1]), now - last[0]
        last[0], last[1] = now, 0
        if not left_out:
            return ""
        return f" ({left_out} more like this in the last {since:.0f} s)"
