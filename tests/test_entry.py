"""The Entry bridge end to end: Node parents, socket.io-client 2 browsers, real processes.

Single mode, cloud mode with three copies, the host's death and re-election,
interop with a stand-in of the original written from the contract (docs/protocol.md;
tests/js/original_standin.js), bad input, /modules and /status.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import tempfile
import time
from typing import Any

from twisted.trial.unittest import TestCase

from tests.support import (
    JS_DIR,
    LOOPBACK,
    Clients,
    NodeParent,
    crash,
    free_port,
    http_get,
    node,
    pid_alive,
    server_command,
    wait_for,
)

KOREAN, EMOJI = "엔트리 하드웨어", "🤖🔌"
RICH = {"data": json.dumps([{"port": 1, "value": KOREAN}]), "mode": 0, "type": "utf8",
        "nested": {"list": list(range(2000)), "text": EMOJI, "deep": [[[{"x": None}]]]}}


def browser_opts(room: str | None, *transports: str) -> dict[str, Any]:
    """What entryjs passes to io.connect (with a quick reconnection for the tests)."""
    query: dict[str, Any] = {"client": True}
    if room is not None:
        query["roomId"] = room
    return {"transports": list(transports or ("websocket",)), "query": query,
            "reconnectionDelay": 200, "reconnectionDelayMax": 500}


def drain(proc: Any, settle: float) -> list[Any]:
    """Everything a process reports within ``settle`` seconds (kept in its ``seen``)."""
    items = []
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        try:
            item = proc.events.get(timeout=0.05)
        except queue.Empty:
            continue
        if item is EOFError:
            proc.events.put(EOFError)
            break
        proc.seen.append(item)
        items.append(item)
    return items


class EntryCase(TestCase):
    timeout = 90
    maxDiff = None

    def server(self, port: int, *extra: str) -> NodeParent:
        return NodeParent([*server_command(), "--port", str(port), *extra],
                          cleanup=self.addCleanup)

    def standin(self, port: int) -> NodeParent:
        env = dict(os.environ, ENTRY_PORT=str(port), NODE_PATH=str(JS_DIR / "node_modules"))
        return NodeParent([node(), str(JS_DIR / "original_standin.js")],
                          cleanup=self.addCleanup, env=env)

    def host(self, port: int, *extra: str) -> NodeParent:
        parent = self.server(port, *extra)
        parent.send({"key": "open"})
        self.assertEqual(parent.message("runningModeChanged")["value"], 2)
        return parent

    def browser(self, clients: Clients, name: str, port: int, room: str | None,
                *transports: str) -> None:
        clients.connect(name, "v2", f"http://{LOOPBACK}:{port}", **browser_opts(room, *transports))
        clients.expect(c=name, ev="connect")

    def assertPairTalks(self, parent: NodeParent, clients: Clients, name: str,
                        tag: str, timeout: float = 10.0) -> None:
        """One message each way between ``parent`` and browser ``name``."""
        parent.send({"key": "send", "value": {"to": name, "tag": tag}})
        clients.expect(timeout, c=name, ev="event", name="message",
                       args=[{"data": {"to": name, "tag": tag}}])
        clients.emit(name, "message", {"data": tag, "from": name})
        parent.message("data", timeout, value={"data": tag, "from": name})


    def assertPairTalksAgain(self, parent: NodeParent, clients: Clients, name: str,
                             within: float) -> None:
        """Like assertPairTalks, retrying every half second until ``within`` runs out."""
        deadline = time.monotonic() + within
        for direction in ("down", "up"):
            attempt = 0
            while True:
                attempt += 1
                tag = f"{direction}-{attempt}"
                try:
                    if direction == "down":
                        parent.send({"key": "send", "value": {"to": name, "tag": tag}})
                        clients.expect(0.5, c=name, ev="event", name="message",
                                       args=[{"data": {"to": name, "tag": tag}}])
                    else:
                        clients.emit(name, "message", {"data": tag, "from": name})
                        parent.message("data", 0.5, value={"data": tag, "from": name})
                    break
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise


class SingleModeTests(EntryCase):
    def check_single(self, *transports: str) -> None:
        port = free_port()
        parent = self.host(port)
        self.assertEqual(parent.message("cloudModeChanged")["value"], 0)
        clients = Clients(self)
        self.browser(clients, "b", port, "room-1", *transports)
        parent.message("connection")
        self.assertEqual(parent.message("cloudModeChanged")["value"], 0)

        parent.send({"key": "send", "value": {"port": [1, 2], "text": KOREAN + EMOJI}})
        self.assertEqual(clients.expect(c="b", ev="event", name="message")["args"],
                         [{"data": {"port": [1, 2], "text": KOREAN + EMOJI}}])
        parent.send({"key": "disconnectHardware"})
        self.assertEqual(clients.expect(c="b", ev="event", name="message")["args"],
                         [{"data": "disconnectHardware"}])

        clients.emit("b", "message", RICH, ack="plain")
        self.assertEqual(parent.message("data")["value"], RICH)
        self.assertEqual(clients.expect(c="b", ev="ack", id="plain")["args"], [True])
        clients.emit("b", "message", {"key": "k-7", "data": "x"}, ack="keyed")
        self.assertEqual(parent.message("data")["value"], {"key": "k-7", "data": "x"})
        self.assertEqual(clients.expect(c="b", ev="ack", id="keyed")["args"], ["k-7"])

        clients.close("b")
        self.assertEqual(parent.message("close")["value"], "room-1")

    def test_websocket_only_like_entryjs(self) -> None:
        self.check_single("websocket")

    def test_polling_only(self) -> None:
        self.check_single("polling")

    def test_polling_then_upgrade(self) -> None:
        self.check_single("polling", "websocket")

    def test_status(self) -> None:
        port = free_port()
        parent = self.host(port)
        clients = Clients(self)
        self.browser(clients, "b", port, "r")
        clients.emit("b", "message", {"data": "1"})
        parent.message("data")
        status, body, _ = http_get(port, "/status")
        self.assertEqual(status, 200)
        info = json.loads(body)
        self.assertEqual({k: info[k] for k in ("runningMode", "cloudMode", "browsers",
                                               "hardwareClients", "rooms", "messagesIn")},
                         {"runningMode": 2, "cloudMode": 0, "browsers": 1, "hardwareClients": 0,
                          "rooms": 1, "messagesIn": 1})
        self.assertNotIn('"r"', body.decode())  # counts only: room ids never leave
        self.assertIn("version", info)
        self.assertGreaterEqual(info["uptimeSeconds"], 0)


class BadInputTests(EntryCase):
    def test_bad_events_are_rejected_and_nothing_else_is_disturbed(self) -> None:
        port = free_port()
        parent = self.host(port)
        clients = Clients(self)
        self.browser(clients, "good", port, "r1")
        self.browser(clients, "noroom", port, None)
        clients.emit("good", "frobnicate", 1, 2, ack="unknown")
        clients.emit("good", "message", ack="empty")
        clients.emit("noroom", "matchTarget", {"roomId": "r1"})
        clients.emit("good", "matchTarget", None)
        big = {"data": "x" * (1024 * 1024 + 10)}
        clients.emit("good", "message", big)
        # The oversized message closes only that connection; the browser reconnects.
        clients.expect(c="good", ev="disconnect")
        clients.expect(c="good", ev="connect")
        self.assertEqual(clients.expect(c="good", ev="ack", id="unknown")["args"], [])
        self.assertEqual(clients.expect(c="good", ev="ack", id="empty")["args"], [False])
        self.assertPairTalks(parent, clients, "noroom", "after-bad")
        self.assertPairTalks(parent, clients, "good", "after-bad-2")
        log = parent.log_text()
        self.assertIn("unknown event 'frobnicate'", log)
        self.assertIn("'message' without a payload", log)
        self.assertIn("not a hardware client", log)
        self.assertNotIn("Traceback", log)
        self.assertNotIn({"data": "x" * 10}, [d for d in parent.messages("data")])


class CloudModeTests(EntryCase):
    def start_cloud(self, port: int) -> tuple[list[NodeParent], Clients]:
        parents = [self.host(port)]
        for _ in range(2):
            copy = self.server(port)
            copy.send({"key": "open"})
            self.assertEqual(copy.message("runningModeChanged")["value"], 3)
            self.assertEqual(copy.message("cloudModeChanged")["value"], 1)
            parents.append(copy)
        for i, parent in enumerate(parents):
            parent.send({"key": "addRoomId", "value": f"room-{i}"})
        # The host sees both hardware clients: cloud mode.
        host = parents[0]
        wait_for(lambda: drain(host, 0.05) is not None
                 and host.messages("cloudModeChanged")[-1:] == [1], 10, "cloud mode")
        clients = Clients(self)
        for i in range(3):
            self.browser(clients, f"b{i}", port, f"room-{i}")
        return parents, clients

    def test_three_copies_talk_only_to_their_own_browsers(self) -> None:
        port = free_port()
        parents, clients = self.start_cloud(port)
        for i, parent in enumerate(parents):
            self.assertPairTalks(parent, clients, f"b{i}", "hello")
        n = 400
        for i, parent in enumerate(parents):
            for k in range(n):
                parent.send({"key": "send", "value": {"seq": k, "from": i}})
                clients.emit(f"b{i}", "message", {"seq": k, "room": i})

        def counts() -> tuple[list[list[Any]], list[list[Any]]]:
            to_browser = [[e["args"][0]["data"] for e in clients.history(c=f"b{i}", ev="event")
                           if e.get("name") == "message"] for i in range(3)]
            to_parent = [[v for v in p.messages("data")] for p in parents]
            return to_browser, to_parent

        def complete() -> bool:
            clients.drain()
            for p in parents:
                drain(p, 0.05)
            to_browser, to_parent = counts()
            return all(len(b) >= n + 1 for b in to_browser) and \
                all(len(p) >= n + 1 for p in to_parent)

        wait_for(complete, 60, "every message of every pair", step=0.2)
        clients.drain(0.5)
        to_browser, to_parent = counts()
        for i in range(3):
            self.assertEqual(to_browser[i][1:], [{"seq": k, "from": i} for k in range(n)],
                             f"browser {i}")
            self.assertEqual(to_parent[i][1:], [{"seq": k, "room": i} for k in range(n)],
                             f"parent {i}")

    def test_host_killed_a_new_host_is_elected(self) -> None:
        port = free_port()
        parents, clients = self.start_cloud(port)
        for i, parent in enumerate(parents):
            self.assertPairTalks(parent, clients, f"b{i}", "before")
        host = parents[0]
        crash(host.server_pid)
        killed = time.monotonic()
        survivors = parents[1:]

        def elected() -> list[int]:
            for p in survivors:
                drain(p, 0.05)
            return [p.messages("runningModeChanged")[-1] for p in survivors]

        wait_for(lambda: sorted(elected()) == [2, 3], 10, "one new host and one client")
        # Messages sent while a browser is still reconnecting are lost (as with the
        # original); what matters is that each pair talks again within seconds.
        for i, parent in enumerate(survivors, start=1):
            self.assertPairTalksAgain(parent, clients, f"b{i}", within=15)
        took = time.monotonic() - killed
        self.assertLess(took, 15)
        for parent in survivors:
            modes = parent.messages("runningModeChanged")
            self.assertEqual(modes[0], 3)
            self.assertIn(modes[-1], (2, 3))
        winner = [p for p in survivors if p.messages("runningModeChanged")[-1] == 2]
        self.assertEqual(len(winner), 1)
        # The loser is a hardware client of the winner, which is in cloud mode.
        status = json.loads(http_get(port, "/status")[1])
        self.assertEqual((status["runningMode"], status["cloudMode"], status["hardwareClients"]),
                         (2, 1, 1))
        self.assertFalse(pid_alive(host.server_pid))


class InteropTests(EntryCase):
    """entryhw with the original's behaviour, both ways round."""

    def check_pair_through(self, host: NodeParent, child: NodeParent, port: int) -> None:
        host.send({"key": "addRoomId", "value": "host-room"})
        child.send({"key": "open"})
        self.assertEqual(child.message("runningModeChanged")["value"], 3)
        child.send({"key": "addRoomId", "value": "child-room"})
        wait_for(lambda: drain(host, 0.05) is not None
                 and host.messages("cloudModeChanged")[-1:] == [1], 10, "cloud mode on host")
        clients = Clients(self)
        self.browser(clients, "hb", port, "host-room")
        self.browser(clients, "cb", port, "child-room")
        time.sleep(0.3)  # let matchTarget land before traffic
        self.assertPairTalks(child, clients, "cb", "via-host", timeout=15)
        self.assertPairTalks(host, clients, "hb", "own-room", timeout=15)
        clients.drain(0.3)
        stray = [e for e in clients.history(c="hb", ev="event")
                 if e["args"][0].get("data", {}) == {"to": "cb", "tag": "via-host"}]
        self.assertEqual(stray, [])

    def test_entryhw_child_under_original_host(self) -> None:
        port = free_port()
        host = self.standin(port)
        host.send({"key": "open"})
        self.assertEqual(host.message("runningModeChanged")["value"], 2)
        self.check_pair_through(host, self.server(port), port)

    def test_original_child_under_entryhw_host(self) -> None:
        port = free_port()
        host = self.host(port)
        self.check_pair_through(host, self.standin(port), port)


class ModulesTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        base = tempfile.mkdtemp(prefix="entryhw-modules-")
        self.addCleanup(shutil.rmtree, base, True)
        self.folder = os.path.join(base, "modules")
        os.makedirs(os.path.join(self.folder, "sub"))
        with open(os.path.join(base, "outside.js"), "w") as f:
            f.write("SECRET OUTSIDE")
        files = {
            "arduino.json": json.dumps({"block": "arduino_block.js"}),
            "arduino_block.js": "Entry.Arduino = {};",
            "sub/nested.js": "nested();",
            "deep.json": json.dumps({"block": "sub/nested.js"}),
            "noblock.json": json.dumps({"name": "x"}),
            "broken.json": "{not json",
            "escape.json": json.dumps({"block": "../outside.js"}),
            "absolute.json": json.dumps({"block": os.path.join(base, "outside.js")}),
            "linked.json": json.dumps({"block": "link.js"}),
        }
        for name, text in files.items():
            with open(os.path.join(self.folder, name), "w") as f:
                f.write(text)
        os.symlink(os.path.join(base, "outside.js"), os.path.join(self.folder, "link.js"))
        os.symlink(os.path.join(base, "outside.js"), os.path.join(base, "modules", "out.json"))
        self.port = free_port()
        parent = NodeParent([*server_command(), "--port", str(self.port), "--modules",
                             self.folder], cleanup=self.addCleanup)
        parent.send({"key": "open"})
        parent.message("runningModeChanged")

    def test_serves_block_as_javascript(self) -> None:
        status, body, headers = http_get(self.port, "/modules/arduino")
        self.assertEqual((status, body), (200, b"Entry.Arduino = {};"))
        self.assertEqual(headers["content-type"], "application/javascript; charset=utf-8")
        self.assertEqual(http_get(self.port, "/modules/deep")[:2], (200, b"nested();"))

    def test_no_block_is_400(self) -> None:
        self.assertEqual(http_get(self.port, "/modules/noblock")[0], 400)
        self.assertEqual(http_get(self.port, "/modules/broken")[0], 400)

    def test_nothing_outside_the_folder(self) -> None:
        for path in ("/modules/escape", "/modules/absolute", "/modules/linked", "/modules/out",
                     "/modules/..%2foutside", "/modules/%2e%2e/outside", "/modules/../outside",
                     "/modules/%2e%2e%2fmodules%2farduino", "/modules/arduino%00",
                     "/modules//etc/passwd", "/modules/%2fetc%2fpasswd", "/modules/sub/nested",
                     "/modules/", "/modules/missing", "/modules/.hidden", "/modules/%ff"):
            status, body, _ = http_get(self.port, path)
            self.assertEqual(status, 404, path)
            self.assertNotIn(b"SECRET", body, path)
