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


#: Names the server the process-level tests spawn: a built binary (tox -e dist sets it to
#: dist/entryhw-server) or any other executable; unset, the venv's console script.
SERVER_ENV = "ENTRYHW_SERVER"


def server_command() -> list[str]:
    """The server under test: ``$ENTRYHW_SERVER`` if set, else ``entryhw-server`` from the
    running interpreter's environment."""
    named = os.environ.get(SERVER_ENV)
    if named:
        path = Path(named).resolve()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise SetupError(f"{SERVER_ENV}={named!r} is not an executable file")
        return [str(path)]
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


def serving_pid(pid: int) -> int:
    """The process that serves, for a server spawned as ``pid``: ``pid`` itself, or under a
    PyInstaller one-file bootloader (tox -e dist), its child running the same executable.

    For what is read from /proc (memory, limits) and for a crash (SIGKILL of the process
    that serves: the bootloader itself only forwards signals, see entryhw.frozen).
    """
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except (OSError, ValueError):
        return pid
    same = [c for c in children if _exe(c) == exe]
    return same[0] if len(same) == 1 else pid


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def crash(pid: int) -> None:
    """SIGKILL the process that serves (see :func:`serving_pid`): the server dies as if
    it had crashed, whatever wraps it."""
    os.kill(serving_pid(pid), signal.SIGKILL)


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


#: How long a test's cleanup lets a server given by $ENTRYHW_SERVER stop on SIGTERM before
#: SIGKILL: a PyInstaller one-file build removes its unpacked copy (~65 MB under $TMPDIR)
#: only when it exits by itself. The venv's script is killed at once, as always.
CLEANUP_GRACE_S = 3.0


def stop_group(pid: int) -> None:
    """End a process and its group: SIGTERM first for a built server, then SIGKILL."""
    if os.environ.get(SERVER_ENV) and pid_alive(pid):
        kill_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + CLEANUP_GRACE_S
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    kill_group(pid)


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
            stop_group(pid)
        if self.p.poll() is None:
            stop_group(self.p.pid)
        else:
            # Gone itself, its group may not be (it has its own session): what is left of
            # it could hold stdout open, and closing a pipe a thread still reads blocks.
            # The group only: the pid alone, reaped already, may be someone else's now.
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
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


# --- fault-test helpers
# Shared by tests/test_faults.py and tests/test_resources.py: a parent that can pump `send`
# messages from Node (tests/js/pump.js), raw WebSocket peers that misbehave in ways no
# library allows, the server's /status faults and its memory.

import base64  # noqa: E402
import contextlib  # noqa: E402
import resource  # noqa: E402
import struct  # noqa: E402
from collections.abc import Iterator  # noqa: E402


class PumpParent(NodeParent):
    """tests/js/pump.js: parent.js plus a Node-side pump of numbered ``send`` messages.

    ``nofile`` sets RLIMIT_NOFILE (soft and hard) on the node process before it
    starts; the server it spawns inherits it.
    """

    def __init__(self, server_argv: list[str], *, cleanup: Callable[..., None],
                 env: dict[str, str] | None = None, nofile: int | None = None) -> None:
        argv = [node(), str(JS_DIR / "pump.js"), *server_argv]
        if nofile is not None:
            argv = [sys.executable, "-c",
                    "import os, resource, sys; n = int(sys.argv[1]); "
                    "resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); "
                    "os.execv(sys.argv[2], sys.argv[2:])", str(nofile), *argv]
        Proc.__init__(self, argv, cleanup=cleanup, env=env)
        spawned = self.expect(lambda e: e.get("ev") in ("spawned", "error"), what="spawn")
        if spawned["ev"] != "spawned":
            raise AssertionError(f"node could not spawn the server: {spawned}")
        self.server_pid = spawned["pid"]
        self.extra_pids.append(self.server_pid)

    def pump(self, tag: str, rate: float, pad: int = 0) -> None:
        """Start sending ``{tag, seq, pad}`` at ``rate`` messages a second."""
        self.write_json({"op": "pump", "tag": tag, "rate": rate, "pad": pad})

    def stop_pump(self, tag: str, timeout: float = 10.0) -> int:
        """Stop that pump; returns how many messages it handed to the channel."""
        self.write_json({"op": "stop", "tag": tag})
        return self.expect(lambda e: e.get("ev") == "pumped" and e.get("tag") == tag,
                           timeout, f"pump {tag!r} stopped")["sent"]

    def pumped(self, tag: str, timeout: float = 10.0) -> int:
        """How many messages that pump has sent so far (it goes on)."""
        self.write_json({"op": "count", "tag": tag})
        return self.expect(lambda e: e.get("ev") == "count" and e.get("tag") == tag,
                           timeout, f"pump {tag!r} count")["sent"]

    def exited(self) -> bool:
        """True if the parent has seen its server exit (looks at what is queued, too)."""
        pull(self)
        return any(e.get("ev") == "exit" for e in self.seen if isinstance(e, dict))


def pull(proc: Proc) -> None:
    """Move everything a process has reported so far into its ``seen``, without waiting."""
    while True:
        try:
            item = proc.events.get_nowait()
        except queue.Empty:
            return
        if item is EOFError:
            proc.events.put(EOFError)
            return
        proc.seen.append(item)


def ws_frame(opcode: int, payload: bytes = b"", *, mask: bool = True, rsv: int = 0,
             fin: bool = True) -> bytes:
    """One WebSocket frame as a client writes it (any flags, any length)."""
    head = bytes([(0x80 if fin else 0) | (rsv & 7) << 4 | opcode])
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def ws_connect(port: int, query: str = "EIO=3&transport=websocket", *,
               rcvbuf: int | None = None, timeout: float = 5.0) -> tuple[socket.socket, bytes]:
    """A raw socket that has done the WebSocket handshake on /socket.io/.

    Returns the socket and the bytes read past the response head.
    """
    s = socket.socket()
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    try:
        s.connect((LOOPBACK, port))
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(f"GET /socket.io/?{query} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError(f"closed during the WebSocket handshake: {buf!r}")
            buf += chunk
    except BaseException:
        s.close()
        raise
    head, _, rest = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        s.close()
        raise ConnectionError(f"WebSocket handshake refused: {head!r}")
    return s, rest


def peer_closed(s: socket.socket) -> bool:
    """True if the other end has closed ``s`` (EOF or reset), reading whatever is pending."""
    s.setblocking(False)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def faults(port: int, timeout: float = 10.0) -> dict[str, int]:
    """The ``faults`` object of GET /status (empty when the server has none)."""
    status, body, _ = http_get(port, "/status", timeout=timeout)
    if status != 200:
        raise AssertionError(f"/status answered {status}: {body[:200]!r}")
    return json.loads(body).get("faults", {})


def rss_mb(pid: int) -> float:
    """Resident memory of a server in MB (VmRSS of :func:`serving_pid`), 0.0 if it is gone."""
    try:
        with open(f"/proc/{serving_pid(pid)}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@contextlib.contextmanager
def nofile_at_least(n: int) -> Iterator[int]:
    """Raise this process's soft RLIMIT_NOFILE to ``n`` (at most the hard limit), then restore it.

    Yields the soft limit in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    try:
        yield max(soft, want)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
