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


class EndOfPollTests(SynchronousTestCase):
    """at_end_of_poll: after this poll's events; a due call never lets the poll wait."""

    def setUp(self) -> None:
        self.reactor = _ours()
        self.addCleanup(self.reactor._poller.close)  # type: ignore[attr-defined]

    def test_runs_after_the_events_of_the_same_poll(self) -> None:
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        order: list[str] = []
        reader = _Reader(a)
        reader.doRead = lambda: (order.append("read"), a.recv(8))  # type: ignore[method-assign]
        self.reactor.addReader(reader)  # type: ignore[attr-defined]
        self.reactor.at_end_of_poll(lambda: order.append("end"))  # type: ignore[attr-defined]
        b.send(b"x")
        self.reactor.doPoll(0.5)  # type: ignore[attr-defined]
        self.assertEqual(order, ["read", "end"])
        self.reactor.doPoll(0)  # type: ignore[attr-defined]
        self.assertEqual(order, ["read", "end"])  # once

    def test_a_due_call_does_not_wait_for_the_poll_timeout(self) -> None:
        import time

        ran: list[int] = []
        self.reactor.at_end_of_poll(lambda: ran.append(1))  # type: ignore[attr-defined]
        t = time.monotonic()
        self.reactor.doPoll(5)  # type: ignore[attr-defined]
        self.assertLess(time.monotonic() - t, 4)  # not the 5 s asked for: 0
        self.assertEqual(ran, [1])

    def test_a_failing_call_is_logged_and_the_rest_still_run(self) -> None:
        ran: list[int] = []
        self.reactor.at_end_of_poll(lambda: 1 / 0)  # type: ignore[attr-defined]
        self.reactor.at_end_of_poll(lambda: ran.append(1))  # type: ignore[attr-defined]
        self.reactor.doPoll(0)  # type: ignore[attr-defined]
        self.assertEqual(ran, [1])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_a_turns_writes_go_out_at_the_end_of_the_poll(self) -> None:
        from entryhw import writes

        class Proto(writes.BatchedWrites):
            def __init__(self, transport: object, clock: object) -> None:
                self.transport, self.clock = transport, clock

        sent: list[bytes] = []

        class Transport:
            def write(self, data: bytes) -> None:
                sent.append(data)

        p = Proto(Transport(), self.reactor)
        p.write_batched(b"a")
        p.write_batched(b"b")
        self.assertEqual((sent, self.reactor.getDelayedCalls()), ([], []))  # type: ignore[attr-defined]
        self.reactor.doPoll(0)  # type: ignore[attr-defined]
        self.assertEqual(sent, [b"ab"])


class InstallTests(SynchronousTestCase):
    """install() in a fresh process: over nothing, over the untouched default reactor a
    frozen build's runtime hook installs, and never over one already in use."""

    def run_probe(self, before: str) -> str:
        import os
        import subprocess

        if not fastpath.ENABLED or not sys.platform.startswith("linux"):
            raise SkipTest("the fast reactor is Linux's and needs the fast paths on")
        probe = (f"{before}\n"
                 "from entryhw.fastpath import reactor as fr\n"
                 "ok = fr.install()\n"
                 "from twisted.internet import reactor\n"
                 "import twisted.internet\n"
                 "assert twisted.internet.reactor is reactor\n"
                 "print(ok, type(reactor).__module__, fr.skipped)\n")
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                             timeout=60, env={**os.environ, "ENTRYHW_FASTPATH": "1"})
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.strip()

    def test_installed_in_a_fresh_process(self) -> None:
        self.assertEqual(self.run_probe(""), "True entryhw.fastpath.reactor None")

    def test_takes_the_place_of_the_untouched_default_reactor(self) -> None:
        # What PyInstaller's pyi_rth_twisted does before the program starts.
        out = self.run_probe("from twisted.internet import default; default.install()")
        self.assertEqual(out, "True entryhw.fastpath.reactor None")

    def test_leaves_a_reactor_in_use_alone(self) -> None:
        out = self.run_probe("from twisted.internet import default; default.install()\n"
                             "from twisted.internet import reactor as r\n"
                             "r.callLater(5, print)")
        self.assertEqual(out, "False twisted.internet.epollreactor a reactor was installed before")
