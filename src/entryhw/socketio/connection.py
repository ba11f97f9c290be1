"""One Engine.IO session and the namespace sockets multiplexed on it.

Connecting a namespace runs its "connect" handlers one after the other, each after the
previous one's result (a Deferred's or coroutine's, if it returns one) is in: a refusal
must be able to stop the handlers after it, as socket.io middleware does. The first of
them that returns False (or fires with False), raises :class:`ConnectionRefused` or fails
refuses the connection, and the rest do not run; a refused socket gets no "disconnect"
(so checks belong before handlers with side effects). The decision is bounded by the
server's ``connect_timeout``: past it the connection is refused and the pending handler
cancelled. While it is pending, the socket's emits wait for the CONNECT reply and the
client's events are dropped (the client cannot know yet that it is connected).
"""

from __future__ import annotations

import secrets
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.logger import LogLevel
from twisted.python.failure import Failure

from entryhw.engineio.session import Session
from entryhw.socketio import packets as sp
from entryhw.socketio.acks import AckLost
from entryhw.socketio.handlers import Handler
from entryhw.socketio.packets import (
    ACK,
    BINARY_ACK,
    BINARY_EVENT,
    CONNECT,
    CONNECT_ERROR,
    DISCONNECT,
    EVENT,
    DecodeError,
    Decoder,
    Packet,
)
from entryhw.socketio.sockets import Handshake, Socket

if TYPE_CHECKING:
    from entryhw.socketio.server import SocketIOServer


