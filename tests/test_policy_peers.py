"""Who may use the bridge, played with real peers (the rules alone: tests/test_policy.py).

Node `ws` with forged Origin and Host headers (tests/js/raw_clients.js), socket.io-client 2
and 4 with extraHeaders (tests/js/sio_client.js: they reach `ws` on WebSocket and the XHR on
polling, where Origin is sent but Host is not, so Host on polling is forged from Python),
plain HTTP from Python for polling, preflights and /status, Node parents, copies of the
server, the original's stand-in and headless Chromium. Each test says why it exists; run
with ``-s`` to see the failover reclaim times.
"""

from __future__ import annotations

import http.client
import itertools
import json
import socket
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from tests.support import (
    JS_DIR,
    LOOPBACK,
    Clients,
    Lines,
    NodeParent,
    Proc,
    crash,
    faults,
    free_port,
    http_get,
    node,
    pid_alive,
    pull,
    require_npm_peers,
    wait_for,
)
from tests.test_browser import require_chromium
from tests.test_entry import EntryCase, browser_opts, drain

ENTRY = "https://playentry.org"
EVIL = "https://evil.example"
#: Pages the default policy must refuse: another site, a sandboxed frame, a file, a name
#: that only starts like Entry's, and Entry's name over plain http.
REFUSED_ORIGINS = (EVIL, "null", "file://", "https://playentry.org.evil.example",
                   "http://playentry.org")
