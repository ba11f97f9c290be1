"""Peers that hold on to the server's resources: descriptors, connections, memory.

A page on the same PC (or malware on it) can open thousands of connections and never
speak, dribble a request head a byte a second, or stop reading what the server sends.
None of that may lock out the Entry workspace or grow the server without bound: idle
connections meet deadlines, the oldest idle one makes room at the descriptor cap, and a
peer that does not read is cut off once its backlog is over the cap.
"""

from __future__ import annotations

import contextlib
import re
import socket
import sys
import threading
import time
from typing import Any

from twisted.trial.unittest import TestCase

from entryhw.limits import MAX_CONNECTIONS
from tests.support import (
    LOOPBACK,
    Clients,
    PumpParent,
    faults,
    free_port,
    http_get,
    nofile_at_least,
    peer_closed,
    pid_alive,
    pull,
    request,
    rss_mb,
    server_command,
    serving_pid,
    wait_for,
    ws_connect,
    ws_frame,
)
from tests.test_entry import browser_opts

SILENT, SLOWLORIS, CAPPED_SILENT = 2000, 50, 1100
#: The contract's deadlines (first byte, request head) are 10 s; give them slack.
DEADLINE, SLACK = 10.0, 8.0
FLOOD_RATE, FLOOD_PAD, FLOOD_FOR = 10_000, 300, 30.0
#: Idle, the server is about 50 MB; 1 MiB of backlog per slow peer must not show much.
RSS_BOUND_MB = 100.0


class ServerCase(TestCase):
    timeout = 120

    def host(self, **kw: Any) -> tuple[PumpParent, int]:
        port = free_port()
        parent = PumpParent([*server_command(), "--port", str(port)], cleanup=self.addCleanup,
                            **kw)
        parent.send({"key": "open"})
        self.assertEqual(parent.message("runningModeChanged")["value"], 2)
        # The web side is loaded just after listening; until then connections only queue.
        self.assertEqual(http_get(port, "/")[0], 200)
        return parent, port

    def sockets(self) -> list[socket.socket]:
        """A list whose sockets are closed at cleanup."""
        held: list[socket.socket] = []

        def close_all() -> None:
            for s in held:
                s.close()

        self.addCleanup(close_all)
        return held

    def fresh_browser_talks(self, parent: PumpParent, port: int, within: float) -> None:
        """A new socket.io-client 2 browser connects and talks both ways, within ``within`` s."""
        clients = Clients(self)
        clients.connect("fresh", "v2", f"http://{LOOPBACK}:{port}",
                        **browser_opts("fresh", "websocket"))
        clients.expect(within, c="fresh", ev="connect")
        parent.send({"key": "send", "value": {"to": "fresh"}})
        clients.expect(10, c="fresh", ev="event", name="message", args=[{"data": {"to": "fresh"}}])
        clients.emit("fresh", "message", {"from": "fresh"})
        parent.message("data", 10, value={"from": "fresh"})

    def assertAlive(self, parent: PumpParent) -> None:
        self.assertTrue(pid_alive(parent.server_pid), parent.log_text()[-3000:])
        self.assertFalse(parent.exited(), parent.log_text()[-3000:])
        self.assertNotIn("Traceback", parent.log_text())


def open_silent(n: int, port: int, held: list[socket.socket], budget: float = 6.0) -> int:
    """``n`` connections that never send a byte; returns how many were established.

    One at a time, a millisecond apart, so the server's accept queue never overflows
    (at its connection cap it accepts more slowly: it evicts as it goes). Once one is not
    established within 2 s, or ``budget`` seconds have gone by (the server no longer
    keeps up), the rest are only started (non-blocking), not waited for.
    """
    established, waiting = 0, True
    deadline = time.monotonic() + budget
    for i in range(n):
        s = socket.socket()
        held.append(s)
        if i:
            # Loopback connects complete without blocking: let the server run, or a burst
            # overflows its accept queue (50) and the kernel drops SYNs for a second.
            time.sleep(0.001)
        if waiting and time.monotonic() < deadline:
            s.settimeout(2)
            try:
                s.connect((LOOPBACK, port))
                established += 1
                continue
            except TimeoutError:
                waiting = False
        s.setblocking(False)
        s.connect_ex((LOOPBACK, port))
    return established


def still_open(held: list[socket.socket]) -> int:
    return sum(1 for s in held if not peer_closed(s))


