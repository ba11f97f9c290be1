"""Helpers for tests that run real processes: free ports, spawning, cleanup.

Every wait here is bounded, every process started here is killed (with its
process group) by the test's cleanup, and every address is 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
JS_DIR = HERE / "js"
LOOPBACK = "127.0.0.1"


class SetupError(RuntimeError):
    """The test environment lacks something; the message says how to fix it."""


def server_command() -> list[str]:
    """``entryhw-server`` from the running interpreter's environment."""
    exe = Path(sys.executable).parent / "entryhw-server"
    if not exe.exists():
        found = shutil.which("entryhw-server")
        if found is None:
            raise SetupError("entryhw-server is not installed: pip install -e '.[test]'")
        exe = Path(found)
    return [str(exe)]


def node() -> str:
    found = shutil.which("node")
    if found is None:
        raise SetupError("node (Node.js 20) is not on PATH")
    return found


def require_npm_peers() -> None:
    if not (JS_DIR / "node_modules").is_dir():
        raise SetupError(f"npm test peers missing: run 'npm ci' in {JS_DIR}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = 5.0
            ) -> tuple[int, bytes, Any]:
    """(status, body, headers) of one request to 127.0.0.1:port; HTTP errors included."""
    req = urllib.request.Request(f"http://{LOOPBACK}:{port}{path}", data=body, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def http_get(port: int, path: str = "/", timeout: float = 5.0) -> tuple[int, bytes, Any]:
    """(status, body, headers) of a GET on 127.0.0.1:port; HTTP errors included."""
    return request(port, "GET", path, timeout=timeout)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.02) -> Any:
    """Poll until ``predicate()`` is truthy; raise AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); check its state.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class Proc:
    """A child process with JSON lines on stdout collected by a reader thread.

    stderr goes to a file (``log_text()``), so nothing blocks on a full pipe.
    """

    def __init__(self, argv: list[str], *, cleanup: Callable[..., None], stdin: bool = True,
                 env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = (),
                 json_stdout: bool = True) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="entryhw-test-")
        self.log_path = Path(self._tmp.name) / "stderr.log"
        self._log = open(self.log_path, "wb")
        self.events: queue.Queue[Any] = queue.Queue()
        self.seen: list[Any] = []
        self.p = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            pass_fds=pass_fds,
            start_new_session=True,
        )
        self.extra_pids: list[int] = []
        cleanup(self.kill)
        self._json = json_stdout
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for raw in self.p.stdout:
            if self._json:
                try:
                    item = json.loads(raw)
                except ValueError:
                    item = {"unparsed": raw.decode("utf-8", "replace")}
            else:
                item = raw
            self.events.put(item)
        self.events.put(EOFError)

    def write_json(self, obj: Any) -> None:
        self.write(json.dumps(obj).encode() + b"\n")

    def write(self, data: bytes) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def expect(self, predicate: Callable[[Any], bool], timeout: float = 10.0,
               what: str = "an event") -> Any:
        """The next item matching ``predicate`` (items passed over are kept in ``seen``)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}; saw {self.seen[-10:]!r}; "
                    f"stderr:\n{self.log_text()[-3000:]}")
            try:
                item = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if item is EOFError:
                self.events.put(EOFError)
                raise AssertionError(
                    f"stdout closed while waiting for {what}; saw {self.seen[-10:]!r}; "
                    f"stderr:\n{self.log_text()[-3000:]}")
            self.seen.append(item)
            if predicate(item):
                return item

    def wait(self, timeout: float = 10.0) -> int:
        return self.p.wait(timeout=timeout)

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text("utf-8", "replace")

    def kill(self) -> None:
        for pid in self.extra_pids:
            kill_group(pid)
        if self.p.poll() is None:
            kill_group(self.p.pid)
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.p.stdin, self.p.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self._log.close()
        self._tmp.cleanup()


class NodeParent(Proc):
    """tests/js/parent.js: spawns a server the way Entry Hardware does."""

    def __init__(self, server_argv: list[str], *, cleanup: Callable[..., None],
                 env: dict[str, str] | None = None) -> None:
        super().__init__([node(), str(JS_DIR / "parent.js"), *server_argv], cleanup=cleanup,
                         env=env)
        spawned = self.expect(lambda e: e.get("ev") in ("spawned", "error"), what="spawn")
        if spawned["ev"] != "spawned":
            raise AssertionError(f"node could not spawn the server: {spawned}")
        self.server_pid: int = spawned["pid"]
        self.extra_pids.append(self.server_pid)

    def send(self, msg: Any) -> None:
        self.write_json({"op": "send", "msg": msg})

    def message(self, key: str, timeout: float = 10.0, **value: Any) -> Any:
        """The next IPC message from the server with this key (and value, if given)."""
        def match(e: Any) -> bool:
            return (e.get("ev") == "message" and e["msg"].get("key") == key
                    and ("value" not in value or e["msg"].get("value") == value["value"]))

        return self.expect(match, timeout, f"IPC message {key!r} {value}")["msg"]

    def messages(self, key: str) -> list[Any]:
        """Values of every IPC message with this key looked at so far."""
        return [e["msg"].get("value") for e in self.seen
                if e.get("ev") == "message" and e["msg"].get("key") == key]


