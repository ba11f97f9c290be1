"""The Socket.IO server's handler rules, acks and server API, sans-I/O.

A fake Engine.IO session stands in for the transport and a ``Clock`` for time, so every
rule can be checked exactly: several handlers per event, Deferred and coroutine results,
errors that answer no ack, connect handlers that decide late or never, acks we wait for
with a timeout, disconnect/rooms/close_room by sid. The same behaviour over real clients
is in tests/test_socketio_library.py.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from entryhw.engineio.packets import Utf8
from entryhw.faults import Faults
from entryhw.socketio import packets as sp
from entryhw.socketio.acks import AckLost, AckTimeout, PendingAcks
from entryhw.socketio.handlers import FAILED, Handlers, run
from entryhw.socketio.packets import ACK, CONNECT, CONNECT_ERROR, DISCONNECT, EVENT, Packet
from entryhw.socketio.server import ConnectionRefused, Socket, SocketIOServer


class FakeSession:
    """What the Socket.IO layer uses of an Engine.IO session, recording what is sent."""

    def __init__(self, eio: int = 4, sid: str = "engine-sid",
                 query: dict[str, str] | None = None) -> None:
        self.eio, self.sid, self.query = eio, sid, query or {}
        self.headers: dict[str, str] = {}
        self.remote = "127.0.0.1"
        self.frames: list[str | bytes] = []
        self.closed: str | None = None
        self.on_message: Any = None
        self.on_close: Any = None

    def send(self, frame: str | bytes) -> None:
        # Text comes as Utf8 (bytes from the JSON encoder); the wire makes it a str again.
        self.frames.append(frame.decode() if type(frame) is Utf8 else frame)

    def close(self, reason: str = "forced close") -> None:
        if self.closed is None:
            self.closed = reason
            self.on_close(reason)


class Peer:
    """A client on a fake session: feeds frames in, decodes what the server sent."""

    def __init__(self, sio: SocketIOServer, rev: int = 5) -> None:
        self.session = FakeSession(eio=4 if rev == 5 else 3)
        self.decoder = sp.Decoder(rev)
        self.rev = rev
        self._read = 0
        sio.engine.on_connection(self.session)  # what the Engine.IO server calls

    def send(self, packet: Packet) -> None:
        for frame in sp.encode(packet, self.rev):
            self.session.on_message(frame)

    def packets(self) -> list[Packet]:
        """What the server sent since the last call."""
        new, self._read = self.session.frames[self._read:], len(self.session.frames)
        return [p for p in map(self.decoder.feed, new) if p is not None]

    def connect(self, nsp: str = "/", auth: Any = None) -> str:
        """CONNECT and expect the reply: the socket's sid."""
        if self.rev == 5:
            self.send(Packet(CONNECT, nsp, auth))
        (reply,) = [p for p in self.packets() if p.type in (CONNECT, CONNECT_ERROR)]
        assert reply.type == CONNECT, reply
        return reply.data["sid"] if self.rev == 5 else self.session.sid

    def event(self, *args: Any, ack: int | None = None, nsp: str = "/") -> None:
        self.send(Packet(EVENT, nsp, list(args), ack))


class Case(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.faults = Faults(now=self.clock.seconds)
        self.sio = SocketIOServer(clock=self.clock, faults=self.faults, connect_timeout=10.0)
        self.calls: list[Any] = []

    def record(self, name: str, result: Any = None) -> Any:
        """A handler that records (name, args) and returns ``result``."""
        def handler(*args: Any) -> Any:
            self.calls.append((name, args[1:] if args and isinstance(args[0], Socket)
                               else args))
            return result
        return handler

    def bugs(self) -> int:
        return self.faults.counts()["bugs"]


class HandlersTableTests(SynchronousTestCase):
    def test_order_removal_and_event_names(self) -> None:
        table = Handlers()
        def a() -> None: ...
        def b() -> None: ...
        table.add("x", a)
        table.add("x", b)
        table.add("y", a)
        self.assertEqual(table.get("x"), (a, b))
        self.assertEqual(table.get("nothing"), ())
        self.assertEqual((set(table), "x" in table, len(table)), ({"x", "y"}, True, 2))
        table.remove("x", a)
        self.assertEqual(table.get("x"), (b,))
        table.remove("x", b)
        self.assertNotIn("x", table)
        table.remove("y")
        self.assertEqual(list(table), [])

    def test_run_contains_every_kind_of_failure(self) -> None:
        faults = Faults()
        self.assertEqual(run(faults, lambda x: x + 1, 1), 2)
        self.assertIs(run(faults, lambda: 1 / 0), FAILED)
        self.assertEqual(faults.counts()["bugs"], 1)
        d: Deferred[int] = Deferred()
        result = run(faults, lambda: d)
        d.errback(ZeroDivisionError())
        self.assertIs(self.successResultOf(result), FAILED)  # the failure was consumed
        self.assertEqual(faults.counts()["bugs"], 2)

        async def coroutine(x: int) -> int:
            return await succeed(x * 2)

        self.assertEqual(self.successResultOf(run(faults, coroutine, 21)), 42)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 2)


class PendingAcksTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.acks = PendingAcks(self.clock)
        self.got: list[Any] = []

    def test_answers_and_timeouts(self) -> None:
        first = self.acks.add(self.got.append)
        second = self.acks.add(self.got.append, self.got.append, timeout=2.0)
        self.assertEqual((first, second), (0, 1))
        self.assertTrue(self.acks.resolve(first, ["a"]))
        self.assertFalse(self.acks.resolve(first, ["again"]))
        self.assertFalse(self.acks.resolve(None, []))
        self.clock.advance(1.9)
        self.assertEqual(self.got, [["a"]])
        self.clock.advance(0.1)
        self.assertEqual(len(self.got), 2)
        self.assertIsInstance(self.got[1], AckTimeout)
        self.assertFalse(self.acks.resolve(second, ["too late"]))
        self.assertEqual(len(self.acks), 0)

    def test_discard_fail_all_and_wrap_around(self) -> None:
        quiet = self.acks.add(self.got.append, timeout=None)
        loud = self.acks.add(self.got.append, self.got.append, timeout=5.0)
        self.acks.discard(loud)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        waiting = self.acks.add(self.got.append, self.got.append, timeout=5.0)
        self.acks.fail_all(AckLost("gone"))
        self.assertEqual([type(e) for e in self.got], [AckLost])  # only those with on_error
        self.assertNotIn(quiet, self.acks)
        self.assertNotIn(waiting, self.acks)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertRaises(ValueError, self.acks.add, self.got.append, None, 1.0)
        self.acks._next = sp.MAX_ACK_ID
        self.assertEqual(self.acks.add(self.got.append), sp.MAX_ACK_ID)
        self.assertEqual(self.acks.add(self.got.append), 0)


class SeveralHandlersTests(Case):
    def test_all_run_in_order_and_the_first_answers_the_ack(self) -> None:
        self.sio.on("message", self.record("one", "first"))
        self.sio.on("message", self.record("two", "second"))
        self.sio.on("message", self.record("three", ("t", 3)))
        peer = Peer(self.sio)
        peer.connect()
        peer.event("message", {"a": 1}, ack=7)
        self.assertEqual(self.calls, [("one", ({"a": 1},)), ("two", ({"a": 1},)),
                                      ("three", ({"a": 1},))])
        self.assertEqual(peer.packets(), [Packet(ACK, "/", ["first"], 7)])

    def test_a_failing_first_handler_answers_no_ack_and_disturbs_nothing(self) -> None:
        def broken(socket: Socket, *args: Any) -> str:
            raise RuntimeError("bug")

        self.sio.on("message", broken)
        self.sio.on("message", self.record("after", "not the answer"))
        peer = Peer(self.sio)
        peer.connect()
        for ack in (1, 2):
            peer.event("message", "x", ack=ack)
        self.assertEqual(peer.packets(), [])  # neither an empty ack nor the second's
        self.assertEqual(self.calls, [("after", ("x",))] * 2)
        self.assertEqual(self.bugs(), 2)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)  # rate-limited
        self.assertIsNone(peer.session.closed)
        self.sio.off("message", broken)
        peer.event("message", "y", ack=3)
        self.assertEqual(peer.packets(), [Packet(ACK, "/", ["not the answer"], 3)])

    def test_a_failing_later_handler_leaves_the_ack_to_the_first(self) -> None:
        self.sio.on("message", self.record("first", "answer"))
        self.sio.on("message", lambda socket, *a: 1 / 0)
        peer = Peer(self.sio)
        peer.connect()
        peer.event("message", ack=0)
        self.assertEqual(peer.packets(), [Packet(ACK, "/", ["answer"], 0)])
        self.assertEqual(self.bugs(), 1)
        self.flushLoggedErrors(ZeroDivisionError)

    def test_socket_handlers_catch_all_and_disconnect_handlers_all_run(self) -> None:
        self.sio.on("*", self.record("any1", "caught"))
        self.sio.on("*", self.record("any2"))
        self.sio.on("disconnect", self.record("bye1"))
        self.sio.on("disconnect", self.record("bye2"))

        @self.sio.on("connect")
        def own(socket: Socket) -> None:
            socket.on("mine", self.record("mine1", "socket's"))
            socket.on("mine", self.record("mine2"))
            socket.on("disconnect", self.record("socket-bye"))

        self.sio.on("mine", self.record("namespace's"))  # the socket's handlers take over
        peer = Peer(self.sio)
        peer.connect()
        peer.event("mine", 1, ack=1)
        peer.event("other", 2, ack=2)
        self.assertEqual(peer.packets(), [Packet(ACK, "/", ["socket's"], 1),
                                          Packet(ACK, "/", ["caught"], 2)])
        peer.session.close("transport close")
        self.assertEqual(self.calls, [
            ("mine1", (1,)), ("mine2", (1,)), ("any1", ("other", 2)), ("any2", ("other", 2)),
            ("socket-bye", ("transport close",)), ("bye1", ("transport close",)),
            ("bye2", ("transport close",))])

    def test_no_handler_still_answers_an_empty_ack(self) -> None:
        peer = Peer(self.sio)
        peer.connect()
        peer.event("nobody", ack=4)
        self.assertEqual(peer.packets(), [Packet(ACK, "/", [], 4)])


