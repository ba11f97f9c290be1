"""Node test peers for the client tests: a spawned tests/js server and bounded waits.

Shared by tests/test_socketio_client.py and tests/test_engineio_client.py.  A server is
spawned by the reactor on the port it is given (a free loopback one) and killed, with
SIGKILL, in the cleanup of the test that started it; every wait is a Deferred with a
timeout, and nothing sleeps on the reactor's thread.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from tests.support import JS_DIR, node


def unbin(value: Any) -> Any:
    """The servers print binary as {"$bin": base64}; turn it back into bytes."""
    if isinstance(value, list):
        return [unbin(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return base64.b64decode(value["$bin"])
        return {k: unbin(v) for k, v in value.items()}
    return value


def within(d: defer.Deferred[Any], seconds: float, what: Callable[[], str]) -> defer.Deferred[Any]:
    """``d``, failing with an AssertionError naming ``what()`` after ``seconds``."""

    def timed_out(failure: Failure) -> Failure:
        if failure.check(defer.TimeoutError, defer.CancelledError):
            raise AssertionError(f"timed out after {seconds}s waiting for {what()}")
        return failure

    d.addTimeout(seconds, reactor)
    return d.addErrback(timed_out)


def sleep(seconds: float) -> defer.Deferred[None]:
    return task.deferLater(reactor, seconds, lambda: None)


class NodeServer(ProcessProtocol):
    """A tests/js server process (``script`` and its ``args``) listening on ``port``, its JSON
    stdout lines read in the reactor."""

    def __init__(self, script: str, port: int, *args: str) -> None:
        self.argv = [node(), str(JS_DIR / script), *args]
        self.port = port
        self.lines: list[dict[str, Any]] = []
        self._cursor = 0
        self._buf = b""
        self._stderr = bytearray()
        self._waiter: tuple[Callable[[dict[str, Any]], bool], defer.Deferred[Any]] | None = None
        self.ended: defer.Deferred[None] = defer.Deferred()
        self.running = False

    def start(self, test: TestCase) -> defer.Deferred[Any]:
        reactor.spawnProcess(self, self.argv[0], self.argv, env=None)
        self.running = True
        test.addCleanup(self.kill)
        return self.expect(lambda e: e["ev"] == "listening", what="the server to listen")

    def kill(self) -> defer.Deferred[None]:
        if self.running:
            self.transport.signalProcess("KILL")
        return self.ended

    def signal(self, name: str) -> None:
        self.transport.signalProcess(name)

    def expect(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0,
               what: str = "an event") -> defer.Deferred[Any]:
        """The next line (after those already returned) matching ``predicate``."""
        assert self._waiter is None, "one expect() at a time"
        d: defer.Deferred[Any] = defer.Deferred(lambda _: setattr(self, "_waiter", None))
        self._waiter = (predicate, d)
        self._check()
        return within(d, timeout, lambda: f"{what}; saw {self.lines[-8:]!r}; stderr: "
                                          f"{self._stderr.decode('utf-8', 'replace')[-2000:]}")

    def events(self, ev: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.lines
                if e["ev"] == ev and all(e.get(k) == v for k, v in match.items())]

    def _check(self) -> None:
        if self._waiter is None:
            return
        predicate, d = self._waiter
        while self._cursor < len(self.lines):
            line = self.lines[self._cursor]
            self._cursor += 1
            if predicate(line):
                self._waiter = None
                d.callback(line)
                return

    def outReceived(self, data: bytes) -> None:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            self.lines.append(json.loads(raw))
        self._check()

    def errReceived(self, data: bytes) -> None:
        self._stderr += data

    def processEnded(self, reason: Failure) -> None:
        self.running = False
        self.ended.callback(None)


def sio_server(version: str, port: int, *extra: str) -> NodeServer:
    """tests/js/sio_server.js as socket.io 2.x (``"v2"``) or 4.x (``"v4"``)."""
    return NodeServer("sio_server.js", port, version, str(port), *extra)


def raw_server(port: int) -> NodeServer:
    """tests/js/eio_raw_server.js: Engine.IO on a bare WebSocket, misbehaving on cue."""
    return NodeServer("eio_raw_server.js", port, str(port))
