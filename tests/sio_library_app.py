"""A Socket.IO app for tests/test_socketio_library.py: the library's features, public API only.

    python tests/sio_library_app.py --port N

One JSON line on stdout per server-side happening ("listening", "connect", "ran",
"disconnect"). On "/":

* connect: three handlers run in order, each noting its name; the last reports
  ``{"ev": "connect", "order": [...]}``;
* "several" (two handlers): the first acks "first", the second reports "ran" and returns
  "second" (which must not answer);
* "async" / "deferred": acked with the arguments after 0.1 s (coroutine) / 0.05 s
  (Deferred);
* "fails" / "fails_later": raises at once / after 0.05 s (async): no ack;
* "bugs": acks how many handler errors were contained so far;
* "join" (room), "rooms", "close_room" (room), "to_room" (room, *args), "disconnect_sid"
  (sid): socket.join, server.rooms(sid), server.close_room, emit "room" to the room,
  server.disconnect(sid); each acks what the call returned (sorted rooms, counts, bools).

"/slow" accepts after 0.2 s; its handler emits "early" before it decides. "/refuse" has an
accepting handler, then an async one that refuses after 0.05 s, then one reporting "never".
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.web.resource import Resource
from twisted.web.server import Site

from entryhw.socketio import Socket, SocketIOServer


def report(ev: str, socket: Socket | None = None, **fields: Any) -> None:
    line = {"ev": ev, **fields}
    if socket is not None:
        line.update(nsp=socket.namespace.name, sid=socket.sid)
    sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def build(sio: SocketIOServer) -> None:
    for name in ("first", "second", "third"):
        @sio.on("connect")
        def noted(socket: Socket, name: str = name) -> None:
            socket.data.setdefault("order", []).append(name)
            if name == "third":
                report("connect", socket, order=socket.data["order"])

    @sio.on("disconnect")
    def gone(socket: Socket, reason: str) -> None:
        report("disconnect", socket, reason=reason)

    @sio.on("several")
    def answers(socket: Socket, *args: Any) -> str:
        return "first"

    @sio.on("several")
    def also_runs(socket: Socket, *args: Any) -> str:
        report("ran", socket, handler="also_runs", args=args)
        return "second"

    @sio.on("async")
    async def later(socket: Socket, *args: Any) -> tuple[Any, ...]:
        await deferLater(reactor, 0.1)
        return args

    @sio.on("deferred")
    def deferred(socket: Socket, *args: Any) -> Deferred[tuple[Any, ...]]:
        return deferLater(reactor, 0.05, lambda: args)

    @sio.on("fails")
    def fails(socket: Socket, *args: Any) -> None:
        raise RuntimeError("a handler bug")

    @sio.on("fails_later")
    async def fails_later(socket: Socket, *args: Any) -> None:
        await deferLater(reactor, 0.05)
        raise RuntimeError("an async handler bug")

    sio.on("bugs", lambda socket: sio.faults.counts()["bugs"])
    sio.on("join", lambda socket, room: socket.join(room))
    sio.on("rooms", lambda socket: sorted(sio.rooms(socket.sid)))
    sio.on("close_room", lambda socket, room: sio.close_room(room))
    sio.on("to_room", lambda socket, room, *args: sio.to(room).emit("room", *args))
    sio.on("disconnect_sid", lambda socket, sid: sio.disconnect(sid))

    @sio.of("/slow").on("connect")
    async def slow(socket: Socket) -> None:
        socket.emit("early", "sent while deciding")
        await deferLater(reactor, 0.2)
        report("connect", socket, order=["slow"])

    refuse = sio.of("/refuse")
    refuse.on("connect", lambda socket: report("ran", socket, handler="accepts"))

    @refuse.on("connect")
    async def refuses(socket: Socket) -> bool:
        await deferLater(reactor, 0.05)
        report("ran", socket, handler="refuses")
        return False

    refuse.on("connect", lambda socket: report("ran", socket, handler="never"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)],
                                    redirectStandardIO=False)
    sio = SocketIOServer(ping_interval=2000, ping_timeout=5000)
    build(sio)
    root = Resource()
    root.putChild(b"socket.io", sio.resource())
    reactor.listenTCP(options.port, Site(root), interface="127.0.0.1")
    report("listening", port=options.port)
    reactor.run()


if __name__ == "__main__":
    main()
