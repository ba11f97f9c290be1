"""entryhw.socketio.client: its pure parts, then the client against real Node servers.

The server is tests/js/sio_server.js, as socket.io 2.x (Engine.IO 3, revision 4, what the
original Entry server runs) or as socket.io 4.x (Engine.IO 4, revision 5),
spawned by the reactor on free loopback ports and killed in each test's cleanup
(tests/node_peers.py).  Every wait is a Deferred with a timeout; nothing sleeps.
The Engine.IO layer underneath has its own tests in tests/test_engineio_client.py.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from functools import partial
from typing import Any

from twisted.internet import defer
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase

from entryhw.backoff import Backoff
from entryhw.socketio.client import ConnectError, SocketIOClient
from entryhw.socketio.outbox import AckRegistry, SendBuffer, once_ack
from tests.node_peers import NodeServer, sio_server, sleep, unbin, within
from tests.support import LOOPBACK, free_port, node, require_npm_peers

# --------------------------------------------------------------------------- pure parts


class BackoffTests(TestCase):
    def test_doubles_up_to_the_cap_without_jitter(self) -> None:
        backoff = Backoff(1.0, 5.0, jitter=0)
        self.assertEqual([backoff.duration() for _ in range(5)], [1.0, 2.0, 4.0, 5.0, 5.0])
        self.assertEqual(backoff.attempts, 5)
        backoff.reset()
        self.assertEqual((backoff.attempts, backoff.duration()), (0, 1.0))

    def test_jitter_as_backo2(self) -> None:
        # rand 0.25: floor(2.5) is even, so minus floor(0.25 * 0.5 * 1000) ms.
        self.assertEqual(Backoff(1.0, 5.0, jitter=0.5, rand=lambda: 0.25).duration(), 0.875)
        # rand 0.35: floor(3.5) is odd, so plus floor(0.35 * 0.5 * 1000) ms.
        self.assertEqual(Backoff(1.0, 5.0, jitter=0.5, rand=lambda: 0.35).duration(), 1.175)
        # ... and the cap applies after the jitter.
        capped = Backoff(4.0, 5.0, jitter=0.5, rand=lambda: 0.35)
        self.assertEqual([capped.duration(), capped.duration()], [4.7, 5.0])

    def test_whole_milliseconds_and_no_overflow(self) -> None:
        backoff = Backoff(0.0015, 10.0, jitter=0)
        self.assertEqual(backoff.duration(), 0.001)  # "| 0" truncates 1.5 ms
        backoff.attempts = 10_000
        self.assertEqual(backoff.duration(), 10.0)

    def test_out_of_range_jitter_is_off(self) -> None:
        self.assertEqual(Backoff(1.0, 5.0, jitter=1.5, rand=lambda: 0.35).duration(), 1.0)


class AckTests(TestCase):
    def test_ids_count_up_and_pop_once(self) -> None:
        acks = AckRegistry()
        calls: list[str] = []
        ids = [acks.register(partial(calls.append, name)) for name in "abc"]
        self.assertEqual(ids, [0, 1, 2])
        callback = acks.pop(1)
        assert callback is not None
        callback()
        self.assertEqual(calls, ["b"])
        self.assertIsNone(acks.pop(1))
        self.assertIsNone(acks.pop(None))
        self.assertIsNone(acks.pop(99))
        self.assertEqual(len(acks), 2)
        self.assertEqual(acks.register(print), 3)  # never reused

    def test_drop_all_except(self) -> None:
        acks = AckRegistry()
        for _ in range(4):
            acks.register(print)
        self.assertEqual(acks.drop_all_except([1, 3, 42]), 2)
        self.assertEqual([i for i in range(4) if i in acks], [1, 3])
        acks.discard(1)
        acks.discard(1)
        self.assertEqual(len(acks), 1)

    def test_once_ack_sends_once(self) -> None:
        sent: list[list[Any]] = []
        ack = once_ack(sent.append)
        ack("a", 1)
        ack("b")
        self.assertEqual(sent, [["a", 1]])

    def test_once_ack_can_retry_after_a_failed_send(self) -> None:
        sent: list[list[Any]] = []

        def send(args: list[Any]) -> None:
            if args == [object]:
                raise TypeError("not JSON")
            sent.append(args)

        ack = once_ack(send)
        self.assertRaises(TypeError, ack, object)
        ack("ok")
        self.assertEqual(sent, [["ok"]])


class SendBufferTests(TestCase):
    def test_bounded_oldest_first_with_its_ack(self) -> None:
        acks = AckRegistry()
        buffer = SendBuffer(2, acks)
        for n in range(3):
            buffer.add([f"frame {n}"], acks.register(print))
        buffer.add(["no ack"], None)
        self.assertEqual((len(buffer), buffer.dropped, buffer.ack_ids()), (2, 2, {2}))
        self.assertEqual([i for i in range(4) if i in acks], [2])  # dropped with their packets
        self.assertEqual([buffer.popleft(), buffer.popleft()], [["frame 2"], ["no ack"]])
        self.assertEqual(len(buffer), 0)

    def test_size_zero_keeps_nothing(self) -> None:
        acks = AckRegistry()
        buffer = SendBuffer(-1, acks)
        buffer.add(["x"], acks.register(print))
        self.assertEqual((len(buffer), buffer.dropped, len(acks)), (0, 1, 0))


class ClientArgumentTests(TestCase):
    def test_client_argument_checks(self) -> None:
        clock = Clock()
        self.assertRaises(ValueError, SocketIOClient, "http://h", eio=5, reactor=clock)
        self.assertRaises(ValueError, SocketIOClient, "http://h", auth={"a": 1}, reactor=clock)
        self.assertRaises(ValueError, SocketIOClient, "http://h", namespace="x", reactor=clock)
        client = SocketIOClient("http://h", reactor=clock)
        self.assertRaises(ValueError, client.emit, "disconnect")
        self.assertRaises(TypeError, client.emit, "x", object(), callback=print)
        self.assertEqual((client.state, client.connected, client.sid), ("closed", False, None))


class ReconnectScheduleTests(TestCase):
    """The client's timers on a fake reactor: connection attempts are refused or hang."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.client = SocketIOClient(
            "http://127.0.0.1:9", reactor=self.reactor, reconnection_attempts=3,
            reconnection_delay=1.0, reconnection_delay_max=3.0, randomization=0,
            connect_timeout=5.0)
        self.events = Events(self.client)

    def attempts(self) -> int:
        return len(self.reactor.tcpClients)

    def refuse(self) -> None:
        factory = self.reactor.tcpClients[-1][2]
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))

    def test_backoff_schedule_then_reconnect_failed(self) -> None:
        self.client.connect()
        self.assertEqual((self.attempts(), self.client.state), (1, "connecting"))
        self.refuse()
        self.assertEqual(self.client.state, "waiting")
        for delay in (1.0, 2.0, 3.0):  # 1, 2, then 4 capped at 3
            before = self.attempts()
            self.reactor.advance(delay - 0.001)
            self.assertEqual(self.attempts(), before)
            self.reactor.advance(0.001)
            self.assertEqual(self.attempts(), before + 1)
            self.refuse()
        self.assertEqual(self.events.names(), [
            "connect_error",
            "reconnect_attempt", "connect_error", "reconnect_error",
            "reconnect_attempt", "connect_error", "reconnect_error",
            "reconnect_attempt", "connect_error", "reconnect_error",
            "reconnect_failed"])
        self.assertEqual([self.events.args("reconnect_attempt", n) for n in (1, 2, 3)],
                         [(1,), (2,), (3,)])
        self.assertEqual((self.client.state, self.reactor.getDelayedCalls()), ("closed", []))

    def test_connect_timeout_counts_as_a_failed_attempt(self) -> None:
        self.client.connect()
        self.reactor.advance(4.999)
        self.assertEqual(self.events.names(), [])
        self.reactor.advance(0.001)
        (error,) = self.events.args("connect_error")
        self.assertIsInstance(error, TimeoutError)
        self.assertEqual(self.client.state, "waiting")
        self.reactor.advance(1.0)
        self.assertEqual(self.attempts(), 2)

    def test_disconnect_stops_the_retries(self) -> None:
        self.client.connect()
        self.refuse()
        self.client.disconnect()
        self.reactor.advance(100)
        self.assertEqual(self.attempts(), 1)
        self.assertEqual(self.events.names(), ["connect_error"])  # never connected: no disconnect
        self.assertEqual((self.client.state, self.reactor.getDelayedCalls()), ("closed", []))


