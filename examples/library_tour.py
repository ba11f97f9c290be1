"""The library's features: several handlers per event, async handlers, acks with a timeout.

    python examples/library_tour.py 8000

then, from socket.io-client 2.x or 4.x at http://127.0.0.1:8000:

* on connect two handlers run, in order: one joins the room "lobby", the next emits
  "welcome" with the rooms the socket is in (its own sid's room and "lobby");
* ``emit("add", a, b, ack)``: an async handler acks with a + b after 0.1 s; a second
  handler tells the rest of the lobby ("added", a, b), its return value unused;
* ``emit("ask", sid, question, ack)``: the server asks client ``sid`` "question" and
  acks with that client's answer, or with "no answer" after 2 s;
* ``emit("kick", sid, ack)``: disconnects client ``sid``, acks whether there was one.
"""

import sys

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.web.resource import Resource
from twisted.web.server import Site

from entryhw.socketio import AckError, SocketIOServer

sio = SocketIOServer()


@sio.on("connect")
def join_lobby(socket):
    socket.join("lobby")


@sio.on("connect")
def welcome(socket):  # runs second: the socket is in the lobby already
    socket.emit("welcome", sorted(sio.rooms(socket.sid)))


@sio.on("add")
async def add(socket, a, b):
    await deferLater(reactor, 0.1)  # slow work: the ack waits for the result
    return a + b  # the first handler's result answers the ack


@sio.on("add")
def tell_the_lobby(socket, a, b):  # runs too, at once
    socket.to("lobby").emit("added", a, b)


@sio.on("ask")
async def ask(socket, sid, question):
    other = sio.socket(sid)
    if other is None:
        return "no such client"
    try:
        answer = await other.call("question", question, timeout=2.0)
    except AckError:  # AckTimeout after 2 s, AckLost if it disconnects first
        return "no answer"
    return tuple(answer)  # a tuple acks with several arguments


@sio.on("kick")
def kick(socket, sid):
    return sio.disconnect(sid)


if len(sys.argv) != 2 or not sys.argv[1].isdigit():
    sys.exit(f"usage: python {sys.argv[0]} PORT")
root = Resource()
root.putChild(b"socket.io", sio.resource())
port = reactor.listenTCP(int(sys.argv[1]), Site(root), interface="127.0.0.1")
print(f"listening on http://127.0.0.1:{port.getHost().port}/ (Ctrl-C stops)", flush=True)
reactor.run()
