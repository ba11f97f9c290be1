"""Batched writes: sent once per read per protocol, in order; the reactor keeps the rest."""

from __future__ import annotations

import socket

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.trial.unittest import SynchronousTestCase, TestCase

from entryhw import writes


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
    def __init__(self, transport: object) -> None:
        self.transport = transport


class WritesTests(SynchronousTestCase):
    def test_outside_a_read_writes_go_straight_to_the_transport(self) -> None:
        t = _Transport()
        _Proto(t).write_batched(b"a")
        self.assertEqual((t.buffered, t.flushes), ([b"a"], 0))

    def test_one_write_and_send_per_protocol_when_the_outermost_read_ends(self) -> None:
        a, b = _Transport(), _Transport()
        pa, pb = _Proto(a), _Proto(b)
        writes.begin()
        pa.write_batched(b"1")
        writes.begin()  # a nested read handler
        pb.write_batched(b"x")
        pa.write_batched(b"2")
        writes.end()
        self.assertEqual((a.buffered, b.buffered, a.flushes), ([], [], 0))
        writes.end()
        self.assertEqual((a.sent, b.sent), ([b"12"], [b"x"]))

    def test_flush_writes_keeps_the_order_with_direct_writes(self) -> None:
        t = _Transport()
        p = _Proto(t)
        writes.begin()
        p.write_batched(b"frame;")
        p.flush_writes()  # what a protocol does before writing or closing by another path
        t.write(b"close;")
        p.write_batched(b"late;")
        writes.end()
        self.assertEqual(b"".join(t.sent), b"frame;close;late;")

    def test_tls_pushes_the_transport_underneath(self) -> None:
        tcp = _Transport()
        writes.begin()
        _Proto(_TLSLike(tcp)).write_batched(b"m")
        writes.end()
        self.assertEqual(tcp.sent, [b"enc(m)"])

    def test_closed_or_closing_transports_are_left_to_the_reactor(self) -> None:
        gone, closing = _Transport(), _Transport()
        gone.connected = False
        closing.disconnecting = True
        writes.begin()
        _Proto(gone).write_batched(b"a")
        _Proto(closing).write_batched(b"b")
        writes.end()
        self.assertEqual((gone.flushes, closing.flushes), (0, 0))
        self.assertEqual(closing.buffered, [b"b"])  # still written, the reactor sends it

    def test_an_outcome_for_the_reactor_is_handed_back(self) -> None:
        t = _Transport(result=ConnectionResetError())
        writes.begin()
        _Proto(t).write_batched(b"a")
        writes.end()
        self.assertEqual((t.flushes, t.writing), (1, 1))


class _Sink(Protocol):
    def __init__(self) -> None:
        self.got = b""
        self.lost: Deferred[None] = Deferred()

    def connectionLost(self, reason: object = None) -> None:
        self.lost.callback(None)

    def dataReceived(self, data: bytes) -> None:
        self.got += data


class RealSocketTests(TestCase):
    """With a real Twisted transport: sent during the read, before any reactor round."""

    def test_flushed_without_the_reactor(self) -> Deferred[None]:
        ours, theirs = socket.socketpair()
        self.addCleanup(theirs.close)
        proto = _Sink()
        reactor.adoptStreamConnection(ours.fileno(), socket.AF_UNIX, _factory(proto))
        ours.close()  # adopted: Twisted holds its own copy of the descriptor
        writes.begin()
        _Proto(proto.transport).write_batched(b"n")
        _Proto(proto.transport).write_batched(b"ow")
        writes.end()
        theirs.setblocking(False)
        self.assertEqual(theirs.recv(10), b"now")
        proto.transport.loseConnection()
        return proto.lost


def _factory(proto: Protocol) -> object:
    from twisted.internet.protocol import Factory

    return Factory.forProtocol(lambda: proto)
