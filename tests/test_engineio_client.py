"""entryhw.engineio.handshake (pure), then entryhw.engineio.client against real peers.

The peers are tests/js/sio_server.js (socket.io 2.x on engine.io 3, socket.io 4.x on
engine.io 6: real Engine.IO servers, spoken to in raw Socket.IO text here) and
tests/js/eio_raw_server.js (the ``ws`` package with a script per connection, for what a
real server never does: garbage, silence, a missing handshake).  Each is spawned on a free
loopback port and killed in the test's cleanup (tests/node_peers.py); every wait has a
timeout.  No test here may log an error: trial fails a test that does, which is how
"nothing raises out of the client into Twisted" is checked.
"""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Any

from twisted.internet import defer
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.trial.unittest import SkipTest, TestCase

from entryhw.engineio import packets as eio
from entryhw.engineio.client import EngineIOClient
from entryhw.engineio.handshake import Handshake, Heartbeat, engineio_url, parse_handshake
from tests.node_peers import NodeServer, raw_server, sio_server, sleep, unbin, within
from tests.support import LOOPBACK, free_port, node, require_npm_peers

# --------------------------------------------------------------------------- pure parts


class HeartbeatTests(TestCase):
    def make(self, version: int) -> tuple[Clock, list[int], list[bool], Heartbeat]:
        clock, sent, expired = Clock(), [], []
        heartbeat = Heartbeat(clock, version, 10.0, 2.0, sent.append, lambda: expired.append(True))
        heartbeat.start()
        return clock, sent, expired, heartbeat

    def test_v3_client_pings_and_waits_for_pong(self) -> None:
        clock, sent, expired, heartbeat = self.make(3)
        clock.advance(9.9)
        self.assertEqual(sent, [])
        clock.advance(0.1)
        self.assertEqual(sent, [eio.PING])
        clock.advance(1.9)
        heartbeat.received(eio.PONG)  # next ping pingInterval after the pong
        clock.advance(9.9)
        self.assertEqual((sent, expired), ([eio.PING], []))
        clock.advance(0.1)
        self.assertEqual(sent, [eio.PING, eio.PING])
        clock.advance(1.9)
        self.assertEqual(expired, [])
        clock.advance(0.1)  # no pong within pingTimeout
        self.assertEqual(expired, [True])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_v3_any_packet_proves_liveness(self) -> None:
        clock, sent, expired, heartbeat = self.make(3)
        clock.advance(10.0)
        self.assertEqual(sent, [eio.PING])
        clock.advance(1.5)
        heartbeat.received(eio.MESSAGE)  # engine.io-client 3: deadline pingInterval + timeout
        clock.advance(11.9)
        self.assertEqual(expired, [])
        clock.advance(0.1)
        self.assertEqual(expired, [True])

    def test_v4_answers_server_pings(self) -> None:
        clock, sent, expired, heartbeat = self.make(4)
        for _ in range(3):
            clock.advance(11.9)
            heartbeat.received(eio.PING)
        self.assertEqual((sent, expired), ([eio.PONG] * 3, []))
        heartbeat.received(eio.MESSAGE)  # only pings count in Engine.IO 4
        clock.advance(11.9)
        self.assertEqual(expired, [])
        clock.advance(0.1)
        self.assertEqual(expired, [True])
        heartbeat.received(eio.PING)  # after expiry: nothing
        self.assertEqual(sent, [eio.PONG] * 3)

    def test_stop_cancels_everything(self) -> None:
        for version in (3, 4):
            clock, sent, expired, heartbeat = self.make(version)
            heartbeat.stop()
            self.assertEqual(clock.getDelayedCalls(), [])
            clock.advance(100)
            self.assertEqual((sent, expired), ([], []))


class URLTests(TestCase):
    def test_query_order_and_override(self) -> None:
        target = engineio_url("http://127.0.0.1:23518/?a=1&EIO=9", eio_version=3,
                              query={"childServer": "true", "x y": "ä&=", "a": "2"})
        self.assertEqual(
            target.url,
            "ws://127.0.0.1:23518/socket.io/?a=2&EIO=3&childServer=true&x%20y=%C3%A4%26%3D"
            "&transport=websocket")
        self.assertEqual(target[1:], ("127.0.0.1", 23518, False))

    def test_schemes_and_ports(self) -> None:
        self.assertEqual(engineio_url("https://hw.example", eio_version=4)[1:],
                         ("hw.example", 443, True))
        self.assertTrue(engineio_url("wss://h:1", eio_version=4).url.startswith("wss://h:1/"))
        self.assertTrue(engineio_url("ws://[::1]:2", eio_version=4, path="x/").url
                        .startswith("ws://[::1]:2/x/?EIO=4&"))
        for bad in ("ftp://h", "http://h/custom", "http://:80"):
            self.assertRaises(ValueError, engineio_url, bad, eio_version=3)