# --------------------------------------------------------------------------- harness


class Events:
    """Records a client's events; ``wait(name, n)`` fires at the n-th one."""

    NAMES = ("connect", "disconnect", "connect_error", "reconnect", "reconnect_attempt",
             "reconnect_error", "reconnect_failed", "error")

    def __init__(self, client: SocketIOClient, *extra: str) -> None:
        self.log: list[tuple[str, tuple[Any, ...]]] = []
        self._waiters: list[tuple[str, int, defer.Deferred[Any]]] = []
        for name in (*self.NAMES, *extra):
            client.on(name, partial(self._record, name))

    def _record(self, name: str, *args: Any) -> None:
        self.log.append((name, args))
        for waiter in list(self._waiters):
            if waiter[0] == name and self.count(name) >= waiter[1]:
                self._waiters.remove(waiter)
                waiter[2].callback(self.args(name, waiter[1]))

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.log if n == name)

    def args(self, name: str, n: int = 1) -> tuple[Any, ...]:
        return [a for k, a in self.log if k == name][n - 1]

    def names(self) -> list[str]:
        return [n for n, _ in self.log]

    def wait(self, name: str, n: int = 1, timeout: float = 10.0) -> defer.Deferred[Any]:
        if self.count(name) >= n:
            return defer.succeed(self.args(name, n))
        d: defer.Deferred[Any] = defer.Deferred()
        waiter = (name, n, d)
        self._waiters.append(waiter)

        def forget(failure: Failure) -> Failure:  # timed out: stop waiting
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            return failure

        d.addErrback(forget)
        return within(d, timeout, lambda: f"{name!r} #{n}; events so far {self.log!r}")


