"""One client connected to one namespace: its handlers, rooms, emits and acks.

How handlers run (several per event, async ones, errors, which one answers the ack) is
:mod:`entryhw.socketio.handlers`; the acks this side waits for are
:mod:`entryhw.socketio.acks`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger

from entryhw.socketio import packets as sp
from entryhw.socketio.acks import AckLost, PendingAcks
from entryhw.socketio.handlers import FAILED, Handler, Handlers, dispatch, run
from entryhw.socketio.packets import ACK, DISCONNECT, EVENT, Packet
from entryhw.socketio.rooms import Broadcast

if TYPE_CHECKING:
    from entryhw.socketio.connection import Connection
    from entryhw.socketio.namespace import Namespace

log = Logger()


@dataclass
class Handshake:
    """What the client sent when it connected (socket.handshake in socket.io)."""

    query: dict[str, str]
    headers: dict[str, str]
    address: str
    auth: dict[str, Any] = field(default_factory=dict)
    issued: float = field(default_factory=time.time)


class Socket:
    """One client connected to one namespace.

    ``connected`` is True from the moment the client asked to connect until it is gone,
    including while the "connect" handlers decide; emits made meanwhile wait for the
    CONNECT reply, and the client's events are not handled before it.
    """

    def __init__(self, namespace: Namespace, client: Connection, sid: str,
                 handshake: Handshake) -> None:
        self.namespace = namespace
        self.client = client
        self.sid = sid
        self.handshake = handshake
        self.rooms: set[str] = set()
        self.data: dict[str, Any] = {}
        self.connected = False
        self._faults = namespace.server.faults
        self._handlers = Handlers()
        self._lifecycle = Handlers()
        self._acks = PendingAcks(namespace.server.clock)
        #: Packets held back while the connect handlers decide (None once connected).
        self._pending: list[Packet] | None = None
        #: The connect handlers' decision while it is awaited (see Connection.connect).
        self._admission: Deferred[Any] | None = None

    # -- receiving -----------------------------------------------------------

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Handle ``event`` on this socket only: ``handler(*args)``; also usable as decorator.

        "disconnect" gets the reason. The first handler's result answers the client's
        ack. While a socket has handlers of its own for an event, the namespace's
        handlers for it do not run.
        """
        if event in sp.RESERVED_EVENTS and event != "disconnect":
            raise ValueError(f"{event!r} is reserved and never arrives from a client")

        def register(fn: Handler) -> Handler:
            (self._lifecycle if event == "disconnect" else self._handlers).add(event, fn)
            return fn

        return register(handler) if handler is not None else register

    def off(self, event: str, handler: Handler | None = None) -> None:
        """Remove ``handler`` (or every handler) of ``event`` from this socket."""
        (self._lifecycle if event == "disconnect" else self._handlers).remove(event, handler)

    def _on_event(self, packet: Packet) -> None:
        if self._pending is not None:
            # Not connected yet (an async connect handler decides): socket.io ignores
            # packets for a namespace it has not connected, and so do we.
            log.debug("event for socket {sid} before its CONNECT reply; dropped", sid=self.sid)
            return
        args = packet[2]
        event = args[0]
        handlers = self._handlers.get(event)
        if handlers:
            result = dispatch(self._faults, handlers, *args[1:])
        else:
            handlers = self.namespace._handlers.get(event)
            if handlers:
                result = dispatch(self._faults, handlers, self, *args[1:])
            else:
                handlers = self.namespace._handlers.get("*")
                if not handlers:
                    result = None  # nobody handles it: an empty ack says so
                else:
                    result = dispatch(self._faults, handlers, self, *args)
        ack_id = packet[3]
        if ack_id is not None:
            if isinstance(result, Deferred):
                result.addCallback(self._answer_later, ack_id)
            else:
                self._answer(ack_id, result)

    def _answer_later(self, result: Any, ack_id: int) -> None:
        self._answer(ack_id, result)

    def _answer(self, ack_id: int, result: Any) -> None:
        """Send the ack; none at all if the handler failed or the socket has gone."""
        if result is FAILED or not self.connected:
            return
        if result is None:
            args: list[Any] = []
        elif isinstance(result, tuple):
            args = list(result)
        else:
            args = [result]
        self.client.send_packet(Packet(ACK, self.namespace.name, args, ack_id))

    def _on_ack(self, packet: Packet) -> None:
        if not self._acks.resolve(packet[3], packet[2] or []):
            log.debug("ack {id} for socket {sid}: nobody waits for it", id=packet[3],
                      sid=self.sid)

    # -- sending -------------------------------------------------------------

    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None,
             timeout: float | None = None) -> None:
        """Send ``event`` to this client; ``callback(*ack_args)`` runs on its ack.

        With ``timeout`` (seconds), the callback always hears back, socket.io 4 style
        (``socket.timeout(ms).emit``): ``callback(None, *ack_args)`` on the ack, or
        ``callback(error)`` with an :class:`~entryhw.socketio.acks.AckTimeout` after
        ``timeout`` seconds, an :class:`~entryhw.socketio.acks.AckLost` if the socket goes
        first. :meth:`call` is the same as a Deferred.
        """
        if timeout is not None:
            if callback is None:
                raise ValueError("an emit with a timeout needs a callback")
            faults = self._faults
            self.call(event, *args, timeout=timeout).addCallbacks(
                lambda ack: run(faults, callback, None, *ack),
                lambda failure: run(faults, callback, failure.value))
            return
        if not self.connected:
            return
        ack_id = None
        if callback is not None:
            faults = self._faults
            ack_id = self._acks.add(lambda ack: run(faults, callback, *ack))
        self._send(Packet(EVENT, self.namespace.name, [event, *args], ack_id))

    def call(self, event: str, *args: Any, timeout: float | None = None) -> Deferred[list[Any]]:
        """Emit ``event`` asking for an ack: a Deferred of the ack's arguments (a list).

        It fails with :class:`~entryhw.socketio.acks.AckTimeout` when ``timeout`` seconds
        (of the server's clock) pass without an answer, with
        :class:`~entryhw.socketio.acks.AckLost` if the socket is not connected, disconnects
        first or the event cannot be encoded. Cancelling it stops the wait: a late ack is
        ignored.
        """
        if not self.connected:
            return fail(AckLost(f"{self!r} is not connected"))
        ack_id = -1

        def forget(_: Deferred[list[Any]]) -> None:
            self._acks.discard(ack_id)

        answer: Deferred[list[Any]] = Deferred(forget)
        ack_id = self._acks.add(answer.callback, answer.errback, timeout)
        if not self._send(Packet(EVENT, self.namespace.name, [event, *args], ack_id)):
            self._acks.discard(ack_id)
            answer.errback(AckLost(f"{event!r} could not be sent (see the log)"))
        return answer

    def send(self, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """``emit("message", *args)``, as socket.send in socket.io."""
        self.emit("message", *args, callback=callback)

    def _send(self, packet: Packet) -> bool:
        if self._pending is not None:
            self._pending.append(packet)
            return True
        return self.client.send_packet(packet)

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
        """Gone (``reason`` as socket.io names it): leave everything, run "disconnect"."""
        if not self.connected:
            return
        self.connected = False
        self.client.sockets.pop(self.namespace.name, None)
        self.namespace._remove(self)
        admission, self._admission = self._admission, None
        if admission is not None:
            # The connect handlers' answer no longer matters. Cancelled from the reactor:
            # a handler may be running (and disconnecting it) right now, and a running
            # coroutine cannot be cancelled.
            self.namespace.server.clock.callLater(0, admission.cancel)
        self._acks.fail_all(AckLost(f"disconnected ({reason})"))
        faults = self._faults
        for handler in self._lifecycle.get("disconnect"):
            run(faults, handler, reason)
        for handler in self.namespace._lifecycle.get("disconnect"):
            run(faults, handler, self, reason)

    def __repr__(self) -> str:
        return f"<Socket {self.sid} on {self.namespace.name}>"
