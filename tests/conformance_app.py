"""The reference servers the public Engine.IO / Socket.IO conformance suites expect.

    python tests/conformance_app.py --port 3000              # socket.io-protocol suite
    python tests/conformance_app.py --engineio --port 3000   # engine.io-protocol suite

Socket.IO: the "Test suite" configuration of the socket.io-protocol README
(pingInterval 300, pingTimeout 200, maxPayload 1000000, connectTimeout 1000,
CORS "*"; "auth" emitted on connect, "message" answered by "message-back",
"message-with-ack" acked with its arguments, and a "/custom" namespace).
Engine.IO: the engine.io-protocol README's configuration (path /engine.io/,
same timings, every message echoed back). Both Engine.IO v3 and v4 are
served. Listens on loopback only (127.0.0.1 and ::1, as "localhost" may be
either). Uses nothing but entryhw's public API.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.error import CannotListenError
from twisted.logger import globalLogBeginner, textFileLogObserver

from entryhw.engineio.server import EngineServer
from entryhw.engineio.session import Session
from entryhw.socketio.server import Socket, SocketIOServer
from entryhw.web import Root, make_site

PING_INTERVAL, PING_TIMEOUT, MAX_PAYLOAD = 300, 200, 1_000_000


def socketio_root() -> Root:
    sio = SocketIOServer(ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT,
                         max_payload=MAX_PAYLOAD, connect_timeout=1.0)

    @sio.on("connect")
    def connect(socket: Socket) -> None:
        socket.emit("auth", socket.handshake.auth)

    @sio.on("message")
    def message(socket: Socket, *args: Any) -> None:
        socket.emit("message-back", *args)

    @sio.on("message-with-ack")
    def message_with_ack(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @sio.of("/custom").on("connect")
    def custom(socket: Socket) -> None:
        socket.emit("auth", socket.handshake.auth)

    root = Root()
    root.putChild(b"socket.io", sio.resource())
    return root


def engineio_root() -> Root:
    def echo(session: Session) -> None:
        session.on_message = session.send

    engine = EngineServer(echo, ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT,
                          max_payload=MAX_PAYLOAD)
    root = Root()
    root.putChild(b"engine.io", engine.resource())
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--engineio", action="store_true",
                        help="serve the engine.io-protocol suite's echo server instead")
    args = parser.parse_args(argv)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    site = make_site(engineio_root() if args.engineio else socketio_root())
    try:
        reactor.listenTCP(args.port, site, interface="127.0.0.1")
    except CannotListenError as e:
        print(f"conformance_app: cannot listen on 127.0.0.1:{args.port}: {e.socketError}",
              file=sys.stderr)
        return 1
    try:
        reactor.listenTCP(args.port, site, interface="::1")
    except CannotListenError:
        pass  # no IPv6 loopback here; 127.0.0.1 is enough
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
