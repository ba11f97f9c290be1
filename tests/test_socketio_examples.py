"""Every script in examples/, run the way its docstring says, against real clients.

Each example runs as its own process (``python examples/NAME.py PORT`` with a free
127.0.0.1 port) and is driven by tests/js/sio_client.js (socket.io-client 2.5.0 and 4.x);
the one client that must stay silent (an ack that never comes) is a raw Engine.IO polling
session. Every process is killed with its group by the test's cleanup.
"""

from __future__ import annotations

import ast
import json
import socket
import sys
import time
from pathlib import Path

from twisted.trial.unittest import TestCase

from tests.support import HERE, LOOPBACK, Clients, Proc, free_port, request, wait_for
from tests.test_socketio_server import EMOJI, KOREAN, b64

EXAMPLES = HERE.parent / "examples"
ENGINE = "/socket.io/?EIO=4&transport=polling"
TEXT = {"content-type": "text/plain;charset=UTF-8"}


def documented_command(script: Path) -> list[str]:
    """The command line of the script's docstring: ``python examples/NAME.py 8000``."""
    doc = ast.get_docstring(ast.parse(script.read_text("utf-8"))) or ""
    commands = [line.split() for line in doc.splitlines()
                if line.strip().startswith("python examples/")]
    if len(commands) != 1:
        raise AssertionError(f"{script.name}: the docstring should show one command line")
    return commands[0]


class Example:
    """An example script, started as documented but on a free port."""

    def __init__(self, test: TestCase, name: str) -> None:
        python, path, port = documented_command(EXAMPLES / name)
        test.assertEqual((python, path), ("python", f"examples/{name}"))
        test.assertTrue(port.isdigit(), f"{name}: the port is the one argument")
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.proc = Proc([sys.executable, str(EXAMPLES.parent / path), str(self.port)],
                         cleanup=test.addCleanup, stdin=False, json_stdout=False)
        wait_for(self._listening, 15, f"{name} to listen on {self.port} (stderr: "
                 f"{self.proc.log_text()[-2000:]})", step=0.05)

    def _listening(self) -> bool:
        if self.proc.p.poll() is not None:
            raise AssertionError(f"the example exited: {self.proc.log_text()[-3000:]}")
        with socket.socket() as s:
            return s.connect_ex((LOOPBACK, self.port)) == 0


class SilentClient:
    """A Socket.IO client over raw Engine.IO 4 polling that never answers an ack."""

    def __init__(self, port: int) -> None:
        self.port = port
        status, body, _ = request(port, "GET", ENGINE)
        assert status == 200, body
        self.path = f"{ENGINE}&sid={json.loads(body[1:])['sid']}"
        assert request(port, "POST", self.path, b"40", TEXT)[:2] == (200, b"ok")
        self.frames = self.poll()
        (connect,) = [f for f in self.frames if f.startswith("40")]
        self.sid = json.loads(connect[2:])["sid"]

    def poll(self) -> list[str]:
        """The packets waiting for this client (call only when some are)."""
        status, body, _ = request(self.port, "GET", self.path)
        assert status == 200, body
        return body.decode("utf-8").split("\x1e")


