"""The library features over the wire: socket.io-client 2.5.0 and 4.x against
tests/sio_library_app.py (several handlers, async handlers, no ack for a failed handler,
async connect decisions, rooms, close_room, disconnect by sid).

The rules themselves are checked exactly, sans-I/O, in tests/test_socketio_handlers.py;
here each is seen from a real client. "No ack" is checked by order: a later event's ack
arrives over the same connection after the missing one would have.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from twisted.trial.unittest import TestCase

from tests.support import HERE, LOOPBACK, Clients, Lines, Proc, free_port
from tests.test_socketio_server import KOREAN

APP = HERE / "sio_library_app.py"
WS = ["websocket"]


class LibraryApp(Lines):
    def __init__(self, test: TestCase) -> None:
        self.port = free_port()
        super().__init__(Proc([sys.executable, str(APP), "--port", str(self.port)],
                              cleanup=test.addCleanup, stdin=False))
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.expect(ev="listening")


class _LibraryCases:
    """Run once per client version (the subclasses)."""

    version: str
    timeout = 45

    def setUp(self) -> None:
        self.app, self.clients = LibraryApp(self), Clients(self)  # type: ignore[arg-type]

    def connect(self, c: str, nsp: str = "") -> str:
        self.clients.connect(c, self.version, self.app.url, nsp, transports=WS)
        return self.clients.expect(c=c, ev="connect")["id"]

    def ack(self, c: str, event: str, *args: Any) -> list[Any]:
        """Emit with an ack and wait for it: the ack's arguments."""
        ack_id = f"{c}-{event}-{time.monotonic_ns()}"
        self.clients.emit(c, event, *args, ack=ack_id)
        return self.clients.expect(c=c, ev="ack", id=ack_id)["args"]

    def test_connect_handlers_all_ran_in_order(self) -> None:
        sid = self.connect("a")
        self.assertEqual(self.app.expect(ev="connect", sid=sid)["order"],
                         ["first", "second", "third"])

    def test_several_handlers_and_the_first_answers(self) -> None:
        sid = self.connect("a")
        self.assertEqual(self.ack("a", "several", KOREAN), ["first"])
        self.assertEqual(self.app.expect(ev="ran", handler="also_runs", sid=sid)["args"],
                         [KOREAN])

    def test_async_and_deferred_handlers_answer_when_done(self) -> None:
        self.connect("a")
        started = time.monotonic()
        self.assertEqual(self.ack("a", "async", 1, {"k": [KOREAN]}), [1, {"k": [KOREAN]}])
        self.assertGreaterEqual(time.monotonic() - started, 0.1)
        self.assertEqual(self.ack("a", "deferred", "d", 2), ["d", 2])

    def test_a_failing_handler_answers_no_ack_and_keeps_the_connection(self) -> None:
        self.connect("a")
        self.clients.emit("a", "fails", ack="fails")
        self.clients.emit("a", "fails_later", ack="fails-later")
        self.assertEqual(self.ack("a", "async", "after"), ["after"])  # 0.1 s > 0.05 s
        self.assertEqual(self.clients.history(c="a", ev="ack", id="fails"), [])
        self.assertEqual(self.clients.history(c="a", ev="ack", id="fails-later"), [])
        self.assertEqual(self.ack("a", "bugs"), [2])
        self.assertEqual(self.clients.history(c="a", ev="disconnect"), [])

    def test_an_async_connect_handler_decides_late(self) -> None:
        self.clients.connect("s", self.version, self.app.url, "/slow", transports=WS)
        self.assertEqual(self.clients.expect(c="s", ev="event", name="early")["args"],
                         ["sent while deciding"])
        sid = self.clients.expect(c="s", ev="connect")["id"]
        self.app.expect(ev="connect", nsp="/slow", sid=sid)

    def test_an_async_connect_handler_refuses_and_stops_the_rest(self) -> None:
        self.clients.connect("r", self.version, self.app.url, "/refuse", transports=WS)
        refused = self.clients.expect(c="r", ev="connect_error" if self.version == "v4"
                                      else "error")
        self.assertEqual(refused.get("message", refused.get("data")), "Not authorized")
        self.app.expect(ev="ran", nsp="/refuse", handler="accepts")
        self.app.expect(ev="ran", nsp="/refuse", handler="refuses")
        self.connect("a")  # something after: "never" would have been reported by now
        self.assertEqual([line for line in self.app.drain(settle=0.2)
                          if line.get("handler") == "never"], [])
        self.assertEqual(self.clients.history(c="r", ev="connect"), [])

    def test_rooms_and_close_room(self) -> None:
        sids = {c: self.connect(c) for c in "abc"}
        for c, room in (("a", "party"), ("b", "party"), ("c", "other")):
            self.ack(c, "join", room)
        self.assertEqual(self.ack("a", "rooms"), [sorted([sids["a"], "party"])])
        self.assertEqual(self.ack("c", "to_room", "party", "before"), [2])
        for c in "ab":
            self.assertEqual(self.clients.expect(c=c, ev="event", name="room")["args"],
                             ["before"])
        self.assertEqual(self.ack("c", "close_room", "party"), [2])
        self.assertEqual(self.ack("a", "rooms"), [[sids["a"]]])
        self.assertEqual(self.ack("c", "rooms"), [sorted([sids["c"], "other"])])
        self.assertEqual(self.ack("c", "to_room", "party", "after"), [0])
        self.assertEqual(self.ack("c", "to_room", "other", "still"), [1])
        self.assertEqual(self.clients.expect(c="c", ev="event", name="room")["args"], ["still"])
        self.assertEqual(self.clients.history(ev="event", name="room", args=["after"]), [])

    def test_disconnect_by_sid(self) -> None:
        self.connect("a")
        b = self.connect("b")
        self.assertEqual(self.ack("a", "disconnect_sid", b), [True])
        self.assertEqual(self.clients.expect(c="b", ev="disconnect")["reason"],
                         "io server disconnect")
        self.assertEqual(self.app.expect(ev="disconnect", sid=b)["reason"],
                         "server namespace disconnect")
        self.assertEqual(self.ack("a", "disconnect_sid", b), [False])
        self.assertEqual(self.clients.history(c="a", ev="disconnect"), [])


class SocketIOClient2LibraryTests(_LibraryCases, TestCase):
    version = "v2"


class SocketIOClient4LibraryTests(_LibraryCases, TestCase):
    version = "v4"
