"""Socket.IO for Twisted: a server and a client speaking revisions 4 and 5 at once.

Revision 4 is socket.io 2.x (Engine.IO 3), revision 5 socket.io 3.x/4.x (Engine.IO 4)::

    from entryhw.socketio import SocketIOServer

    sio = SocketIOServer()
    root.putChild(b"socket.io", sio.resource())

    @sio.on("message")
    async def message(socket, *args):
        return await socket.call("question", *args, timeout=5.0)

The names below load on first use: the codec needs no Twisted, a server no client
(Autobahn's WebSocket client), a client no server. Modules: ``server`` (with
``sockets``, ``namespace``, ``rooms``, ``connection``, ``handlers``, ``acks``), ``client``,
``packets`` (the sans-I/O codec: ``protocol``, ``decoding``, ``encoding``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from entryhw.lazy import exports

if TYPE_CHECKING:
    from entryhw.socketio.acks import AckError, AckLost, AckTimeout
    from entryhw.socketio.client import ConnectError, SocketIOClient
    from entryhw.socketio.connection import ConnectionRefused
    from entryhw.socketio.decoding import Decoder, decode
    from entryhw.socketio.encoding import encode
    from entryhw.socketio.namespace import Namespace
    from entryhw.socketio.protocol import DecodeError, Packet
    from entryhw.socketio.rooms import Broadcast
    from entryhw.socketio.server import SocketIOServer
    from entryhw.socketio.sockets import Handshake, Socket

#: Public name -> the module defining it.
_EXPORTS = {
    "SocketIOServer": "entryhw.socketio.server",
    "Socket": "entryhw.socketio.sockets",
    "Handshake": "entryhw.socketio.sockets",
    "Namespace": "entryhw.socketio.namespace",
    "Broadcast": "entryhw.socketio.rooms",
    "ConnectionRefused": "entryhw.socketio.connection",
    "AckError": "entryhw.socketio.acks",
    "AckTimeout": "entryhw.socketio.acks",
    "AckLost": "entryhw.socketio.acks",
    "Packet": "entryhw.socketio.protocol",
    "DecodeError": "entryhw.socketio.protocol",
    "encode": "entryhw.socketio.encoding",
    "decode": "entryhw.socketio.decoding",
    "Decoder": "entryhw.socketio.decoding",
    "SocketIOClient": "entryhw.socketio.client",
    "ConnectError": "entryhw.socketio.client",
}

__all__ = [
    "AckError",
    "AckLost",
    "AckTimeout",
    "Broadcast",
    "ConnectError",
    "ConnectionRefused",
    "DecodeError",
    "Decoder",
    "Handshake",
    "Namespace",
    "Packet",
    "Socket",
    "SocketIOClient",
    "SocketIOServer",
    "decode",
    "encode",
]


__getattr__, __dir__ = exports(__name__, _EXPORTS, globals())
