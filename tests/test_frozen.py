"""entryhw.frozen without PyInstaller: a Python parent running the same executable plays
the one-file bootloader (what the module recognises it by)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase, TestCase

from entryhw import frozen
from tests.support import pid_alive, wait_for

#: The "server": believes it is frozen, reports what entryhw.frozen sees, then waits.
_SERVER = """
import json, sys, time
sys.frozen = True
from entryhw import frozen
print(json.dumps({"boot": frozen.bootloader(), "parent": frozen.parent_pid(),
                  "follows": frozen.follow_bootloader()}), flush=True)
time.sleep(60)
"""
#: The "bootloader": same executable, starts the server, says its pid, waits for it.
_BOOT = """
import json, subprocess, sys
server = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
print(json.dumps({"server": server.pid}), flush=True)
server.wait()
"""


class NotFrozenTests(SynchronousTestCase):
    def test_nothing_changes(self) -> None:
        self.assertFalse(getattr(sys, "frozen", False))
        self.assertIsNone(frozen.bootloader())
        self.assertEqual(frozen.parent_pid(), os.getppid())
        self.assertFalse(frozen.follow_bootloader())


class OneFileTests(TestCase):
    timeout = 30

    def start(self) -> tuple[subprocess.Popen, int, dict]:
        boot = subprocess.Popen([sys.executable, "-c", _BOOT, _SERVER], stdout=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)
        self.addCleanup(boot.wait)
        self.addCleanup(boot.kill)
        assert boot.stdout is not None
        self.addCleanup(boot.stdout.close)
        server = json.loads(boot.stdout.readline())["server"]
        self.addCleanup(_kill, server)
        seen = json.loads(boot.stdout.readline())
        return boot, server, seen

    def test_the_parent_that_counts_is_the_bootloaders(self) -> None:
        boot, _, seen = self.start()
        self.assertEqual(seen["boot"], boot.pid)
        self.assertEqual(seen["parent"], os.getpid())  # the bootloader's parent: this test
        self.assertTrue(seen["follows"])

    def test_the_server_stops_with_its_bootloader(self) -> None:
        boot, server, _ = self.start()
        boot.send_signal(signal.SIGKILL)
        boot.wait()
        wait_for(lambda: not pid_alive(server), 5, "the server to stop with its bootloader")


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
