"""The one place where entryhw relies on other libraries' internals, and why each is safe.

Each fast path here was measured worth it (README, "Fast paths") and each has a public
way round it that the rest of the code falls back to:

* :mod:`.frames`: Autobahn's frame parser and writer internals, for the simple
  unfragmented frames Engine.IO traffic is made of; public path: Autobahn as it is.
* :mod:`.writes`: a turn's bytes written straight to a plain socket while Twisted's
  buffer for it is empty, else ``doWrite`` on the TCP transport to send them at once;
  public path: ``transport.write``, and the reactor sends them at its next poll.
* :mod:`.reactor`: the epoll reactor without the legacy log context around each
  event (``entryhw-server`` only); public path: Twisted's default reactor.
* :mod:`.imports`: start-up import diet (lazy modules, Autobahn's WAMP stack skipped);
  public path: plain imports.

Rules: each fast path checks at start that the internals it uses are there and behave
(a self-test, not a version check alone) and falls back with one log line when they
are not; :data:`TESTED` is the range of versions the suite ran on, also the bound in
``pyproject.toml``; ``ENTRYHW_FASTPATH=0`` switches all of them off, and CI runs the whole
suite that way too (``tox -e nofast``).
"""

from __future__ import annotations

import os

__all__ = ["ENABLED", "TESTED", "untested"]

#: False when ``ENTRYHW_FASTPATH=0``: every fast path takes its public way round.
ENABLED = os.environ.get("ENTRYHW_FASTPATH", "1") != "0"

#: Distribution -> (lowest, first untested) major.minor the suite ran on; as pyproject.toml.
TESTED = {"autobahn": ((23, 6), (27, 0)), "twisted": ((26, 10), (27, 0))}


def _version(dist: str) -> tuple[int, int] | None:
    # The packages' own __version__ (importlib.metadata costs 5 ms and 1 MB at start).
    try:
        module = __import__(dist)
        parts = str(getattr(module, "__version__", "")).split(".")
        return int(parts[0]), int(parts[1])
    except (ImportError, ValueError, IndexError):
        return None


def untested(dist: str) -> str | None:
    """Why ``dist``'s installed version is outside :data:`TESTED`, or None if inside."""
    low, high = TESTED[dist]
    version = _version(dist)
    if version is None:
        return f"{dist}'s version is unknown"
    if not low <= version < high:
        return (f"{dist} {version[0]}.{version[1]} is outside the tested "
                f"{low[0]}.{low[1]}-{high[0]}.{high[1]}")
    return None
