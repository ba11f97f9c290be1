"""The server as a real child process: Node parent, channel faults, signals, CLI.

Each test spawns ``entryhw-server`` (or twistd) on a free loopback port and
kills whatever it started in its cleanup.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twisted.trial.unittest import TestCase

from tests.support import (
    LOOPBACK,
    ChannelParent,
    NodeParent,
    Proc,
    free_port,
    http_get,
    pid_alive,
    port_is_free,
    server_command,
    serving_pid,
    wait_for,
)


class NodeParentTests(TestCase):
    """Driven by tests/js/parent.js, which spawns us exactly like Entry Hardware."""

    timeout = 60

    def start(self, *extra: str) -> tuple[NodeParent, int]:
        port = free_port()
        parent = NodeParent([*server_command(), "--port", str(port), *extra],
                            cleanup=self.addCleanup)
        return parent, port

    def test_open_then_hello(self) -> None:
        parent, port = self.start()
        parent.send({"key": "open", "value": "https://playentry.org"})
        self.assertEqual(parent.message("runningModeChanged"),
                         {"key": "runningModeChanged", "value": 2})
        self.assertEqual(parent.message("cloudModeChanged"),
                         {"key": "cloudModeChanged", "value": 0})
        status, body, headers = http_get(port, "/")
        self.assertEqual((status, body), (200, b"hello entry"))
        self.assertIn("text/plain", headers["content-type"])
        self.assertEqual(http_get(port, "/nothing-here")[0], 404)

    def test_nothing_listens_before_open(self) -> None:
        parent, port = self.start()
        time.sleep(0.5)
        self.assertTrue(port_is_free(port), "the server listened before 'open'")
        parent.send({"key": "open"})
        parent.message("runningModeChanged")
        self.assertFalse(port_is_free(port))

    def test_open_twice_is_idempotent(self) -> None:
        parent, port = self.start()
        parent.send({"key": "open"})
        parent.message("runningModeChanged")
        parent.send({"key": "open"})
        parent.send({"key": "no-such-key"})  # logged; proves the second open was read
        wait_for(lambda: "no-such-key" in parent.log_text(), 5, "the unknown-key log line")
        modes = [e for e in parent.seen + _drain(parent)
                 if e.get("ev") == "message" and e["msg"]["key"] == "runningModeChanged"]
        self.assertEqual(len(modes), 1, modes)
        self.assertEqual(http_get(port)[1], b"hello entry")

    def test_parent_sigkill_stops_server(self) -> None:
        parent, port = self.start("--watchdog", "1")
        parent.send({"key": "open"})
        parent.message("runningModeChanged")
        os.killpg(parent.p.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: not pid_alive(parent.server_pid), 1 + 1, "the server to exit")
        self.assertLess(time.monotonic() - killed_at, 2.0)
        wait_for(lambda: port_is_free(port), 2, "the port to be released")

    def test_parent_disconnect_stops_server_at_once(self) -> None:
        # A 60 s watchdog proves end-of-file alone is enough.
        parent, port = self.start("--watchdog", "60")
        parent.send({"key": "open"})
        parent.message("runningModeChanged")
        parent.write_json({"op": "disconnect"})
        exit_event = parent.expect(lambda e: e.get("ev") == "exit", 5, "the server's exit")
        self.assertEqual((exit_event["code"], exit_event["signal"]), (0, None))
        self.assertTrue(port_is_free(port))
        self.assertIn("the parent closed the IPC channel", parent.log_text())

    def test_sigterm_exits_zero_and_frees_port(self) -> None:
        parent, port = self.start()
        parent.send({"key": "open"})
        parent.message("runningModeChanged")
        parent.write_json({"op": "signal", "name": "SIGTERM"})
        exit_event = parent.expect(lambda e: e.get("ev") == "exit", 5, "the server's exit")
        self.assertEqual((exit_event["code"], exit_event["signal"]), (0, None))
        self.assertTrue(port_is_free(port))
        # Nothing is written to the channel once shutdown starts.
        after = [e for e in _drain(parent) if e.get("ev") == "message"]
        self.assertEqual(after, [])

    def test_sighup_without_certificates_is_not_fatal(self) -> None:
        parent, port = self.start()
        parent.send({"key": "open"})
        parent.message("runningModeChanged")
        parent.write_json({"op": "signal", "name": "SIGHUP"})
        wait_for(lambda: "SIGHUP: no certificates to reload" in parent.log_text(), 5,
                 "the SIGHUP log line")
        self.assertEqual(http_get(port, "/")[:2], (200, b"hello entry"))

    def test_exit_string_exits_zero(self) -> None:
        parent, port = self.start()
        parent.send({"key": "open"})
        parent.message("runningModeChanged")
        parent.send("exit")
        exit_event = parent.expect(lambda e: e.get("ev") == "exit", 5, "the server's exit")
        self.assertEqual((exit_event["code"], exit_event["signal"]), (0, None))
        self.assertTrue(port_is_free(port))

    def test_port_taken_reports_client_mode_and_keeps_running(self) -> None:
        with socket.socket() as blocker:
            blocker.bind((LOOPBACK, 0))
            blocker.listen()
            port = blocker.getsockname()[1]
            parent = NodeParent([*server_command(), "--port", str(port)], cleanup=self.addCleanup)
            parent.send({"key": "open"})
            self.assertEqual(parent.message("runningModeChanged")["value"], 3)
            self.assertEqual(parent.message("cloudModeChanged")["value"], 1)
            time.sleep(0.3)
            self.assertTrue(pid_alive(parent.server_pid))
            self.assertIn(f"cannot listen on 127.0.0.1:{port}", parent.log_text())


def _drain(parent: Proc, settle: float = 0.3) -> list:
    """Everything the parent reports within ``settle`` seconds."""
    items = []
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        try:
            item = parent.events.get(timeout=0.05)
        except Exception:
            continue
        if item is EOFError:
            parent.events.put(EOFError)
            break
        items.append(item)
    return items


#: A parent that hands the channel to the server and waits, so a test can kill it while the
#: other end of the channel stays open (as a grandchild that inherited it would keep it).
_MIDDLE = """
import json, os, subprocess, sys
fd = int(os.environ["NODE_CHANNEL_FD"])
server = subprocess.Popen(sys.argv[1:], pass_fds=(fd,), stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL)
print(json.dumps({"pid": server.pid}), flush=True)
server.wait()
"""


class ParentSideTests(TestCase):
    """What a parent can do that the channel does not show."""

    timeout = 60

    def test_sigkill_of_the_spawned_pid_stops_the_server(self) -> None:
        """All a parent knows is the pid it spawned, and it lives on, the channel open.
        With the venv's script that pid is the server; a one-file binary's is its
        bootloader, and the server under it stops with it (entryhw.frozen), so the port
        is free again at once either way. (The watchdog is off: it would notice the
        bootloader gone too, after its interval. A Node parent that exits with its child
        would close the channel: parent.js does.)"""
        port = free_port()
        parent = ChannelParent(["--port", str(port), "--watchdog", "0"], cleanup=self.addCleanup)
        parent.send({"key": "open"})
        parent.message("runningModeChanged")
        spawned = parent.proc.p.pid
        serving = serving_pid(spawned)
        os.kill(spawned, signal.SIGKILL)
        wait_for(lambda: port_is_free(port), 2, "the port to be released")
        wait_for(lambda: not pid_alive(serving), 2, "the server to exit")

    def test_a_parent_gone_is_noticed_while_its_channel_stays_open(self) -> None:
        """No end-of-file on the channel, only the parent gone: the watchdog's case. (Under
        a one-file binary the server's own parent is the bootloader, which lives on; the
        watchdog watches the bootloader's parent: entryhw.frozen.parent_pid.)"""
        port = free_port()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(ours.close)
        env = dict(os.environ, NODE_CHANNEL_FD=str(theirs.fileno()),
                   NODE_CHANNEL_SERIALIZATION_MODE="json")
        middle = Proc([sys.executable, "-c", _MIDDLE, *server_command(), "--port", str(port),
                       "--watchdog", "0.5"], cleanup=self.addCleanup, stdin=False, env=env,
                      pass_fds=(theirs.fileno(),))
        theirs.close()
        server = middle.expect(lambda m: "pid" in m, 10, "the server's pid")["pid"]
        middle.extra_pids.append(server)
        ours.settimeout(20)
        ours.sendall(b'{"key": "open"}\n')
        got = b""
        while b"runningModeChanged" not in got:  # started: the watchdog knows its parent
            chunk = ours.recv(4096)
            self.assertTrue(chunk, "the channel closed before runningModeChanged")
            got += chunk
        os.kill(middle.p.pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(server), 5, "the server to notice its parent is gone")
        self.assertIn("is gone", middle.log_text())
        self.assertTrue(port_is_free(port))


