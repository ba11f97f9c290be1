"""One Engine.IO session: heartbeat, buffering, upgrade, close.

Transport-agnostic: a session talks to at most one long-poll request and one
WebSocket (plus one upgrading WebSocket) through the small ``Poll`` and
``Socket`` surfaces below, and to time through ``IReactorTime``, so it runs
under a fake clock in tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from entryhw.engineio.packets import (
    CLOSE,
    MESSAGE,
    NOOP,
    PING,
    PONG,
    UPGRADE,
    Packet,
    Utf8,
    encode_packet,
    encode_payload,
)
from entryhw.limits import MAX_BACKLOG

_NOOP = Packet(NOOP)
_CLOSE = Packet(CLOSE)


class Poll(Protocol):
    """A held long-polling GET (twisted.web Request)."""

    def write(self, data: bytes) -> None: ...
    def setHeader(self, name: bytes, value: bytes) -> None: ...
    def finish(self) -> None: ...


class Socket(Protocol):
    """A WebSocket connection (Autobahn protocol)."""

    def sendMessage(self, payload: bytes, isBinary: bool = False) -> None: ...
    def sendClose(self, code: int | None = None, reason: str | None = None) -> None: ...


class Session:
    """State of one client, whichever transport carries it.

    The application sets ``on_message(data)`` and ``on_close(reason)``; it
    calls :meth:`send` and :meth:`close`. Reasons follow engine.io's names:
    "transport close", "ping timeout", "parse error", "transport error",
    "forced close", "server shutting down".
    """

    def __init__(
        self,
        server: Any,
        sid: str,
        eio: int,
        *,
        query: dict[str, str],
        headers: dict[str, str],
        remote: str,
        b64: bool = False,
        jsonp: str | None = None,
    ) -> None:
        self.server = server
        self.sid = sid
        self.eio = eio
        self.query = query
        self.headers = headers
        self.remote = remote
        self.b64 = b64
        self.jsonp = jsonp
        self.transport = "polling"
        self.closed = False
        self.on_message: Callable[[str | bytes], None] = _drop
        self.on_close: Callable[[str], None] = _drop
        self._buffer: list[Packet] = []
        self._buffered = 0  # bytes in _buffer, roughly
        self._poll: Any = None
        self._ws: Any = None
        self._upgrading: Any = None
        self._probed = False
        self._closing = False
        self._ping_timer: Any = None
        self._timeout_timer: Any = None
        self._upgrade_timer: Any = None
        self._close_timer: Any = None
        self._closing_reason = ""

    # -- application side ----------------------------------------------

    def send(self, data: str | bytes) -> None:
        """Queue one message; written at once on a WebSocket, or on the next poll.

        ``str`` and :class:`~entryhw.engineio.packets.Utf8` are text, other ``bytes``
        binary.

        Never raises: a message for a session that is closing is dropped (and
        counted), and a polling client that leaves more than
        :data:`~entryhw.limits.MAX_BACKLOG` uncollected is disconnected.
        """
        if self.closed or self._closing:
            self.server.faults.count("sendsDropped")
            return
        ws = self._ws
        kind = type(data)
        if ws is not None:
            if kind is Utf8:
                ws.sendMessage(b"4" + data, False)
            elif kind is str:
                ws.sendMessage(("4" + data).encode(), False)  # type: ignore[operator]
            else:
                self._ws_send(Packet(MESSAGE, data))
            return
        self._queue(Packet(MESSAGE, data.decode() if kind is Utf8 else data))  # type: ignore[union-attr]

    def _queue(self, packet: Packet) -> None:
        """Buffer a packet for the next poll, within the backlog limit."""
        self._buffered += len(packet[1] or "") + 8
        if self._buffered > MAX_BACKLOG:
            self.server.faults.peer(
                "slowReaders", "engine.io session {sid}: over {n} bytes waiting for a poll "
                "that does not come; closing", sid=self.sid, n=MAX_BACKLOG)
            self.terminate("transport error")
            return
        self._buffer.append(packet)
        if self._poll is not None:
            self._flush_poll()

    def close(self, reason: str = "forced close") -> None:
        """Close from the server side, after what is queued has been delivered."""
        if self.closed or self._closing:
            return
        if self._ws is not None:
            self._finish(reason)
            return
        self._closing = True
        self._closing_reason = reason
        self._buffer.append(_CLOSE)  # not counted: the close must get through
        if self._poll is not None:
            self._flush_poll()
        else:
            # Give the client one poll cycle to collect the close packet.
            wait = (self.server.ping_interval + self.server.ping_timeout) / 1000
            self._close_timer = self.server.clock.callLater(wait, self._finish, reason)

    # -- heartbeat ---------------------------------------------------------

    def start(self) -> None:
        """Arm the heartbeat once the handshake has been sent."""
        if self.eio == 3:
            self._arm_timeout(self.server.ping_interval + self.server.ping_timeout)
        else:
            self._schedule_ping()

    def expired(self) -> bool:
        """True if the heartbeat deadline has passed (checked as requests arrive,
        so a request racing the timer cannot revive a dead session)."""
        timer = self._timeout_timer
        if timer is not None and timer.active() and timer.getTime() <= self.server.clock.seconds():
            self._finish("ping timeout")
        return self.closed

    def _arm_timeout(self, ms: int) -> None:
        timer = self._timeout_timer
        if timer is not None and timer.active():
            timer.reset(ms / 1000)
        else:
            self._timeout_timer = self.server.clock.callLater(ms / 1000, self._finish,
                                                              "ping timeout")

    def _schedule_ping(self) -> None:
        self._ping_timer = self.server.clock.callLater(self.server.ping_interval / 1000,
                                                       self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        if self.closed:
            return
        self._send_packet(Packet(PING))
        self._arm_timeout(self.server.ping_timeout)

    # -- transport side ------------------------------------------------

    def receive(self, packet: Packet) -> None:
        """One packet from the client on the active transport."""
        if self.closed:
            return
        ptype = packet[0]
        if ptype == MESSAGE:
            if self.eio == 3:
                self._arm_timeout(self.server.ping_interval + self.server.ping_timeout)
            self.on_message(packet[1])
        elif ptype == PING and self.eio == 3:
            self._arm_timeout(self.server.ping_interval + self.server.ping_timeout)
            self._send_packet(Packet(PONG, packet[1]))
        elif ptype == PONG and self.eio == 4:
            if self._timeout_timer is not None and self._timeout_timer.active():
                self._timeout_timer.cancel()
            self._timeout_timer = None
            if self._ping_timer is None:
                self._schedule_ping()
        elif ptype == CLOSE:
            self._finish("transport close", reply=_NOOP)
        elif ptype == NOOP:
            pass
        elif ptype in (PING, PONG):
            self.fail("transport error", "heartbeat in the wrong direction")
        else:
            self.fail("parse error", f"unexpected packet type {ptype} from the client")

    def fail(self, reason: str, why: str, *, reply: bool = True) -> None:
        """The client broke the protocol: one (rate-limited) line, counted; the session ends.

        ``reply`` sends a CLOSE packet on the way out, where the transport still works.
        """
        self.server.faults.peer("protocolErrors", "engine.io session {sid} closed: {why}",
                                sid=self.sid, why=why)
        self._finish(reason, reply=_CLOSE if reply else None)

    def terminate(self, reason: str) -> None:
        """End the session now (what is queued is dropped); ``on_close(reason)`` runs."""
        self._finish(reason)

    def _send_packet(self, packet: Packet) -> None:
        if self._ws is not None:
            self._ws_send(packet)
        else:
            self._queue(packet)

    def _ws_send(self, packet: Packet, ws: Any = None) -> None:
        frame = encode_packet(packet, self.eio, b64=self.b64)
        if type(frame) is str:
            (ws or self._ws).sendMessage(frame.encode(), False)
        else:
            (ws or self._ws).sendMessage(frame, True)

    # -- polling -----------------------------------------------------------

    def poll(self, request: Any) -> bool:
        """A GET arrived. Returns False if it must be refused (400)."""
        if self.transport != "polling":
            return False
        if self._poll is not None:
            # Two concurrent polls: the client is confused; end the session.
            self.fail("transport error", "overlapping polls")
            return False
        self._poll = request
        if self._buffer:
            self._flush_poll()
        elif self._probed:
            self._reply(_NOOP)
        return True

    def poll_gone(self, request: Any) -> None:
        """The held GET's connection dropped before an answer."""
        if self._poll is request:
            self._poll = None
            if self.transport == "polling":
                self._finish("transport close")

    def _flush_poll(self) -> None:
        packets, self._buffer = self._buffer, []
        self._buffered = 0
        self._write_poll(packets)
        if self._closing and _CLOSE in packets:
            self._finish(self._closing_reason)

    def _reply(self, packet: Packet) -> None:
        self._write_poll([packet])

    def _write_poll(self, packets: list[Packet]) -> None:
        request, self._poll = self._poll, None
        body, content_type = encode_payload(packets, self.eio, b64=self.b64, jsonp=self.jsonp)
        self.server.respond(request, 200, body, content_type)

    # -- websocket ---------------------------------------------------------

    @property
    def websocket(self) -> Any:
        """The WebSocket carrying this session, or None (polling, or gone)."""
        return self._ws

    def attach_websocket(self, ws: Any) -> None:
        """A direct WebSocket session: the socket is the transport from the start."""
        self.transport = "websocket"
        self._ws = ws

    def begin_upgrade(self, ws: Any) -> bool:
        """A WebSocket with this sid arrived; it must probe then send UPGRADE."""
        if (self.transport != "polling" or self._upgrading is not None or self._closing
                or self.closed):
            return False
        self._upgrading = ws
        self._upgrade_timer = self.server.clock.callLater(
            self.server.upgrade_timeout, self._upgrade_expired, ws)
        return True

    def _upgrade_expired(self, ws: Any) -> None:
        if self._upgrading is ws:
            self._upgrading = None
            self._probed = False
            ws.sendClose(1000)

    def upgrade_packet(self, ws: Any, packet: Packet) -> None:
        """A packet on the upgrading socket: probe ping, then UPGRADE."""
        if ws is not self._upgrading or self.closed:
            ws.sendClose(1000)
            return
        ptype, data = packet
        if ptype == PING and data == "probe":
            self._ws_send(Packet(PONG, "probe"), ws)
            self._probed = True
            if self._poll is not None:
                self._reply(_NOOP)  # end the held poll so the client can switch
        elif ptype == UPGRADE and self._probed:
            self._cancel(self._upgrade_timer)
            self._upgrading = None
            self._probed = False
            self.transport = "websocket"
            self._ws = ws
            if self._poll is not None:
                self._reply(_NOOP)
            packets, self._buffer = self._buffer, []
            self._buffered = 0
            for p in packets:
                self._ws_send(p)
        else:
            self._upgrading = None
            self._probed = False
            ws.sendClose(1000)

    def websocket_closed(self, ws: Any) -> None:
        if ws is self._upgrading:
            self._upgrading = None
            self._probed = False
        elif ws is self._ws:
            self._ws = None
            self._finish("transport close")

    # -- the end -----------------------------------------------------------

    def _finish(self, reason: str, reply: Packet | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        for timer in (self._ping_timer, self._timeout_timer, self._upgrade_timer,
                      self._close_timer):
            self._cancel(timer)
        if self._poll is not None:
            self._reply(reply or _CLOSE)
        if self._ws is not None:
            self._ws.sendClose(1000)
            self._ws = None
        if self._upgrading is not None:
            self._upgrading.sendClose(1000)
            self._upgrading = None
        self._buffer = []
        self._buffered = 0
        self.server.forget(self)
        self.on_close(reason)

    @staticmethod
    def _cancel(timer: Any) -> None:
        if timer is not None and timer.active():
            timer.cancel()


def _drop(*args: Any) -> None:
    pass

