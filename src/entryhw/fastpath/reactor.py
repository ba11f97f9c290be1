"""The epoll reactor, without Twisted's legacy log context around every event.

``EPollReactor.doPoll`` wraps each ready descriptor's ``doRead``/``doWrite`` in
``twisted.python.log.callWithLogger``, which builds a context dictionary and swaps it
in and out so that old-style ``log.msg`` calls made meanwhile carry the descriptor's
``logPrefix``. entryhw logs through :mod:`twisted.logger`, which does not read that
context, and under steady load (every browser and device at 60 Hz) the wrapper was
the largest per-event cost left on the read path.

It also offers :meth:`~EPollReactor.at_end_of_poll`: a call run right after the events
of the current poll, which is when :class:`entryhw.writes.Turn` sends a turn's writes.
Through ``callLater(0)`` that cost a ``DelayedCall`` and two heap operations per
wake-up; on any other clock (Twisted's default reactor, a test's ``Clock``) the turn
still uses ``callLater(0)``.

:class:`EPollReactor` here overrides ``doPoll`` only, calling the reactor's own
``_doReadOrWrite`` (which still catches and logs what a protocol raises, and
disconnects that descriptor) directly. It reads ``_poller`` and ``_selectables``, so
:func:`install` checks that they are there and that an event really reaches
``doRead`` through it (a self-test on the very reactor it installs), and otherwise
installs nothing: Twisted's default reactor is used, with one log line saying why.
Linux only (epoll); elsewhere Twisted's default reactor is used as always.
"""

from __future__ import annotations

import errno
import socket
import sys
from typing import Any

from twisted.logger import Logger

from entryhw import fastpath

log = Logger()

#: Why :func:`install` left Twisted's default reactor, for the first log line; None
#: when ours is installed or install was not asked for.
skipped: str | None = None


def _reactor_class() -> Any:
    from twisted.internet import epollreactor

    class EPollReactor(epollreactor.EPollReactor):
        """Twisted's epoll reactor; ready descriptors are served without a log context."""

        def __init__(self) -> None:
            self._end_of_poll: list[Any] = []
            super().__init__()

        def at_end_of_poll(self, f: Any) -> None:
            """Call ``f()`` once this poll's events are served (at once, if none are
            being: the next poll does not wait while a call is due)."""
            self._end_of_poll.append(f)

        def doPoll(self, timeout: float | None) -> None:
            due = self._end_of_poll  # (the same list, should the events add to it)
            try:
                events = self._poller.poll(0 if due else -1 if timeout is None else timeout,
                                           len(self._selectables))
            except OSError as err:
                if err.errno == errno.EINTR:
                    return
                raise
            serve = self._doReadOrWrite
            selectables = self._selectables
            for fd, event in events:
                selectable = selectables.get(fd)
                if selectable is not None:
                    try:  # (what callWithLogger did: a descriptor's error is logged, no more)
                        serve(selectable, fd, event)
                    except BaseException:
                        log.failure("serving descriptor {fd}", fd=fd)
            if due:
                self._end_of_poll = []
                for f in due:
                    try:
                        f()
                    except Exception:
                        log.failure("a call at the end of a poll")

        doIteration = doPoll

    EPollReactor.__qualname__ = "EPollReactor"
    return EPollReactor


def self_test(reactor: Any) -> str | None:
    """Why ``reactor``'s ``doPoll`` does not deliver a readable socket to ``doRead``, or None."""
    for name in ("_poller", "_selectables", "_doReadOrWrite", "addReader", "removeReader"):
        if not hasattr(reactor, name):
            return f"the epoll reactor has no {name}"
    try:
        ours, theirs = socket.socketpair()
    except OSError as exc:
        return f"no socket pair for the self-test ({exc})"
    got: list[bytes] = []

    class _Reader:
        def fileno(self) -> int:
            return ours.fileno()

        def doRead(self) -> None:
            got.append(ours.recv(8))

        def logPrefix(self) -> str:
            return "self-test"

        def connectionLost(self, reason: object) -> None:
            pass

    reader = _Reader()
    try:
        reactor.addReader(reader)
        theirs.send(b"ok")
        if hasattr(reactor, "at_end_of_poll"):
            reactor.at_end_of_poll(lambda: got.append(b"end"))
        reactor.doPoll(0.5)
        reactor.removeReader(reader)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        ours.close()
        theirs.close()
    want = [b"ok", b"end"] if hasattr(reactor, "at_end_of_poll") else [b"ok"]
    return None if got == want else "a readable socket did not reach doRead"


def install() -> bool:
    """Install :class:`EPollReactor` as the global reactor (before anything imports
    ``twisted.internet.reactor``, or in place of Twisted's own epoll reactor that a
    frozen build's runtime hook installed and nothing has used); False, and Twisted's
    default, when the fast paths are off, the platform has no epoll, another reactor
    is installed already, or the self-test fails."""
    global skipped
    if not fastpath.ENABLED or not sys.platform.startswith("linux"):
        return False
    existing = sys.modules.get("twisted.internet.reactor")
    if existing is not None:
        if not _untouched(existing):
            skipped = "a reactor was installed before"
            return False
        _discard(existing)
    why = fastpath.untested("twisted")
    reactor = None
    if why is None:
        try:
            reactor = _reactor_class()()
        except Exception as exc:  # no epoll, or another shape of EPollReactor
            why = f"{type(exc).__name__}: {exc}"
    if reactor is not None and why is None:
        why = self_test(reactor)
    if why is not None:
        skipped = why
        if reactor is not None:
            _close(reactor)
        if existing is not None and "twisted.internet.reactor" not in sys.modules:
            from twisted.internet import default

            default.install()  # the one discarded above, as it was
        return False
    from twisted.internet.main import installReactor

    installReactor(reactor)
    return True


def _untouched(reactor: Any) -> bool:
    """Is ``reactor`` Twisted's own epoll reactor, installed but never used?

    PyInstaller's runtime hook for Twisted installs the default reactor before the
    program's first line runs (docs/dist.md); nothing has been scheduled on it yet, so
    it can give way to ours.
    """
    from twisted.internet import epollreactor

    try:
        return (type(reactor) is epollreactor.EPollReactor and not reactor.running
                and not getattr(reactor, "_startedBefore", True)
                and not reactor.getDelayedCalls() and not reactor.getWriters()
                and all(r is reactor.waker for r in reactor.getReaders()))
    except Exception:
        return False


def _discard(reactor: Any) -> None:
    import twisted.internet

    del sys.modules["twisted.internet.reactor"]
    if getattr(twisted.internet, "reactor", None) is reactor:
        del twisted.internet.reactor
    _close(reactor)


def _close(reactor: Any) -> None:
    """Close the descriptors of a reactor that will never run (its epoll, its waker)."""
    try:
        reactor.removeAll()
        reactor.waker.connectionLost(None)
        reactor._poller.close()
    except Exception:  # best effort: a few descriptors at worst
        pass
