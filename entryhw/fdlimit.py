"""File descriptors: as many as the system lets us have, and how many connections that allows.

Each connection costs a descriptor, and desktop systems start processes with a
soft limit of 1024 while allowing far more (the hard limit). A page opening
connections and leaving them silent would otherwise lock every real browser
out long before memory or CPU became a problem.
"""

from __future__ import annotations

try:
    import resource
except ImportError:  # pragma: no cover - Windows has no RLIMIT_NOFILE
    resource = None  # type: ignore[assignment]

from entryhw.limits import FD_LIMIT_FALLBACK, FD_RESERVE


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
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft, soft
        return soft, target
    return soft, soft if soft != resource.RLIM_INFINITY else FD_LIMIT_FALLBACK


def connection_cap(limit: int) -> int:
    """Connections to allow with ``limit`` descriptors, keeping a reserve for the rest."""
    return max(16, limit - FD_RESERVE)
