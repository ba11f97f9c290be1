"""File descriptors: as many as the system lets us have, and how many connections that allows.

Each connection costs a descriptor, and desktop systems start processes with a
soft limit of 1024 while allowing far more (the hard limit). A page opening
connections and leaving them silent would otherwise lock every real browser
out long before memory or CPU became a problem.
"""

from __future__ import annotations

import sys

try:
    import resource
except ImportError:  # pragma: no cover - Windows has no RLIMIT_NOFILE
    resource = None  # type: ignore[assignment]

from entryhw.limits import (
    FD_LIMIT_FALLBACK,
    FD_RESERVE,
    MAX_CONNECTIONS,
    SELECT_LIMIT_POSIX,
    SELECT_LIMIT_WINDOWS,
)


def raise_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard one; returns (before, after).

    An unlimited hard limit becomes :data:`~entryhw.limits.FD_LIMIT_FALLBACK`.
    Where the limit cannot be read or changed, both are the fallback's guess.
    """
    if resource is None:  # pragma: no cover
        return FD_LIMIT_FALLBACK, FD_LIMIT_FALLBACK
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = FD_LIMIT_FALLBACK if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        # macOS reports an unlimited hard limit but refuses more than its per-process
        # maximum (10240 by default, OPEN_MAX): step down rather than keep 256.
        for attempt in (target, 10240, 4096, 1024):
            if soft < attempt <= target:
                try:
                    resource.setrlimit(resource.RLIMIT_NOFILE, (attempt, hard))
                except (ValueError, OSError):
                    continue
                return soft, attempt
        return soft, soft
    return soft, soft if soft != resource.RLIM_INFINITY else FD_LIMIT_FALLBACK


def connection_cap(limit: int, reactor: object = None) -> int:
    """Connections to allow with ``limit`` descriptors, keeping a reserve for the rest.

    Never more than :data:`~entryhw.limits.MAX_CONNECTIONS`, and below what a
    ``select()`` reactor can watch when that is the reactor in use.
    """
    if reactor is not None and "select" in type(reactor).__module__:
        limit = min(limit, SELECT_LIMIT_WINDOWS if sys.platform == "win32"
                    else SELECT_LIMIT_POSIX)
    return max(16, min(MAX_CONNECTIONS, limit - FD_RESERVE))