#: Bounds on functional waits (never a performance claim).
FAILOVER_BOUND_S = 15.0
SETTLE_S = 0.5


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None,
            timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request to 127.0.0.1:port with exactly these headers (Host included,
    if given); (status, lower-case headers, body)."""
    headers = headers or {}
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def cors(headers: dict[str, str]) -> dict[str, str]:
    """The CORS and Private Network Access grants among response headers."""
    return {k: v for k, v in headers.items() if k.startswith("access-control-")}


def preflight(origin: str) -> dict[str, str]:
    """What Chromium sends before a cross-origin polling POST from a public page to 127.0.0.1."""
    return {"Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
            "Access-Control-Request-Private-Network": "true"}


def expect_where(lines: Lines, predicate: Callable[[dict[str, Any]], bool], timeout: float,
                 what: str) -> dict[str, Any]:
    """Like Lines.expect, with any predicate (the other lines are kept aside)."""
    def match(item: Any) -> bool:
        return isinstance(item, dict) and predicate(item)

    for i, item in enumerate(lines.backlog):
        if match(item):
            return lines.backlog.pop(i)

    def take(item: Any) -> bool:
        if match(item):
            return True
        lines.backlog.append(item)
        return False

    return lines.proc.expect(take, timeout, what)


class RawClients(Lines):
    """tests/js/raw_clients.js: named `ws` sockets with the Origin and Host a test chooses."""

    def __init__(self, test: Any) -> None:
        require_npm_peers()
        super().__init__(Proc([node(), str(JS_DIR / "raw_clients.js")], cleanup=test.addCleanup))

    def open(self, sid: str, port: int, headers: dict[str, str],
             query: str = "EIO=3&transport=websocket") -> dict[str, Any]:
        """Open ``sid``; the first of open / refused / error for it."""
        self.proc.write_json({"op": "ws", "id": sid, "headers": headers,
                              "url": f"ws://{LOOPBACK}:{port}/socket.io/?{query}"})
        return expect_where(self, lambda e: e.get("id") == sid and e.get("ev") in (
            "open", "refused", "error", "fail"), 10, f"the handshake of {sid}")

    def send(self, sid: str, data: str) -> None:
        self.proc.write_json({"op": "send", "id": sid, "data": data})


class PolicyCase(EntryCase):
    timeout = 120

    def copy(self, port: int, room: str) -> NodeParent:
        """A second entryhw on the port: client mode, announcing ``room``."""
        parent = self.server(port)
        parent.send({"key": "open"})
        self.assertEqual(parent.message("runningModeChanged")["value"], 3)
        parent.send({"key": "addRoomId", "value": room})
        return parent

    def page(self, clients: Clients, name: str, port: int, room: str | None,
             version: str = "v2", transport: str = "websocket",
             origin: str | None = ENTRY) -> None:
        """A socket.io client as a page from ``origin`` would be (None: no Origin at all)."""
        opts = browser_opts(room, transport)
        if origin is not None:
            opts["extraHeaders"] = {"Origin": origin}
        clients.connect(name, version, f"http://{LOOPBACK}:{port}", **opts)
        clients.expect(c=name, ev="connect")

    def refused_client(self, clients: Clients, name: str, port: int, version: str,
                       transport: str, headers: dict[str, str]) -> None:
        """A socket.io client with these headers gets a connect_error, not a connection."""
        clients.connect(name, version, f"http://{LOOPBACK}:{port}", transports=[transport],
                        reconnection=False, extraHeaders=headers,
                        query={"client": True, "roomId": name})
        event = expect_where(clients, lambda e: e.get("c") == name and e.get("ev") in (
            "connect", "connect_error"), 10, f"{name} to be answered")
        self.assertEqual(event["ev"], "connect_error", f"{name} ({headers}) was served")

    def assertRefused(self, answer: tuple[int, dict[str, str], bytes], what: str) -> None:
        """403, "Forbidden", and no CORS / Private Network Access grant."""
        status, headers, body = answer
        self.assertEqual((status, body), (403, b"Forbidden\n"), what)
        self.assertEqual(cors(headers), {}, what)

    def assertWsRefused(self, outcome: dict[str, Any], what: str) -> None:
        self.assertEqual((outcome["ev"], outcome.get("status"), outcome.get("body")),
                         ("refused", 403, "Forbidden\n"), what)
        self.assertEqual(cors(outcome["headers"]), {}, what)

    def assertNoConnection(self, parent: NodeParent) -> None:
        """The parent heard of no socket and no message."""
        drain(parent, SETTLE_S)
        self.assertEqual((parent.messages("connection"), parent.messages("data")), ([], []))

    def log_lines(self, parent: NodeParent, text: str) -> list[str]:
        return [line for line in parent.log_text().splitlines() if text in line]


class OriginTests(PolicyCase):
    """Which pages may use the bridge, over WebSocket, polling and preflights."""

    def test_entry_and_local_pages_connect_and_talk_over_both_transports(self) -> None:
        """The pages that must keep working do: Entry's, its subdomains, local development
        pages and peers without an Origin, with socket.io-client 2 and 4, both transports,
        CORS and Private Network Access granted to them (the control for the refusals)."""
        port = free_port()
        parent = self.host(port)
        clients = Clients(self)
        allowed = (ENTRY, "https://www.playentry.org", f"http://localhost:{port}",
                   "http://127.0.0.1:3000", None)
        n = 0
        for origin in allowed:
            for version in ("v2", "v4"):
                for transport in ("websocket", "polling"):
                    name = f"ok{n}"
                    n += 1
                    self.page(clients, name, port, name, version, transport, origin)
                    self.assertPairTalks(parent, clients, name, f"hi-{name}")
            if origin is None:
                continue
            status, headers, _ = request(port, "GET", "/socket.io/?EIO=3&transport=polling",
                                         {"Origin": origin})
            self.assertEqual(status, 200, origin)
            self.assertEqual((headers.get("access-control-allow-origin"),
                              headers.get("access-control-allow-credentials")),
                             (origin, "true"), origin)
            status, headers, _ = request(port, "OPTIONS", "/socket.io/?EIO=3&transport=polling",
                                         preflight(origin))
            self.assertEqual(status, 204, origin)
            self.assertEqual((headers.get("access-control-allow-origin"),
                              headers.get("access-control-allow-private-network")),
                             (origin, "true"), origin)
        # A raw WebSocket with an allowed Origin and Host is a session like any other.
        raw = RawClients(self)
        outcome = raw.open("raw", port, {"Origin": ENTRY, "Host": f"localhost:{port}"})
        self.assertEqual(outcome["ev"], "open", outcome)
        self.assertTrue(raw.expect(id="raw", ev="message")["data"].startswith("0{"))
        self.assertEqual(raw.expect(id="raw", ev="message")["data"], "40")
        raw.send("raw", '42["message",{"data":"from-raw"}]')
        parent.message("data", value={"data": "from-raw"})
        drain(parent, 0.1)
        # Each client, each polling handshake from Python (socket.io 2 connects "/" at once),
        # the raw WebSocket.
        self.assertEqual(len(parent.messages("connection")), n + len(allowed) - 1 + 1)
        counts = faults(port)
        self.assertEqual((counts["originsRefused"], counts["hostsRefused"]), (0, 0), counts)

    def test_other_pages_are_refused_everywhere_and_reach_nothing(self) -> None:
        """Any other page (another site, a sandboxed frame, a file, look-alike names, Entry
        over http) gets 403 on the WebSocket and polling handshakes and a preflight that
        grants nothing, with both socket.io-client versions; the parent hears of none of
        them, each refusal is counted and each origin is logged once."""
        port = free_port()
        parent = self.host(port)
        clients = Clients(self)
        raw = RawClients(self)
        requests = 0
        for i, origin in enumerate(REFUSED_ORIGINS):
            self.assertWsRefused(raw.open(f"r{i}", port, {"Origin": origin}), origin)
            for eio in (3, 4):
                self.assertRefused(request(port, "GET", f"/socket.io/?EIO={eio}&transport=polling",
                                           {"Origin": origin}), f"{origin} polling EIO {eio}")
            self.assertRefused(request(port, "OPTIONS", "/socket.io/?EIO=3&transport=polling",
                                       preflight(origin)), f"{origin} preflight")
            for version in ("v2", "v4"):
                for transport in ("websocket", "polling"):
                    self.refused_client(clients, f"{version}-{transport}-{i}", port, version,
                                        transport, {"Origin": origin})
            requests += 8
        # Engine.IO for an <img>, a no-cors fetch or a frame (no Origin, but Fetch Metadata).
        for mode in ("no-cors", "navigate"):
            self.assertRefused(request(port, "GET", "/socket.io/?EIO=3&transport=polling",
                                       {"Sec-Fetch-Mode": mode, "Sec-Fetch-Site": "cross-site"}),
                               mode)
            requests += 1
        self.assertNoConnection(parent)
        counts = faults(port)
        self.assertEqual((counts["originsRefused"], counts["hostsRefused"]), (requests, 0),
                         counts)
        for origin in REFUSED_ORIGINS:
            self.assertEqual(len(self.log_lines(parent, f"origin {origin!r} is not allowed")),
                             1, origin)
        self.assertEqual(len(self.log_lines(parent, "a no-cors browser request")), 1)
        # The server itself was fine all along: Entry's page gets in, the parent hears of it.
        self.page(clients, "entry", port, "entry-room")
        self.assertPairTalks(parent, clients, "entry", "after-refusals")
        self.assertEqual(len(parent.messages("connection")), 1)

    def test_foreign_host_is_refused_on_every_path(self) -> None:
        """A page on a name re-pointed at 127.0.0.1 (DNS rebinding) sends its own name as
        Host, and its own origin: 403 on /, /status (the room count), /modules, polling,
        preflight and WebSocket, counted as hostsRefused and logged once per Host; the
        names Entry and local tools use are still served."""
        port = free_port()
        parent = self.host(port)
        clients = Clients(self)
        raw = RawClients(self)
        foreign = ("evil.example", f"evil.example:{port}")
        requests = 0
        for i, host in enumerate(foreign):
            page_origin = f"http://{host}"
            for method, path in (("GET", "/"), ("GET", "/status"), ("GET", "/modules/arduino"),
                                 ("GET", "/socket.io/?EIO=3&transport=polling"),
                                 ("GET", "/socket.io/?EIO=4&transport=polling")):
                self.assertRefused(request(port, method, path, {"Host": host}), f"{host} {path}")
            self.assertRefused(request(port, "OPTIONS", "/socket.io/?EIO=3&transport=polling",
                                       {**preflight(page_origin), "Host": host}), host)
            self.assertWsRefused(raw.open(f"h{i}", port, {"Host": host, "Origin": page_origin}),
                                 host)
            for version in ("v2", "v4"):
                self.refused_client(clients, f"{version}-{i}", port, version, "websocket",
                                    {"Host": host, "Origin": page_origin})
            requests += 9
        for host in ("127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST",
                     f"[::1]:{port}", f"hw.playentry.org:{port}", "hardware.playentry.org"):
            self.assertEqual(request(port, "GET", "/", {"Host": host})[::2],
                             (200, b"hello entry"), host)
        self.assertNoConnection(parent)
        counts = faults(port)
        self.assertEqual((counts["hostsRefused"], counts["originsRefused"]), (requests, 0),
                         counts)
        for host in foreign:
            self.assertEqual(len(self.log_lines(parent, f"Host {host!r} is not this server")),
                             1, host)

    def test_a_repeated_origin_or_host_is_refused(self) -> None:
        """Browsers never repeat Origin or Host; a request that does would have the gate
        check one copy while the engine echoed the other in its CORS answer."""
        port = free_port()
        parent = self.host(port)
        heads = (
            "GET /socket.io/?EIO=3&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Origin: https://evil.example\r\nOrigin: https://playentry.org\r\n",
            "OPTIONS /socket.io/?EIO=3&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Origin: https://evil.example\r\nOrigin: https://playentry.org\r\n"
            "Access-Control-Request-Method: POST\r\n"
            "Access-Control-Request-Private-Network: true\r\n",
            "GET / HTTP/1.1\r\nHost: evil.example\r\nHost: 127.0.0.1\r\n",
        )
        for head in heads:
            with socket.create_connection((LOOPBACK, port), timeout=5) as s:
                s.sendall((head + "Connection: close\r\n\r\n").encode())
                answer = b""
                while chunk := s.recv(4096):
                    answer += chunk
            status_line, _, rest = answer.partition(b"\r\n")
            self.assertIn(b" 403 ", status_line, head)
            self.assertNotIn(b"access-control-allow", rest.lower(), head)
        self.assertNoConnection(parent)
        counts = faults(port)
        self.assertEqual((counts["originsRefused"], counts["hostsRefused"]), (2, 1), counts)

    def test_allow_origin_and_allow_host_extend_the_lists(self) -> None:
        """--allow-origin (exact, *.pattern, null) and --allow-host let a school's own page
        and name in; everything else stays refused."""
        port = free_port()
        parent = self.host(port, "--allow-origin", "https://school.example",
                           "--allow-origin", "https://*.example.org", "--allow-origin", "null",
                           "--allow-host", "entry.lab")
        clients = Clients(self)
        raw = RawClients(self)
        self.page(clients, "school", port, "s1", "v2", "websocket", "https://school.example")
        self.assertPairTalks(parent, clients, "school", "school-ws")
        self.page(clients, "sub", port, "s2", "v4", "polling", "https://a.example.org")
        self.assertPairTalks(parent, clients, "sub", "sub-polling")
        self.assertEqual(raw.open("null", port, {"Origin": "null"})["ev"], "open")
        status, headers, _ = request(port, "GET", "/socket.io/?EIO=3&transport=polling",
                                     {"Origin": "null"})
        self.assertEqual((status, headers.get("access-control-allow-origin")), (200, "null"))
        self.assertEqual(raw.open("lab", port, {"Host": f"entry.lab:{port}",
                                                "Origin": ENTRY})["ev"], "open")
        self.assertEqual(request(port, "GET", "/", {"Host": "entry.lab"})[::2],
                         (200, b"hello entry"))
        # Still refused: other sites, the pattern's bare domain, other names, file pages.
        for origin in (EVIL, "https://example.org", "file://"):
            self.assertWsRefused(raw.open(f"no-{origin}", port, {"Origin": origin}), origin)
        self.assertRefused(request(port, "GET", "/", {"Host": "other.lab"}), "other.lab")
        counts = faults(port)
        self.assertEqual((counts["originsRefused"], counts["hostsRefused"]), (3, 1), counts)

    def test_allow_any_origin_is_the_originals_behaviour_with_a_warning(self) -> None:
        """--allow-any-origin serves any page, preflight grants included, as the original
        did, and says so in the log; the Host check is not part of it."""
        port = free_port()
        parent = self.host(port, "--allow-any-origin")
        clients = Clients(self)
        raw = RawClients(self)
        self.page(clients, "evil-ws", port, "e1", "v2", "websocket", EVIL)
        self.assertPairTalks(parent, clients, "evil-ws", "any-ws")
        self.page(clients, "evil-poll", port, "e2", "v4", "polling", EVIL)
        self.assertPairTalks(parent, clients, "evil-poll", "any-polling")
        self.assertEqual(raw.open("null", port, {"Origin": "null"})["ev"], "open")
        status, headers, _ = request(port, "OPTIONS", "/socket.io/?EIO=3&transport=polling",
                                     preflight(EVIL))
        self.assertEqual((status, headers.get("access-control-allow-origin"),
                          headers.get("access-control-allow-private-network")),
                         (204, EVIL, "true"))
        warnings = [line for line in self.log_lines(parent, "--allow-any-origin")
                    if "[warn]" in line]
        self.assertEqual(len(warnings), 1, parent.log_text()[-2000:])
        self.assertRefused(request(port, "GET", "/status", {"Host": "evil.example"}), "Host")
        self.assertEqual(faults(port)["originsRefused"], 0)


class HijackTests(PolicyCase):
    """A room belongs to the copy that serves it: neither a page nor a second local process
    can take it over while that copy is connected."""

    VICTIM = "victim-room"

    def victim(self) -> tuple[int, NodeParent, NodeParent, Clients]:
        """A cloud host, a victim copy holding VICTIM, and the victim's page talking to it."""
        port = free_port()
        host = self.host(port)
        host.send({"key": "addRoomId", "value": "host-room"})
        victim = self.copy(port, self.VICTIM)
        wait_for(lambda: json.loads(http_get(port, "/status")[1])["hardwareClients"] == 1,
                 10, "the victim copy on the host")
        clients = Clients(self)
        self.page(clients, "vb", port, self.VICTIM)
        self.assertPairTalksAgain(victim, clients, "vb", within=10)  # once matchTarget landed
        return port, host, victim, clients

    def claim(self, clients: Clients, name: str) -> None:
        """``name`` claims VICTIM and tries to inject; the ack means the host has handled both
        (one connection's events are handled in order)."""
        clients.emit(name, "matchTarget", self.VICTIM)
        clients.emit(name, "message", {"data": f"inject-{name}"}, ack=f"{name}-ack")
        clients.expect(c=name, ev="ack", id=f"{name}-ack")

    def assertVictimPrivate(self, victim: NodeParent, clients: Clients, tag: str,
                            outsiders: tuple[str, ...]) -> None:
        """The victim's page and copy still talk, and no outsider hears or is heard."""
        self.assertPairTalks(victim, clients, "vb", tag)
        clients.drain(SETTLE_S)
        for name in outsiders:
            self.assertEqual(clients.history(c=name, ev="event"), [], f"{name} heard the room")
        heard = [e["args"] for e in clients.history(c="vb", ev="event")]
        self.assertFalse([a for a in heard if "inject" in json.dumps(a)], heard)
        self.assertFalse([d for d in victim.messages("data") if "inject" in json.dumps(d)])

    def test_a_page_saying_childServer_stays_a_browser(self) -> None:
        """A page (even Entry's own origin, or one only marked by Fetch Metadata) that says
        childServer=true and claims the victim's room neither receives the victim page's
        messages nor reaches the victim's page: it is an impostor, served as a browser."""
        port, host, victim, clients = self.victim()
        impostors = (("imp-origin", "v2", "websocket", {"Origin": ENTRY}),
                     ("imp-sub", "v4", "websocket", {"Origin": "https://www.playentry.org"}),
                     ("imp-fetch", "v2", "polling", {"Sec-Fetch-Site": "same-origin",
                                                     "Sec-Fetch-Mode": "cors"}))
        for name, version, transport, headers in impostors:
            clients.connect(name, version, f"http://{LOOPBACK}:{port}", transports=[transport],
                            extraHeaders=headers, query={"childServer": True})
            clients.expect(c=name, ev="connect")
            self.claim(clients, name)
        names = tuple(name for name, *_ in impostors)
        self.assertVictimPrivate(victim, clients, "after-impostors", names)
        self.assertFalse([d for d in host.messages("data") if "inject" in json.dumps(d)])
        status = json.loads(http_get(port, "/status")[1])
        self.assertEqual((status["hardwareClients"], status["browsers"]), (1, 1 + len(names)))
        self.assertEqual((status["faults"]["impostors"], status["faults"]["roomClaimsRefused"]),
                         (len(names), len(names)), status["faults"])
        self.assertTrue(self.log_lines(host, "claims to be a hardware client but is a browser"))

    def test_a_second_local_process_waits_for_the_room_until_its_holder_leaves(self) -> None:
        """A local process (no Origin) may act as a copy, but cannot take a room another copy
        holds: its matchTarget is refused and the victim's traffic stays with the victim
        copy. When that copy goes, the waiting claim is granted (the queue that lets a copy
        back from a failover have its room): then, and only then, the room is the claimant's."""
        port, host, victim, clients = self.victim()
        clients.connect("local", "v2", f"http://{LOOPBACK}:{port}", transports=["websocket"],
                        query={"childServer": True})
        clients.expect(c="local", ev="connect")
        self.claim(clients, "local")
        self.assertVictimPrivate(victim, clients, "while-held", ("local",))
        status = json.loads(http_get(port, "/status")[1])
        self.assertEqual(status["hardwareClients"], 2)
        self.assertEqual((status["faults"]["roomClaimsRefused"], status["faults"]["impostors"]),
                         (1, 0), status["faults"])
        self.assertTrue(self.log_lines(host, "the room is held by hardware client"))

        crash(victim.server_pid)
        host.message("close", value=self.VICTIM)
        clients.emit("vb", "message", {"data": "to-new-holder"})
        clients.expect(c="local", ev="event", name="message", args=[{"data": "to-new-holder"}])
        clients.emit("local", "message", {"data": "from-new-holder"})
        clients.expect(c="vb", ev="event", name="message", args=[{"data": "from-new-holder"}])
        self.assertTrue(self.log_lines(host, "room released: granted to hardware client"))


    def test_the_hosts_own_room_cannot_be_claimed(self) -> None:
        """The room the host serves for its own pupil (its parent's addRoomId) is no copy's
        to take: a local process claiming it is refused, and the host pupil's page keeps
        talking to the host's parent only."""
        port = free_port()
        host = self.host(port)
        host.send({"key": "addRoomId", "value": "host-room"})
        clients = Clients(self)
        self.page(clients, "hb", port, "host-room")
        self.assertPairTalksAgain(host, clients, "hb", within=10)
        clients.connect("local", "v2", f"http://{LOOPBACK}:{port}", transports=["websocket"],
                        query={"childServer": True})
        clients.expect(c="local", ev="connect")
        clients.emit("local", "matchTarget", "host-room")
        clients.emit("local", "message", {"data": "inject-local"}, ack="local-ack")
        clients.expect(c="local", ev="ack", id="local-ack")
        self.assertPairTalks(host, clients, "hb", "after-claim")
        clients.drain(SETTLE_S)
        self.assertEqual(clients.history(c="local", ev="event"), [], "the claimant heard it")
        heard = [e["args"] for e in clients.history(c="hb", ev="event")]
        self.assertFalse([a for a in heard if "inject" in json.dumps(a)], heard)
        self.assertEqual(faults(port)["roomClaimsRefused"], 1)
        self.assertTrue(self.log_lines(host, "the room is this host's own pupil's"))