class ConnectionRefused(Exception):
    """Raise from a "connect" handler to refuse a namespace connection.

    ``message`` (and ``data``, revision 5) reach the client in CONNECT_ERROR.
    """

    def __init__(self, message: str = "Not authorized", data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class Connection:
    """One Engine.IO session and the namespace sockets multiplexed on it."""

    def __init__(self, server: SocketIOServer, session: Session) -> None:
        self.server = server
        self.session = session
        self.rev = 4 if session.eio == 3 else 5
        self.decoder = Decoder(self.rev)
        self.sockets: dict[str, Socket] = {}
        self._connect_timer: Any = None
        session.on_message = self.on_data
        session.on_close = self.on_close

    def start(self) -> None:
        if self.rev == 4:
            # socket.io 2.x connects "/" implicitly, with the handshake query.
            self.connect("/", None)
        elif self.server.connect_timeout is not None:
            self._connect_timer = self.server.clock.callLater(
                self.server.connect_timeout, self._connect_timed_out)

    def _connect_timed_out(self) -> None:
        if not self.sockets:
            self.server.faults.peer("timeouts", "socket.io client {sid}: no namespace CONNECT "
                                    "in time, closing", sid=self.session.sid)
            self.session.close("connect timeout")

    def send_packet(self, packet: Packet) -> bool:
        """Encode and send; False (logged, counted) if the packet cannot be encoded."""
        try:
            frames = sp.encode(packet, self.rev, utf8=True)
        except (TypeError, ValueError) as e:
            self.server.faults.peer("sendsDropped", "cannot encode a Socket.IO packet for "
                                    "{sid}: {err}", sid=self.session.sid, err=e,
                                    level=LogLevel.error)
            return False
        self.send_frames(frames)
        return True

    def send_frames(self, frames: list[str | bytes]) -> None:
        send = self.session.send
        for frame in frames:
            send(frame)

    def on_data(self, data: str | bytes) -> None:
        try:
            packet = self.decoder.feed(data if data is not None else "")
        except DecodeError as e:
            kind = "tooDeep" if isinstance(e, sp.TooDeepError) else "protocolErrors"
            self.server.faults.peer(kind, "socket.io client {sid}: invalid packet ({err}), "
                                    "closing", sid=self.session.sid, err=e)
            self.session.close("parse error")
            return
        if packet is None:
            return
        ptype, nsp = packet[0], packet[1]
        socket = self.sockets.get(nsp)
        if ptype == EVENT or ptype == BINARY_EVENT:
            if socket is not None:
                socket._on_event(packet)
        elif ptype == ACK or ptype == BINARY_ACK:
            if socket is not None:
                socket._on_ack(packet)
        elif ptype == CONNECT:
            if socket is None:
                self.connect(nsp, packet[2])
        elif ptype == DISCONNECT:
            if socket is not None:
                socket._closed("client namespace disconnect")
                if not self.sockets:
                    # Leaving the last namespace ends the connection, as socket.io-client
                    # does when its last socket disconnects; a peer toggling DISCONNECT
                    # and CONNECT would otherwise fire connect/disconnect hooks at will.
                    self.session.close("client namespace disconnect")
        else:
            self.server.faults.peer("protocolErrors", "socket.io client {sid}: unexpected "
                                    "packet type {t}, closing", sid=self.session.sid, t=ptype)
            self.session.close("parse error")

    # -- connecting a namespace ----------------------------------------------

    def connect(self, nsp: str, data: Any) -> None:
        namespace = self.server.namespaces.get(nsp)
        if namespace is None:
            self._refuse(nsp, "Invalid namespace")
            return
        query = dict(self.session.query)
        auth: dict[str, Any] = {}
        if self.rev == 4:
            if isinstance(data, dict):
                query.update(data)  # rev 4 CONNECT carries the namespace's query
        elif isinstance(data, dict):
            auth = data
        handshake = Handshake(query, self.session.headers, self.session.remote, auth)
        if self.rev == 4:
            sid = self.session.sid if nsp == "/" else f"{nsp}#{self.session.sid}"
        else:
            sid = secrets.token_urlsafe(15)
        socket = Socket(namespace, self, sid, handshake)
        socket.connected = True
        socket._pending = []  # emits from the handlers wait for the CONNECT reply
        self.sockets[nsp] = socket
        namespace.sockets[sid] = socket
        namespace._join(socket, sid)
        if self._connect_timer is not None and self._connect_timer.active():
            self._connect_timer.cancel()
        handlers = namespace._lifecycle.get("connect")
        if not handlers:
            self._accept(socket)
            return
        # Plain handlers never suspend the coroutine: it has finished when this returns.
        decision = ensureDeferred(self._admit(socket, handlers))
        if decision.called:
            decision.addBoth(self._decided, socket)
            return
        socket._admission = decision
        timeout = self.server.connect_timeout
        timer = None
        if timeout is not None:
            timer = self.server.clock.callLater(timeout, self._admission_timed_out, socket)

        def decided(outcome: Any) -> None:
            if timer is not None and timer.active():
                timer.cancel()
            socket._admission = None
            self._decided(outcome, socket)

        decision.addBoth(decided)

    async def _admit(self, socket: Socket, handlers: tuple[Handler, ...]
                     ) -> ConnectionRefused | None:
        """Run the connect handlers in order: None accepts, a ConnectionRefused refuses."""
        for handler in handlers:
            try:
                result = handler(socket)
                if type(result) is CoroutineType or isinstance(result, Deferred):
                    result = await result
            except ConnectionRefused as refused:
                return refused
            except CancelledError:
                raise  # the socket went away, or the decision took too long
            except Exception:
                self.server.faults.bug(handler)
                return ConnectionRefused()
            if result is False:
                return ConnectionRefused()
            if not socket.connected:  # disconnected by a handler
                return None
        return None

    def _decided(self, outcome: ConnectionRefused | Failure | None, socket: Socket) -> None:
        if isinstance(outcome, Failure):
            if outcome.check(CancelledError):
                return  # closed or timed out: dealt with there
            self.server.faults.bug(f"the connect handlers of {socket.namespace.name}", outcome)
            outcome = ConnectionRefused()
        if not socket.connected:  # a handler disconnected it
            return
        if outcome is not None:
            self._undo(socket)
            self._refuse(socket.namespace.name, outcome.message, outcome.data)
            return
        self._accept(socket)

    def _accept(self, socket: Socket) -> None:
        self.send_packet(Packet(CONNECT, socket.namespace.name,
                                {"sid": socket.sid} if self.rev == 5 else None))
        pending, socket._pending = socket._pending or [], None
        for packet in pending:
            self.send_packet(packet)

    def _admission_timed_out(self, socket: Socket) -> None:
        decision, socket._admission = socket._admission, None
        if decision is None or not socket.connected:
            return
        nsp = socket.namespace.name
        self.server.faults.peer("timeouts", "the connect handlers of {nsp} took more than "
                                "{t} s for {sid}; refused", nsp=nsp, sid=socket.sid,
                                t=self.server.connect_timeout, level=LogLevel.warn)
        self._undo(socket)
        self._refuse(nsp, "Connect handler timeout")
        decision.cancel()

    def _undo(self, socket: Socket) -> None:
        """Forget a refused socket: it never connected, so no "disconnect" runs."""
        socket.connected = False
        socket._pending = None
        self.sockets.pop(socket.namespace.name, None)
        socket.namespace._remove(socket)
        socket._acks.fail_all(AckLost("the connection was refused"))

    def _refuse(self, nsp: str, message: str, data: Any = None) -> None:
        if self.rev == 5:
            payload: Any = {"message": message}
            if data is not None:
                payload["data"] = data
        else:
            payload = message
        self.send_packet(Packet(CONNECT_ERROR, nsp, payload))

    def on_close(self, reason: str) -> None:
        if self._connect_timer is not None and self._connect_timer.active():
            self._connect_timer.cancel()
        for socket in list(self.sockets.values()):
            socket._closed(reason)
