"""A Socket.IO app on entryhw's public API, for tests/test_socketio_server.py.

    PYTHONPATH=. python tests/sio_test_app.py --port N [--max-payload BYTES] [--ping-interval MS]

(PYTHONPATH makes sure this checkout's entryhw is imported, not an installed copy.)

One JSON line on stdout per server-side happening ("listening", "connect", "event",
"answer", "disconnect"); bytes are written as ``{"$bin": base64}``. Behaviour, the same
on "/" and "/custom":

* connect: joins the room named by the ``roomId`` query parameter, if any;
* any event with an ack is acked with its own arguments;
* "echo"        emits "echo" back with the same arguments;
* "to_room"     (room, *args): emits "room" with args to everyone in that room;
* "broadcast"   emits "broadcast" with the arguments to everyone else;
* "ask"         emits "question" with the arguments and an ack callback; the ack's
                arguments are reported as an "answer" line;
* "binary"      emits "binary" with bytes at the top level and nested;
* "kick"        (close): the server disconnects the socket, ``close`` ends the connection.

"/private" refuses connections (ConnectionRefused) unless ``auth.token == "ok"``.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from typing import Any

from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

from entryhw.socketio.server import ConnectionRefused, Namespace, Socket, SocketIOServer
from entryhw.web import Root, make_site

BINARY = b"\x00\x01\x02\xfe\xff"


def jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bin": base64.b64encode(value).decode()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def report(ev: str, socket: Socket, **fields: Any) -> None:
    line = {"ev": ev, "nsp": socket.namespace.name, "sid": socket.sid, **fields}
    sys.stdout.write(json.dumps(jsonable(line), ensure_ascii=False) + "\n")
    sys.stdout.flush()


def serve(ns: Namespace) -> None:
    @ns.on("connect")
    def connect(socket: Socket) -> None:
        query = socket.handshake.query
        report("connect", socket, query=query, auth=socket.handshake.auth)
        if "roomId" in query:
            socket.join(query["roomId"])

    @ns.on("disconnect")
    def disconnect(socket: Socket, reason: str) -> None:
        report("disconnect", socket, reason=reason)

    def handler(fn: Any) -> Any:
        """Registers ``fn`` for the event of its name; reports the event, acks with its args."""
        def wrapped(socket: Socket, *args: Any) -> tuple[Any, ...]:
            report("event", socket, name=fn.__name__, args=args)
            fn(socket, *args)
            return args
        ns.on(fn.__name__, wrapped)
        return fn

    @ns.on("*")
    def anything(socket: Socket, event: str, *args: Any) -> tuple[Any, ...]:
        report("event", socket, name=event, args=args)
        return args

    @handler
    def echo(socket: Socket, *args: Any) -> None:
        socket.emit("echo", *args)

    @handler
    def to_room(socket: Socket, room: str, *args: Any) -> None:
        ns.to(room).emit("room", *args)

    @handler
    def broadcast(socket: Socket, *args: Any) -> None:
        socket.broadcast.emit("broadcast", *args)

    @handler
    def ask(socket: Socket, *args: Any) -> None:
        socket.emit("question", *args,
                    callback=lambda *answer: report("answer", socket, args=answer))

    @handler
    def binary(socket: Socket, *args: Any) -> None:
        socket.emit("binary", BINARY, {"nested": [BINARY[::-1], "text"]})

    @handler
    def kick(socket: Socket, close: bool = False) -> None:
        socket.disconnect(close=close)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-payload", type=int, default=1_000_000)
    parser.add_argument("--ping-interval", type=int, default=2000)
    options = parser.parse_args()
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)],
                                    redirectStandardIO=False)

    sio = SocketIOServer(ping_interval=options.ping_interval, ping_timeout=5000,
                         max_payload=options.max_payload)
    serve(sio.of("/"))
    serve(sio.of("/custom"))

    @sio.of("/private").on("connect")
    def private(socket: Socket) -> None:
        report("connect", socket, query=socket.handshake.query, auth=socket.handshake.auth)
        if socket.handshake.auth.get("token") != "ok":
            raise ConnectionRefused("bad token", {"token": socket.handshake.auth.get("token")})

    root = Root()
    root.putChild(b"socket.io", sio.resource())
    reactor.listenTCP(options.port, make_site(root), interface="127.0.0.1")
    print(json.dumps({"ev": "listening", "port": options.port}), flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
