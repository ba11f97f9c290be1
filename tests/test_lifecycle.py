"""A client cannot fire the host's lifecycle hooks by naming them in an event.

socket.io 2 passed ``42["disconnect","forged"]`` to its own ``disconnect``
listeners, so the parent heard ``close`` for a browser that was still there
(and nothing when it really left); ``42["connect"]`` gave a second
``connection``. Here, as socket.io 4 does for any revision, a reserved name is
a protocol error: the connection is closed and the parent hears exactly one
``close``, for the real departure.
"""

from __future__ import annotations

import time

from tests.support import faults, free_port, peer_closed, wait_for, ws_connect, ws_frame
from tests.test_entry import EntryCase, drain

TEXT = 0x1
#: (Engine.IO version, query, what the client sends once connected)
CASES = [
    (3, "EIO=3&transport=websocket&roomId=r", b'42["disconnect","forged"]'),
    (3, "EIO=3&transport=websocket&roomId=r", b'42["disconnect"]'),
    (3, "EIO=3&transport=websocket&roomId=r", b'42["connect"]'),
    (3, "EIO=3&transport=websocket&roomId=r", b'42["connect",1]'),
    (3, "EIO=3&transport=websocket&roomId=r", b'42["disconnecting"]'),
    (4, "EIO=4&transport=websocket&roomId=r", b'42["disconnect","forged"]'),
    (4, "EIO=4&transport=websocket&roomId=r", b'42["connect"]'),
]


class ForgedLifecycleTests(EntryCase):
    def test_reserved_names_close_the_connection_and_nothing_is_forged(self) -> None:
        port = free_port()
        parent = self.host(port)
        drain(parent, 0.3)
        for eio, query, packet in CASES:
            sock, _ = ws_connect(port, query)
            self.addCleanup(sock.close)
            if eio == 4:
                sock.sendall(ws_frame(TEXT, b"40"))  # revision 5 joins "/" explicitly
            parent.message("connection")
            sock.sendall(ws_frame(TEXT, packet))
            # At once, not at the heartbeat timeout (6 s) of a connection left open.
            wait_for(lambda s=sock: peer_closed(s), 3, f"the server to close after {packet!r}")
            parent.message("close", value="r")
            time.sleep(0.3)
            later = [e["msg"]["key"] for e in drain(parent, 0.3) if e.get("ev") == "message"]
            self.assertNotIn("close", later, packet)
            self.assertNotIn("connection", later, packet)
        counts = faults(port)
        self.assertEqual(counts["protocolErrors"], len(CASES))
        self.assertEqual(counts["bugs"], 0)
        self.assertNotIn("Traceback", parent.log_text())
        # Every connection was answered by exactly one connection and one close.
        self.assertEqual(len(parent.messages("connection")), len(CASES))
        self.assertEqual(len(parent.messages("close")), len(CASES))

    def test_toggling_disconnect_and_connect_ends_the_connection(self) -> None:
        """A client DISCONNECT of its last namespace ends the connection (as socket.io-client
        does itself), so a peer cannot make the parent hear close/connection pairs at will:
        5,000 "41"/"40" pairs once made 20,000 IPC lines."""
        port = free_port()
        parent = self.host(port)
        drain(parent, 0.3)
        sock, _ = ws_connect(port, "EIO=3&transport=websocket&roomId=t")
        self.addCleanup(sock.close)
        parent.message("connection")
        for _ in range(20):
            try:
                sock.sendall(ws_frame(TEXT, b"41") + ws_frame(TEXT, b"40"))
            except OSError:
                break  # closed under us, as it should be
        wait_for(lambda: peer_closed(sock), 3, "the server to end the connection")
        parent.message("close", value="t")
        time.sleep(0.5)
        drain(parent, 0.3)
        self.assertEqual(len(parent.messages("connection")), 1)
        self.assertEqual(len(parent.messages("close")), 1)
