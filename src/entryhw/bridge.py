"""The Entry routing rules (docs/protocol.md: "The parent channel", "Routing on the host"
and "Client mode (cloud PCs)") as plain Python.

No sockets, no reactor: the :class:`Bridge` is fed parent messages and socket
events and answers through the calls of an :class:`Outputs` object, which
the Twisted glue implements with the Socket.IO server, the host client and
the IPC channel (and tests implement with a recorder).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.logger import Logger, LogLevel

from entryhw.faults import Faults
from entryhw.policy import is_hardware_client

log = Logger()

#: runningModeChanged values.
HOST, CLIENT = 2, 3
#: cloudModeChanged values.
SINGLE, CLOUD = 0, 1

#: Internal room every browser joins, so "all browsers" is one broadcast.
#: Room ids from the outside may not start with NUL (see :func:`room_id`).
BROWSERS = "\x00browsers"


class Outputs(Protocol):
    """What the bridge can make happen."""

    def to_parent(self, key: str, value: Any = ...) -> None: ...
    def open(self) -> None: ...
    def emit_to_socket(self, sid: str, event: str, payload: Any) -> None: ...
    def emit_to_room(self, room: str, event: str, payload: Any) -> None: ...
    def join(self, sid: str, room: str) -> None: ...
    def emit_to_host(self, event: str, payload: Any) -> None: ...


def room_id(value: Any) -> str | None:
    """A usable room id from a query value or ``matchTarget`` argument, else None."""
    if isinstance(value, dict):
        value = value.get("roomId")
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)  # entryjs may send a numeric id; rooms are strings
    if isinstance(value, str) and value and not value.startswith("\x00") and len(value) <= 256:
        return value
    return None


@dataclass
class Stats:
    """Counters for /status."""

    started: float = field(default_factory=time.monotonic)
    messages_in: int = 0
    messages_out: int = 0
    hardware_connected: int = 0
    hardware_failed: int = 0
    rejected: int = 0


class Bridge:
    """Routing state of one server process, host or client.

    Host side: ``browsers`` and ``hardware`` map socket ids to their room
    (``None`` until known); ``matched`` maps a room to the hardware client
    that serves it. Client side: ``own_room`` is re-announced to the host with
    ``matchTarget`` on every (re)connect.
    """

    def __init__(self, out: Outputs, crypto: Callable[[str, str], str] | None = None,
                 faults: Faults | None = None) -> None:
        self.out = out
        self.crypto = crypto
        self.faults = faults if faults is not None else Faults()
        self.mode: int | None = None
        self.own_room: str | None = None
        self.host_connected = False
        self.browsers: dict[str, str | None] = {}
        self.hardware: dict[str, str | None] = {}
        self.matched: dict[str, str] = {}
        # Rooms claimed while another hardware client held them: granted in order
        # when the holder leaves (a copy back after a failover, before the host
        # noticed its old connection was gone).
        self.claims: dict[str, list[str]] = {}
        self.stats = Stats()
        self.parent_handlers: dict[str, Callable[[Any], None]] = {
            "open": lambda _value: self.out.open(),
            "addRoomId": self.add_room_id,
            "send": self.send,
            "disconnectHardware": lambda _value: self.send("disconnectHardware"),
            "connectHardwareSuccess": self._hardware_success,
            "connectHardwareFailed": self._hardware_failed,
            "encrypt": lambda value: self._crypto("encrypt", value),
            "decrypt": lambda value: self._crypto("decrypt", value),
            "secret": self._secret,
        }

    @property
    def cloud_mode(self) -> int:
        if self.mode == CLIENT:
            return CLOUD
        return CLOUD if self.hardware else SINGLE

    # -- modes -----------------------------------------------------------

    def became_host(self) -> None:
        self.mode = HOST
        self.host_connected = False
        self.out.to_parent("runningModeChanged", HOST)
        self.out.to_parent("cloudModeChanged", SINGLE)

    def became_client(self) -> None:
        self.mode = CLIENT
        self.browsers.clear()
        self.hardware.clear()
        self.matched.clear()
        self.out.to_parent("runningModeChanged", CLIENT)
        self.out.to_parent("cloudModeChanged", CLOUD)

    # -- parent messages -------------------------------------------------

    def from_parent(self, key: str, value: Any) -> bool:
        """Handle one parent message: the one place they are dispatched.

        False (and a rate-limited log line) if the key is not one of docs/protocol.md's
        ("Parent to server").
        """
        handler = self.parent_handlers.get(key)
        if handler is None:
            self.faults.peer("ipcRejected", "IPC: ignoring a message with unknown key {name!r}",
                             key=("unknown key", key[:40]), name=key[:40], level=LogLevel.warn)
            return False
        handler(value)
        return True

    def add_room_id(self, value: Any) -> None:
        room = room_id(value)
        if room is None:
            self.faults.throttled("addRoomId: {value} is not a usable room id; ignored",
                                  value=repr(value)[:80], level=LogLevel.warn)
            return
        self.own_room = room
        if self.mode == CLIENT and self.host_connected:
            self.out.emit_to_host("matchTarget", room)
        holder = self.matched.pop(room, None)
        if holder is not None:
            # The parent names its own pupil's room: no copy may keep serving it.
            self.faults.peer("roomClaimsRefused", "addRoomId: hardware client {sid} held this "
                             "host's own room; revoked", sid=holder)
            self.hardware[holder] = None

    def send(self, value: Any) -> None:
        """Parent ``send``: ``{data: value}`` to our browser(s), wherever they are."""
        payload = {"data": value}
        self.stats.messages_out += 1
        if self.mode == CLIENT:
            if self.host_connected:
                self.out.emit_to_host("message", payload)
            return
        if self.hardware and self.own_room is not None:
            self.out.emit_to_room(self.own_room, "message", payload)
        else:
            self.out.emit_to_room(BROWSERS, "message", payload)

    def _hardware_success(self, value: Any) -> None:
        self.stats.hardware_connected += 1

    def _hardware_failed(self, value: Any) -> None:
        self.stats.hardware_failed += 1

    def _secret(self, value: Any) -> None:
        self.faults.throttled("IPC: the parent asked for the raw secret; it is never sent "
                              "(use encrypt/decrypt)", level=LogLevel.warn)

    def _crypto(self, op: str, value: Any) -> None:
        result = ""
        if self.crypto is None:
            self.faults.throttled("IPC {op}: no secret is configured (see --secret-file); "
                                  "replying ''", key=("no secret", op), op=op,
                                  level=LogLevel.error)
        elif not isinstance(value, str):
            self.faults.throttled("IPC {op}: the value must be a string, not {t}; replying ''",
                                  key=("not a string", op), op=op, t=type(value).__name__,
                                  level=LogLevel.error)
        else:
            result = self.crypto(op, value)
        self.out.to_parent(op, result)

    # -- host side: sockets ------------------------------------------------

    def socket_connected(self, sid: str, query: dict[str, str],
                         headers: dict[str, str] | None = None) -> None:
        """A socket joined; ``headers`` (lower-case names) tell a browser from a copy."""
        headers = headers if headers is not None else {}
        if is_hardware_client(query, headers):
            self.hardware[sid] = None
        else:
            if query.get("childServer") == "true":
                self.faults.peer("impostors", "socket {sid} claims to be a hardware client "
                                 "but is a browser (origin {origin!r}); served as a browser",
                                 sid=sid, origin=headers.get("origin"))
            room = room_id(query.get("roomId"))
            self.browsers[sid] = room
            self.out.join(sid, BROWSERS)
            if room is not None:
                self.out.join(sid, room)
        self.out.to_parent("connection")
        self.out.to_parent("cloudModeChanged", self.cloud_mode)

    def socket_disconnected(self, sid: str) -> None:
        if sid in self.hardware:
            room = self.hardware.pop(sid)
            self._withdraw(sid)
            if room is not None and self.matched.get(room) == sid:
                del self.matched[room]
                self._grant_waiting(room)
        elif sid in self.browsers:
            room = self.browsers.pop(sid)
        else:
            return
        if room is None:
            self.out.to_parent("close")
        else:
            self.out.to_parent("close", room)
        if not self.hardware:
            self.out.to_parent("cloudModeChanged", SINGLE)

    def match_target(self, sid: str, value: Any) -> None:
        if sid not in self.hardware:
            self.faults.peer("roomClaimsRefused", "matchTarget from {sid}, which is not a "
                             "hardware client; ignored", sid=sid)
            self.stats.rejected += 1
            return
        room = room_id(value)
        if room is None:
            self.faults.throttled("matchTarget from {sid} with no usable roomId ({value}); "
                                  "ignored", sid=sid, value=repr(value)[:80])
            self.stats.rejected += 1
            return
        if room == self.own_room and self.mode == HOST:
            self.faults.peer("roomClaimsRefused", "matchTarget from {sid}: the room is this "
                             "host's own pupil's; refused", sid=sid)
            return
        holder = self.matched.get(room)
        if holder is not None and holder != sid:
            self.faults.peer("roomClaimsRefused", "matchTarget from {sid}: the room is held by "
                             "hardware client {holder}; granted if that one leaves",
                             sid=sid, holder=holder)
            self._withdraw(sid)
            self.claims.setdefault(room, []).append(sid)
            return
        self._claim(sid, room)

    def _claim(self, sid: str, room: str) -> None:
        old = self.hardware[sid]
        if old is not None and old != room and self.matched.get(old) == sid:
            del self.matched[old]
            self._grant_waiting(old)
        self._withdraw(sid)
        self.hardware[sid] = room
        self.matched[room] = sid

    def _withdraw(self, sid: str) -> None:
        """Forget the claims ``sid`` is waiting with."""
        for room, waiting in list(self.claims.items()):
            if sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del self.claims[room]

    def _grant_waiting(self, room: str) -> None:
        waiting = self.claims.pop(room, [])
        if waiting:
            sid = waiting.pop(0)
            if waiting:
                self.claims[room] = waiting
            log.info("room released: granted to hardware client {sid}, which was waiting",
                     sid=sid)
            self._claim(sid, room)

    def message(self, sid: str, payload: Any) -> Any:
        """A ``message`` event on the host; returns the ack value."""
        self.stats.messages_in += 1
        if self.hardware:
            room = self.hardware.get(sid)
            if sid in self.hardware:
                if room is not None:
                    self.out.emit_to_room(room, "message", payload)
            else:
                room = self.browsers.get(sid)
                target = self.matched.get(room) if room is not None else None
                if target is not None:
                    self.out.emit_to_socket(target, "message", payload)
                elif room is not None and room == self.own_room:
                    self.out.to_parent("data", payload)
        else:
            self.out.to_parent("data", payload)
        if isinstance(payload, dict):
            key = payload.get("key")
            if key is not None:
                return key
        return True

    # -- client side: the host connection -------------------------------------

    def host_up(self) -> None:
        self.host_connected = True
        if self.own_room is not None:
            self.out.emit_to_host("matchTarget", self.own_room)

    def host_down(self) -> None:
        self.host_connected = False

    def host_message(self, payload: Any) -> None:
        self.stats.messages_in += 1
        self.out.to_parent("data", payload)

    # -- status ------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Counts only: room ids are what a hijacker would need, so they never leave."""
        rooms = {r for r in self.browsers.values() if r is not None}
        rooms.update(self.matched)
        return {
            "runningMode": self.mode,
            "cloudMode": self.cloud_mode if self.mode is not None else None,
            "browsers": len(self.browsers),
            "hardwareClients": len(self.hardware),
            "rooms": len(rooms),
            "ownRoom": self.own_room is not None,
            "hostConnected": self.host_connected if self.mode == CLIENT else None,
            "messagesIn": self.stats.messages_in,
            "messagesOut": self.stats.messages_out,
            "hardwareConnected": self.stats.hardware_connected,
            "hardwareFailed": self.stats.hardware_failed,
            "uptimeSeconds": round(time.monotonic() - self.stats.started, 1),
        }