class ChannelFaultTests(TestCase):
    """Raw bytes on the channel, written by a Python parent (Node's wire format)."""

    timeout = 60

    def test_garbage_is_logged_and_skipped(self) -> None:
        port = free_port()
        parent = ChannelParent(["--port", str(port)], cleanup=self.addCleanup)
        parent.send_raw(b'{"key": "open", broken\n')
        parent.send_raw(b"42\n")
        parent.send_raw(b'["key", "open"]\n')
        parent.send_raw(b'{"key": "frobnicate", "value": 1}\n')
        parent.send_raw(b'{"cmd": "NODE_HANDLE_ACK"}\n')
        parent.send_raw(b'"hello"\n')
        parent.send_raw(b'{"value": 1}\n')
        parent.send_raw(b'\xff\xfe\n')
        parent.send_raw(b'{"key": "' + b"x" * (20 * 1024 * 1024) + b'"}\n')
        # A valid message split across writes, a multi-byte character cut in two.
        tail = json.dumps({"key": "open", "value": "é✓"}, ensure_ascii=False).encode()
        parent.send_raw(tail[:12])
        time.sleep(0.05)
        parent.send_raw(tail[12:] + b"\n")
        self.assertEqual(parent.message("runningModeChanged", 20)["value"], 2)
        self.assertEqual(http_get(port)[1], b"hello entry")
        log = parent.proc.log_text()
        for needle in ("invalid JSON", "expected an object, got JSON int",
                       "expected an object, got JSON list", "unknown key 'frobnicate'",
                       "object without a 'key'", "not valid UTF-8",
                       "exceeds the 16777216-byte limit"):
            self.assertIn(needle, log)
        self.assertNotIn("NODE_HANDLE_ACK", log)  # Node internals are ignored silently
        self.assertNotIn("Traceback", log)

    def test_huge_line_in_small_pieces_then_valid(self) -> None:
        port = free_port()
        parent = ChannelParent(["--port", str(port)], cleanup=self.addCleanup)
        chunk = b"y" * 65536
        for _ in range(17 * 16):  # 17 MiB without a newline
            parent.send_raw(chunk)
        parent.send_raw(b"\n" + json.dumps({"key": "open"}).encode() + b"\n")
        self.assertEqual(parent.message("runningModeChanged", 20)["value"], 2)
        self.assertIn("exceeds the 16777216-byte limit", parent.proc.log_text())

    def test_closing_the_channel_stops_the_server(self) -> None:
        port = free_port()
        parent = ChannelParent(["--port", str(port), "--watchdog", "60"], cleanup=self.addCleanup)
        parent.send({"key": "open"})
        parent.message("runningModeChanged")
        parent.sock.shutdown(socket.SHUT_RDWR)
        self.assertEqual(parent.proc.wait(5), 0)
        self.assertTrue(port_is_free(port))