class CloudRelayTests(PolicyCase):
    """The policy must not stop copies: each copy's room still flows both ways, with
    entryhw and the original (its stand-in) in either role, and Entry's page as browser."""

    def check_relay(self, host: NodeParent, copy: NodeParent, port: int) -> None:
        host.send({"key": "addRoomId", "value": "host-room"})
        copy.send({"key": "addRoomId", "value": "copy-room"})
        wait_for(lambda: drain(host, 0.05) is not None
                 and host.messages("cloudModeChanged")[-1:] == [1], 10, "cloud mode on host")
        clients = Clients(self)
        self.page(clients, "cb", port, "copy-room", "v2", "websocket")
        self.page(clients, "hb", port, "host-room", "v2", "polling")
        self.assertPairTalksAgain(copy, clients, "cb", within=10)  # once matchTarget landed
        self.assertPairTalks(copy, clients, "cb", "via-host")
        self.assertPairTalks(host, clients, "hb", "own-room")
        clients.drain(SETTLE_S)
        for name, other in (("hb", "cb"), ("cb", "hb")):
            stray = [e for e in clients.history(c=name, ev="event")
                     if f"'to': '{other}'" in str(e["args"])]
            self.assertEqual(stray, [], name)
        self.assertFalse([d for d in host.messages("data") if d.get("from") == "cb"])
        self.assertFalse([d for d in copy.messages("data") if d.get("from") == "hb"])

    def assertCopyTakenForACopy(self, port: int) -> None:
        status = json.loads(http_get(port, "/status")[1])
        self.assertEqual((status["cloudMode"], status["hardwareClients"], status["browsers"]),
                         (1, 1, 2))
        self.assertEqual({k: status["faults"][k] for k in (
            "originsRefused", "hostsRefused", "impostors", "roomClaimsRefused")},
            dict.fromkeys(("originsRefused", "hostsRefused", "impostors", "roomClaimsRefused"),
                          0))

    def test_entryhw_host_and_entryhw_copy(self) -> None:
        port = free_port()
        host = self.host(port)
        copy = self.server(port)
        copy.send({"key": "open"})
        self.assertEqual(copy.message("runningModeChanged")["value"], 3)
        self.check_relay(host, copy, port)
        self.assertCopyTakenForACopy(port)

    def test_entryhw_host_and_original_copy(self) -> None:
        port = free_port()
        host = self.host(port)
        copy = self.standin(port)
        copy.send({"key": "open"})
        self.assertEqual(copy.message("runningModeChanged")["value"], 3)
        self.check_relay(host, copy, port)
        self.assertCopyTakenForACopy(port)

    def test_original_host_and_entryhw_copy(self) -> None:
        port = free_port()
        host = self.standin(port)
        host.send({"key": "open"})
        self.assertEqual(host.message("runningModeChanged")["value"], 2)
        copy = self.server(port)
        copy.send({"key": "open"})
        self.assertEqual(copy.message("runningModeChanged")["value"], 3)
        self.check_relay(host, copy, port)


