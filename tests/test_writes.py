"""Batched writes: sent once per reactor turn per protocol, in order; the reactor keeps
the rest. The flush is timed by an injected clock: advancing it by 0 ends the turn."""

from __future__ import annotations

import socket

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from entryhw import fastpath, writes


class _Transport:
    def __init__(self, result: object = None) -> None:
        self.connected, self.disconnecting = True, False
        self.buffered: list[bytes] = []
        self.sent: list[bytes] = []
        self.flushes = 0
        self.writing = 0
        self.result = result

    def write(self, data: bytes) -> None:
        self.buffered.append(data)

    def doWrite(self) -> object:
        self.flushes += 1
        self.sent.append(b"".join(self.buffered))
        self.buffered.clear()
        return self.result

    def startWriting(self) -> None:
        self.writing += 1


class _TLSLike:
    """Like TLSMemoryBIOProtocol: a transport without doWrite over one with it."""

    def __init__(self, transport: _Transport) -> None:
        self.transport = transport

    def write(self, data: bytes) -> None:
        self.transport.write(b"enc(" + data + b")")


class _Proto(writes.BatchedWrites):
    def __init__(self, transport: object, clock: Clock | None = None) -> None:
        self.transport = transport
        self.clock = clock


def needs_push() -> None:
    if not fastpath.ENABLED:
        raise SkipTest("ENTRYHW_FASTPATH=0: nothing is pushed, the reactor sends")


class WritesTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()

    def test_a_turns_writes_leave_together_at_its_end(self) -> None:
        needs_push()
        a, b = _Transport(), _Transport()
        pa, pb = _Proto(a, self.clock), _Proto(b, self.clock)
        pa.write_batched(b"1")
        pb.write_batched(b"x")
        pa.write_batched(b"2")
        self.assertEqual((a.buffered, b.buffered, a.flushes), ([], [], 0))
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)  # one flush for the turn
        self.clock.advance(0)
        self.assertEqual((a.sent, b.sent), ([b"12"], [b"x"]))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_failing_flush_costs_only_its_own_protocol(self) -> None:
        needs_push()
        good = _Transport()
        bad = _Transport()
        bad.doWrite = lambda: 1 / 0  # type: ignore[method-assign]
        pbad, pgood = _Proto(bad, self.clock), _Proto(good, self.clock)
        pbad.write_batched(b"a")
        pgood.write_batched(b"b")
        self.clock.advance(0)
        self.assertEqual(good.sent, [b"b"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        # The failed protocol's next writes are batched and scheduled again.
        bad.doWrite = _Transport.doWrite.__get__(bad)  # type: ignore[method-assign]
        pbad.write_batched(b"c")
        self.clock.advance(0)
        self.assertEqual(bad.sent[-1], b"ac")

    def test_flush_writes_keeps_the_order_with_direct_writes(self) -> None:
        t = _Transport()
        p = _Proto(t, self.clock)
        p.write_batched(b"frame;")
        p.flush_writes()  # what a protocol does before writing or closing by another path
        t.write(b"close;")
        p.write_batched(b"late;")
        self.clock.advance(0)
        self.assertEqual(b"".join(t.sent + t.buffered), b"frame;close;late;")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_tls_pushes_the_transport_underneath(self) -> None:
        needs_push()
        tcp = _Transport()
        _Proto(_TLSLike(tcp), self.clock).write_batched(b"m")
        self.clock.advance(0)
        self.assertEqual(tcp.sent, [b"enc(m)"])

    def test_closed_or_closing_transports_are_left_to_the_reactor(self) -> None:
        gone, closing = _Transport(), _Transport()
        gone.connected = False
        closing.disconnecting = True
        _Proto(gone, self.clock).write_batched(b"a")
        _Proto(closing, self.clock).write_batched(b"b")
        self.clock.advance(0)
        self.assertEqual((gone.flushes, closing.flushes), (0, 0))
        self.assertEqual(closing.buffered, [b"b"])  # still written, the reactor sends it

    def test_an_outcome_for_the_reactor_is_handed_back(self) -> None:
        needs_push()
        t = _Transport(result=ConnectionResetError())
        _Proto(t, self.clock).write_batched(b"a")
        self.clock.advance(0)
        self.assertEqual((t.flushes, t.writing), (1, 1))

    def test_without_the_fast_path_nothing_is_pushed(self) -> None:
        t = _Transport()
        self.patch(fastpath, "ENABLED", False)
        _Proto(t, self.clock).write_batched(b"a")
        self.clock.advance(0)
        self.assertEqual((t.buffered, t.flushes), ([b"a"], 0))


class _Sink(Protocol):
    def __init__(self) -> None:
        self.got = b""
        self.lost: Deferred[None] = Deferred()

    def connectionLost(self, reason: object = None) -> None:
        self.lost.callback(None)

    def dataReceived(self, data: bytes) -> None:
        self.got += data


class RealSocketTests(TestCase):
    """With a real Twisted transport: sent at the end of the turn, before the next poll."""

    def test_flushed_at_the_end_of_the_turn(self) -> Deferred[None]:
        needs_push()
        ours, theirs = socket.socketpair()
        self.addCleanup(theirs.close)
        proto = _Sink()
        reactor.adoptStreamConnection(ours.fileno(), socket.AF_UNIX, _factory(proto))
        ours.close()  # adopted: Twisted holds its own copy of the descriptor
        clock = Clock()
        _Proto(proto.transport, clock).write_batched(b"n")
        _Proto(proto.transport, clock).write_batched(b"ow")
        clock.advance(0)  # the turn ends: both flushes run, no reactor poll in between
        theirs.setblocking(False)
        self.assertEqual(theirs.recv(10), b"now")
        proto.transport.loseConnection()
        return proto.lost


class DirectSendTests(TestCase):
    """fastpath.writes.send on real sockets: straight to the socket while Twisted holds
    nothing, Twisted's buffer for the rest, Twisted's own error path for a dead peer."""

    def setUp(self) -> None:
        needs_push()
        ours, self.theirs = socket.socketpair()
        self.addCleanup(self.theirs.close)
        self.proto = _Sink()
        reactor.adoptStreamConnection(ours.fileno(), socket.AF_UNIX, _factory(self.proto))
        ours.close()
        self.transport = self.proto.transport
        self.addCleanup(self._close)

    def _close(self) -> Deferred[None] | None:
        if self.proto.lost.called:
            return None
        self.transport.abortConnection()
        return self.proto.lost

    def test_the_installed_twisted_passes_the_self_test(self) -> None:
        from entryhw.fastpath import writes as fast

        self.assertIsNone(fast.self_test())
        self.assertTrue(fast._direct(self.transport))

    def test_an_empty_buffer_sends_without_registering_for_writing(self) -> None:
        from entryhw.fastpath import writes as fast

        registered: list[int] = []
        start = self.transport.startWriting
        self.patch(self.transport, "startWriting", lambda: (registered.append(1), start()))
        fast.send(self.transport, b"now")
        self.assertEqual(registered, [])  # never registered with epoll (write + push would)
        self.assertNotIn(self.transport, reactor.getWriters())
        self.theirs.setblocking(False)
        self.assertEqual(self.theirs.recv(10), b"now")

    def test_what_the_socket_does_not_take_waits_in_twisted_in_order(self) -> Deferred[None]:
        from entryhw.fastpath import writes as fast

        self.theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        big = bytes(range(256)) * 4096  # 1 MiB: more than the socket takes at once
        fast.send(self.transport, big)
        self.assertIn(self.transport, reactor.getWriters())  # the rest is the reactor's
        fast.send(self.transport, b"after")  # Twisted holds bytes: this one queues behind
        want = big + b"after"
        got = bytearray()
        done: Deferred[None] = Deferred()

        def drain() -> None:
            try:
                while chunk := self.theirs.recv(65536, socket.MSG_DONTWAIT):
                    got.extend(chunk)
            except BlockingIOError:
                pass
            if len(got) >= len(want) or self.proto.lost.called:
                done.callback(None)
            else:
                reactor.callLater(0.001, drain)

        drain()

        def check(_: object) -> None:
            self.assertEqual(bytes(got), want)

        return done.addCallback(check)

    def test_nothing_reaches_the_peer_after_an_abort(self) -> Deferred[None]:
        # abortConnection leaves `connected` set until the reactor's next turn: Twisted
        # drops what is written meanwhile, and so must the direct path.
        from entryhw.fastpath import writes as fast

        self.transport.abortConnection()
        fast.send(self.transport, b"after-abort")

        def check(_: object) -> None:
            self.theirs.setblocking(False)
            try:
                got = self.theirs.recv(100)
            except BlockingIOError:
                got = b"(nothing yet)"
            self.assertNotIn(b"after-abort", got)

        return self.proto.lost.addCallback(check)

    def test_a_dead_peer_is_left_to_twisteds_own_close(self) -> Deferred[None]:
        from entryhw.fastpath import writes as fast

        self.theirs.close()
        fast.send(self.transport, b"x" * 100)  # EPIPE or ECONNRESET: not raised here
        fast.send(self.transport, b"y")
        return self.proto.lost  # the reactor's doWrite met the error and closed

    def test_a_wrapping_protocol_is_never_bypassed(self) -> None:
        # Like TLSMemoryBIOProtocol: ProtocolWrapper forwards unknown attributes (the
        # socket, the buffer) to the transport under it; bytes must still go through it.
        from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

        from entryhw.fastpath import writes as fast

        wrapper = ProtocolWrapper(WrappingFactory(_factory(Protocol())), Protocol())
        wrapper.makeConnection(self.transport)
        through: list[bytes] = []
        self.patch(wrapper, "write", lambda data: through.append(b"enc(" + data + b")"))
        self.assertIs(wrapper.socket, self.transport.socket)  # forwarded
        fast.send(wrapper, b"m")
        self.assertEqual(through, [b"enc(m)"])

    def test_without_the_self_test_every_write_takes_twisteds_buffer(self) -> None:
        from entryhw.fastpath import writes as fast

        self.patch(fast, "_checked", False)
        self.patch(fast, "_DIRECT", {})
        written: list[bytes] = []
        self.patch(self.transport, "write", written.append)
        fast.send(self.transport, b"a")
        self.assertEqual(written, [b"a"])


def _factory(proto: Protocol) -> object:
    from twisted.internet.protocol import Factory

    return Factory.forProtocol(lambda: proto)


class TurnRegistryTests(SynchronousTestCase):
    def test_a_clock_is_not_kept_alive_by_its_turn(self) -> None:
        import gc
        import weakref

        clock = Clock()
        p = _Proto(_Transport(), clock)
        p.write_batched(b"a")
        clock.advance(0)
        gone = weakref.ref(clock)
        del clock, p
        gc.collect()
        self.assertIsNone(gone())
        self.assertNotIn(None, list(writes._TURNS.keys()))