class ChannelParent:
    """A Python parent that speaks Node's channel itself (socketpair + NODE_CHANNEL_FD).

    Lets a test write raw bytes no Node API would send.
    """

    def __init__(self, args: list[str], *, cleanup: Callable[..., None]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ, NODE_CHANNEL_FD=str(theirs.fileno()),
                   NODE_CHANNEL_SERIALIZATION_MODE="json")
        self.proc = Proc([*server_command(), *args], cleanup=cleanup, stdin=False, env=env,
                         pass_fds=(theirs.fileno(),), json_stdout=False)
        theirs.close()
        self.sock = ours
        cleanup(self.sock.close)
        self.lines: queue.Queue[Any] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.lines.put(EOFError)
                return
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self.lines.put(json.loads(line))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, msg: Any) -> None:
        self.send_raw(json.dumps(msg).encode() + b"\n")

    def message(self, key: str, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                item = self.lines.get(timeout=max(left, 0.001))
            except queue.Empty:
                raise AssertionError(
                    f"no {key!r} from the server within {timeout}s; stderr:\n"
                    f"{self.proc.log_text()[-3000:]}") from None
            if item is EOFError:
                self.lines.put(EOFError)
                raise AssertionError(f"channel closed before {key!r}; stderr:\n"
                                     f"{self.proc.log_text()[-3000:]}")
            if isinstance(item, dict) and item.get("key") == key:
                return item

    def channel_closed(self, timeout: float) -> bool:
        """True once the server's end of the channel is closed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.lines.get(timeout=0.05) is EOFError:
                    self.lines.put(EOFError)
                    return True
            except queue.Empty:
                pass
        return False


class Lines:
    """A Proc's JSON lines, taken by matching fields, in any order across sources."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self.backlog: list[dict[str, Any]] = []

    def expect(self, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """The first line (kept aside or still to come) whose ``fields`` have these values."""
        def match(item: Any) -> bool:
            return isinstance(item, dict) and all(item.get(k) == v for k, v in fields.items())

        for i, item in enumerate(self.backlog):
            if match(item):
                return self.backlog.pop(i)

        def take(item: Any) -> bool:
            if match(item):
                return True
            self.backlog.append(item)
            return False

        return self.proc.expect(take, timeout, f"a line with {fields!r}")

    def drain(self, settle: float = 0.0) -> list[dict[str, Any]]:
        """Everything received so far (after ``settle`` seconds), kept aside too."""
        time.sleep(settle)
        while not self.proc.events.empty():
            item = self.proc.events.get()
            if item is EOFError:
                self.proc.events.put(EOFError)
                break
            self.proc.seen.append(item)
            self.backlog.append(item)
        return list(self.backlog)

    def history(self, **fields: Any) -> list[dict[str, Any]]:
        """Every line received and looked at so far that has these field values."""
        return [item for item in self.proc.seen
                if isinstance(item, dict) and all(item.get(k) == v for k, v in fields.items())]


class Clients(Lines):
    """tests/js/sio_client.js: named socket.io clients, v2 or v4, in one Node process."""

    def __init__(self, test: Any) -> None:
        require_npm_peers()
        super().__init__(Proc([node(), str(JS_DIR / "sio_client.js")], cleanup=test.addCleanup))

    def connect(self, c: str, version: str, url: str, nsp: str = "",
                **opts: Any) -> None:
        self.proc.write_json({"op": "connect", "c": c, "version": version, "url": url,
                              "nsp": nsp, "opts": opts})

    def emit(self, c: str, event: str, *args: Any, ack: str | None = None) -> None:
        cmd: dict[str, Any] = {"op": "emit", "c": c, "event": event, "args": list(args)}
        if ack is not None:
            cmd["ack"] = ack
        self.proc.write_json(cmd)

    def transport(self, c: str) -> str:
        self.proc.write_json({"op": "transport", "c": c})
        return self.expect(c=c, ev="transport")["name"]

    def close(self, c: str) -> None:
        self.proc.write_json({"op": "close", "c": c})