class StdioParentTests(TestCase):
    """``--ipc stdio``: the same framing on stdin/stdout, for parents that are not Node."""

    timeout = 30

    def test_stdio_channel(self) -> None:
        port = free_port()
        proc = Proc([*server_command(), "--ipc", "stdio", "--port", str(port)],
                    cleanup=self.addCleanup)
        proc.write(b"not json\n")
        proc.write_json({"key": "open"})
        self.assertEqual(proc.expect(lambda m: m.get("key") == "runningModeChanged")["value"], 2)
        self.assertEqual(proc.expect(lambda m: m.get("key") == "cloudModeChanged")["value"], 0)
        self.assertEqual(http_get(port)[1], b"hello entry")
        self.assertIn("invalid JSON", proc.log_text())
        # stdout carries only channel lines: every line parsed as JSON.
        self.assertFalse([m for m in proc.seen if "unparsed" in m])
        assert proc.p.stdin is not None
        proc.p.stdin.close()
        self.assertEqual(proc.wait(5), 0)
        self.assertTrue(port_is_free(port))


class CommandLineTests(TestCase):
    """The two ways to start it, their help and their usage errors."""

    timeout = 60

    def run_cmd(self, argv: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env,
                              stdin=subprocess.DEVNULL)

    def twistd(self) -> str:
        return str(Path(sys.executable).parent / "twistd")

    def test_usage_errors_exit_2(self) -> None:
        for args in (["--bogus"], ["--port", "abc"], ["--port", "70000"], ["--watchdog", "-1"],
                     ["--ipc", "pipe"], ["--ipc", "fd:999"], ["--log-format", "xml"],
                     ["--interface", "localhost:80"], ["--modules", "/no/such/dir"], ["extra"]):
            result = self.run_cmd([*server_command(), *args])
            self.assertEqual(result.returncode, 2, (args, result.stderr))
            self.assertIn("entryhw: error:", result.stderr, args)
            self.assertEqual(result.stdout, "", args)

    def test_bad_node_channel_fd_is_a_usage_error(self) -> None:
        env = dict(os.environ, NODE_CHANNEL_FD="0")
        result = self.run_cmd([*server_command()], env=env)
        self.assertEqual(result.returncode, 2)
        self.assertIn("NODE_CHANNEL_FD='0': fd 0 is not a socket", result.stderr)

    def test_help_documents_every_option(self) -> None:
        server = self.run_cmd([*server_command(), "--help"])
        twistd = self.run_cmd([self.twistd(), "-n", "entryhw", "--help"])
        for result in (server, twistd):
            self.assertEqual(result.returncode, 0, result.stderr)
            for option in ("--port", "--interface", "--certs", "--modules", "--watchdog",
                           "--ipc", "--log-format", "--log-level", "--version"):
                self.assertIn(option, result.stdout)

    def test_twistd_lists_the_plugin(self) -> None:
        result = self.run_cmd([self.twistd(), "--help"])
        self.assertIn("entryhw", result.stdout)

    def test_twistd_serves_and_stops_cleanly(self) -> None:
        port = free_port()
        tmp = tempfile.mkdtemp(prefix="entryhw-twistd-")
        self.addCleanup(shutil.rmtree, tmp, True)
        proc = Proc([self.twistd(), "-n", "--pidfile=", "--logfile", os.path.join(tmp, "log"),
                     "entryhw", "--port", str(port), "--ipc", "none"],
                    cleanup=self.addCleanup, stdin=False, json_stdout=False)
        wait_for(lambda: not port_is_free(port), 15, "twistd to listen")
        self.assertEqual(http_get(port)[:2], (200, b"hello entry"))
        proc.p.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(10), 0)
        self.assertTrue(port_is_free(port))

    def test_json_log_format(self) -> None:
        port = free_port()
        proc = Proc([*server_command(), "--ipc", "none", "--port", str(port),
                     "--log-format", "json"], cleanup=self.addCleanup, stdin=False,
                    json_stdout=False)
        wait_for(lambda: "runningModeChanged" in proc.log_text(), 10, "the standalone log")
        proc.p.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(10), 0)
        records = [json.loads(line) for line in proc.log_text().splitlines()]
        self.assertTrue(all({"time", "level", "namespace", "message"} <= set(r) for r in records))
        self.assertTrue(any("runningModeChanged 2" in r["message"] for r in records))

