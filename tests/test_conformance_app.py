"""tests/conformance_app.py serves what the public conformance suites expect.

The suites themselves live in the socketio/*-protocol repositories and are run
against this app by hand (see docs/conformance.md); these checks keep the
app's configuration honest in every CI run.
"""

from __future__ import annotations

import json
import os
import sys

from twisted.trial.unittest import TestCase

from tests.support import HERE, Proc, free_port, port_is_free, request, wait_for

TEXT = {"content-type": "text/plain;charset=UTF-8"}


class ConformanceAppTests(TestCase):
    timeout = 30

    def start(self, *args: str) -> int:
        port = free_port()
        env = dict(os.environ, PYTHONPATH=str(HERE.parent))
        Proc([sys.executable, str(HERE / "conformance_app.py"), "--port", str(port), *args],
             cleanup=self.addCleanup, stdin=False, env=env, json_stdout=False)
        wait_for(lambda: not port_is_free(port), 10, "the conformance app to listen")
        return port

    def handshake(self, port: int, path: str, eio: int) -> dict:
        status, body, _ = request(port, "GET", f"{path}?EIO={eio}&transport=polling")
        self.assertEqual(status, 200, body)
        text = body.decode()
        if eio == 3:
            length, _, text = text.partition(":")
            self.assertEqual(int(length), len(text))
        self.assertEqual(text[0], "0")
        return json.loads(text[1:])

    def test_engineio_echo_v3_and_v4(self) -> None:
        port = self.start("--engineio")
        for eio, sent in ((3, b"6:4hello"), (4, b"4hello")):
            info = self.handshake(port, "/engine.io/", eio)
            self.assertEqual((info["pingInterval"], info["pingTimeout"], info["maxPayload"]),
                             (300, 200, 1_000_000))
            url = f"/engine.io/?EIO={eio}&transport=polling&sid={info['sid']}"
            self.assertEqual(request(port, "POST", url, sent, TEXT)[:2], (200, b"ok"))
            self.assertEqual(request(port, "GET", url)[:2], (200, sent))

    def test_socketio_reference_behaviours(self) -> None:
        port = self.start()
        sid = self.handshake(port, "/socket.io/", 4)["sid"]
        url = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
        self.assertEqual(request(port, "POST", url, b'40/custom,{"token":"t"}', TEXT)[0], 200)
        frames = request(port, "GET", url)[1].decode().split("\x1e")
        self.assertTrue(frames[0].startswith('40/custom,{"sid":'), frames)
        self.assertEqual(frames[1], '42/custom,["auth",{"token":"t"}]')
        request(port, "POST", url, b'40\x1e42["message",1,"x"]\x1e423["message-with-ack",2]',
                TEXT)
        got = []
        while len(got) < 4:
            got += request(port, "GET", url)[1].decode().split("\x1e")
        self.assertTrue(got[0].startswith('40{"sid":'), got)
        self.assertEqual(got[1:], ['42["auth",{}]', '42["message-back",1,"x"]', "433[2]"])
