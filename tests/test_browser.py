"""The Entry workspace in a real headless Chromium against a server without certificates.

tests/js/entry_page/ reproduces entryjs's connection logic (src/class/hw.ts): from an https
page it tries https://hw.playentry.org, https://hardware.playentry.org, then
http://127.0.0.1 on the bridge port, moving on only when socket.io-client 2 gives up on an
address. Both names resolve to 127.0.0.1 here, so the TLS ClientHellos reach our plain-HTTP
server: unless it refuses them at once (a TLS alert and a close), the page waits out
socket.io's timeouts, about 52 s, before it reaches the 127.0.0.1 address that works.
tests/js/browser.js drives Debian's Chromium (never a downloaded browser).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import unittest
from pathlib import Path
from typing import Any

from twisted.trial.unittest import TestCase

from tests.support import (
    JS_DIR,
    LOOPBACK,
    Lines,
    NodeParent,
    Proc,
    free_port,
    http_get,
    node,
    require_npm_peers,
    server_command,
)

CHROMIUM = Path("/usr/bin/chromium")
# Functional bound: a few seconds once TLS is refused at once, ~52 s when it is not answered.
CONNECT_BOUND_S = 20.0
# How long to wait for the connection at all, so a slow one is measured, not just timed out.
CONNECT_WAIT_S = 80.0


def require_chromium() -> None:
    """Skip without Chromium, except in CI (.ci/run installs it, so there it must be)."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        raise AssertionError(f"{CHROMIUM} is missing in CI: .ci/run should have installed it")
    raise unittest.SkipTest(f"{CHROMIUM} is missing: apt-get install chromium")


class EntryPage(Lines):
    """tests/js/browser.js: the Entry page in headless Chromium, as https://playentry.org."""

    def __init__(self, test: Any, port: int, room: str, **extra: Any) -> None:
        require_npm_peers()
        config = {"port": port, "roomId": room, "deadlineMs": int(CONNECT_WAIT_S + 40) * 1000,
                  **extra}
        super().__init__(Proc([node(), str(JS_DIR / "browser.js"), json.dumps(config)],
                              cleanup=test.addCleanup))
        # Runs before Proc.kill: a clean close lets Chromium exit with its whole tree.
        test.addCleanup(self.close)

    def send(self, message: Any) -> None:
        """The page's _sendSocketMessage(message): emit 'message' to the server."""
        self.proc.write_json({"op": "send", "message": message})

    def close(self) -> None:
        if self.proc.p.poll() is None:
            try:
                self.proc.write_json({"op": "exit"})
            except OSError:
                pass
            try:
                self.proc.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass  # Proc.kill, the next cleanup, ends it


class EntryPageTests(TestCase):
    timeout = 150

    def test_https_entry_page_reaches_a_plain_server_through_127_0_0_1_at_once(self) -> None:
        require_chromium()
        port, room = free_port(), "room-chromium"
        parent = NodeParent([*server_command(), "--port", str(port)], cleanup=self.addCleanup)
        parent.send({"key": "open"})
        self.assertEqual(parent.message("runningModeChanged")["value"], 2)

        page = EntryPage(self, port, room)
        page.expect(30, ev="launched")
        start = page.expect(30, ev="start")
        local = f"http://{LOOPBACK}:{port}"
        self.assertEqual(start["tries"], [f"https://hw.playentry.org:{port}",
                                          f"https://hardware.playentry.org:{port}", local])
        began = time.monotonic()
        outcome = page.proc.expect(lambda e: e.get("ev") in ("connect", "all_failed"),
                                   CONNECT_WAIT_S, "the Entry page to connect")
        waited = time.monotonic() - began
        self.assertEqual(outcome["ev"], "connect", outcome)
        seconds = outcome["sinceStartMs"] / 1000
        sys.stderr.write(f"\nEntry page (https://playentry.org) connected to {outcome['url']} "
                         f"over {outcome['transport']} in {seconds:.1f} s\n")
        self.assertEqual((outcome["url"], outcome["transport"]), (local, "websocket"))
        self.assertEqual([a["url"] for a in page.history(ev="attempt")], start["tries"])
        self.assertLess(seconds, CONNECT_BOUND_S,
                        f"the page connected only after {seconds:.1f} s (waited {waited:.1f} s): "
                        "the TLS ClientHellos to the plain port were not refused at once")
        parent.message("connection")

        # Both ways, as Entry Hardware and the workspace talk.
        down = {"port": [1, 2], "text": "엔트리 하드웨어"}
        parent.send({"key": "send", "value": down})
        page.expect(10, ev="message", message={"data": down})
        up = {"data": json.dumps({"13": 1, "readablePorts": [2]}), "mode": 0, "type": "utf8"}
        page.send(up)
        page.expect(10, ev="sent")
        self.assertEqual(parent.message("data")["value"], up)

        status, body, _ = http_get(port, "/status")
        self.assertEqual(status, 200)
        faults = json.loads(body)["faults"]
        # Each https address was tried (4 ClientHellos each) and refused with an alert.
        self.assertGreaterEqual(faults["tlsRefused"], 2, faults)
        self.assertEqual(faults["bugs"], 0, faults)

        page.close()
        self.assertEqual(page.proc.p.returncode, 0, page.proc.log_text()[-2000:])
        page.expect(1, ev="closed")
        parent.message("close", value=room)
        self.assertNotIn("Traceback", parent.log_text())