class FailoverTests(PolicyCase):
    timeout = 180
    ROUNDS = 5

    def current_host(self, parents: list[NodeParent]) -> int:
        for parent in parents:
            pull(parent)
        hosts = [i for i, p in enumerate(parents) if p.messages("runningModeChanged")[-1:] == [2]
                 and pid_alive(p.server_pid)]
        self.assertEqual(len(hosts), 1, [p.messages("runningModeChanged") for p in parents])
        return hosts[0]

    def reclaim_times(self, parents: list[NodeParent], clients: Clients, survivors: list[int],
                      round_: int, killed: float) -> dict[int, float]:
        """Seconds from the kill until a page message in each survivor's room reaches that
        survivor's parent again (each page sends one every 100 ms)."""
        times: dict[int, float] = {}
        seen = {i: len(parents[i].seen) for i in survivors}
        k = 0
        last_emit = 0.0
        while len(times) < len(survivors):
            now = time.monotonic()
            if now - killed > FAILOVER_BOUND_S:
                raise AssertionError(f"round {round_}: rooms {sorted(set(survivors) - set(times))}"
                                     f" not reclaimed within {FAILOVER_BOUND_S} s")
            if now - last_emit >= 0.1:
                last_emit = now
                k += 1
                for i in survivors:
                    if i not in times:
                        clients.emit(f"b{i}", "message", {"probe": round_, "k": k})
            for i in survivors:
                if i in times:
                    continue
                pull(parents[i])
                fresh = parents[i].seen[seen[i]:]
                seen[i] = len(parents[i].seen)
                if any(e.get("ev") == "message" and e["msg"].get("key") == "data"
                       and isinstance(e["msg"].get("value"), dict)
                       and e["msg"]["value"].get("probe") == round_ for e in fresh):
                    times[i] = time.monotonic() - killed
            time.sleep(0.01)
        return times

    def test_copies_reclaim_their_rooms_after_the_host_is_killed(self) -> None:
        """With the room rules in place a host's death must still cost only a re-election:
        each surviving copy gets its room back on the new host (no claim is left refused).
        Five rounds of SIGKILL on whichever copy hosts; the reclaim times are printed."""
        port = free_port()
        parents = [self.host(port), self.copy(port, "room-1"), self.copy(port, "room-2")]
        parents[0].send({"key": "addRoomId", "value": "room-0"})
        wait_for(lambda: json.loads(http_get(port, "/status")[1])["hardwareClients"] == 2,
                 10, "both copies on the host")
        clients = Clients(self)
        for i in range(3):
            self.page(clients, f"b{i}", port, f"room-{i}")
        samples: list[float] = []
        for round_ in range(1, self.ROUNDS + 1):
            spare = self.server(port)  # started now, told to open after the failover
            for i, parent in enumerate(parents):
                self.assertPairTalksAgain(parent, clients, f"b{i}", within=FAILOVER_BOUND_S)
            dead = self.current_host(parents)
            survivors = [i for i in range(3) if i != dead]
            killed = time.monotonic()
            crash(parents[dead].server_pid)
            times = self.reclaim_times(parents, clients, survivors, round_, killed)
            samples.extend(times.values())
            sys.stderr.write(f"\nfailover round {round_}: "
                             + ", ".join(f"room-{i} {t:.2f} s" for i, t in sorted(times.items())))
            self.assertIn(self.current_host(parents), survivors)
            self.assertFalse(pid_alive(parents[dead].server_pid))
            spare.send({"key": "open"})
            self.assertEqual(spare.message("runningModeChanged")["value"], 3)
            spare.send({"key": "addRoomId", "value": f"room-{dead}"})
            parents[dead] = spare
            self.assertPairTalksAgain(parents[dead], clients, f"b{dead}", within=FAILOVER_BOUND_S)
        status = json.loads(http_get(port, "/status")[1])
        self.assertEqual((status["hardwareClients"], status["faults"]["roomClaimsRefused"],
                          status["faults"]["bugs"]), (2, 0, 0), status)
        sys.stderr.write(f"\nfailover reclaim over {len(samples)} rooms: worst "
                         f"{max(samples):.2f} s, median {statistics.median(samples):.2f} s\n")


