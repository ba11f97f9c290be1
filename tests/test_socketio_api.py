"""The public names of entryhw.socketio: all there, the right objects, loaded on first use."""

from __future__ import annotations

import json
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

import entryhw.socketio as socketio
from entryhw.socketio import acks, client, connection, namespace, rooms, server, sockets
from entryhw.socketio import packets as codec

EXPECTED = {
    "SocketIOServer": server.SocketIOServer,
    "Socket": sockets.Socket,
    "Namespace": namespace.Namespace,
    "Broadcast": rooms.Broadcast,
    "ConnectionRefused": connection.ConnectionRefused,
    "Handshake": sockets.Handshake,
    "AckError": acks.AckError,
    "AckTimeout": acks.AckTimeout,
    "AckLost": acks.AckLost,
    "Packet": codec.Packet,
    "DecodeError": codec.DecodeError,
    "encode": codec.encode,
    "decode": codec.decode,
    "Decoder": codec.Decoder,
    "SocketIOClient": client.SocketIOClient,
    "ConnectError": client.ConnectError,
}

_PROBE = """
import json, sys
import entryhw.socketio as sio
before = sorted(m for m in sys.modules if m.startswith("entryhw.socketio.") or m == "twisted")
sio.Packet
after_codec = sorted(m for m in sys.modules if m.startswith("entryhw.socketio."))
twisted_after_codec = "twisted" in sys.modules
sio.SocketIOServer
print(json.dumps({"before": before, "codec": after_codec, "twisted": twisted_after_codec,
                  "client": "entryhw.socketio.client" in sys.modules}))
"""


class PublicNamesTests(SynchronousTestCase):
    def test_every_public_name_is_the_object_of_its_module(self) -> None:
        self.assertEqual(sorted(socketio.__all__), sorted(EXPECTED))
        for name, obj in EXPECTED.items():
            self.assertIs(getattr(socketio, name), obj, name)
        self.assertEqual(set(dir(socketio)) & set(EXPECTED), set(EXPECTED))
        namespace_: dict[str, object] = {}
        exec("from entryhw.socketio import *", namespace_)
        self.assertEqual(set(namespace_) - {"__builtins__"}, set(EXPECTED))

    def test_an_unknown_name_is_an_attribute_error(self) -> None:
        with self.assertRaises(AttributeError):
            socketio.SocketIOServe  # noqa: B018

    def test_the_old_import_paths_still_work(self) -> None:
        for name in ("SocketIOServer", "Socket", "Namespace", "Broadcast", "ConnectionRefused",
                     "Handshake"):
            self.assertIs(getattr(server, name), EXPECTED[name], name)

    def test_names_load_on_first_use(self) -> None:
        out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                             timeout=60, check=True)
        seen = json.loads(out.stdout)
        self.assertEqual(seen["before"], [])
        self.assertEqual(seen["codec"], ["entryhw.socketio.protocol"])
        self.assertFalse(seen["twisted"], "the codec pulled in Twisted")
        self.assertFalse(seen["client"], "the server pulled in the client")


class EngineIOExportsTests(SynchronousTestCase):
    """entryhw.engineio the same way: every public name, and nothing loaded before use."""

    def test_names_and_laziness(self) -> None:
        import entryhw.engineio as engineio
        from entryhw.engineio import client, handshake, packets, session
        from entryhw.engineio import server as eserver

        expected = {
            "EngineServer": eserver.EngineServer, "Session": session.Session,
            "EngineIOClient": client.EngineIOClient, "Handshake": handshake.Handshake,
            "EngineURL": handshake.EngineURL, "Heartbeat": handshake.Heartbeat,
            "engineio_url": handshake.engineio_url, "Packet": packets.Packet,
            "DecodeError": packets.DecodeError, "encode_packet": packets.encode_packet,
            "decode_packet": packets.decode_packet, "encode_payload": packets.encode_payload,
            "decode_payload": packets.decode_payload,
        }
        self.assertEqual(sorted(engineio.__all__), sorted(expected))
        for name, obj in expected.items():
            self.assertIs(getattr(engineio, name), obj, name)
        with self.assertRaises(AttributeError):
            engineio.no_such_name  # noqa: B018
        probe = ("import sys, entryhw.engineio as e; e.Packet; "
                 "print('entryhw.engineio.client' in sys.modules, 'twisted' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                             timeout=60, check=True)
        self.assertEqual(out.stdout.split(), ["False", "False"])
