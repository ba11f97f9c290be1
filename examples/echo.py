"""A chat relay: socket.io-client 2 and 4 at once, each message to everyone else.

    python examples/echo.py 8000

then connect socket.io clients to http://127.0.0.1:8000 (after pip install .).
"""

import sys

from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site

from entryhw.socketio import SocketIOServer

sio = SocketIOServer()


@sio.on("message")
def message(socket, *args):
    socket.broadcast.emit("message", *args)  # to everyone else, whatever their version
    return "ok"  # answers the sender's ack


if len(sys.argv) != 2 or not sys.argv[1].isdigit():
    sys.exit(f"usage: python {sys.argv[0]} PORT")
root = Resource()
root.putChild(b"socket.io", sio.resource())
port = reactor.listenTCP(int(sys.argv[1]), Site(root), interface="127.0.0.1")
print(f"listening on http://127.0.0.1:{port.getHost().port}/ (Ctrl-C stops)", flush=True)
reactor.run()