class HandshakeTests(TestCase):
    def test_values_in_seconds(self) -> None:
        handshake = parse_handshake('{"sid":"abc","upgrades":[],"pingInterval":25000,'
                                    '"pingTimeout":20000,"maxPayload":1000000}')
        self.assertEqual(handshake[:3], ("abc", 25.0, 20.0))
        self.assertEqual(handshake.data["maxPayload"], 1000000)

    def test_anything_else_is_a_value_error(self) -> None:
        for data in [*BAD_HANDSHAKES, None, b'{"sid":"a","pingInterval":1,"pingTimeout":1}']:
            with self.subTest(data=str(data)[:40]):
                self.assertRaises(ValueError, parse_handshake, data)

    def test_client_argument_checks(self) -> None:
        self.assertRaises(ValueError, EngineIOClient, "http://h", eio=5, reactor=Clock())
        self.assertRaises(ValueError, EngineIOClient, "ftp://h", reactor=Clock())
        client = EngineIOClient("https://h:1", eio=3, query={"a": "b"}, reactor=Clock())
        self.assertEqual(client.target.url,
                         "wss://h:1/engine.io/?a=b&EIO=3&transport=websocket")
        self.assertEqual((client.state, client.sid, client.handshake), ("closed", None, None))
        self.assertTrue(client.close().called)  # nothing to close
        client.send("dropped")  # not open: nothing happens


#: OPEN packet data a server might send that is no handshake.
BAD_HANDSHAKES = [
    "", "{}", "[]", '"x"', "null", "{",
    '{"sid":1,"pingInterval":1,"pingTimeout":1}',
    '{"sid":"a","pingInterval":0,"pingTimeout":1}',
    '{"sid":"a","pingInterval":1,"pingTimeout":-1}',
    '{"sid":"a","pingInterval":"1","pingTimeout":1}',
    '{"sid":"a","pingInterval":NaN,"pingTimeout":1}',
    '{"sid":"a","pingTimeout":1}',
    '{"sid":"a","pingInterval":1' + "0" * 400 + ',"pingTimeout":1}',  # too big for a float
    "[" * 3000,  # deeper than Python's recursion limit
]


# --------------------------------------------------------------------------- harness


class Recorder:
    """An EngineIOClient's callbacks, recorded; ``wait(kind, n)`` fires at the n-th one."""

    def __init__(self, client: EngineIOClient) -> None:
        self.log: list[tuple[str, tuple[Any, ...]]] = []
        self._waiters: list[tuple[str, int, defer.Deferred[Any]]] = []
        client.on_open = partial(self.record, "open")
        client.on_message = partial(self.record, "message")
        client.on_close = partial(self.record, "close")

    def record(self, kind: str, *args: Any) -> None:
        self.log.append((kind, args))
        for waiter in list(self._waiters):
            if waiter[0] == kind and self.count(kind) >= waiter[1]:
                self._waiters.remove(waiter)
                waiter[2].callback(self.args(kind, waiter[1]))

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.log if k == kind)

    def args(self, kind: str, n: int = 1) -> tuple[Any, ...]:
        return [a for k, a in self.log if k == kind][n - 1]

    def kinds(self) -> list[str]:
        return [k for k, _ in self.log]

    def messages(self) -> list[str | bytes]:
        return [a[0] for k, a in self.log if k == "message"]

    def wait(self, kind: str, n: int = 1, timeout: float = 10.0) -> defer.Deferred[Any]:
        if self.count(kind) >= n:
            return defer.succeed(self.args(kind, n))
        d: defer.Deferred[Any] = defer.Deferred()
        waiter = (kind, n, d)
        self._waiters.append(waiter)

        def forget(failure: Any) -> Any:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            return failure

        d.addErrback(forget)
        return within(d, timeout, lambda: f"{kind!r} #{n}; so far {self.log!r}")


