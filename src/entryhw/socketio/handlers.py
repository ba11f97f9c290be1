"""Application handlers: several per event, plain, Deferred-returning or ``async def``.

The rules, for every event of a socket or namespace:

* Every handler registered for the event runs, in registration order, with the same
  arguments; a handler registered while the event is dispatched runs from the next one on.
* The client's ack, if it asked for one, is answered with the *first* handler's result: its
  return value, or what its Deferred or coroutine gives when it fires. The other handlers'
  results are ignored. (python-socketio keeps one handler per event and socket.io calls
  every listener with one ack function that only the first call of counts; the first
  handler answering is that rule made deterministic: which handler answers depends on the
  order of registration, never on which asynchronous handler finishes first.)
* A handler that raises, or whose Deferred fails, is a contained bug: counted and logged
  with its traceback by :class:`~entryhw.faults.Faults` (rate-limited per handler), the
  other handlers still run, and if it was the first, the ack is not answered at all: an
  empty ack would look like an answer. The connection is never touched.

"connect" handlers differ, see :class:`~entryhw.socketio.connection.Connection`: they run
one after the other and any of them can refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import CoroutineType
from typing import Any, Final

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.python.failure import Failure

from entryhw.faults import Faults

Handler = Callable[..., Any]


class _Failed:
    """The type of :data:`FAILED`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "FAILED"


#: What :func:`run` gives (or its Deferred fires with) when the handler failed.
FAILED: Final = _Failed()


class Handlers:
    """Handlers by event name, in registration order; iterating gives the event names."""

    __slots__ = ("_table",)

    def __init__(self) -> None:
        # Tuples, replaced on change: dispatch iterates without copying, and a handler
        # added or removed during a dispatch takes effect from the next one.
        self._table: dict[Any, tuple[Handler, ...]] = {}

    def add(self, event: str, handler: Handler) -> None:
        self._table[event] = (*self._table.get(event, ()), handler)

    def remove(self, event: str, handler: Handler | None = None) -> None:
        """Forget ``handler`` for ``event`` (every handler of ``event`` without one)."""
        kept = () if handler is None else tuple(
            h for h in self._table.get(event, ()) if h != handler)
        if kept:
            self._table[event] = kept
        else:
            self._table.pop(event, None)

    def get(self, event: Any) -> tuple[Handler, ...]:
        return self._table.get(event, ())

    def __contains__(self, event: object) -> bool:
        return event in self._table

    def __iter__(self) -> Iterator[Any]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


def run(faults: Faults, handler: Handler, *args: Any) -> Any:
    """``handler(*args)``: its value, or :data:`FAILED` if it raised (logged as a bug).

    A Deferred or coroutine result becomes a Deferred that fires with the value, or with
    :data:`FAILED` once the failure is logged: it never fails, so no error goes unhandled.
    """
    try:
        result = handler(*args)
    except Exception:
        faults.bug(handler)
        return FAILED
    if type(result) is CoroutineType:
        result = ensureDeferred(result)
    elif not isinstance(result, Deferred):
        return result
    return result.addErrback(_contain, faults, handler)


def _contain(failure: Failure, faults: Faults, handler: Handler) -> _Failed:
    faults.bug(handler, failure)
    return FAILED


def dispatch(faults: Faults, handlers: tuple[Handler, ...], *args: Any) -> Any:
    """Run every handler with ``args``; the first one's result (see :func:`run`)."""
    first = run(faults, handlers[0], *args)
    if len(handlers) > 1:  # the usual single handler builds no slice
        for handler in handlers[1:]:
            run(faults, handler, *args)
    return first
