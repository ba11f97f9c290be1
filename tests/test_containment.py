"""The containment pieces on their own: fault counting and rate limits, the backlog,
the HTTP deadlines, the polling backlog, lifecycle names. (Real peers: test_faults.py.)"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from entryhw import writes
from entryhw.engineio.packets import MESSAGE, Packet
from entryhw.engineio.session import Session
from entryhw.faults import KINDS, Faults
from entryhw.limits import HANDSHAKE_TIMEOUT, IDLE_TIMEOUT, MAX_BACKLOG, REQUEST_TIMEOUT
from entryhw.socketio.server import SocketIOServer
from entryhw.web import make_site

ADDR = IPv4Address("TCP", "127.0.0.1", 50000)


class _Captured:
    """Log events emitted while it is installed (for counting lines)."""

    def __init__(self, test: SynchronousTestCase) -> None:
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        test.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def from_faults(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("log_namespace") == "entryhw.faults"]


class FaultsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.now = 0.0
        self.faults = Faults(now=lambda: self.now, interval=60.0)
        self.log = _Captured(self)

    def test_every_kind_is_always_counted(self) -> None:
        self.assertEqual(self.faults.counts(), dict.fromkeys(KINDS, 0))
        self.faults.count("sendsDropped", 3)
        self.assertEqual(self.faults.counts()["sendsDropped"], 3)
        self.assertEqual(self.log.from_faults(), [])  # counted silently

    def test_one_line_per_kind_per_interval_then_a_count_of_the_rest(self) -> None:
        for _ in range(500):
            self.faults.peer("protocolErrors", "bad frame from {peer}", peer="x")
        self.assertEqual(self.faults.counts()["protocolErrors"], 500)
        self.assertEqual(len(self.log.from_faults()), 1)
        self.now = 61.0
        self.faults.peer("protocolErrors", "bad frame from {peer}", peer="x")
        lines = self.log.from_faults()
        self.assertEqual(len(lines), 2)
        self.assertIn("499 more like this in the last 61 s", lines[1]["log_format"])

    def test_keys_separate_lines_of_one_kind(self) -> None:
        for origin in ("https://a.example", "https://b.example", "https://a.example"):
            self.faults.peer("protocolErrors", "refused {origin}", key=origin, origin=origin)
        self.assertEqual(len(self.log.from_faults()), 2)

    def test_guard_contains_and_counts_a_bug_with_its_traceback(self) -> None:
        self.assertIsNone(self.faults.guard("a handler", lambda: 1 / 0))
        self.assertEqual(self.faults.guard("a handler", lambda: 7), 7)
        self.assertEqual(self.faults.counts()["bugs"], 1)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        [line] = self.log.from_faults()
        self.assertEqual(line["log_level"], LogLevel.critical)

    def test_the_key_table_stays_small(self) -> None:
        for i in range(5000):
            self.faults.peer("protocolErrors", "x", key=i)
        self.assertLessEqual(len(self.faults._last), 1001)


class _Proto(writes.BatchedWrites):
    """Its batches leave when the test ends the turn (``clock.advance(0)``)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.clock = Clock()
        self.refused: list[int] = []

    def backlog_exceeded(self, size: int) -> None:
        self.refused.append(size)


class _Transport(StringTransport):
    """StringTransport that writes.push can push (it sends everything at once)."""

    connected = True

    def doWrite(self) -> None:
        return None


class BacklogTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.transport = _Transport()
        self.proto = _Proto(self.transport)
        self.proto.watch_backlog(100)
        self.producer = self.transport.producer

    def test_while_the_transport_is_full_writes_wait_and_are_counted_exactly(self) -> None:
        self.assertIs(self.producer, self.proto.backlog)
        self.proto.write_batched(b"x" * 60)
        self.proto.clock.advance(0)
        self.producer.pauseProducing()  # what Twisted does when its buffer fills,
        self.proto.write_batched(b"y" * 60)
        self.producer.pauseProducing()  # and again on every write while it is full
        self.proto.write_batched(b"z" * 30)
        self.assertEqual(self.transport.value(), b"x" * 60)  # the rest waits here
        self.assertEqual(self.proto.backlog.size, 90)
        self.proto.write_batched(b"w" * 20)  # 110 > 100 held
        self.assertEqual(self.proto.refused, [20])
        self.producer.resumeProducing()  # drained: what waited goes, in order
        self.proto.clock.advance(0)
        self.assertEqual(self.transport.value(), b"x" * 60 + b"y" * 60 + b"z" * 30)
        self.assertEqual(self.proto.backlog.size, 0)

    def test_a_slow_reader_that_keeps_up_is_never_refused(self) -> None:
        # The transport never drains completely, but what waits here stays small.
        for _ in range(1000):
            self.producer.pauseProducing()
            self.proto.write_batched(b"m" * 40)
            self.producer.resumeProducing()
            self.proto.clock.advance(0)
        self.assertEqual(self.proto.refused, [])

    def test_another_layers_writes_keep_their_place_and_count(self) -> None:
        self.producer.pauseProducing()
        self.proto.write_batched(b"a" * 40)
        self.proto.write_direct(b"PONG" * 10, self.transport.write)  # Autobahn's own frame
        self.assertEqual(self.transport.value(), b"")
        self.proto.write_direct(b"P" * 30, self.transport.write)  # 110 > 100: the peer is cut
        self.assertEqual(self.proto.refused, [30])
        self.producer.resumeProducing()
        self.proto.clock.advance(0)
        self.assertEqual(self.transport.value(), b"a" * 40 + b"PONG" * 10)

    def test_it_takes_the_place_of_a_producer_already_registered(self) -> None:
        transport = StringTransport()
        transport.registerProducer(object(), True)  # as twisted.web's channel does
        proto = _Proto(transport)
        proto.watch_backlog(10)
        self.assertIs(transport.producer, proto.backlog)


class GuardedChannelTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.faults = Faults()
        self.site = make_site(faults=self.faults, reactor=self.clock)

    def connect(self) -> tuple[Any, StringTransport]:
        channel = self.site.buildProtocol(ADDR)
        transport = StringTransport()
        channel.makeConnection(transport)
        return channel, transport

    def test_slowloris_head_is_cut_off(self) -> None:
        channel, transport = self.connect()
        for i, byte in enumerate(b"GET / HTTP/1.1\r\nHost: x\r\n"):
            if i >= HANDSHAKE_TIMEOUT - 1:
                break
            channel.dataReceived(bytes((byte,)))
            self.clock.advance(1)  # a byte a second resets twisted.web's idle timer
        self.assertFalse(transport.disconnecting)
        self.clock.advance(2)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.faults.counts()["timeouts"], 1)

    def test_a_complete_request_is_served_and_the_connection_may_idle(self) -> None:
        channel, transport = self.connect()
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b"hello entry", transport.value())
        self.assertTrue(channel.served)
        self.clock.advance(REQUEST_TIMEOUT + 1)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(IDLE_TIMEOUT)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.faults.counts()["timeouts"], 0)  # idling is no fault

    def test_each_later_request_has_its_own_deadline(self) -> None:
        channel, transport = self.connect()
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        channel.dataReceived(b"GET / HTTP/1.1\r\n")
        self.clock.advance(REQUEST_TIMEOUT + 0.1)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.faults.counts()["timeouts"], 1)


class _Server:
    def __init__(self) -> None:
        self.faults = Faults()
        self.clock = Clock()
        self.ping_interval, self.ping_timeout = 1000, 5000
        self.responses: list[bytes] = []
        self.forgotten: list[Session] = []

    def respond(self, request: Any, code: int, body: bytes, content_type: str) -> None:
        self.responses.append(body)

    def forget(self, session: Session) -> None:
        self.forgotten.append(session)


class SessionTests(SynchronousTestCase):
    def make(self) -> tuple[_Server, Session, list[str]]:
        server = _Server()
        session = Session(server, "sid", 3, query={}, headers={}, remote="127.0.0.1")
        closed: list[str] = []
        session.on_close = closed.append
        return server, session, closed

    def test_a_polling_client_that_never_polls_is_cut_off_at_the_backlog_limit(self) -> None:
        server, session, closed = self.make()
        message = "x" * 1000
        sent = 0
        while not closed:
            session.send(message)
            sent += 1
            self.assertLess(sent, MAX_BACKLOG // 1000 + 10, "never cut off")
        self.assertGreater(sent, MAX_BACKLOG // 1100)
        self.assertEqual(closed, ["transport error"])
        self.assertEqual(server.faults.counts()["slowReaders"], 1)
        self.assertEqual(session._buffer, [])
        session.send(message)  # after the end: dropped and counted, never raised
        self.assertEqual(server.faults.counts()["sendsDropped"], 1)

    def test_a_heartbeat_in_the_wrong_direction_is_a_counted_protocol_error(self) -> None:
        server, session, closed = self.make()
        session.receive(Packet(3))  # a PONG from an Engine.IO 3 client
        self.assertEqual(closed, ["transport error"])
        self.assertEqual(server.faults.counts()["protocolErrors"], 1)

    def test_messages_still_flow_below_the_limit(self) -> None:
        _server, session, closed = self.make()
        got: list[Any] = []
        session.on_message = got.append
        session.receive(Packet(MESSAGE, "2[\"message\",1]"))
        self.assertEqual(got, ['2["message",1]'])
        self.assertEqual(closed, [])


class LifecycleTests(SynchronousTestCase):
    def test_reserved_names_cannot_be_handled_as_events(self) -> None:
        sio = SocketIOServer(clock=Clock())
        for name in ("connect_error", "disconnecting", "newListener", "removeListener"):
            self.assertRaises(ValueError, sio.on, name, lambda *a: None)
        sio.on("disconnect", lambda *a: None)  # lifecycle: allowed, kept apart
        sio.on("connect", lambda *a: None)
        ns = sio.namespaces["/"]
        self.assertEqual(set(ns._lifecycle), {"connect", "disconnect"})
        self.assertNotIn("disconnect", ns._handlers)


class Utf8SendTests(SynchronousTestCase):
    """A Utf8 message is text: framed as-is on a WebSocket, decoded for a poll."""

    def test_websocket_and_polling(self) -> None:
        from entryhw.engineio.packets import Utf8

        sent: list[tuple[bytes, bool]] = []

        class WS:
            def sendMessage(self, payload: bytes, isBinary: bool = False) -> None:
                sent.append((payload, isBinary))

        session = Session(_Server(), "sid", 4, query={}, headers={}, remote="127.0.0.1")
        session.attach_websocket(WS())
        session.send(Utf8('2["m","é"]'.encode()))
        session.send(b"\x01")
        self.assertEqual(sent[0], (b'42["m","\xc3\xa9"]', False))
        self.assertTrue(sent[1][1])  # plain bytes stay binary
        polling = Session(_Server(), "sid2", 4, query={}, headers={}, remote="127.0.0.1")
        polling.send(Utf8(b'2["m"]'))
        self.assertEqual(polling._buffer, [Packet(MESSAGE, '2["m"]')])
