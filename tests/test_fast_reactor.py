"""entryhw.fastpath.reactor: events reach doRead/doWrite without the legacy log context,
and a protocol's exception still costs only its own descriptor, logged."""

from __future__ import annotations

import socket
import sys

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from entryhw import fastpath
from entryhw.fastpath import reactor as fast_reactor


def _ours() -> object:
    if not sys.platform.startswith("linux"):
        raise SkipTest("epoll is Linux's")
    r = fast_reactor._reactor_class()()
    return r


class _Reader:
    def __init__(self, sock: socket.socket, fail: bool = False) -> None:
        self.sock, self.fail = sock, fail
        self.got: list[bytes] = []
        self.lost: list[object] = []

    def fileno(self) -> int:
        return self.sock.fileno()

    def doRead(self) -> None:
        self.got.append(self.sock.recv(16))
        if self.fail:
            raise ZeroDivisionError("a protocol's bug")

    def logPrefix(self) -> str:
        return "test"

    def connectionLost(self, reason: object) -> None:
        self.lost.append(reason)


class FastReactorTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = _ours()
        self.addCleanup(self._close)
        self.pairs: list[socket.socket] = []

    def _close(self) -> None:
        for s in self.pairs:
            s.close()
        self.reactor._poller.close()  # type: ignore[attr-defined]

    def pair(self) -> tuple[socket.socket, socket.socket]:
        a, b = socket.socketpair()
        self.pairs += [a, b]
        return a, b

    def test_the_installed_twisted_passes_the_self_test(self) -> None:
        self.assertIsNone(fast_reactor.self_test(self.reactor))

    def test_a_reactor_without_the_parts_fails_the_self_test(self) -> None:
        class Bare:
            pass

        self.assertIn("no _poller", fast_reactor.self_test(Bare()) or "")

    def test_events_reach_their_own_descriptor(self) -> None:
        (a, b), (c, _) = self.pair(), self.pair()
        ra, rc = _Reader(a), _Reader(c)
        self.reactor.addReader(ra)  # type: ignore[attr-defined]
        self.reactor.addReader(rc)  # type: ignore[attr-defined]
        b.send(b"for a")
        self.reactor.doPoll(0.5)  # type: ignore[attr-defined]
        self.assertEqual((ra.got, rc.got), ([b"for a"], []))

    def test_a_failing_protocol_is_logged_and_only_it_disconnected(self) -> None:
        (a, b), (c, d) = self.pair(), self.pair()
        bad, good = _Reader(a, fail=True), _Reader(c)
        self.reactor.addReader(bad)  # type: ignore[attr-defined]
        self.reactor.addReader(good)  # type: ignore[attr-defined]
        b.send(b"x")
        d.send(b"y")
        self.reactor.doPoll(0.5)  # type: ignore[attr-defined]
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual((len(bad.lost), good.lost, good.got), (1, [], [b"y"]))
        self.assertNotIn(bad, self.reactor.getReaders())  # type: ignore[attr-defined]
        self.assertIn(good, self.reactor.getReaders())  # type: ignore[attr-defined]

    def test_install_leaves_an_installed_reactor_alone(self) -> None:
        from twisted.internet import reactor  # noqa: F401  (trial's, installed already)

        if not fastpath.ENABLED:
            self.assertFalse(fast_reactor.install())
            return
        self.patch(fast_reactor, "skipped", None)
        self.assertFalse(fast_reactor.install())
        self.assertEqual(fast_reactor.skipped, "a reactor was installed before")
