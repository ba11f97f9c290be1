"""The acks a socket waits for: ids for its emits, who gets each answer, and deadlines.

Sans-I/O but for the clock, which is injected (``IReactorTime``): a deadline is a
``callLater``, so tests drive it with ``twisted.internet.task.Clock``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from entryhw.socketio.protocol import MAX_ACK_ID


class AckError(Exception):
    """An ack that will never come: the base of :class:`AckTimeout` and :class:`AckLost`."""


class AckTimeout(AckError):
    """The peer did not answer within the timeout (``socket.timeout(ms).emit`` in socket.io 4)."""


class AckLost(AckError):
    """The socket disconnected (or was never connected) before the peer answered."""


OnAck = Callable[[list[Any]], None]
OnError = Callable[[AckError], None]


class PendingAcks:
    """Ack ids in use and, for each, ``(on_ack, on_error, deadline)``.

    ``on_ack(args)`` gets the peer's ack arguments; ``on_error(error)`` (if given) an
    :class:`AckError` when the answer cannot come any more. Each entry ends exactly once:
    answered, timed out, discarded or failed by :meth:`fail_all`.
    """

    __slots__ = ("_clock", "_next", "_waiting")

    def __init__(self, clock: Any) -> None:
        self._clock = clock
        self._next = 0
        self._waiting: dict[int, tuple[OnAck, OnError | None, Any]] = {}

    def add(self, on_ack: OnAck, on_error: OnError | None = None,
            timeout: float | None = None) -> int:
        """A fresh ack id; ``timeout`` (seconds) needs ``on_error``, which then gets AckTimeout."""
        if timeout is not None and on_error is None:
            raise ValueError("a timeout needs on_error to report it")
        ack_id = self._next
        while ack_id in self._waiting:  # only after 2**53 acks, with one still pending
            ack_id = 0 if ack_id >= MAX_ACK_ID else ack_id + 1
        self._next = 0 if ack_id >= MAX_ACK_ID else ack_id + 1
        deadline = None
        if timeout is not None:
            deadline = self._clock.callLater(timeout, self._expire, ack_id, timeout)
        self._waiting[ack_id] = (on_ack, on_error, deadline)
        return ack_id

    def resolve(self, ack_id: int | None, args: list[Any]) -> bool:
        """Give the peer's answer to whoever waits for ``ack_id``; False if nobody does."""
        entry = self._waiting.pop(ack_id, None) if ack_id is not None else None
        if entry is None:
            return False
        on_ack, _, deadline = entry
        if deadline is not None and deadline.active():
            deadline.cancel()
        on_ack(args)
        return True

    def discard(self, ack_id: int) -> None:
        """Stop waiting for ``ack_id``, telling nobody (a cancelled call)."""
        entry = self._waiting.pop(ack_id, None)
        if entry is not None and entry[2] is not None and entry[2].active():
            entry[2].cancel()

    def fail_all(self, error: AckError) -> None:
        """The socket is gone: every waiter with an ``on_error`` gets ``error``."""
        waiting, self._waiting = self._waiting, {}
        for _, on_error, deadline in waiting.values():
            if deadline is not None and deadline.active():
                deadline.cancel()
            if on_error is not None:
                on_error(error)

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, ack_id: object) -> bool:
        return ack_id in self._waiting

    def _expire(self, ack_id: int, timeout: float) -> None:
        entry = self._waiting.pop(ack_id, None)
        if entry is not None and entry[1] is not None:
            entry[1](AckTimeout(f"no ack within {timeout:g} s"))
