"""Our Socket.IO server against the real npm clients, as real processes.

The server side is ``tests/sio_test_app.py``, which uses only the public API and prints one
JSON line per server-side happening; the client side is ``tests/js/sio_client.js`` driving
socket.io-client 2.5.0 (Engine.IO 3, what the Entry workspace uses) and 4.x (Engine.IO 4).
The raw HTTP tests need no Node; the examples are tests/test_socketio_examples.py. Every
process runs on a free 127.0.0.1 port and is killed, with its process group, by the test's
cleanup.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from typing import Any

from twisted.trial.unittest import TestCase

from tests.support import (
    HERE,
    LOOPBACK,
    Clients,
    Lines,
    Proc,
    free_port,
    http_get,
    request,
    wait_for,
)

ROOT = HERE.parent
APP = HERE / "sio_test_app.py"

KOREAN = "엔트리 하드웨어 연결 성공"
EMOJI = "🤖🎉👍🏽"
BINARY = b"\x00\x01\x02\xfe\xff"  # what the app's "binary" event sends


def b64(data: bytes) -> dict[str, str]:
    """Bytes as the Node driver writes and reads them."""
    return {"$bytes": base64.b64encode(data).decode()}


def on_server(value: Any) -> Any:
    """``value`` (driver form) as the app reports it: bytes are {"$bin": ...} there, so a
    literal {"$bytes": ...} object reaching the server would not pass for real bytes."""
    if isinstance(value, list):
        return [on_server(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return {"$bin": value["$bytes"]}
        return {k: on_server(v) for k, v in value.items()}
    return value


#: Arguments that go everywhere: text, numbers, null, nested objects, unicode, binary.
MIXED = [
    "plain ascii",
    42,
    -1.5,
    True,
    None,
    {"name": KOREAN, "emoji": EMOJI, "list": [1, "둘", {"three": [3.5]}], "empty": {}},
    KOREAN + " " + EMOJI,
    b64(bytes(range(256))),
    {"nested": [b64(b"\xff" * 3), "after the bytes"]},
]


class App(Lines):
    """tests/sio_test_app.py (or another script taking the port) on a free port."""

    def __init__(self, test: TestCase, *extra: str, port: int | None = None,
                 script: Any = APP) -> None:
        self.port = port if port is not None else free_port()
        argv = [sys.executable, str(script)]
        argv += ["--port", str(self.port), *extra] if script == APP else [str(self.port)]
        # The installed entryhw (src/ layout): the tree itself is not importable.
        env = dict(os.environ)
        super().__init__(Proc(argv, cleanup=test.addCleanup, stdin=False, env=env))
        self.script = script
        self.url = f"http://{LOOPBACK}:{self.port}"

    def ready(self) -> App:
        if self.script == APP:
            self.expect(ev="listening")
        else:
            wait_for(self._answers, 10, f"the app on port {self.port}", step=0.05)
        return self

    def _answers(self) -> bool:
        try:
            return http_get(self.port, "/", timeout=1)[0] == 200
        except OSError:
            return False


class IntegrationCase(TestCase):
    timeout = 45
    maxDiff = None

    def connected(self, app: App, clients: Clients, c: str, nsp: str = "/") -> tuple[
            dict[str, Any], dict[str, Any]]:
        """(client's connect line, app's connect line) for client ``c``; they name one sid."""
        seen = clients.expect(c=c, ev="connect")
        server = app.expect(ev="connect", nsp=nsp, sid=seen["id"])
        return seen, server

    def exchange(self, app: App, clients: Clients, c: str, nsp: str = "/") -> None:
        """Events and acks both ways, with unicode, nested objects and binary."""
        sid = clients.history(c=c, ev="connect")[-1]["id"]
        clients.emit(c, "echo", *MIXED, ack=f"{c}-echo")
        got = app.expect(ev="event", name="echo", sid=sid)
        self.assertEqual((got["nsp"], got["args"]), (nsp, on_server(MIXED)))
        self.assertEqual(clients.expect(c=c, ev="event", name="echo")["args"], MIXED)
        self.assertEqual(clients.expect(c=c, ev="ack", id=f"{c}-echo")["args"], MIXED)

        # Server -> client with an ack: the driver answers ("client-ack", *args).
        clients.emit(c, "ask", KOREAN, {"blob": b64(b"\x00ask\xff")}, EMOJI)
        question = clients.expect(c=c, ev="event", name="question")
        self.assertEqual(question["args"], [KOREAN, {"blob": b64(b"\x00ask\xff")}, EMOJI])
        self.assertTrue(question["ack"], "the server's event asked for no ack")
        self.assertEqual(app.expect(ev="answer", sid=sid)["args"],
                         on_server(["client-ack", KOREAN, {"blob": b64(b"\x00ask\xff")}, EMOJI]))

        # Binary made by the server, at the top level and nested.
        clients.emit(c, "binary")
        self.assertEqual(clients.expect(c=c, ev="event", name="binary")["args"],
                         [b64(BINARY), {"nested": [b64(BINARY[::-1]), "text"]}])


class SocketIOClient2Tests(IntegrationCase):
    """socket.io-client 2.5.0: Engine.IO 3, Socket.IO revision 4."""

    def test_polling_then_upgrade(self) -> None:
        app, clients = App(self), Clients(self)
        app.ready()
        clients.connect("a", "v2", app.url, query={"roomId": "room-7", "lang": KOREAN})
        _, server = self.connected(app, clients, "a")
        self.assertEqual((server["query"]["roomId"], server["query"]["lang"]),
                         ("room-7", KOREAN))
        # The handshake was a long-poll (the CONNECT may arrive before or after the upgrade).
        self.assertEqual((server["query"]["EIO"], server["query"]["transport"]),
                         ("3", "polling"))
        self.assertEqual(clients.expect(c="a", ev="upgrade")["transport"], "websocket")
        self.assertEqual(clients.transport("a"), "websocket")
        self.exchange(app, clients, "a")
        self.assertEqual(clients.transport("a"), "websocket")

    def test_websocket_only(self) -> None:
        app, clients = App(self), Clients(self)
        app.ready()
        clients.connect("a", "v2", app.url, transports=["websocket"], query={"roomId": "r"})
        seen, server = self.connected(app, clients, "a")
        self.assertEqual(seen["transport"], "websocket")
        self.assertEqual((server["query"]["transport"], server["query"]["roomId"]),
                         ("websocket", "r"))
        self.exchange(app, clients, "a")
        self.assertEqual(clients.history(c="a", ev="upgrade"), [])

    def test_polling_only(self) -> None:
        app, clients = App(self), Clients(self)
        app.ready()
        clients.connect("a", "v2", app.url, transports=["polling"])
        seen, _ = self.connected(app, clients, "a")
        self.assertEqual(seen["transport"], "polling")
        self.exchange(app, clients, "a")
        self.assertEqual(clients.transport("a"), "polling")
        self.assertEqual(clients.history(c="a", ev="upgrade"), [])

    def test_namespaces(self) -> None:
        app, clients = App(self), Clients(self)
        app.ready()
        ws = ["websocket"]
        clients.connect("a", "v2", app.url, "/custom", transports=ws, query={"roomId": "c1"})
        seen, server = self.connected(app, clients, "a", "/custom")
        self.assertTrue(seen["id"].startswith("/custom#"), seen)
        self.assertEqual(server["query"]["roomId"], "c1")
        self.exchange(app, clients, "a", "/custom")
        # Refused by the /private connect hook: revision 4 has no auth, the reason arrives as
        # an ERROR packet ("error" in socket.io-client 2).
        clients.connect("p", "v2", app.url, "/private", transports=ws)
        self.assertEqual(clients.expect(c="p", ev="error")["data"], "bad token")
        clients.connect("n", "v2", app.url, "/nope", transports=ws)
        self.assertEqual(clients.expect(c="n", ev="error")["data"], "Invalid namespace")
        self.assertEqual(clients.history(c="p", ev="connect") + clients.history(c="n",
                         ev="connect"), [])

    def test_rooms_and_broadcast(self) -> None:
        app, clients = App(self), Clients(self)
        app.ready()
        ws = ["websocket"]
        # b speaks revision 5: one broadcast reaches both revisions.
        clients.connect("a", "v2", app.url, transports=ws, query={"roomId": "r1"})
        clients.connect("b", "v4", app.url, transports=ws, query={"roomId": "r1"})
        clients.connect("c", "v2", app.url, transports=ws, query={"roomId": "r2"})
        for c in "abc":
            self.connected(app, clients, c)

        clients.emit("a", "to_room", "r1", KOREAN, b64(b"\x00room"), ack="a-room")
        for c in "ab":
            self.assertEqual(clients.expect(c=c, ev="event", name="room")["args"],
                             [KOREAN, b64(b"\x00room")])
        clients.expect(c="a", ev="ack", id="a-room")
        # c (room r2) got nothing: its echo answer comes after anything queued before it.
        clients.emit("c", "echo", "sync", ack="c-sync")
        clients.expect(c="c", ev="ack", id="c-sync")
        self.assertEqual(clients.history(c="c", ev="event", name="room"), [])

        clients.emit("a", "broadcast", EMOJI, {"from": "a"})
        for c in "bc":
            self.assertEqual(clients.expect(c=c, ev="event", name="broadcast")["args"],
                             [EMOJI, {"from": "a"}])
        clients.emit("a", "echo", "sync", ack="a-sync")
        clients.expect(c="a", ev="ack", id="a-sync")
        self.assertEqual(clients.history(c="a", ev="event", name="broadcast"), [])

    def test_server_disconnect(self) -> None:
        app, clients = App(self), Clients(self)
        app.ready()
        fast = {"reconnectionDelay": 50, "reconnectionDelayMax": 100}
        clients.connect("a", "v2", app.url, **fast)
        clients.connect("b", "v2", app.url, transports=["websocket"], **fast)
        a, _ = self.connected(app, clients, "a")
        b, _ = self.connected(app, clients, "b")
        clients.emit("a", "kick")  # leave the namespace
        clients.emit("b", "kick", True)  # and close the connection
        for c, seen in (("a", a), ("b", b)):
            self.assertEqual(clients.expect(c=c, ev="disconnect")["reason"],
                             "io server disconnect")
            self.assertEqual(app.expect(ev="disconnect", sid=seen["id"])["reason"],
                             "server namespace disconnect")
        # A server-side disconnect is final: the clients do not come back.
        app.drain(settle=0.5)
        self.assertEqual(len(app.history(ev="connect")), 2)
        self.assertCountEqual(clients.history(ev="connect"), [a, b])

    def test_reconnect_after_server_restart(self) -> None:
        app, clients = App(self), Clients(self)
        app.ready()
        clients.connect("a", "v2", app.url, query={"roomId": "again"},
                        reconnectionDelay=100, reconnectionDelayMax=200, randomizationFactor=0)
        self.connected(app, clients, "a")
        clients.expect(c="a", ev="upgrade")
        app.proc.kill()
        self.assertEqual(clients.expect(c="a", ev="disconnect")["reason"], "transport close")
        clients.expect(c="a", ev="connect_error")  # nothing listens for a while
        again = App(self, port=app.port).ready()
        self.assertGreaterEqual(clients.expect(c="a", ev="reconnect")["attempt"], 1)
        _, server = self.connected(again, clients, "a")
        self.assertEqual(server["query"]["roomId"], "again")
        self.exchange(again, clients, "a")


class SocketIOClient4Tests(IntegrationCase):
    """socket.io-client 4.x: Engine.IO 4, Socket.IO revision 5."""

    def test_polling_then_upgrade_with_auth(self) -> None:
        app, clients = App(self), Clients(self)
        app.ready()
        auth = {"token": "abc", "user": KOREAN, "n": [1, 2]}
        clients.connect("a", "v4", app.url, auth=auth, query={"roomId": "r"})
        _, server = self.connected(app, clients, "a")
        self.assertEqual(server["auth"], auth)
        self.assertEqual((server["query"]["EIO"], server["query"]["roomId"]), ("4", "r"))
        self.assertEqual(server["query"]["transport"], "polling")
        self.assertEqual(clients.expect(c="a", ev="upgrade")["transport"], "websocket")
        self.assertEqual(clients.transport("a"), "websocket")
        self.exchange(app, clients, "a")

    def test_websocket_only(self) -> None:
        app, clients = App(self), Clients(self)
        app.ready()
        clients.connect("a", "v4", app.url, transports=["websocket"], auth={"token": "t"})
        seen, server = self.connected(app, clients, "a")
        self.assertEqual((seen["transport"], server["auth"]), ("websocket", {"token": "t"}))
        self.exchange(app, clients, "a")
        self.assertEqual(clients.history(c="a", ev="upgrade"), [])

    def test_polling_only(self) -> None:
        app, clients = App(self), Clients(self)
        app.ready()
        clients.connect("a", "v4", app.url, transports=["polling"])
        seen, server = self.connected(app, clients, "a")
        self.assertEqual((seen["transport"], server["auth"]), ("polling", {}))
        self.exchange(app, clients, "a")
        self.assertEqual(clients.transport("a"), "polling")
        self.assertEqual(clients.history(c="a", ev="upgrade"), [])

    def test_namespaces_and_refusals(self) -> None:
        app, clients = App(self), Clients(self)
        app.ready()
        clients.connect("a", "v4", app.url, "/custom", auth={"token": "x"})
        _, server = self.connected(app, clients, "a", "/custom")
        self.assertEqual(server["auth"], {"token": "x"})
        self.exchange(app, clients, "a", "/custom")

        clients.connect("n", "v4", app.url, "/nope")
        refused = clients.expect(c="n", ev="connect_error")
        self.assertEqual(refused["message"], "Invalid namespace")

        clients.connect("p", "v4", app.url, "/private", auth={"token": "wrong"})
        refused = clients.expect(c="p", ev="connect_error")
        self.assertEqual((refused["message"], refused["data"]), ("bad token", {"token": "wrong"}))
        self.assertEqual(app.expect(ev="connect", nsp="/private")["auth"], {"token": "wrong"})

        clients.connect("ok", "v4", app.url, "/private", auth={"token": "ok"})
        self.connected(app, clients, "ok", "/private")
        self.assertEqual(clients.history(c="n", ev="connect") + clients.history(c="p",
                         ev="connect"), [])

    def test_server_and_client_disconnect(self) -> None:
        app, clients = App(self), Clients(self)
        app.ready()
        clients.connect("a", "v4", app.url)
        clients.connect("b", "v4", app.url, transports=["websocket"])
        a, _ = self.connected(app, clients, "a")
        b, _ = self.connected(app, clients, "b")
        clients.emit("a", "kick", True)
        self.assertEqual(clients.expect(c="a", ev="disconnect")["reason"],
                         "io server disconnect")
        self.assertEqual(app.expect(ev="disconnect", sid=a["id"])["reason"],
                         "server namespace disconnect")
        # And the other way round: the client leaves.
        clients.close("b")
        self.assertEqual(clients.expect(c="b", ev="disconnect")["reason"],
                         "io client disconnect")
        self.assertEqual(app.expect(ev="disconnect", sid=b["id"])["reason"],
                         "client namespace disconnect")


# -- raw HTTP ----------------------------------------------------------------------------------

ENGINE = "/socket.io/?EIO=4&transport=polling"
TEXT = {"content-type": "text/plain;charset=UTF-8"}


def frames(body: bytes) -> list[str]:
    """The packets of an Engine.IO 4 polling body."""
    return body.decode("utf-8").split("\x1e")


class RawHTTPTests(TestCase):
    """Engine.IO over plain HTTP: errors, CORS, payload limits. No Node needed."""

    timeout = 30

    def assertEngineError(self, response: tuple[int, bytes, Any], code: int, message: str,
                          status: int = 400) -> None:
        self.assertEqual(response[0], status, response[1])
        self.assertEqual(json.loads(response[1]), {"code": code, "message": message})
        self.assertIn("application/json", response[2]["content-type"])

    def session(self, app: App) -> tuple[str, str]:
        """A new Engine.IO 4 session connected to "/" (the app saw it): (engine sid, socket sid)."""
        status, body, _ = request(app.port, "GET", ENGINE)
        self.assertEqual(status, 200, body)
        self.assertEqual(body[:1], b"0")
        sid = json.loads(body[1:])["sid"]
        self.assertEqual(request(app.port, "POST", f"{ENGINE}&sid={sid}", b"40", TEXT)[:2],
                         (200, b"ok"))
        status, body, _ = request(app.port, "GET", f"{ENGINE}&sid={sid}")
        connect = [f for f in frames(body) if f.startswith("40")]
        self.assertEqual(len(connect), 1, body)
        socket_sid = json.loads(connect[0][2:])["sid"]
        app.expect(ev="connect", sid=socket_sid)
        return sid, socket_sid

    def still_serves(self, app: App, sid: str) -> None:
        path = f"{ENGINE}&sid={sid}"
        message = '42["echo","still here ✓"]'.encode()
        self.assertEqual(request(app.port, "POST", path, message, TEXT)[:2], (200, b"ok"))
        status, body, _ = request(app.port, "GET", path)
        self.assertEqual(status, 200)
        self.assertIn('42["echo","still here ✓"]', frames(body))

    def test_protocol_errors(self) -> None:
        app = App(self).ready()
        port = app.port
        unsupported = (5, "Unsupported protocol version")
        for path in ("/socket.io/?transport=polling", "/socket.io/?EIO=2&transport=polling",
                     "/socket.io/?EIO=5&transport=polling", "/socket.io/?EIO=x&transport=polling",
                     "/socket.io/"):
            self.assertEngineError(request(port, "GET", path), *unsupported)
        for eio in ("3", "4"):
            self.assertEngineError(request(port, "GET", f"/socket.io/?EIO={eio}&transport=flash"),
                                   0, "Transport unknown")
            self.assertEngineError(request(port, "GET", f"/socket.io/?EIO={eio}"),
                                   0, "Transport unknown")
            self.assertEngineError(
                request(port, "GET", f"/socket.io/?EIO={eio}&transport=polling&sid=nope"),
                1, "Session ID unknown")
            self.assertEngineError(
                request(port, "POST", f"/socket.io/?EIO={eio}&transport=polling", b"40", TEXT),
                2, "Bad handshake method")
        # And none of that created a session: a real handshake still works.
        self.assertEqual(request(port, "GET", ENGINE)[0], 200)

    def test_cors_preflight_with_private_network_access(self) -> None:
        app = App(self).ready()
        origin = "https://playentry.org"
        status, body, headers = request(app.port, "OPTIONS", ENGINE, headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
            "Access-Control-Request-Private-Network": "true",
        })
        self.assertEqual((status, body), (204, b""))
        self.assertEqual(headers["access-control-allow-origin"], origin)
        self.assertEqual(headers["access-control-allow-credentials"], "true")
        self.assertEqual(headers["access-control-allow-private-network"], "true")
        self.assertIn("POST", headers["access-control-allow-methods"])
        # Only asked-for Private Network Access is granted.
        status, _, headers = request(app.port, "OPTIONS", ENGINE, headers={"Origin": origin})
        self.assertEqual(status, 204)
        self.assertIsNone(headers["access-control-allow-private-network"])

    def test_polling_reflects_origin(self) -> None:
        app = App(self).ready()
        for origin in ("https://playentry.org", "http://localhost:8080"):
            status, body, headers = request(app.port, "GET", ENGINE, headers={"Origin": origin})
            self.assertEqual(status, 200, body)
            self.assertEqual(headers["access-control-allow-origin"], origin)
            self.assertEqual(headers["access-control-allow-credentials"], "true")
        status, _, headers = request(app.port, "GET", ENGINE)
        self.assertEqual(status, 200)
        self.assertIsNone(headers["access-control-allow-origin"])

    def test_post_over_max_payload(self) -> None:
        app = App(self, "--max-payload", "1000").ready()
        status, body, _ = request(app.port, "GET", ENGINE)
        self.assertEqual(json.loads(body[1:])["maxPayload"], 1000)
        (victim, victim_socket), (bystander, _) = self.session(app), self.session(app)
        big = ('42["echo","' + "x" * 2000 + '"]').encode()
        status, body, _ = request(app.port, "POST", f"{ENGINE}&sid={victim}", big, TEXT)
        self.assertEqual(status, 413, body)
        self.assertEqual(app.expect(ev="disconnect", sid=victim_socket)["reason"],
                         "transport error")
        self.assertEngineError(request(app.port, "GET", f"{ENGINE}&sid={victim}"),
                               1, "Session ID unknown")
        self.assertEqual(app.history(ev="event"), [])  # the oversized message was not handled
        self.still_serves(app, bystander)

    def test_garbage_post_closes_the_session(self) -> None:
        app = App(self).ready()
        (victim, victim_socket), (bystander, _) = self.session(app), self.session(app)
        response = request(app.port, "POST", f"{ENGINE}&sid={victim}", b"\x00garbage", TEXT)
        self.assertEngineError(response, 3, "Bad request")
        self.assertEqual(app.expect(ev="disconnect", sid=victim_socket)["reason"],
                         "parse error")
        self.assertEngineError(request(app.port, "GET", f"{ENGINE}&sid={victim}"),
                               1, "Session ID unknown")
        self.still_serves(app, bystander)
        # And new sessions still open.
        self.still_serves(app, self.session(app)[0])
