"""One Engine.IO session and the namespace sockets multiplexed on it."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from twisted.logger import LogLevel

from entryhw.engineio.session import Session
from entryhw.socketio import packets as sp
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
        else:
            self._connect_timer = self.server.clock.callLater(
                self.server.connect_timeout, self._connect_timed_out)

    def _connect_timed_out(self) -> None:
        if not self.sockets:
            self.server.faults.peer("timeouts", "socket.io client {sid}: no namespace CONNECT "
                                    "in time, closing", sid=self.session.sid)
            self.session.close("connect timeout")

    def send_packet(self, packet: Packet) -> None:
        try:
            frames = sp.encode(packet, self.rev)
        except (TypeError, ValueError) as e:
            self.server.faults.peer("sendsDropped", "cannot encode a Socket.IO packet for "
                                    "{sid}: {err}", sid=self.session.sid, err=e,
                                    level=LogLevel.error)
            return
        self.send_frames(frames)

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
        socket._pending = []  # emits from the hook wait for the CONNECT reply
        self.sockets[nsp] = socket
        namespace.sockets[sid] = socket
        namespace._join(socket, sid)
        if self._connect_timer is not None and self._connect_timer.active():
            self._connect_timer.cancel()
        hook = namespace._lifecycle.get("connect")
        if hook is not None:
            try:
                accepted = hook(socket)
            except ConnectionRefused as refused:
                self._undo(socket)
                self._refuse(nsp, refused.message, refused.data)
                return
            except Exception:
                self.server.faults.bug(f"the connect handler of {nsp}")
                accepted = False
            if accepted is False:
                self._undo(socket)
                self._refuse(nsp, "Not authorized")
                return
        if not socket.connected:  # the hook disconnected it
            return
        self.send_packet(Packet(CONNECT, nsp, {"sid": sid} if self.rev == 5 else None))
        pending, socket._pending = socket._pending, None
        for packet in pending:
            self.send_packet(packet)

    def _undo(self, socket: Socket) -> None:
        socket.connected = False
        self.sockets.pop(socket.namespace.name, None)
        socket.namespace._remove(socket)

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
