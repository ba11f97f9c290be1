"""A chat relay on entryhw's public API: socket.io-client 2 and 4 at once.

    python examples/echo.py PORT
"""

import sys

from twisted.internet import reactor

from entryhw.socketio.server import SocketIOServer
from entryhw.web import Root, make_site

sio = SocketIOServer()


@sio.on("message")
def message(socket, *args):
    socket.broadcast.emit("message", *args)  # to everyone else, whatever their version
    return "ok"  # answers the sender's ack


root = Root()
root.putChild(b"socket.io", sio.resource())
reactor.listenTCP(int(sys.argv[1]), make_site(root), interface="127.0.0.1")
reactor.run()