class ExampleTests(TestCase):
    timeout = 60

    def test_every_example_is_tested_and_says_how_to_run_it(self) -> None:
        names = sorted(p.name for p in EXAMPLES.glob("*.py"))
        self.assertEqual(names, ["echo.py", "library_tour.py"])  # a new one needs a test here
        for name in names:
            self.assertEqual(documented_command(EXAMPLES / name)[:2],
                             ["python", f"examples/{name}"])

    def test_echo_serves_v2_and_v4_at_once(self) -> None:
        self.assertLessEqual(len((EXAMPLES / "echo.py").read_text().splitlines()), 35)
        app, clients = Example(self, "echo.py"), Clients(self)
        clients.connect("old", "v2", app.url, transports=["websocket"])  # as entryjs does
        clients.connect("new", "v4", app.url)
        clients.expect(c="old", ev="connect")
        clients.expect(c="new", ev="connect")
        clients.emit("old", "message", "from v2 " + KOREAN, {"n": 2}, ack="old")
        self.assertEqual(clients.expect(c="new", ev="event", name="message")["args"],
                         ["from v2 " + KOREAN, {"n": 2}])
        self.assertEqual(clients.expect(c="old", ev="ack", id="old")["args"], ["ok"])
        clients.emit("new", "message", "from v4 " + EMOJI, b64(b"\x00\xff"), ack="new")
        self.assertEqual(clients.expect(c="old", ev="event", name="message")["args"],
                         ["from v4 " + EMOJI, b64(b"\x00\xff")])
        self.assertEqual(clients.expect(c="new", ev="ack", id="new")["args"], ["ok"])
        # Neither got its own message back.
        self.assertEqual(len(clients.history(ev="event")), 2)

    def test_library_tour(self) -> None:
        app, clients = Example(self, "library_tour.py"), Clients(self)
        clients.connect("a", "v4", app.url, transports=["websocket"])
        clients.connect("b", "v4", app.url)
        clients.connect("c", "v2", app.url, transports=["websocket"])
        ids = {}
        for c in "abc":
            ids[c] = clients.expect(c=c, ev="connect")["id"]
            # Both connect handlers ran, in order: the room was joined before "welcome".
            self.assertEqual(clients.expect(c=c, ev="event", name="welcome")["args"],
                             [sorted([ids[c], "lobby"])])

        # An async handler answers; the second handler of the event runs as well.
        clients.emit("a", "add", 2, 3, ack="sum")
        self.assertEqual(clients.expect(c="a", ev="ack", id="sum")["args"], [5])
        for c in "bc":
            self.assertEqual(clients.expect(c=c, ev="event", name="added")["args"], [2, 3])
        self.assertEqual(clients.history(c="a", ev="event", name="added"), [])

        # The server asks another client (v4, then v2) and relays its answer.
        clients.emit("a", "ask", ids["b"], KOREAN, ack="asked-b")
        question = clients.expect(c="b", ev="event", name="question")
        self.assertEqual((question["args"], question["ack"]), ([KOREAN], True))
        self.assertEqual(clients.expect(c="a", ev="ack", id="asked-b")["args"],
                         ["client-ack", KOREAN])
        clients.emit("b", "ask", ids["c"], EMOJI, ack="asked-c")
        self.assertEqual(clients.expect(c="b", ev="ack", id="asked-c")["args"],
                         ["client-ack", EMOJI])

        # A client that never answers: "no answer", after the 2 s timeout and not before.
        silent = SilentClient(app.port)
        started = time.monotonic()
        clients.emit("a", "ask", silent.sid, "anyone?", ack="asked-silent")
        answer = clients.expect(c="a", ev="ack", id="asked-silent", timeout=15)
        self.assertEqual(answer["args"], ["no answer"])
        self.assertGreaterEqual(time.monotonic() - started, 1.8)
        asked = [f for f in silent.poll() if f.startswith("42")]
        self.assertTrue(any(f.endswith('["question","anyone?"]') and f[2:3].isdigit()
                            for f in asked), asked)
        clients.emit("a", "ask", "nobody", "?", ack="asked-nobody")
        self.assertEqual(clients.expect(c="a", ev="ack", id="asked-nobody")["args"],
                         ["no such client"])

        # The server disconnects a client by its sid.
        clients.emit("a", "kick", ids["b"], ack="kicked")
        self.assertEqual(clients.expect(c="a", ev="ack", id="kicked")["args"], [True])
        self.assertEqual(clients.expect(c="b", ev="disconnect")["reason"],
                         "io server disconnect")
        clients.emit("a", "kick", ids["b"], ack="kicked-again")
        self.assertEqual(clients.expect(c="a", ev="ack", id="kicked-again")["args"], [False])
