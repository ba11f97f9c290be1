"""What every Engine.IO WebSocket (server side and client side) adds to Autobahn's protocol.

Through Autobahn's public API only (``dataReceived``, ``sendMessage``, ``state``):

* containment: whatever a read sets off stays with this connection; an exception (a bug
  of ours) is logged once and costs this connection, never the reactor's caller;
* once the connection is closing (a peer that sent its close frame, or broke the
  protocol, is gone for us before ``onClose`` says so) a send is dropped and counted,
  where Autobahn would raise ``Disconnected`` into whoever was sending;
* a bound on what the peer leaves unread (:class:`entryhw.writes.Backlog`): while the
  transport is full, messages wait here; past :data:`~entryhw.limits.MAX_BACKLOG` the
  peer is cut off.

:func:`mixin` picks the class to mix in: this one, or the fast frame path of
:mod:`entryhw.fastpath.frames` (built on it) when that path is on and passes its
self-test.
"""

from __future__ import annotations

from typing import Any

from autobahn.websocket.protocol import WebSocketProtocol
from twisted.logger import Logger

from entryhw import writes
from entryhw.faults import Faults
from entryhw.limits import MAX_BACKLOG

log = Logger()

#: Frame header bytes counted per held message (the most a frame header takes).
_HEADER = 14


class GuardedWebSocket(writes.BatchedWrites):
    """Mix in before an Autobahn WebSocket protocol class; its factory has ``faults``."""

    state: int
    transport: Any
    factory: Any
    _cut_off = False

    @property
    def faults(self) -> Faults:
        """Where this connection's faults are counted: its factory's ``faults``."""
        return self.factory.faults  # type: ignore[no-any-return]

    def connectionMade(self) -> None:
        super().connectionMade()  # type: ignore[misc]
        self.watch_backlog(MAX_BACKLOG)

    def backlog_exceeded(self, size: int) -> None:
        if self._cut_off:
            self.faults.count("sendsDropped")
            return
        self._cut_off = True
        if self.transport is not None:
            self.faults.peer("slowReaders", "WebSocket peer {peer} is not reading (over {n} "
                             "bytes unread); disconnecting it", peer=self.transport.getPeer(),
                             n=MAX_BACKLOG)
            self.transport.abortConnection()

    def dataReceived(self, data: bytes) -> None:
        try:
            super().dataReceived(data)  # type: ignore[misc]
        except Exception:
            self.faults.bug("a WebSocket read")
            if self.transport is not None:
                self.transport.abortConnection()

    def sendMessage(self, payload: bytes, isBinary: bool = False, *args: Any, **kw: Any) -> None:
        """Send, hold while the peer is full, or drop (counted) once closing."""
        if self.state != WebSocketProtocol.STATE_OPEN:
            self.faults.count("sendsDropped")
            return
        backlog = self.backlog
        if backlog is not None and (backlog.paused or backlog.held):
            if not backlog.hold((payload, isBinary, args, kw), len(payload) + _HEADER):
                self.backlog_exceeded(len(payload))
            return
        super().sendMessage(payload, isBinary, *args, **kw)  # type: ignore[misc]

    def _backlog_drained(self) -> None:
        backlog = self.backlog
        if backlog is None or not backlog.held:
            return
        for payload, binary, args, kw in backlog.take():
            if self.state != WebSocketProtocol.STATE_OPEN:
                self.faults.count("sendsDropped")
                continue
            super().sendMessage(payload, binary, *args, **kw)  # type: ignore[misc]


def mixin() -> type:
    """The class an Engine.IO WebSocket protocol mixes in (see the module docstring)."""
    from entryhw.fastpath import frames

    return frames.FastFrames if frames.usable() else GuardedWebSocket
