"""Fuzzing a live server through its three doors while a real browser and parent talk through it.

Each test spawns ``entryhw-server`` under a real parent, connects a
socket.io-client 2 "canary" browser, and keeps numbered messages flowing both
ways while tests/fuzzing.py's inputs hit one door: raw WebSocket connections
(RFC 6455 done by hand, so frames no library would send can be sent), HTTP
long-polling, or the parent's IPC channel. Whatever a peer sends may cost that
peer its own connection and nothing else, so afterwards:

* the server is alive, wrote no Python traceback, and still answers ``GET /``;
* ``/status`` counts no ``faults.bugs`` (our own contained exceptions);
* the canary lost nothing, either way, and saw no duplicate;
* every ``connection`` the parent was told of has its ``close`` (no forged
  lifecycle events), and only the canary is left connected.

``FUZZ_INPUTS`` (default 2,000) is the number of inputs per transport and
Engine.IO version (per door for the channel), ``FUZZ_SEED`` the seed (default
1); ``tox -e fuzz`` runs 100,000. Each test prints what it tried and what
``/status`` counted to stderr (``pytest -s`` shows it).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.trial.unittest import TestCase

from entryhw.faults import KINDS
from tests.fuzzing import (
    Fuzzer,
    PollingPlan,
    WsPlan,
    http_request,
    parse_server_frames,
    ws_accept,
    ws_frame,
    ws_request,
)
from tests.support import (
    JS_DIR,
    LOOPBACK,
    ChannelParent,
    Clients,
    Lines,
    NodeParent,
    Proc,
    free_port,
    http_get,
    node,
    pid_alive,
    require_npm_peers,
    server_command,
    wait_for,
)

INPUTS = int(os.environ.get("FUZZ_INPUTS", "2000"))
SEED = int(os.environ.get("FUZZ_SEED", "1"))
#: Connections (or polling sessions) in flight at once.
CONCURRENCY = 8
#: Numbered canary messages per second, each way.
CANARY_HZ = 25
#: Valid ``send`` lines written to the channel in one go, per burst.
BURST = 100_000
FAULT_KEYS = KINDS  # every counter /status must show


def report(title: str, lines: dict[str, Any]) -> None:
    """What a test tried and counted, on stderr."""
    body = "\n".join(f"  {k}: {v}" for k, v in lines.items())
    print(f"\n[fuzz] {title} (seed {SEED})\n{body}", file=sys.stderr, flush=True)


def take_all(q: queue.Queue[Any]) -> list[Any]:
    """Everything queued right now (a reader thread's end marker stays queued)."""
    items = []
    while True:
        try:
            item = q.get_nowait()
        except queue.Empty:
            return items
        if item is EOFError:
            q.put(EOFError)
            return items
        items.append(item)


def sturdy_json(raw: bytes) -> Any:
    """A JSON line as the helpers read it, except that nesting Python cannot parse (the
    server may forward a 1000-level payload) does not kill the reader thread."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return {"unparsed": raw[:200].decode("utf-8", "replace")}


class SturdyProc(Proc):
    def _read(self) -> None:
        assert self.p.stdout is not None
        for raw in self.p.stdout:
            self.events.put(sturdy_json(raw))
        self.events.put(EOFError)


class FuzzParent(NodeParent):
    """tests/js/parent.js, read sturdily: fuzzed browsers' payloads reach it as ``data``."""

    _read = SturdyProc._read


class FuzzChannelParent(ChannelParent):
    """The Python parent on a socketpair, read sturdily."""

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:  # the socket has a timeout for the writes' sake
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.lines.put(EOFError)
                return
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self.lines.put(sturdy_json(line))


class CanaryClients(Clients):
    """tests/js/sio_client.js (socket.io-client 2 for the canary), read sturdily."""

    def __init__(self, test: TestCase) -> None:
        require_npm_peers()
        Lines.__init__(self, SturdyProc([node(), str(JS_DIR / "sio_client.js")],
                                        cleanup=test.addCleanup))


class Canary:
    """Numbered messages both ways between the parent and one socket.io-client 2 browser.

    The numbers carry a nonce no fuzzed input contains, so nothing a fuzzer sends can
    pass for them; :meth:`lost` is what was sent and never arrived.
    """

    def __init__(self, clients: Clients, to_parent: Callable[[Any], None],
                 from_parent: Callable[[], list[Any]]) -> None:
        self.clients = clients
        self.to_parent = to_parent
        self.from_parent = from_parent
        self.nonce = os.urandom(6).hex()
        self.sent_down = 0  # parent -> browser
        self.sent_up = 0  # browser -> parent
        self.got_down: list[int] = []
        self.got_up: list[int] = []
        self.lifecycle: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def value(self, n: int) -> dict[str, Any]:
        return {"canary": self.nonce, "n": n}

    def line(self, n: int) -> bytes:
        """One numbered ``send`` as the parent's channel carries it."""
        return json.dumps({"key": "send", "value": self.value(n)}).encode() + b"\n"

    def take_down(self, count: int) -> range:
        """Reserve ``count`` numbers for sends the caller writes itself."""
        first = self.sent_down
        self.sent_down += count
        return range(first, first + count)

    def tick(self) -> None:
        self.to_parent({"key": "send", "value": self.value(self.sent_down)})
        self.sent_down += 1
        self.clients.emit("canary", "message", self.value(self.sent_up))
        self.sent_up += 1

    def start(self) -> None:
        def run() -> None:
            while not self._stop.wait(1 / CANARY_HZ):
                try:
                    self.tick()
                except OSError:  # a peer is gone; the checks will say which
                    return

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def collect(self) -> None:
        for item in take_all(self.clients.proc.events):
            if not isinstance(item, dict) or item.get("c") != "canary":
                continue
            if item.get("ev") == "event":
                args = item.get("args") or [{}]
                data = args[0].get("data") if isinstance(args[0], dict) else None
                if isinstance(data, dict) and data.get("canary") == self.nonce:
                    self.got_down.append(data["n"])
            elif item.get("ev") in ("disconnect", "connect", "reconnect", "fail"):
                self.lifecycle.append(item)
        for value in self.from_parent():
            if isinstance(value, dict) and value.get("canary") == self.nonce:
                self.got_up.append(value["n"])

    def complete(self) -> bool:
        self.collect()
        return len(self.got_down) >= self.sent_down and len(self.got_up) >= self.sent_up

    def lost(self) -> dict[str, int]:
        return {"parent->browser": len(set(range(self.sent_down)) - set(self.got_down)),
                "browser->parent": len(set(range(self.sent_up)) - set(self.got_up))}


@dataclass
class Tally:
    """What a fuzz run did, for the report and for checking that it did it."""

    inputs: collections.Counter[str] = field(default_factory=collections.Counter)
    skipped: int = 0  # steps not sent: the server had closed that connection already
    plans: int = 0
    handshakes: int = 0  # plans that tried a regular handshake
    opened: int = 0  # sessions whose Engine.IO OPEN packet arrived
    refused: collections.Counter[int] = field(default_factory=collections.Counter)
    closes: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    bad_accept: int = 0
    stalls: int = 0


class Http:
    """A keep-alive HTTP/1.1 connection on asyncio, enough for Engine.IO polling."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Http:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(LOOPBACK, port), 10)
        return cls(reader, writer)

    async def request(self, raw: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
        self.writer.write(raw)
        return await asyncio.wait_for(self._response(), timeout)

    async def _response(self) -> tuple[int, bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"content-length" in headers:
            return status, await self.reader.readexactly(int(headers[b"content-length"]))
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if not size:
                    return status, body
                body += chunk[:-2]
        return status, await self.reader.read()

    def close(self) -> None:
        self.writer.close()


def sid_of(body: bytes) -> str | None:
    """The sid in an Engine.IO handshake response (any of its payload framings)."""
    i = body.find(b'sid\\":\\"') if b'\\"sid' in body else -1
    if i >= 0:  # JSONP: the payload is a JS string literal
        j = body.find(b'\\"', i + 8)
        return body[i + 8:j].decode()
    i = body.find(b'"sid":"')
    if i < 0:
        return None
    return body[i + 7:body.find(b'"', i + 7)].decode()


async def polling_handshake(port: int, query: str, tally: Tally) -> tuple[Http, str] | None:
    http = await Http.open(port)
    status, body = await http.request(http_request("GET", f"/socket.io/?{query}"))
    tally.statuses[status] += 1
    sid = sid_of(body) if status == 200 else None
    if sid is None:
        http.close()
        return None
    tally.opened += 1
    return http, sid


async def run_ws(port: int, plan: WsPlan, tally: Tally) -> None:
    """One fuzzed WebSocket connection: handshake, then each step while it stays open."""
    label = f"websocket EIO={plan.eio}"
    reader, writer = await asyncio.wait_for(asyncio.open_connection(LOOPBACK, port), 10)
    poll: Http | None = None
    try:
        if plan.preamble is not None:
            writer.write(plan.preamble)
            tally.inputs[label] += 1
            try:
                await asyncio.wait_for(reader.read(65536), 2)
            except (TimeoutError, OSError):
                pass
            return
        path = f"/socket.io/?{plan.query}"
        if plan.upgrade:
            opened = await polling_handshake(port, f"EIO={plan.eio}&transport=polling", tally)
            if opened is None:
                return
            poll, sid = opened
            path = f"/socket.io/?EIO={plan.eio}&transport=websocket&sid={sid}"
        tally.handshakes += 1
        writer.write(ws_request(path, plan.key, plan.headers))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            tally.refused[status] += 1
            return
        if f"Sec-WebSocket-Accept: {ws_accept(plan.key)}".lower().encode() not in head.lower():
            tally.bad_accept += 1
        closed = asyncio.Event()
        reading = asyncio.ensure_future(read_ws(reader, plan, tally, closed))
        for step in plan.steps:
            if closed.is_set() or writer.transport.is_closing():
                tally.skipped += 1
                continue
            writer.write(step)
            tally.inputs[label] += 1
            await asyncio.wait_for(writer.drain(), 10)
        if plan.close_frame and not closed.is_set():
            writer.write(ws_frame(b"\x03\xe8", 8, mask=b"abcd"))
            await asyncio.wait_for(writer.drain(), 10)
        reading.cancel()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    except TimeoutError:
        tally.stalls += 1
    finally:
        writer.close()
        if poll is not None:
            poll.close()


async def read_ws(reader: asyncio.StreamReader, plan: WsPlan, tally: Tally,
                  closed: asyncio.Event) -> None:
    """Read (and discard) what the server sends; note the OPEN packet and how it closes."""
    buf = bytearray()
    first = True
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                tally.closes["EOF without a close frame"] += 1
                break
            buf += chunk
            done = False
            for opcode, payload in parse_server_frames(buf):
                if first and not plan.upgrade:
                    first = False
                    if opcode == 1 and payload[:1] == b"0" and b'"sid"' in payload:
                        tally.opened += 1
                if opcode == 8:
                    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                    tally.closes[f"close {code}"] += 1
                    done = True
            if done:
                break
    except (ConnectionError, asyncio.IncompleteReadError):
        tally.closes["reset"] += 1
    finally:
        closed.set()


async def run_polling(port: int, plan: PollingPlan, tally: Tally) -> None:
    """One fuzzed polling session: handshake, then its requests until one is refused."""
    label = f"polling EIO={plan.eio}"
    tally.handshakes += 1
    opened = await polling_handshake(port, plan.query, tally)
    if opened is None:
        return
    http, sid = opened
    getter: Http | None = None
    alive = True
    try:
        for step in plan.steps:
            if not alive:
                tally.skipped += step.fuzzed
                continue
            path = f"/socket.io/?{step.query or plan.query}&sid={sid}"
            if step.method == "GET":
                getter = getter or await Http.open(port)
                try:
                    status, _ = await getter.request(http_request("GET", path), timeout=3)
                except TimeoutError:
                    getter.close()  # a held poll; dropping it ends the session
                    getter, alive, status = None, False, 0
                tally.statuses[status] += 1
                alive = alive and status == 200
                continue
            status, _ = await http.request(http_request(step.method, path, step.body,
                                                        step.content_type))
            tally.inputs[label] += step.fuzzed
            tally.statuses[status] += 1
            alive = status == 200
        if alive:  # a clean close, so that sessions do not pile up until their timeout
            body, ctype = (b"1", "text/plain;charset=UTF-8") if plan.eio == 4 else \
                (b"d=1%3A1", "application/x-www-form-urlencoded") if plan.jsonp else \
                (b"1:1", "text/plain;charset=UTF-8")
            await http.request(http_request("POST", f"/socket.io/?{plan.query}&sid={sid}",
                                            body, ctype))
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    except TimeoutError:
        tally.stalls += 1
    finally:
        http.close()
        if getter is not None:
            getter.close()


async def fuzz(port: int, make_plan: Callable[[], Any], runner: Callable[..., Any],
               tally: Tally, target: int, label: str, alive: Callable[[], bool],
               budget: float) -> None:
    """Run plans, ``CONCURRENCY`` at a time, until ``target`` inputs went out.

    Gives up when the server is gone or ``budget`` seconds have passed (the test
    method blocks here, out of reach of trial's timeout); the caller checks the count.
    """
    deadline = time.monotonic() + budget

    async def worker() -> None:
        while tally.inputs[label] < target and time.monotonic() < deadline:
            if not alive():
                return
            plan = make_plan()
            tally.plans += 1
            try:
                await asyncio.wait_for(runner(port, plan, tally), 30)
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                tally.stalls += 1
                await asyncio.sleep(0.1)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


class FuzzCase(TestCase):
    # Generous: a slow CI machine, and FUZZ_INPUTS raised by tox -e fuzz.
    timeout = 240 + INPUTS // 50

    def setUp(self) -> None:
        self.port = free_port()
        self.room = "canary-" + os.urandom(4).hex()
        self.started = time.monotonic()

    def budget(self) -> float:
        """Seconds left for fuzzing, keeping a minute for the checks."""
        return self.timeout - 60 - (time.monotonic() - self.started)

    @staticmethod
    def log_excerpt(log: str) -> str:
        """The first traceback in the server's stderr, and how the log ends."""
        at = log.find("Traceback")
        first = log[max(at - 300, 0):at + 3000] + "\n[...]\n" if at >= 0 else ""
        return first + log[-3000:]

    # -- the canary ------------------------------------------------------------

    def node_parent(self) -> FuzzParent:
        parent = FuzzParent([*server_command(), "--port", str(self.port)],
                            cleanup=self.addCleanup)
        parent.send({"key": "open"})
        self.assertEqual(parent.message("runningModeChanged")["value"], 2)
        # The host's own room: a fuzzed copy in cloud mode must not divert the canary.
        parent.send({"key": "addRoomId", "value": self.room})
        self.parent_events: list[Any] = []
        return parent

    def canary_browser(self, *transports: str) -> CanaryClients:
        clients = CanaryClients(self)
        clients.connect("canary", "v2", f"http://{LOOPBACK}:{self.port}",
                        transports=list(transports), query={"client": True, "roomId": self.room},
                        reconnectionDelay=200, reconnectionDelayMax=500)
        clients.expect(20, c="canary", ev="connect")
        return clients

    def node_canary(self, parent: FuzzParent, *transports: str) -> Canary:
        clients = self.canary_browser(*transports)

        def from_parent() -> list[Any]:
            items = take_all(parent.events)
            self.parent_events.extend(e for e in items if e.get("ev") != "message"
                                      or e["msg"].get("key") != "data")
            return [e["msg"].get("value") for e in items
                    if e.get("ev") == "message" and e["msg"].get("key") == "data"]

        return Canary(clients, parent.send, from_parent)

    # -- the checks after a run --------------------------------------------------

    def status(self) -> dict[str, Any]:
        code, body, _ = http_get(self.port, "/status", timeout=10)
        self.assertEqual(code, 200)
        return json.loads(body)

    @staticmethod
    def settle(canary: Canary, server_pid: int) -> None:
        """Wait for the canary's messages in flight (not for a server that is gone)."""
        try:
            wait_for(lambda: canary.complete() or not pid_alive(server_pid), 90,
                     "every canary message, both ways", step=0.2)
        except AssertionError:
            pass  # check_canary says what is missing
        canary.collect()

    def check_canary(self, canary: Canary) -> None:
        self.assertEqual(canary.lost(), {"parent->browser": 0, "browser->parent": 0},
                         f"canary lifecycle: {canary.lifecycle[-5:]}")
        self.assertEqual(sorted(canary.got_down), list(range(canary.sent_down)),
                         "duplicates parent->browser")
        self.assertEqual(sorted(canary.got_up), list(range(canary.sent_up)),
                         "duplicates browser->parent")
        self.assertEqual(canary.lifecycle, [], "the canary was disconnected or reconnected")

    def check_server(self, log_text: Callable[[], str], server_pid: int,
                     tally: Tally | None, canary: Canary) -> dict[str, Any]:
        """Alive, no traceback, no bug counted, still answering; returns /status.

        The report goes to stderr first, whatever the verdict.
        """
        alive = pid_alive(server_pid)
        status = self.status() if alive else {}
        faults = status.get("faults")
        log = log_text()
        at = log.find("Traceback")
        lines: dict[str, Any] = {}
        if tally is not None:
            lines.update({
                "inputs": dict(tally.inputs), "plans": tally.plans,
                "handshakes tried / sessions opened": (tally.handshakes, tally.opened),
                "steps skipped (connection already closed)": tally.skipped,
                "refused handshakes": dict(tally.refused),
                "server closes seen before hanging up": dict(tally.closes.most_common(8)),
                "HTTP statuses": dict(tally.statuses), "stalls": tally.stalls,
            })
        lines.update({
            "server alive": alive,
            "canary sent (down, up)": (canary.sent_down, canary.sent_up),
            "canary lost": canary.lost(),
            "/status faults": faults, "messagesIn": status.get("messagesIn"),
            "tracebacks in stderr": log.count("Traceback"),
            "stderr lines": log.count("\n"),
        })
        report(self.id().rsplit(".", 1)[-1], lines)
        self.assertTrue(alive, f"the server exited:\n{self.log_excerpt(log)}")
        self.assertEqual(at, -1, f"a traceback in the server's stderr:\n{log[at - 300:at + 3000]}")
        code, body, _ = http_get(self.port, "/", timeout=10)
        self.assertEqual((code, body), (200, b"hello entry"))
        self.assertIsInstance(faults, dict, "/status has no faults object")
        self.assertEqual(sorted(faults), sorted(FAULT_KEYS))
        self.assertEqual(faults["bugs"], 0)
        return status

    def check_lifecycle(self, events: Callable[[], list[str]]) -> None:
        """Only the canary left, and as many ``close`` as ``connection`` for the rest."""
        def settled() -> bool:
            status = self.status()
            return status["browsers"] == 1 and status["hardwareClients"] == 0

        wait_for(settled, 30, "the fuzzed sessions to end", step=0.5)
        keys = events()
        self.assertEqual(keys.count("connection"), keys.count("close") + 1,
                         "connection/close events do not pair up (forged lifecycle events?)")

    # -- one door at a time --------------------------------------------------------

    def run_http_fuzz(self, transport: str, canary_transport: str) -> None:
        parent = self.node_parent()
        canary = self.node_canary(parent, canary_transport)
        canary.start()
        self.addCleanup(canary.stop)
        tally = Tally()
        fuzzer = Fuzzer(SEED)
        for eio in (3, 4):
            label = f"{transport} EIO={eio}"
            plans = fuzzer.ws_plan if transport == "websocket" else fuzzer.polling_plan
            runner = run_ws if transport == "websocket" else run_polling
            asyncio.run(fuzz(self.port, functools.partial(plans, eio), runner, tally, INPUTS,
                             label, lambda: pid_alive(parent.server_pid), self.budget()))
            if not pid_alive(parent.server_pid):  # report, then fail
                self.check_server(parent.log_text, parent.server_pid, tally, canary)
            self.assertGreaterEqual(tally.inputs[label], INPUTS, f"{label}: {tally}")
        canary.stop()
        self.settle(canary, parent.server_pid)
        status = self.check_server(parent.log_text, parent.server_pid, tally, canary)
        self.check_canary(canary)
        # The inputs reached the application: fuzzed messages were delivered too.
        self.assertGreater(status["messagesIn"], canary.sent_up)
        self.assertGreater(tally.opened, tally.handshakes // 2)
        self.assertEqual(tally.bad_accept, 0)
        self.assertEqual(tally.stalls, 0, "connections or requests left unanswered for 10 s")
        # Thousands of violations and of nestings past the limit went in: both were counted.
        self.assertGreater(status["faults"]["protocolErrors"], 0)
        self.assertGreater(status["faults"]["tooDeep"], 0)

        def keys() -> list[str]:
            canary.collect()
            return [e["msg"]["key"] for e in self.parent_events if e.get("ev") == "message"]

        self.check_lifecycle(keys)
        self.assertEqual([e for e in self.parent_events if e.get("ev") == "exit"], [])

    def test_websocket(self) -> None:
        """Raw WebSocket connections to EIO=3 and EIO=4, a series of fuzzed frames each."""
        self.run_http_fuzz("websocket", "websocket")

    def test_polling(self) -> None:
        """Polling sessions of EIO=3 and EIO=4: fuzzed POSTs, stray GETs; canary on polling."""
        self.run_http_fuzz("polling", "polling")

    def test_ipc_channel(self) -> None:
        """The parent's channel: junk lines, deep nesting, lines over 16 MiB, bursts."""
        parent = FuzzChannelParent(["--port", str(self.port)], cleanup=self.addCleanup)
        parent.sock.settimeout(60)  # a server that stops reading fails the test, not hangs it

        def write(data: bytes) -> None:
            try:
                parent.send_raw(data)
            except OSError as e:
                raise self.failureException(f"the server closed the channel ({e}):\n"
                                            f"{self.log_excerpt(parent.proc.log_text())}"
                                            ) from None

        parent.send({"key": "open"})
        self.assertEqual(parent.message("runningModeChanged", 20)["value"], 2)
        others: list[Any] = []

        def from_parent() -> list[Any]:
            items = [i for i in take_all(parent.lines) if isinstance(i, dict)]
            others.extend(i for i in items if i.get("key") != "data")
            return [i.get("value") for i in items if i.get("key") == "data"]

        # One writer on the channel: the canary's sends are written in line with the junk.
        pending: list[bytes] = []
        canary = Canary(self.canary_browser("websocket"),
                        lambda msg: pending.append(json.dumps(msg).encode() + b"\n"),
                        from_parent)
        fuzzer = Fuzzer(SEED)
        sent = 0
        verdicts: collections.Counter[str] = collections.Counter()
        bursts = max(1, INPUTS // 20_000)
        burst_every = max(1, INPUTS // bursts)
        for i in range(INPUTS):
            line, verdict = fuzzer.ipc_line()
            pending.append(line + b"\n")
            sent += 1
            verdicts[verdict] += 1
            if i % 10 == 0:
                canary.tick()
            if i % burst_every == burst_every // 2:
                pending.extend(canary.line(n) for n in canary.take_down(BURST))
            if len(pending) > 200 or i == INPUTS - 1:
                write(b"".join(pending))
                pending.clear()
                canary.collect()
        # Lines over the 16 MiB cap: one in a single write, one dribbled without a newline.
        big = b'{"key":"send","value":"' + b"x" * (16 * 1024 * 1024 + 10) + b'"}\n'
        write(big)
        for start in range(0, len(big) - 1, 1 << 20):
            write(big[start:min(start + (1 << 20), len(big) - 1)])
        write(b"\n")
        sent += 2
        verdicts["bad"] += 2
        canary.tick()
        write(b"".join(pending))
        self.settle(canary, parent.proc.p.pid)
        status = self.check_server(parent.proc.log_text, parent.proc.p.pid, None, canary)
        self.check_canary(canary)
        report("ipc inputs", {"lines": sent, "too deep": verdicts["deep"],
                              "otherwise bad": verdicts["bad"],
                              "bursts of valid sends": bursts, "burst size": BURST})
        faults = status["faults"]
        # Mutations may nest or break more lines than the generator knows of: at least.
        self.assertGreaterEqual(faults["tooDeep"], verdicts["deep"])
        self.assertGreaterEqual(faults["ipcRejected"] + faults["tooDeep"],
                                verdicts["deep"] + verdicts["bad"])
        self.assertFalse(parent.channel_closed(0.1), "the server closed the channel")
        keys = [i.get("key") for i in others]
        self.assertEqual((keys.count("connection"), keys.count("close")), (1, 0))
        self.assertNotIn("runningModeChanged", keys)