class AsyncHandlersTests(Case):
    def test_a_deferred_answers_when_it_fires(self) -> None:
        results: list[Deferred[Any]] = []

        @self.sio.on("message")
        def later(socket: Socket, *args: Any) -> Deferred[Any]:
            results.append(Deferred())
            return results[-1]

        peer = Peer(self.sio)
        peer.connect()
        peer.event("message", ack=1)
        peer.event("message", ack=2)
        self.assertEqual(peer.packets(), [])
        results[1].callback(("two", 2))
        results[0].errback(ValueError("failed"))
        self.assertEqual(peer.packets(), [Packet(ACK, "/", ["two", 2], 2)])  # none for 1
        self.assertEqual(self.bugs(), 1)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_a_coroutine_answers_when_it_returns(self) -> None:
        waiting: Deferred[int] = Deferred()

        @self.sio.on("add")
        async def add(socket: Socket, a: int, b: int) -> int:
            return a + b + await waiting

        @self.sio.on("boom")
        async def boom(socket: Socket) -> None:
            await waiting
            raise KeyError("late")

        peer = Peer(self.sio)
        peer.connect()
        peer.event("add", 1, 2, ack=5)
        peer.event("boom", ack=6)
        self.assertEqual(peer.packets(), [])
        waiting.callback(10)
        self.assertEqual(peer.packets(), [Packet(ACK, "/", [13], 5)])
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)
        self.assertIsNone(peer.session.closed)

    def test_no_ack_for_a_socket_that_left_meanwhile(self) -> None:
        waiting: Deferred[str] = Deferred()
        self.sio.on("message", lambda socket: waiting)
        peer = Peer(self.sio)
        peer.connect()
        peer.event("message", ack=1)
        peer.session.close("transport close")
        waiting.callback("late")
        self.assertEqual(peer.packets(), [])