class _PeerTests:
    timeout = 30
    eio: int
    path = "/engine.io/"

    def setUp(self) -> None:
        try:
            require_npm_peers()
            node()
        except RuntimeError as exc:
            raise SkipTest(str(exc)) from None

    def engine(self, port: int, **kwargs: Any) -> tuple[EngineIOClient, Recorder]:
        client = EngineIOClient(f"http://{LOOPBACK}:{port}", eio=self.eio, path=self.path,
                                **kwargs)
        self.addCleanup(client.close)  # type: ignore[attr-defined]
        return client, Recorder(client)

    async def start(self, server: NodeServer) -> NodeServer:
        await server.start(self)  # type: ignore[arg-type]
        return server


# --------------------------------------------------------------------------- real servers


class _ServerTests(_PeerTests):
    """Against socket.io's own Engine.IO servers; the subclasses say which."""

    version: str
    path = "/socket.io/"

    async def open_client(self, *server_args: str, **kwargs: Any) -> tuple[
            NodeServer, EngineIOClient, Recorder, Handshake]:
        server = await self.start(sio_server(self.version, free_port(), *server_args))
        client, rec = self.engine(server.port, **kwargs)
        client.connect()
        (handshake,) = await rec.wait("open")
        return server, client, rec, handshake

    async def join(self, client: EngineIOClient, rec: Recorder) -> str:
        """Join Socket.IO's "/" by hand (revision 4 servers join it by themselves).

        Messages here are Socket.IO packets: ``0`` CONNECT, ``1`` DISCONNECT, ``2`` EVENT,
        ``5`` BINARY_EVENT (``42...`` on the wire, with the Engine.IO MESSAGE type).
        """
        if self.eio == 4:
            client.send("0")
        (reply,) = await rec.wait("message")
        return reply  # type: ignore[no-any-return]

    async def test_handshake(self) -> None:
        server = await self.start(sio_server(self.version, free_port(), "--ping-interval",
                                             "300", "--ping-timeout", "200"))
        client, rec = self.engine(server.port, query={"childServer": "true"})
        self.assertEqual(client.state, "closed")
        client.connect()
        self.assertEqual(client.state, "connecting")
        (handshake,) = await rec.wait("open")
        self.assertEqual((handshake.ping_interval, handshake.ping_timeout), (0.3, 0.2))
        self.assertEqual(handshake.data["upgrades"], [])  # already on the WebSocket
        self.assertEqual((client.state, client.sid, client.handshake),
                         ("open", handshake.sid, handshake))
        joined = await self.join(client, rec)
        seen = await server.expect(lambda e: e["ev"] == "connection")
        self.assertEqual([seen["query"][k] for k in ("childServer", "EIO", "transport")],
                         ["true", str(self.eio), "websocket"])
        if self.eio == 3:  # socket.io 2: the "/" socket's id is the Engine.IO sid
            self.assertEqual((joined, seen["id"]), ("0", handshake.sid))
        else:
            self.assertEqual(json.loads(joined[1:])["sid"], seen["id"])

    async def test_text_and_binary_both_ways(self) -> None:
        server, client, rec, _ = await self.open_client()
        await self.join(client, rec)
        client.send(r'2["echo","h\u00e9 \u2713",1]')  # JSON escapes, decoded by the server
        client.send('2["echo","hé ✓",1]')
        await rec.wait("message", 3)
        self.assertEqual(rec.messages()[1:], ['2["echo","hé ✓",1]'] * 2)
        # A binary attachment: in Engine.IO 3 its frame carries a packet type byte.
        client.send_many(['51-["echo",{"_placeholder":true,"num":0}]', b"\x00\xff"])
        await rec.wait("message", 5)
        self.assertEqual(rec.messages()[3:],
                         ['51-["echo",{"_placeholder":true,"num":0}]', b"\x00\xff"])
        for _ in range(2):
            await server.expect(lambda e: e["ev"] == "event")
        got = await server.expect(lambda e: e["ev"] == "event")
        self.assertEqual(unbin(got["args"]), [b"\x00\xff"])
        client.send('2["binary"]')
        await rec.wait("message", 8)
        header, *attachments = rec.messages()[5:]
        self.assertTrue(str(header).startswith('52-["binary",{"_placeholder":true,"num":0}'),
                        header)
        self.assertEqual(attachments, [b"\x00\x01\x02\xff", "hé".encode() + b"llo"])

    async def test_heartbeat_keeps_the_connection(self) -> None:
        server, client, rec, _ = await self.open_client("--ping-interval", "100",
                                                         "--ping-timeout", "150")
        await self.join(client, rec)
        await sleep(1.0)  # ten ping intervals: the server drops clients that miss one
        self.assertEqual((rec.kinds(), client.state), (["open", "message"], "open"))
        self.assertEqual(server.events("disconnect"), [])

    async def test_ping_timeout_when_the_server_goes_silent(self) -> None:
        server, client, rec, _ = await self.open_client("--ping-interval", "100",
                                                         "--ping-timeout", "150")
        await self.join(client, rec)
        server.signal("STOP")  # alive to the kernel, silent to the client
        reason, error = await rec.wait("close", timeout=5)
        self.assertEqual(reason, "ping timeout")
        self.assertIsInstance(error, TimeoutError)
        self.assertEqual((client.state, client.sid), ("closed", None))
        await within(client.when_closed(), 5, lambda: "the connection to go")

    async def test_server_closing(self) -> None:
        _server, client, rec, _ = await self.open_client()
        await self.join(client, rec)
        client.send('2["kick",true]')  # DISCONNECT, then the server closes the connection
        reason, error = await rec.wait("close")
        self.assertEqual(rec.messages()[1:], ["1"])
        self.assertEqual(reason, "transport close")
        self.assertIsInstance(error, ConnectionError)
        self.assertEqual(client.state, "closed")
        await within(client.when_closed(), 5, lambda: "the connection to go")

    async def test_close_waits_for_the_close_handshake(self) -> None:
        server, client, rec, first = await self.open_client()
        await self.join(client, rec)
        await server.expect(lambda e: e["ev"] == "connection")
        closed = client.close()
        self.assertFalse(closed.called)  # the server's reply takes a round trip
        self.assertEqual((client.state, client.sid), ("closed", None))
        await within(closed, 5, lambda: "the close handshake")
        gone = await server.expect(lambda e: e["ev"] == "disconnect")
        self.assertEqual(gone["reason"], "transport close")
        self.assertTrue(client.close().called)
        self.assertEqual(rec.kinds(), ["open", "message"])  # no on_close for close()
        # The same client connects again, to a new session.
        client.connect()
        (again,) = await rec.wait("open", 2)
        self.assertNotEqual(again.sid, first.sid)

    async def test_handler_errors_are_contained(self) -> None:
        _server, client, rec, _ = await self.open_client()

        def bad(data: str | bytes) -> None:
            rec.record("message", data)
            raise ZeroDivisionError

        client.on_message = bad
        await self.join(client, rec)
        client.send('2["echo",1]')
        await rec.wait("message", 2)
        await sleep(0)  # the wait fired inside the handler, before it raised
        self.assertEqual(client.faults.counts()["bugs"], 2)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)  # rate-limited
        self.assertEqual(client.state, "open")


