"""Engine.IO for Twisted: protocol versions 3 and 4, WebSocket and long-polling.

The server is a twisted.web resource; each connection is a :class:`Session` whose user
(Socket.IO, or any other) gets ``on_connection(session)`` and then the session's
messages::

    from entryhw.engineio import EngineServer

    def connected(session):
        session.on_message = lambda data: session.send(data)  # echo

    engine = EngineServer(connected)
    root.putChild(b"engine.io", engine.resource())

The client (:class:`EngineIOClient`, WebSocket only) is what the Socket.IO client runs
on. The names below load on first use: the codec needs no Twisted, a server no client.
Modules: ``packets`` (the sans-I/O codec), ``session``, ``server``, ``frames`` (the
sans-I/O WebSocket frames of the fast path), ``websocket``, ``handshake``, ``client``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from entryhw.lazy import exports

if TYPE_CHECKING:
    from entryhw.engineio.client import EngineIOClient
    from entryhw.engineio.handshake import EngineURL, Handshake, Heartbeat, engineio_url
    from entryhw.engineio.packets import (
        DecodeError,
        Packet,
        decode_packet,
        decode_payload,
        encode_packet,
        encode_payload,
    )
    from entryhw.engineio.server import EngineServer
    from entryhw.engineio.session import Session

#: Public name -> the module defining it.
_EXPORTS = {
    "EngineServer": "entryhw.engineio.server",
    "Session": "entryhw.engineio.session",
    "Packet": "entryhw.engineio.packets",
    "DecodeError": "entryhw.engineio.packets",
    "encode_packet": "entryhw.engineio.packets",
    "decode_packet": "entryhw.engineio.packets",
    "encode_payload": "entryhw.engineio.packets",
    "decode_payload": "entryhw.engineio.packets",
    "EngineIOClient": "entryhw.engineio.client",
    "EngineURL": "entryhw.engineio.handshake",
    "Handshake": "entryhw.engineio.handshake",
    "Heartbeat": "entryhw.engineio.handshake",
    "engineio_url": "entryhw.engineio.handshake",
}

__all__ = [
    "DecodeError",
    "EngineIOClient",
    "EngineServer",
    "EngineURL",
    "Handshake",
    "Heartbeat",
    "Packet",
    "Session",
    "decode_packet",
    "decode_payload",
    "encode_packet",
    "encode_payload",
    "engineio_url",
]


__getattr__, __dir__ = exports(__name__, _EXPORTS, globals())