class ConnectHandlersTests(Case):
    def test_all_run_in_order_and_one_false_refuses_and_stops_them(self) -> None:
        self.sio.on("connect", self.record("check1", None))
        self.sio.on("connect", self.record("check2", False))
        self.sio.on("connect", self.record("never"))
        self.sio.on("disconnect", self.record("bye"))
        peer = Peer(self.sio)
        peer.send(Packet(CONNECT, "/"))
        self.assertEqual(peer.packets(), [Packet(CONNECT_ERROR, "/",
                                                 {"message": "Not authorized"})])
        self.assertEqual([c[0] for c in self.calls], ["check1", "check2"])
        self.assertEqual(self.sio.namespaces["/"].sockets, {})

    def test_a_deferred_decides_later_and_emits_wait_for_it(self) -> None:
        decision: Deferred[bool] = Deferred()
        entered: list[Socket] = []

        @self.sio.on("connect")
        def slow(socket: Socket) -> Deferred[bool]:
            socket.emit("hello", 1)
            entered.append(socket)
            return decision

        self.sio.on("connect", self.record("second"))
        self.sio.on("message", self.record("message"))
        peer = Peer(self.sio)
        peer.send(Packet(CONNECT, "/"))
        peer.event("message", "too early")  # dropped: the client is not connected yet
        self.assertEqual((peer.packets(), self.calls), ([], []))
        decision.callback(True)
        sid = entered[0].sid
        self.assertEqual(peer.packets(), [Packet(CONNECT, "/", {"sid": sid}),
                                          Packet(EVENT, "/", ["hello", 1])])
        self.assertEqual(self.calls, [("second", ())])
        peer.event("message", "now")
        self.assertEqual(self.calls[-1], ("message", ("now",)))

    def test_a_coroutine_refuses_with_a_reason(self) -> None:
        @self.sio.on("connect")
        async def check(socket: Socket) -> None:
            token = await succeed(socket.handshake.auth.get("token"))
            if token != "ok":
                raise ConnectionRefused("bad token", {"token": token})

        peer = Peer(self.sio)
        peer.send(Packet(CONNECT, "/", {"token": "no"}))
        self.assertEqual(peer.packets(), [Packet(CONNECT_ERROR, "/", {
            "message": "bad token", "data": {"token": "no"}})])
        Peer(self.sio).connect(auth={"token": "ok"})

    def test_a_failing_deferred_refuses_and_is_logged(self) -> None:
        decision: Deferred[bool] = Deferred()
        self.sio.on("connect", lambda socket: decision)
        peer = Peer(self.sio)
        peer.send(Packet(CONNECT, "/"))
        decision.errback(RuntimeError("db down"))
        self.assertEqual([p.type for p in peer.packets()], [CONNECT_ERROR])
        self.assertEqual(self.bugs(), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_the_connect_timeout_bounds_the_decision(self) -> None:
        cancelled: list[Deferred[Any]] = []
        never: Deferred[bool] = Deferred(cancelled.append)
        self.sio.on("connect", lambda socket: never)
        peer = Peer(self.sio)
        self.clock.advance(5)
        peer.send(Packet(CONNECT, "/"))
        self.clock.advance(9.9)
        self.assertEqual(peer.packets(), [])
        self.clock.advance(0.1)
        self.assertEqual(peer.packets(), [Packet(CONNECT_ERROR, "/", {
            "message": "Connect handler timeout"})])
        self.assertEqual((cancelled, self.faults.counts()["timeouts"]), ([never], 1))
        self.assertEqual(self.sio.namespaces["/"].sockets, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_leaving_while_undecided_cancels_the_decision(self) -> None:
        cancelled: list[Deferred[Any]] = []
        never: Deferred[bool] = Deferred(cancelled.append)
        self.sio.on("connect", lambda socket: never)
        self.sio.on("disconnect", self.record("bye"))
        peer = Peer(self.sio)
        peer.send(Packet(CONNECT, "/"))
        peer.session.close("transport close")
        self.assertEqual(cancelled, [])  # from the reactor, not from under a handler
        self.clock.advance(0)
        self.assertEqual(cancelled, [never])
        self.assertEqual(peer.packets(), [])
        self.assertEqual(self.calls, [("bye", ("transport close",))])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_coroutine_may_disconnect_its_own_socket(self) -> None:
        go: Deferred[None] = Deferred()

        @self.sio.on("connect")
        async def bounce(socket: Socket) -> None:
            await go
            socket.disconnect()  # while the coroutine runs: nothing to cancel under it

        peer = Peer(self.sio)
        peer.send(Packet(CONNECT, "/"))
        go.callback(None)
        self.clock.advance(0)
        self.assertEqual(peer.packets(), [Packet(DISCONNECT, "/")])
        self.assertEqual(self.sio.namespaces["/"].sockets, {})


class AckWaitTests(Case):
    def connected(self) -> tuple[Peer, Socket]:
        peer = Peer(self.sio)
        sid = peer.connect()
        socket = self.sio.socket(sid)
        assert socket is not None
        return peer, socket

    def test_call_fires_with_the_answer(self) -> None:
        peer, socket = self.connected()
        answer = socket.call("question", "why", timeout=3.0)
        (asked,) = peer.packets()
        self.assertEqual(asked, Packet(EVENT, "/", ["question", "why"], asked.id))
        self.assertNoResult(answer)
        peer.send(Packet(ACK, "/", ["because", 42], asked.id))
        self.assertEqual(self.successResultOf(answer), ["because", 42])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_call_times_out_and_ignores_a_late_answer(self) -> None:
        peer, socket = self.connected()
        answer = socket.call("question", timeout=3.0)
        (asked,) = peer.packets()
        self.clock.advance(2.9)
        self.assertNoResult(answer)
        self.clock.advance(0.1)
        self.failureResultOf(answer, AckTimeout)
        peer.send(Packet(ACK, "/", ["late"], asked.id))
        self.assertIsNone(peer.session.closed)

    def test_call_fails_when_the_socket_goes_or_was_gone(self) -> None:
        peer, socket = self.connected()
        waiting = socket.call("question")  # no timeout: only the disconnect ends it
        peer.session.close("transport close")
        self.failureResultOf(waiting, AckLost)
        self.failureResultOf(socket.call("question", timeout=1.0), AckLost)

    def test_a_cancelled_call_stops_waiting(self) -> None:
        peer, socket = self.connected()
        answer = socket.call("question", timeout=3.0)
        (asked,) = peer.packets()
        answer.cancel()
        self.failureResultOf(answer, CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        peer.send(Packet(ACK, "/", ["ignored"], asked.id))

    def test_call_of_data_that_cannot_be_sent_fails_at_once(self) -> None:
        _, socket = self.connected()
        self.failureResultOf(socket.call("question", {1, 2}, timeout=3.0), AckLost)
        self.assertEqual(self.faults.counts()["sendsDropped"], 1)

    def test_emit_with_a_timeout_calls_back_socketio4_style(self) -> None:
        peer, socket = self.connected()
        got: list[Any] = []
        socket.emit("q", 1, callback=lambda *args: got.append(args), timeout=2.0)
        socket.emit("q", 2, callback=lambda *args: got.append(args), timeout=2.0)
        socket.emit("q", 3, callback=lambda *args: got.append(("plain", *args)))
        first, _, third = peer.packets()
        peer.send(Packet(ACK, "/", ["yes"], first.id))
        peer.send(Packet(ACK, "/", ["ok"], third.id))
        self.clock.advance(2.0)
        self.assertEqual(got[:2], [(None, "yes"), ("plain", "ok")])
        (error,) = got[2]
        self.assertIsInstance(error, AckTimeout)
        self.assertRaises(ValueError, socket.emit, "q", timeout=1.0)


class ServerAPITests(Case):
    def test_disconnect_by_sid(self) -> None:
        self.sio.on("disconnect", self.record("bye"))
        peer = Peer(self.sio)
        sid = peer.connect()
        self.assertFalse(self.sio.disconnect("nobody"))
        self.assertFalse(self.sio.disconnect(sid, "/elsewhere"))
        self.assertTrue(self.sio.disconnect(sid))
        self.assertEqual(peer.packets(), [Packet(DISCONNECT, "/")])
        self.assertEqual(self.calls, [("bye", ("server namespace disconnect",))])
        self.assertIsNone(self.sio.socket(sid))
        self.assertFalse(self.sio.disconnect(sid))

    def test_rooms_and_close_room(self) -> None:
        self.sio.on("connect", lambda socket: socket.join("lobby"))
        peers = [Peer(self.sio) for _ in range(3)]
        sids = [p.connect() for p in peers]
        self.sio.socket(sids[0]).join("red")
        self.assertEqual(self.sio.rooms(sids[0]), {sids[0], "lobby", "red"})
        self.assertEqual(self.sio.rooms(sids[1]), {sids[1], "lobby"})
        self.assertEqual(self.sio.rooms("nobody"), set())
        self.assertEqual(self.sio.close_room("lobby"), 3)
        self.assertEqual(self.sio.rooms(sids[0]), {sids[0], "red"})
        self.assertEqual(self.sio.to("lobby").emit("anyone"), 0)
        self.assertEqual(self.sio.to("red").emit("still"), 1)
        self.assertEqual(self.sio.close_room("lobby"), 0)
        self.assertEqual(self.sio.close_room("red", "/nowhere"), 0)
        self.assertEqual(peers[0].packets()[-1], Packet(EVENT, "/", ["still"]))
        # The returned set is a copy: changing it changes no membership.
        self.sio.rooms(sids[1]).add("fake")
        self.assertEqual(self.sio.rooms(sids[1]), {sids[1]})

    def test_close_fires_when_the_engine_has_closed_everything(self) -> None:
        peer = Peer(self.sio)
        peer.connect()
        self.patch(self.sio.engine, "close_all", lambda: peer.session.close("shutdown"))
        self.assertIsNone(self.successResultOf(self.sio.close()))
        self.assertEqual(peer.session.closed, "shutdown")
        later: Deferred[None] = Deferred()
        self.patch(self.sio.engine, "close_all", lambda: later)
        closing = self.sio.close()
        self.assertNoResult(closing)
        later.callback(None)
        self.assertIsNone(self.successResultOf(closing))