class BrowserPage(Lines):
    """tests/js/browser.js: the Entry page in headless Chromium, from any origin."""

    def __init__(self, test: Any, port: int, room: str, **config: Any) -> None:
        require_npm_peers()
        config = {"port": port, "roomId": room, "deadlineMs": 90_000, **config}
        super().__init__(Proc([node(), str(JS_DIR / "browser.js"), json.dumps(config)],
                              cleanup=test.addCleanup))
        test.addCleanup(self.close)  # before Proc.kill: Chromium exits with its whole tree
        self._evals = itertools.count()

    def eval(self, js: str, timeout: float = 15.0) -> Any:
        """The value of ``js`` (an expression, a promise awaited) in the page."""
        sid = f"e{next(self._evals)}"
        self.proc.write_json({"op": "eval", "id": sid, "js": js})
        answer = self.expect(timeout, ev="eval", id=sid)
        if "error" in answer:
            raise AssertionError(f"the page could not evaluate {js!r}: {answer['error']}")
        return answer.get("value")

    def close(self) -> None:
        if self.proc.p.poll() is None:
            try:
                self.proc.write_json({"op": "exit"})
                self.proc.p.wait(timeout=15)
            except Exception:
                pass  # Proc.kill, the next cleanup, ends it


def sio_attempt(url: str, transport: str) -> str:
    """Page JavaScript: one socket.io-client 2 connection (the page's own bundle), no retry;
    'connect' or 'connect_error: ...'."""
    return f"""new Promise((resolve) => {{
      const s = io({json.dumps(url)}, {{transports: [{json.dumps(transport)}],
        reconnection: false, forceNew: true}});
      s.on('connect', () => {{ resolve('connect'); s.close(); }});
      s.on('connect_error', (e) => {{ resolve('connect_error: ' + e); s.close(); }});
      setTimeout(() => {{ resolve('timeout'); s.close(); }}, 8000);
    }})"""