class IdleConnectionTests(ServerCase):
    def test_silent_and_slowloris_connections_are_cut_and_do_not_lock_out(self) -> None:
        """2,000 silent and 50 slowloris connections: the workspace still gets in while the
        server holds as many as its cap (1,024) allows, and every one of them is closed by
        a deadline (10 s) or evicted to make room, counted in faults.timeouts / evicted."""
        stack = contextlib.ExitStack()
        self.addCleanup(stack.close)
        limit = stack.enter_context(nofile_at_least(SILENT + SLOWLORIS + 512))
        silent_n = min(SILENT, limit - SLOWLORIS - 256)
        parent, port = self.host()
        silent, slow = self.sockets(), self.sockets()
        opened = time.monotonic()
        self.assertEqual(open_silent(silent_n, port, silent), silent_n)
        head = f"GET / HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\nX-Slow: {'a' * 64}".encode()
        self.assertEqual(open_silent(SLOWLORIS, port, slow), SLOWLORIS)
        stop = threading.Event()
        self.addCleanup(stop.set)

        def dribble() -> None:  # one byte a second on each
            for i in range(len(head)):
                for s in slow:
                    with contextlib.suppress(OSError):
                        s.send(head[i:i + 1])
                if stop.wait(1):
                    return

        threading.Thread(target=dribble, daemon=True).start()

        self.fresh_browser_talks(parent, port, within=DEADLINE / 2)
        # It got in while the attack still held (about) as many connections as the cap.
        self.assertGreater(still_open(silent) + still_open(slow), MAX_CONNECTIONS * 3 // 4)

        def all_cut() -> bool:
            return still_open(silent) + still_open(slow) == 0

        try:
            wait_for(all_cut, opened + DEADLINE + SLACK - time.monotonic(), "deadlines",
                     step=0.5)
        except AssertionError:
            self.fail(f"{DEADLINE + SLACK:.0f}s after they opened, the server still holds "
                      f"{still_open(silent)} of {silent_n} silent and {still_open(slow)} of "
                      f"{SLOWLORIS} slowloris connections")
        counts = faults(port)
        self.assertGreaterEqual(counts.get("timeouts", 0) + counts.get("evicted", 0),
                                silent_n + SLOWLORIS, f"faults in /status: {counts}")
        self.assertGreater(counts.get("timeouts", 0), 0, counts)
        self.fresh_browser_talks(parent, port, within=10)
        self.assertAlive(parent)

    def test_at_the_descriptor_cap_the_oldest_idle_connection_makes_room(self) -> None:
        """Server limited to 1,024 descriptors, 1,100 silent connections: a new browser
        still connects before any deadline could have freed one (the server evicts the
        oldest idle connection at its cap: faults.evicted)."""
        stack = contextlib.ExitStack()
        self.addCleanup(stack.close)
        limit = stack.enter_context(nofile_at_least(CAPPED_SILENT + 512))
        # Where this process may not have that many (a low hard limit), scale down.
        server_limit = 1024 if limit >= CAPPED_SILENT + 512 else 512
        n_silent = server_limit + CAPPED_SILENT - 1024
        if limit < n_silent + 256:
            self.skipTest(f"RLIMIT_NOFILE hard limit {limit} is too low for this test")
        parent, port = self.host(nofile=server_limit)
        with open(f"/proc/{serving_pid(parent.server_pid)}/limits") as f:
            limits = f.read()
        self.assertRegex(limits, rf"Max open files\s+{server_limit}\s+{server_limit}\s",
                         "the node parent did not pass its limit on to the server")
        silent = self.sockets()
        opened = time.monotonic()
        # Enough to fill the server's descriptors (or its connection cap) and more.
        self.assertGreater(open_silent(n_silent, port, silent), server_limit - 128)
        try:
            self.fresh_browser_talks(parent, port, within=DEADLINE - 2)
        except AssertionError as e:
            self.fail(f"a new browser could not get in while {n_silent} silent connections "
                      f"held the server's descriptors: {str(e)[:300]}\nserver log:\n"
                      f"{parent.log_text()[-1500:]}")
        self.assertLess(time.monotonic() - opened, DEADLINE,
                        "the browser only got in once deadlines freed descriptors")
        self.assertGreater(faults(port).get("evicted", 0), 0, "faults.evicted in /status")
        self.assertAlive(parent)


class SlowReaderTests(ServerCase):
    """A peer that stops reading while the parent floods: cut off, memory bounded, and a
    healthy browser loses nothing."""

    def flood(self, parent: PumpParent, port: int, cut: Any) -> int:
        """Flood until ``cut()`` (the slow peer is gone) or FLOOD_FOR s, the server's RSS
        under the bound all along; returns how many messages were sent."""
        parent.pump("flood", FLOOD_RATE, FLOOD_PAD)
        started = time.monotonic()
        peak = 0.0
        while time.monotonic() - started < FLOOD_FOR and not cut():
            peak = max(peak, rss_mb(parent.server_pid))
            self.assertLess(peak, RSS_BOUND_MB,
                            f"server RSS after {time.monotonic() - started:.1f}s of flood")
            self.assertTrue(pid_alive(parent.server_pid), parent.log_text()[-3000:])
            time.sleep(0.2)
        sent = parent.stop_pump("flood")
        peak = max(peak, rss_mb(parent.server_pid))
        sys.stderr.write(f"\n[{self.id()}] {sent} messages in {time.monotonic() - started:.1f}s,"
                         f" server RSS at most {peak:.0f} MB\n")
        return sent

    def canary(self, parent: PumpParent, port: int) -> Clients:
        clients = Clients(self)
        clients.connect("canary", "v2", f"http://{LOOPBACK}:{port}",
                        **browser_opts("canary", "websocket"))
        clients.expect(c="canary", ev="connect")
        parent.message("connection")
        return clients

    def assertCanaryGotAll(self, clients: Clients, sent: int) -> None:
        def seqs() -> list[int]:
            clients.drain()
            return [e["args"][0]["data"]["seq"] for e in clients.history(c="canary", ev="event")
                    if e.get("name") == "message"]

        try:
            wait_for(lambda: len(seqs()) >= sent, 30, f"{sent} messages at the canary", step=0.2)
        except AssertionError:
            got = set(seqs())
            self.fail(f"the canary lost {sent - len(got)} of {sent} messages")
        self.assertEqual(seqs(), list(range(sent)))
        self.assertEqual(clients.history(c="canary", ev="disconnect"), [])

    def slow_peer_closed(self, parent: PumpParent) -> bool:
        """The parent was told the room-less (raw) peer went away."""
        pull(parent)
        return None in parent.messages("close")

    def keep_alive(self, ping: Any) -> threading.Event:
        """Call ``ping()`` every second (Engine.IO 3 heartbeat) until the test ends."""
        stop = threading.Event()
        self.addCleanup(stop.set)

        def loop() -> None:
            while not stop.wait(1):
                with contextlib.suppress(OSError):
                    ping()

        threading.Thread(target=loop, daemon=True).start()
        return stop

    def test_websocket_that_never_reads(self) -> None:
        parent, port = self.host()
        clients = self.canary(parent, port)
        ws, _ = ws_connect(port, rcvbuf=4096)
        self.addCleanup(ws.close)
        parent.message("connection")
        # It keeps its session alive (a heartbeat every second) but never reads.
        self.keep_alive(lambda: ws.sendall(ws_frame(0x1, b"2")))
        sent = self.flood(parent, port, lambda: self.slow_peer_closed(parent))
        self.assertTrue(self.slow_peer_closed(parent),
                        f"the non-reading WebSocket was never cut off ({sent} messages sent)")
        wait_for(lambda: peer_closed(ws), 10, "the server to close the non-reading WebSocket")
        self.assertCanaryGotAll(clients, sent)
        self.assertGreaterEqual(faults(port).get("slowReaders", 0), 1,
                                "faults.slowReaders in /status")
        self.assertAlive(parent)

    def test_polling_client_that_stops_polling(self) -> None:
        parent, port = self.host()
        clients = self.canary(parent, port)
        status, body, _ = http_get(port, "/socket.io/?EIO=3&transport=polling&t=1")
        self.assertEqual(status, 200, body)
        sid = re.search(rb'"sid":"([^"]+)"', body)
        self.assertIsNotNone(sid, body)
        path = f"/socket.io/?EIO=3&transport=polling&sid={sid[1].decode()}"  # type: ignore[index]
        parent.message("connection")
        answers: list[int] = []

        # A throttled tab: its heartbeat still goes out, but it never polls for what is queued.
        def ping() -> None:
            answers.append(request(port, "POST", path, b"1:2",
                                   {"content-type": "text/plain;charset=UTF-8"})[0])

        self.keep_alive(ping)
        sent = self.flood(parent, port, lambda: self.slow_peer_closed(parent))
        self.assertTrue(self.slow_peer_closed(parent),
                        f"the polling session was never closed ({sent} messages queued)")
        wait_for(lambda: answers[-1:] == [400], 10, "the closed session's sid to be refused")
        self.assertCanaryGotAll(clients, sent)
        self.assertGreaterEqual(faults(port).get("slowReaders", 0), 1,
                                "faults.slowReaders in /status")
        self.assertAlive(parent)