class EngineIO3ServerTests(_ServerTests, TestCase):
    """Engine.IO 3 against engine.io 3.6 under socket.io 2.5 (the original Entry server)."""

    version = "v2"
    eio = 3


class EngineIO4ServerTests(_ServerTests, TestCase):
    """Engine.IO 4 against engine.io 6 under socket.io 4.8."""

    version = "v4"
    eio = 4


# --------------------------------------------------------------------------- misbehaving peers


class _RawPeerTests(_PeerTests):
    """Against eio_raw_server.js, doing what a real server never does."""

    async def raw(self) -> NodeServer:
        return await self.start(raw_server(free_port()))

    async def closed_by(self, server: NodeServer, script: str, **kwargs: Any) -> tuple[
            EngineIOClient, Recorder, str, BaseException]:
        query = {"script": script, **kwargs.pop("query", {})}
        client, rec = self.engine(server.port, query=query, **kwargs)
        client.connect()
        reason, error = await rec.wait("close")
        return client, rec, reason, error

    async def assert_parse_error(self, server: NodeServer, script: str, opens: int = 1,
                                 **kwargs: Any) -> None:
        client, rec, reason, error = await self.closed_by(server, script, **kwargs)
        what = f"{script} {kwargs}"[:80]
        self.assertEqual(reason, "parse error", what)
        self.assertIsInstance(error, ConnectionError)
        self.assertEqual(client.state, "closed")
        self.assertEqual(rec.kinds(), ["open"] * opens + ["close"], what)
        counts = client.faults.counts()
        self.assertEqual((counts["protocolErrors"], counts["bugs"]), (1, 0), what)
        gone = await server.expect(lambda e: e["ev"] == "close")
        self.assertEqual(gone["code"], 1006)  # dropped, no close handshake

    async def test_garbage_packets(self) -> None:
        server = await self.raw()
        scripts = ["bad-type", "second-open"] + (["bad-binary"] if self.eio == 3 else [])
        for script in scripts:
            await self.assert_parse_error(server, script)

    async def test_a_packet_before_the_handshake(self) -> None:
        # It would have been taken without a heartbeat to notice the server going silent.
        await self.assert_parse_error(await self.raw(), "early-message", opens=0)

    async def test_bad_handshakes(self) -> None:
        server = await self.raw()
        for data in BAD_HANDSHAKES:
            await self.assert_parse_error(server, "bad-handshake", opens=0,
                                          query={"data": data})

    async def test_text_that_is_not_utf8(self) -> None:
        server = await self.raw()
        client, _rec, reason, error = await self.closed_by(server, "not-utf8")
        self.assertEqual(reason, "transport close")
        self.assertIsInstance(error, ConnectionError)
        self.assertEqual(client.faults.counts()["protocolErrors"], 1)
        gone = await server.expect(lambda e: e["ev"] == "close")
        self.assertEqual(gone["code"], 4007)

    async def test_close_packet(self) -> None:
        server = await self.raw()
        _client, rec, reason, error = await self.closed_by(server, "close-packet")
        self.assertEqual((rec.kinds(), reason, str(error)),
                         (["open", "close"], "transport close", "the server closed the session"))

    async def test_silent_server(self) -> None:
        server = await self.raw()
        client, rec = self.engine(server.port, query={"script": "silent"})
        client.connect()
        await rec.wait("open")
        opened = time.monotonic()
        reason, error = await rec.wait("close", timeout=5)
        self.assertEqual(reason, "ping timeout")
        self.assertIsInstance(error, TimeoutError)
        self.assertGreaterEqual(time.monotonic() - opened, 0.15)  # interval + timeout: 0.2 s
        sent = [e["data"] for e in server.events("message")]
        # Engine.IO 3: the client pinged once and waited; 4: it waits for the server's PING.
        self.assertEqual(sent, ["2"] if self.eio == 3 else [])

    async def test_no_handshake_is_a_connect_timeout(self) -> None:
        server = await self.raw()
        started = time.monotonic()
        _client, rec, reason, error = await self.closed_by(server, "no-open",
                                                           connect_timeout=0.3)
        self.assertEqual((reason, rec.kinds()), ("connect timeout", ["close"]))
        self.assertIsInstance(error, TimeoutError)
        self.assertGreaterEqual(time.monotonic() - started, 0.25)
        await server.expect(lambda e: e["ev"] == "close")

    async def test_server_gone_mid_send(self) -> None:
        server = await self.raw()
        client, rec = self.engine(server.port, query={"script": "drop-on-message"})
        client.connect()
        await rec.wait("open")
        chunk = "4" * 65536
        for _ in range(2000):  # keep sending, whatever happens underneath
            if rec.count("close"):
                break
            client.send_many([chunk] * 20)
            client.send(b"\x00" * 1000)
            await sleep(0.002)
        reason, error = await rec.wait("close")
        self.assertEqual(reason, "transport close")
        self.assertIsInstance(error, ConnectionError)
        client.send("after the end")  # dropped, no error
        await within(client.when_closed(), 5, lambda: "the connection to go")

    async def test_close_and_abort(self) -> None:
        server = await self.raw()
        for abort, code in ((False, 1000), (True, 1006)):
            client, rec = self.engine(server.port, query={"script": "echo"})
            client.connect()
            await rec.wait("open")
            await within(client.close(abort=abort), 5, lambda: "the connection to close")
            gone = await server.expect(lambda e: e["ev"] == "close")
            self.assertEqual(gone["code"], code)
            self.assertEqual(rec.kinds(), ["open"])

    async def test_connection_refused(self) -> None:
        client, rec = self.engine(free_port())  # nothing listens there
        client.connect()
        reason, error = await rec.wait("close")
        self.assertEqual(reason, "transport error")
        self.assertIsInstance(error, ConnectionRefusedError)
        self.assertEqual(client.state, "closed")


class EngineIO3RawPeerTests(_RawPeerTests, TestCase):
    eio = 3


class EngineIO4RawPeerTests(_RawPeerTests, TestCase):
    eio = 4
