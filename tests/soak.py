"""Soak run: a cloud-mode PC at Entry's 60 Hz, both ways, for minutes (``tox -e soak``).

One host and ``--copies`` client copies of ``entryhw-server``, each under its own
Node parent (tests/js/parent.js) with its own room (``addRoomId``), and
``--browsers`` socket.io-client 2 browsers spread over those rooms, all in one
Node process (tests/js/soak_browsers.js) so that Python is never the
bottleneck. Every browser emits ``message`` and every parent sends ``send`` at
``--hz``, numbered; at the end each side says exactly what it got.

Reports each server's RSS (VmRSS) at the start, the end and its peak, the
messages sent, received and lost each way (and any misrouted or duplicated),
and the tracebacks in any server's stderr; writes a JSON summary to
``--json-out`` (default: a temporary file, whose path is printed). Exit status
1 if anything was lost, misrouted or duplicated, a server exited, or a
traceback appeared. Not a pytest module: run it as a script.

    python tests/soak.py --minutes 1
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The repository root goes on the path first, so that this runs as a plain script.
from tests.support import (
    JS_DIR,
    LOOPBACK,
    NodeParent,
    Proc,
    free_port,
    http_get,
    node,
    pid_alive,
    require_npm_peers,
    server_command,
    serving_pid,
    wait_for,
)


def log(text: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB (None once it is gone)."""
    try:
        with open(f"/proc/{serving_pid(pid)}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Bitmap:
    """Which numbered messages arrived: exact lost and duplicate counts in little memory."""

    def __init__(self) -> None:
        self.bits = bytearray(4096)
        self.unique = 0
        self.dups = 0

    def add(self, n: Any) -> None:
        if type(n) is not int or n < 0:
            return
        if n >= len(self.bits) * 8:
            self.bits += bytearray(max(len(self.bits), n // 8 + 1 - len(self.bits)))
        byte, bit = n >> 3, 1 << (n & 7)
        if self.bits[byte] & bit:
            self.dups += 1
        else:
            self.bits[byte] |= bit
            self.unique += 1


class Copy:
    """One server under its own Node parent, and what its parent got from the browsers."""

    def __init__(self, index: int, port: int, cleanup: Callable[..., None]) -> None:
        self.index = index
        self.room = f"room-{index}"
        self.parent = NodeParent([*server_command(), "--port", str(port)], cleanup=cleanup)
        self.pid = self.parent.server_pid
        self.sent = 0
        self.got: dict[str, Bitmap] = {}  # browser name -> the n its parent got
        self.misrouted = 0
        self.exits: list[Any] = []

    def open(self, expect_mode: int) -> None:
        self.parent.send({"key": "open"})
        mode = self.parent.message("runningModeChanged", 20)["value"]
        if mode != expect_mode:
            raise SystemExit(f"copy {self.index}: runningModeChanged {mode}, not {expect_mode}")
        self.parent.send({"key": "addRoomId", "value": self.room})

    def send_next(self) -> None:
        self.parent.send({"key": "send",
                          "value": {"p": self.index, "room": self.room, "n": self.sent}})
        self.sent += 1

    def collect(self, room_of: dict[str, str]) -> None:
        """Count the ``data`` its parent reported (read off the queue, not kept)."""
        events = self.parent.events
        while True:
            try:
                event = events.get_nowait()
            except queue.Empty:
                return
            if event is EOFError:
                events.put(EOFError)
                return
            if event.get("ev") == "exit":
                self.exits.append(event)
            if event.get("ev") != "message" or event["msg"].get("key") != "data":
                continue
            value = event["msg"].get("value")
            name = value.get("b") if isinstance(value, dict) else None
            if room_of.get(name) != self.room:
                self.misrouted += 1
                continue
            self.got.setdefault(name, Bitmap()).add(value.get("n"))

    def received(self) -> int:
        return sum(b.unique for b in self.got.values())


class Browsers:
    """tests/js/soak_browsers.js."""

    def __init__(self, cleanup: Callable[..., None]) -> None:
        require_npm_peers()
        self.proc = Proc([node(), str(JS_DIR / "soak_browsers.js")], cleanup=cleanup)
        self.lifecycle: list[Any] = []
        self.progress: dict[str, Any] = {}

    def command(self, **cmd: Any) -> None:
        self.proc.write_json(cmd)

    def answer(self, ev: str, timeout: float = 30) -> Any:
        def match(item: Any) -> bool:
            if item.get("ev") in ("disconnect", "reconnect"):
                self.lifecycle.append(item)
            return item.get("ev") == ev

        return self.proc.expect(match, timeout, f"soak_browsers {ev!r}")

    def drain(self) -> None:
        for item in _take_all(self.proc.events):
            if item.get("ev") in ("disconnect", "reconnect", "fail"):
                self.lifecycle.append(item)
            elif item.get("ev") == "progress":
                self.progress = item


def _take_all(q: queue.Queue[Any]) -> list[Any]:
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


def pace(copies: list[Copy], hz: float, stop: threading.Event, failed: list[str]) -> None:
    """Every parent sends at ``hz``, catching up when the thread wakes late."""
    t0 = time.monotonic()
    rounds = 0
    while not stop.is_set():
        due = int((time.monotonic() - t0) * hz) + 1
        try:
            while rounds < due:
                rounds += 1
                for copy in copies:
                    copy.send_next()
        except OSError as e:
            failed.append(f"a parent stopped taking commands: {e}")
            return
        stop.wait(max(0.0, (rounds / hz) - (time.monotonic() - t0)))


def status(port: int) -> dict[str, Any]:
    return json.loads(http_get(port, "/status", timeout=10)[1])


def soak(args: argparse.Namespace, cleanup: Callable[..., None]) -> dict[str, Any]:
    port = args.port or free_port()
    log(f"port {port}: 1 host + {args.copies} copies, {args.browsers} browsers, "
        f"{args.hz} Hz both ways, {args.minutes} min")
    host = Copy(0, port, cleanup)
    host.open(2)
    copies = [host]
    for i in range(1, args.copies + 1):
        copy = Copy(i, port, cleanup)
        copy.open(3)
        copies.append(copy)
    rooms = {c.room for c in copies[1:]}  # /status lists matched rooms, not the host's own

    def matched() -> bool:
        now = status(port)
        return now["hardwareClients"] == args.copies and rooms <= set(now["rooms"])

    wait_for(matched, 30, "every copy matched to its room", step=0.2)

    names = [f"b{i}" for i in range(args.browsers)]
    room_of = {name: copies[i % len(copies)].room for i, name in enumerate(names)}
    browsers = Browsers(cleanup)
    browsers.command(op="connect", url=f"http://{LOOPBACK}:{port}",
                     browsers=[{"name": n, "room": room_of[n]} for n in names])
    for _ in names:
        browsers.answer("connected")
    wait_for(lambda: status(port)["browsers"] == args.browsers, 10, "every browser on the host")

    rss_start = {c.index: rss_kib(c.pid) for c in copies}
    rss_peak = dict(rss_start)
    log(f"all connected; RSS KiB at start: {rss_start}")
    stop = threading.Event()
    failed: list[str] = []
    pacer = threading.Thread(target=pace, args=(copies, args.hz, stop, failed), daemon=True)
    started = time.monotonic()
    browsers.command(op="start", hz=args.hz)
    pacer.start()
    end = started + args.minutes * 60
    next_report = started + 30
    dead: list[int] = []
    while time.monotonic() < end and not failed:
        time.sleep(0.25)
        for c in copies:
            c.collect(room_of)
        browsers.drain()
        dead = [c.index for c in copies if not pid_alive(c.pid)]
        if dead:
            failed.append(f"servers exited during the run: {dead}")
            break
        if time.monotonic() >= next_report:
            next_report += 30
            for c in copies:
                now = rss_kib(c.pid) or 0
                rss_peak[c.index] = max(rss_peak[c.index] or 0, now)
            progress = browsers.progress
            log(f"{time.monotonic() - started:.0f} s: parents sent "
                f"{sum(c.sent for c in copies)}, browsers got {progress.get('got')}; "
                f"browsers sent {progress.get('sent')}, parents got "
                f"{sum(c.received() for c in copies)}")
    stop.set()
    pacer.join(5)
    browsers.command(op="stop")
    sent_up = browsers.answer("stopped")["sent"]
    ran = time.monotonic() - started

    # Let what is in flight land: until the counts stop moving (or 30 s).
    def settled() -> bool:
        before = sum(c.received() for c in copies)
        time.sleep(1.0)
        for c in copies:
            c.collect(room_of)
        return sum(c.received() for c in copies) == before and \
            sum(c.received() for c in copies) >= sum(sent_up.values())

    try:
        wait_for(settled, 30, "the last messages", step=0)
    except AssertionError:
        pass
    time.sleep(1.0)
    browsers.command(op="report")
    seen = browsers.answer("report")["browsers"]
    for c in copies:
        c.collect(room_of)
    rss_end = {c.index: rss_kib(c.pid) for c in copies}
    for index, value in rss_end.items():
        rss_peak[index] = max(rss_peak[index] or 0, value or 0)

    sent_down = {c.room: c.sent for c in copies}
    down_expected = sum(sent_down[room_of[n]] for n in names)
    down_got = sum(seen[n]["got"].get(str(copies[i % len(copies)].index), {}).get("unique", 0)
                   for i, n in enumerate(names))
    up_expected = sum(sent_up.values())
    by_room = {c.room: c for c in copies}
    up_got = sum(by_room[room_of[n]].got[n].unique if n in by_room[room_of[n]].got else 0
                 for n in names)
    tracebacks = {c.index: c.parent.log_text().count("Traceback") for c in copies}
    try:
        host_status = status(port)
    except OSError as e:
        host_status = {"error": str(e)}
    summary = {
        "minutes": round(ran / 60, 2), "hz": args.hz, "copies": args.copies,
        "browsers": args.browsers, "port": port,
        "parent_to_browser": {
            "sent": sum(sent_down.values()), "deliveries_expected": down_expected,
            "received": down_got, "lost": down_expected - down_got,
            "misrouted": sum(seen[n]["misrouted"] for n in names),
            "duplicates": sum(g["dups"] for n in names for g in seen[n]["got"].values()),
        },
        "browser_to_parent": {
            "sent": up_expected, "received": up_got, "lost": up_expected - up_got,
            "misrouted": sum(c.misrouted for c in copies),
            "duplicates": sum(b.dups for c in copies for b in c.got.values()),
        },
        "rss_kib": {str(c.index): {"pid": c.pid, "start": rss_start[c.index],
                                   "end": rss_end[c.index], "peak": rss_peak[c.index]}
                    for c in copies},
        "tracebacks": tracebacks,
        "servers_exited": [c.index for c in copies if not pid_alive(c.pid)],
        "browser_disconnects": [e for e in browsers.lifecycle if e.get("ev") == "disconnect"],
        "host_faults": host_status.get("faults"),
        "failures": failed,
    }
    return summary


def verdict(summary: dict[str, Any]) -> list[str]:
    """What went wrong, one line each (empty: a clean soak)."""
    problems = list(summary["failures"])
    for way in ("parent_to_browser", "browser_to_parent"):
        for what in ("lost", "misrouted", "duplicates"):
            if summary[way][what]:
                problems.append(f"{way}: {summary[way][what]} {what}")
    if any(summary["tracebacks"].values()):
        problems.append(f"tracebacks in stderr: {summary['tracebacks']}")
    if summary["servers_exited"] and not any("exited" in p for p in problems):
        problems.append(f"servers exited: {summary['servers_exited']}")
    if (summary.get("host_faults") or {}).get("bugs"):
        problems.append(f"host /status faults.bugs = {summary['host_faults']['bugs']}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--hz", type=float, default=60.0, help="messages/s each way per peer")
    parser.add_argument("--copies", type=int, default=10, help="client copies besides the host")
    parser.add_argument("--browsers", type=int, default=20, help="browsers, spread over rooms")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--json-out", help="summary file (default: a temporary file)")
    args = parser.parse_args(argv)
    cleanups: list[Callable[[], None]] = []
    try:
        summary = soak(args, cleanups.append)
    finally:
        for fn in reversed(cleanups):
            try:
                fn()
            except Exception as e:  # cleanup goes on whatever one step did
                log(f"cleanup: {e}")
    problems = verdict(summary)
    summary["ok"] = not problems
    summary["problems"] = problems
    out = args.json_out or tempfile.NamedTemporaryFile(
        prefix="entryhw-soak-", suffix=".json", delete=False).name
    Path(out).write_text(json.dumps(summary, indent=1) + "\n")
    for way in ("parent_to_browser", "browser_to_parent"):
        log(f"{way}: {summary[way]}")
    for index, rss in summary["rss_kib"].items():
        log(f"server {index} (pid {rss['pid']}): RSS KiB start {rss['start']}, "
            f"end {rss['end']}, peak {rss['peak']}")
    log(f"tracebacks: {summary['tracebacks']}; host faults: {summary['host_faults']}")
    log(("OK" if not problems else "FAILED: " + "; ".join(problems)) + f"; summary: {out}")
    print(out)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