# --------------------------------------------------------------------------- against Node


class _ClientTests:
    """Run against both servers; the subclasses say which."""

    timeout = 30
    version: str
    eio: int

    def setUp(self) -> None:
        try:
            require_npm_peers()
            node()
        except RuntimeError as exc:
            raise SkipTest(str(exc)) from None

    async def start_server(self, port: int | None = None, *extra: str) -> NodeServer:
        server = sio_server(self.version, port or free_port(), *extra)
        await server.start(self)
        return server

    def client(self, port: int, *extra_events: str, **kwargs: Any) -> tuple[SocketIOClient,
                                                                             Events]:
        options: dict[str, Any] = {
            "eio": self.eio, "reconnection_delay": 0.05, "reconnection_delay_max": 0.2,
            "randomization": 0, "connect_timeout": 5.0,
        }
        options.update(kwargs)
        client = SocketIOClient(f"http://{LOOPBACK}:{port}", **options)
        self.addCleanup(client.disconnect)
        return client, Events(client, *extra_events)

    async def connected(self, *extra_events: str, **kwargs: Any) -> tuple[
            NodeServer, SocketIOClient, Events]:
        server = await self.start_server()
        client, events = self.client(server.port, *extra_events, **kwargs)
        client.connect()
        await events.wait("connect")
        return server, client, events

    async def test_connect_with_query(self) -> None:
        server, client, events = await self.connected(query={"childServer": "true"})
        seen = await server.expect(lambda e: e["ev"] == "connection")
        self.assertEqual(seen["query"]["childServer"], "true")
        self.assertEqual(seen["query"]["transport"], "websocket")
        self.assertEqual(seen["query"]["EIO"], str(self.eio))
        self.assertEqual(client.sid, seen["id"])
        self.assertTrue(client.connected)
        self.assertEqual(events.names(), ["connect"])

    async def test_emit_and_ack_round_trip(self) -> None:
        server, client, events = await self.connected("echo")
        args = ["plain", "유니코드 ✓ 𝄞 \u2028", {"nested": {"list": [1, 2.5, None, True, False],
                                                       "bytes": b"\x00\xff"}},
                b"raw\x00bytes", [b"a", [b"b"]], 0]
        acked: defer.Deferred[tuple[Any, ...]] = defer.Deferred()
        client.emit("echo", *args, callback=lambda *a: acked.callback(a))
        self.assertEqual(list(await within(acked, 10, lambda: "the ack")), args)
        self.assertEqual(list(await events.wait("echo")), args)
        got = await server.expect(lambda e: e["ev"] == "event" and e["name"] == "echo")
        self.assertEqual((unbin(got["args"]), got["ack"]), (args, True))
        # Acks stay apart by id.
        results: list[Any] = []
        done = defer.Deferred()
        for i in range(5):
            client.emit("n", i, callback=lambda v: (results.append(v),
                                                    len(results) == 5 and done.callback(None)))
        await within(done, 10, lambda: f"5 acks, got {results}")
        self.assertEqual(results, [0, 1, 2, 3, 4])

    async def test_large_messages_both_ways(self) -> None:
        # Frames with 16- and 64-bit lengths, masked by us and unmasked from the server.
        server, client, events = await self.connected("echo")
        args = ["é" * 40_000, b"\x07" * 200_000, "x" * 100]
        acked: defer.Deferred[tuple[Any, ...]] = defer.Deferred()
        client.emit("echo", *args, callback=lambda *a: acked.callback(a))
        self.assertEqual(list(await within(acked, 10, lambda: "the ack")), args)
        self.assertEqual(list(await events.wait("echo")), args)
        got = await server.expect(lambda e: e["ev"] == "event" and e["name"] == "echo")
        self.assertEqual(unbin(got["args"]), args)

    async def test_server_event_with_ack(self) -> None:
        server, client, events = await self.connected("question")
        client.emit("ask", "what?", b"\x01\x02")
        question = await events.wait("question")
        self.assertEqual(question[:2], ("what?", b"\x01\x02"))
        question[2]("answer", {"b": b"\x02"}, "ü")
        answer = await server.expect(lambda e: e["ev"] == "answer")
        self.assertEqual(unbin(answer["args"]), ["answer", {"b": b"\x02"}, "ü"])

    async def test_binary_from_server(self) -> None:
        _server, client, events = await self.connected("binary")
        client.emit("binary")
        self.assertEqual(await events.wait("binary"),
                         (b"\x00\x01\x02\xff", {"nested": [b"h\xc3\xa9llo"], "text": "café"}))

    async def test_server_disconnect_does_not_reconnect(self) -> None:
        for close in (False, True):  # DISCONNECT only / DISCONNECT and close the connection
            server, client, events = await self.connected()
            client.emit("kick", close)
            self.assertEqual(await events.wait("disconnect"), ("io server disconnect",))
            await sleep(0.4)  # eight reconnection delays
            self.assertEqual(events.names(), ["connect", "disconnect"])
            self.assertEqual(client.state, "closed")
            self.assertEqual(len(server.events("connection")), 1)
            await client.when_closed()

    async def test_client_disconnect(self) -> None:
        server, client, events = await self.connected()
        seen = await server.expect(lambda e: e["ev"] == "connection")
        await within(client.disconnect(), 5, lambda: "the connection to close")
        self.assertEqual(events.log[-1], ("disconnect", ("io client disconnect",)))
        gone = await server.expect(lambda e: e["ev"] == "disconnect")
        self.assertEqual((gone["id"], gone["reason"]), (seen["id"], "client namespace disconnect"))
        # It can connect again, and what was emitted meanwhile goes out then.
        client.emit("later", 1)
        client.connect()
        await events.wait("connect", 2)
        got = await server.expect(lambda e: e["ev"] == "event")
        self.assertEqual((got["name"], got["args"]), ("later", [1]))

    async def test_reconnects_when_the_server_comes_back(self) -> None:
        server, client, events = await self.connected(
            reconnection_attempts=100, query={"childServer": "true"})
        port = server.port
        await server.kill()
        self.assertEqual(await events.wait("disconnect"), ("transport close",))
        await events.wait("connect_error", 2)  # it is retrying
        received: list[Any] = []
        client.emit("while-down", "x", callback=received.append)
        server = await self.start_server(port)
        attempts = (await events.wait("reconnect"))[0]
        self.assertGreaterEqual(attempts, 2)
        await events.wait("connect", 2)
        self.assertEqual(events.args("reconnect_attempt", attempts), (attempts,))
        names = events.names()
        self.assertEqual(names[names.index("reconnect"):], ["reconnect", "connect"])
        seen = await server.expect(lambda e: e["ev"] == "connection")
        self.assertEqual(seen["query"]["childServer"], "true")
        self.assertEqual(client.sid, seen["id"])
        got = await server.expect(lambda e: e["ev"] == "event")  # the buffered emit
        self.assertEqual((got["name"], got["args"]), ("while-down", ["x"]))
        await sleep(0.1)
        self.assertEqual(received, ["x"])

    async def test_reconnect_failed(self) -> None:
        server, client, events = await self.connected(reconnection_attempts=2)
        await server.kill()
        await events.wait("reconnect_failed")
        self.assertEqual(events.names(), [
            "connect", "disconnect",
            "reconnect_attempt", "connect_error", "reconnect_error",
            "reconnect_attempt", "connect_error", "reconnect_error",
            "reconnect_failed"])
        self.assertEqual([events.args("reconnect_attempt", n) for n in (1, 2)], [(1,), (2,)])
        self.assertIsInstance(events.args("connect_error")[0], ConnectionRefusedError)
        self.assertEqual(client.state, "closed")

    async def test_heartbeat_keeps_the_connection(self) -> None:
        server = await self.start_server(None, "--ping-interval", "100", "--ping-timeout", "150")
        client, events = self.client(server.port)
        client.connect()
        await events.wait("connect")
        await sleep(1.0)  # ten ping intervals: the server drops clients that miss them
        self.assertEqual(events.names(), ["connect"])
        self.assertEqual(server.events("disconnect"), [])

    async def test_ping_timeout(self) -> None:
        server = await self.start_server(None, "--ping-interval", "100", "--ping-timeout", "150")
        client, events = self.client(server.port, reconnection=False)
        client.connect()
        await events.wait("connect")
        server.signal("STOP")  # alive to the kernel, silent to the client
        self.assertEqual(await events.wait("disconnect", timeout=5), ("ping timeout",))
        self.assertEqual(client.state, "closed")

    async def test_connect_timeout(self) -> None:
        server = await self.start_server()
        server.signal("STOP")  # the kernel accepts the connection; nobody answers
        client, events = self.client(server.port, reconnection=False, connect_timeout=0.3)
        client.connect()
        (error,) = await events.wait("connect_error")
        self.assertIsInstance(error, TimeoutError)
        self.assertEqual(client.state, "closed")

    async def test_custom_namespace(self) -> None:
        server, client, events = await self.connected(
            "echo", namespace="/custom", query={"token": "t"})
        seen = await server.expect(lambda e: e["ev"] == "connection" and e["nsp"] == "/custom")
        self.assertEqual(seen["query"]["token"], "t")
        self.assertEqual(client.sid, seen["id"])
        client.emit("echo", "in custom")
        self.assertEqual(await events.wait("echo"), ("in custom",))
        got = await server.expect(lambda e: e["ev"] == "event")
        self.assertEqual((got["nsp"], got["name"]), ("/custom", "echo"))

    async def test_connect_refused_by_middleware(self) -> None:
        server = await self.start_server()
        kwargs: dict[str, Any] = (
            {"auth": {"token": "refuse"}} if self.eio == 4 else {"query": {"token": "refuse"}})
        client, events = self.client(server.port, **kwargs)
        client.connect()
        (error,) = await events.wait("connect_error")
        self.assertIsInstance(error, ConnectError)
        if self.eio == 4:
            self.assertEqual((str(error), error.data),
                             ("not authorized", {"reason": "refused by the test server"}))
        else:  # socket.io 2.x sends err.data when there is one
            self.assertEqual(error.data, {"reason": "refused by the test server"})
        await sleep(0.4)
        self.assertEqual(events.names(), ["connect_error"])
        self.assertEqual(client.state, "closed")
        self.assertEqual(server.events("connection"), [])

    async def test_send_buffer_is_bounded(self) -> None:
        server = await self.start_server()
        client, events = self.client(server.port, send_buffer_size=3)
        acked: list[int] = []
        for i in range(5):
            client.emit("n", i, callback=acked.append)
        client.connect()
        await events.wait("connect")
        got = [await server.expect(lambda e: e["ev"] == "event") for _ in range(3)]
        self.assertEqual([e["args"] for e in got], [[2], [3], [4]])
        await sleep(0.1)
        self.assertEqual(acked, [2, 3, 4])

    async def test_handler_errors_are_logged_not_fatal(self) -> None:
        _server, client, events = await self.connected("echo")
        client.on("echo", lambda *a: 1 / 0)
        client.emit("echo", 1)
        client.emit("echo", 2)
        await events.wait("echo", 2)
        await sleep(0)  # the recorder ran first; let the raising handler run too
        # Both are counted; the traceback is logged once (the repeat within a minute is not).
        self.assertEqual(client.faults.counts()["bugs"], 2)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertTrue(client.connected)


