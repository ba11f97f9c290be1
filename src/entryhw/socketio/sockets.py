"""One client connected to one namespace: its handlers, rooms, emits and acks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from entryhw.socketio import packets as sp
from entryhw.socketio.packets import ACK, DISCONNECT, EVENT, Packet
from entryhw.socketio.rooms import Broadcast

if TYPE_CHECKING:
    from entryhw.socketio.connection import Connection
    from entryhw.socketio.namespace import Namespace

log = Logger()

Handler = Callable[..., Any]


@dataclass
class Handshake:
    """What the client sent when it connected (socket.handshake in socket.io)."""

    query: dict[str, str]
    headers: dict[str, str]
    address: str
    auth: dict[str, Any] = field(default_factory=dict)
    issued: float = field(default_factory=time.time)


class Socket:
    """One client connected to one namespace."""

    def __init__(self, namespace: Namespace, client: Connection, sid: str,
                 handshake: Handshake) -> None:
        self.namespace = namespace
        self.client = client
        self.sid = sid
        self.handshake = handshake
        self.rooms: set[str] = set()
        self.data: dict[str, Any] = {}
        self.connected = False
        self._handlers: dict[str, Handler] = {}
        self._lifecycle: dict[str, Handler] = {}
        self._acks: dict[int, Callable[..., Any]] = {}
        self._next_ack = 0
        self._pending: list[Packet] | None = None

    # -- receiving -----------------------------------------------------------

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Handle ``event`` on this socket only: ``handler(*args)``; also usable as decorator.

        "disconnect" gets the reason. A return value answers the client's ack.
        """
        if event in sp.RESERVED_EVENTS and event != "disconnect":
            raise ValueError(f"{event!r} is reserved and never arrives from a client")

        def register(fn: Handler) -> Handler:
            (self._lifecycle if event == "disconnect" else self._handlers)[event] = fn
            return fn

        return register(handler) if handler is not None else register

    def _on_event(self, packet: Packet) -> None:
        args = packet[2]
        event = args[0]
        handler = self._handlers.get(event)
        if handler is not None:
            result = self._call(handler, *args[1:])
        else:
            handler = self.namespace._handlers.get(event)
            if handler is None:
                handler = self.namespace._handlers.get("*")
                if handler is None:
                    if packet[3] is not None:
                        self._send_ack(packet[3], None)
                    return
                result = self._call(handler, self, *args)
            else:
                result = self._call(handler, self, *args[1:])
        if packet[3] is not None:
            if isinstance(result, Deferred):
                ack_id = packet[3]
                result.addCallbacks(lambda value: self._send_ack(ack_id, value),
                                    lambda f: self.namespace.server.faults.bug(
                                        "an ack handler", f))
            else:
                self._send_ack(packet[3], result)

    def _call(self, handler: Handler, *args: Any) -> Any:
        """Run an application handler: an exception is a contained bug, never I/O's problem."""
        return self.namespace.server.faults.guard(handler, handler, *args)

    def _send_ack(self, ack_id: int, result: Any) -> None:
        if result is None:
            args: list[Any] = []
        elif isinstance(result, tuple):
            args = list(result)
        else:
            args = [result]
        self.client.send_packet(Packet(ACK, self.namespace.name, args, ack_id))

    def _on_ack(self, packet: Packet) -> None:
        callback = self._acks.pop(packet[3], None)
        if callback is None:
            log.debug("ack {id} for socket {sid}: nobody waits for it", id=packet[3],
                      sid=self.sid)
            return
        self._call(callback, *(packet[2] or []))

    # -- sending -------------------------------------------------------------

    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """Send ``event`` to this client; ``callback(*ack_args)`` runs on its ack."""
        if not self.connected:
            return
        ack_id = None
        if callback is not None:
            ack_id = self._next_ack
            self._next_ack += 1
            self._acks[ack_id] = callback
        packet = Packet(EVENT, self.namespace.name, [event, *args], ack_id)
        if self._pending is not None:
            self._pending.append(packet)
        else:
            self.client.send_packet(packet)

    def send(self, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """``emit("message", *args)``, as socket.send in socket.io."""
        self.emit("message", *args, callback=callback)

    def join(self, room: str) -> None:
        self.namespace._join(self, room)

    def leave(self, room: str) -> None:
        self.namespace._leave(self, room)

    def to(self, *rooms: str) -> Broadcast:
        """Everyone in ``rooms`` but this socket."""
        return Broadcast(self.namespace, set(rooms), exclude={self})

    @property
    def broadcast(self) -> Broadcast:
        """Everyone in the namespace but this socket."""
        return Broadcast(self.namespace, set(), exclude={self})

    def disconnect(self, close: bool = False) -> None:
        """Leave the namespace (the client is told); ``close`` ends the whole connection."""
        if self.connected:
            self.client.send_packet(Packet(DISCONNECT, self.namespace.name))
            self._closed("server namespace disconnect")
        if close:
            self.client.session.close("forced server close")

    def _closed(self, reason: str) -> None:
        if not self.connected:
            return
        self.connected = False
        self.client.sockets.pop(self.namespace.name, None)
        self.namespace._remove(self)
        self._acks.clear()
        handler = self._lifecycle.get("disconnect")
        if handler is not None:
            self._call(handler, reason)
        handler = self.namespace._lifecycle.get("disconnect")
        if handler is not None:
            self._call(handler, self, reason)

    def __repr__(self) -> str:
        return f"<Socket {self.sid} on {self.namespace.name}>"