def fetch_text(url: str) -> str:
    """Page JavaScript: fetch ``url``; 'STATUS BODY' or 'error: ...'."""
    return (f"fetch({json.dumps(url)}).then(async (r) => r.status + ' ' + await r.text(), "
            f"(e) => 'error: ' + e)")


class BrowserTests(PolicyCase):
    """The policy as Chromium meets it: a real page, real Origin and Host headers."""

    timeout = 150

    def test_entry_page_from_another_site_cannot_connect(self) -> None:
        """Entry's page copied to https://evil.example, with the user's local-network
        permission: every address fails (its WebSocket, a polling try, /status), the parent
        hears of nothing. The refusals are the server's, by origin (counted, logged), not the
        browser's; the same page from https://playentry.org connects (tests/test_browser.py)."""
        require_chromium()
        port = free_port()
        parent = self.host(port)
        local = f"http://{LOOPBACK}:{port}"
        evil = BrowserPage(self, port, "room-evil", origin=EVIL)
        evil.expect(30, ev="launched")
        self.assertEqual(evil.expect(30, ev="start")["tries"][-1], local)
        outcome = evil.proc.expect(lambda e: e.get("ev") in ("connect", "all_failed"), 60,
                                   "the evil page to give up")
        self.assertEqual(outcome["ev"], "all_failed", outcome)
        self.assertTrue(evil.eval(sio_attempt(local, "polling")).startswith("connect_error"))
        self.assertTrue(evil.eval(fetch_text(f"{local}/status")).startswith("error"))
        self.assertNoConnection(parent)
        counts = faults(port)
        # 4 WebSocket handshakes of the page's own tries, the polling try, /status.
        self.assertEqual((counts["originsRefused"], counts["hostsRefused"]), (6, 0), counts)
        self.assertEqual(len(self.log_lines(parent, f"origin {EVIL!r} is not allowed")), 1)

    def test_rebinding_page_is_refused_by_host(self) -> None:
        """A page on http://evil.example:PORT whose name now resolves to 127.0.0.1 is
        same-origin with the bridge, so CORS cannot stop it: Chromium's Local Network Access
        checks do, but browsers without them do not (turned off here). The Host check must:
        /status, polling and WebSocket from the page get 403 and the parent hears nothing."""
        require_chromium()
        port = free_port()
        parent = self.host(port)
        page = BrowserPage(self, port, "room-rebind", origin=f"http://evil.example:{port}",
                           rebind=True, lnaChecks=False)
        page.expect(30, ev="loaded")
        self.assertEqual(page.eval(fetch_text("/status")), "403 Forbidden\n")
        self.assertTrue(page.eval(sio_attempt("/", "polling")).startswith("connect_error"))
        self.assertTrue(page.eval(sio_attempt("/", "websocket")).startswith("connect_error"))
        # The page's own tries start at 127.0.0.1 (an http page): refused by its origin.
        page.expect(30, ev="reconnect_failed", url=f"http://{LOOPBACK}:{port}")
        self.assertNoConnection(parent)
        counts = faults(port)
        # /status, polling, WebSocket by Host; the page's own 4 tries at 127.0.0.1 by origin.
        self.assertEqual((counts["hostsRefused"], counts["originsRefused"]), (3, 4), counts)
