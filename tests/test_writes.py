"""Write-through after a read: flushed once per read per transport, the reactor keeps the rest."""

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


class WritesTests(SynchronousTestCase):
    def test_outside_a_read_writes_are_left_to_the_reactor(self) -> None:
        t = _Transport()
        writes.write(t, b"a")
        self.assertEqual((t.buffered, t.flushes), ([b"a"], 0))

    def test_one_flush_per_transport_at_the_end_of_the_outermost_read(self) -> None:
        a, b = _Transport(), _Transport()
        writes.begin()
        writes.write(a, b"1")
        writes.begin()  # a nested read handler
        writes.write(b, b"x")
        writes.write(a, b"2")
        writes.end()
        self.assertEqual((a.flushes, b.flushes), (0, 0))
        writes.end()
        self.assertEqual((a.sent, b.sent), ([b"12"], [b"x"]))

    def test_tls_flushes_the_transport_underneath(self) -> None:
        tcp = _Transport()
        writes.begin()
        writes.write(_TLSLike(tcp), b"m")
        writes.end()
        self.assertEqual(tcp.sent, [b"enc(m)"])

    def test_closed_or_closing_transports_are_the_reactors(self) -> None:
        gone, closing = _Transport(), _Transport()
        gone.connected = False
        closing.disconnecting = True
        writes.begin()
        writes.write(gone, b"a")
        writes.write(closing, b"b")
        writes.end()
        self.assertEqual((gone.flushes, closing.flushes), (0, 0))

    def test_an_outcome_for_the_reactor_is_handed_back(self) -> None:
        t = _Transport(result=ConnectionResetError())
        writes.begin()
        writes.write(t, b"a")
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
        writes.write(proto.transport, b"now")
        writes.end()
        theirs.setblocking(False)
        self.assertEqual(theirs.recv(10), b"now")
        proto.transport.loseConnection()
        return proto.lost


def _factory(proto: Protocol) -> object:
    from twisted.internet.protocol import Factory

    return Factory.forProtocol(lambda: proto)
