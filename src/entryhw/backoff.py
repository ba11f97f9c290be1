"""The one reconnection policy: the client's reconnections and the election's retries.

backo2 as socket.io-client ships it (``lib/contrib/backo2.ts``), so that a copy of ours
reconnects on the same schedule as the original's copies; the election in
:mod:`entryhw.election` retries an unreachable host with it too, rather than a schedule
of its own.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Reconnection delays: backo2 as socket.io-client ships it (``lib/contrib/backo2.ts``).

    ``duration()`` is ``min * factor**attempts`` (attempts counted from 0 and incremented),
    moved by up to ``jitter`` of itself, the sign and size drawn from one random number, then
    capped at ``max`` and truncated to whole milliseconds (``| 0``).  Times are in seconds.
    """

    def __init__(self, min_delay: float, max_delay: float, *, factor: float = 2.0,
                 jitter: float = 0.5, rand: Callable[[], float] = random.random) -> None:
        self.min_ms = min_delay * 1000
        self.max_ms = max_delay * 1000
        self.factor = factor
        # backo2: "opts.jitter > 0 && opts.jitter <= 1 ? opts.jitter : 0"
        self.jitter = jitter if 0 < jitter <= 1 else 0.0
        self.attempts = 0
        self._rand = rand

    def duration(self) -> float:
        # Past 2**64 times the minimum every delay is capped anyway; the bound keeps the
        # float power from overflowing.
        ms = self.min_ms * self.factor ** min(self.attempts, 64)
        self.attempts += 1
        if self.jitter:
            rand = self._rand()
            deviation = math.floor(rand * self.jitter * ms)
            ms = ms - deviation if math.floor(rand * 10) & 1 == 0 else ms + deviation
        return int(min(ms, self.max_ms)) / 1000

    def reset(self) -> None:
        self.attempts = 0