class SocketIO2ClientTests(_ClientTests, TestCase):
    """Engine.IO 3 + revision 4 against socket.io 2.5 (the original Entry server)."""

    version = "v2"
    eio = 3


class SocketIO4ClientTests(_ClientTests, TestCase):
    """Engine.IO 4 + revision 5 against socket.io 4.8."""

    version = "v4"
    eio = 4

    async def test_auth_reaches_the_server(self) -> None:
        server, _client, _events = await self.connected(auth={"token": "ok", "n": 1})
        seen = await server.expect(lambda e: e["ev"] == "connection")
        self.assertEqual(seen["auth"], {"token": "ok", "n": 1})

    async def test_wss_with_a_trusted_ca(self) -> None:
        try:
            import trustme
            from twisted.internet.ssl import Certificate, optionsForClientTLS
        except ImportError as exc:
            raise SkipTest(f"TLS test needs trustme: {exc}") from None
        ca = trustme.CA()
        leaf = ca.issue_cert(LOOPBACK)
        # Outside the source tree (trial's mktemp is relative to the working directory).
        folder = tempfile.mkdtemp(prefix="entryhw-sio-tls-")
        self.addCleanup(shutil.rmtree, folder, True)
        cert, key = os.path.join(folder, "leaf.pem"), os.path.join(folder, "leaf.key")
        leaf.private_key_and_cert_chain_pem.write_to_path(cert)
        leaf.private_key_pem.write_to_path(key)
        server = await self.start_server(None, "--tls", cert, key)
        url = f"https://{LOOPBACK}:{server.port}"
        # Not trusted by default: the platform roots do not know this CA.
        untrusted = SocketIOClient(url, eio=4, reconnection=False)
        self.addCleanup(untrusted.disconnect)
        bad = Events(untrusted)
        untrusted.connect()
        await bad.wait("connect_error")
        self.assertEqual(untrusted.state, "closed")
        creator = optionsForClientTLS(LOOPBACK,
                                      trustRoot=Certificate.loadPEM(ca.cert_pem.bytes()))
        client = SocketIOClient(url, eio=4, tls_context_factory=creator, reconnection=False)
        self.addCleanup(client.disconnect)
        events = Events(client, "echo")
        client.connect()
        await events.wait("connect")
        client.emit("echo", "over tls")
        self.assertEqual(await events.wait("echo"), ("over tls",))
