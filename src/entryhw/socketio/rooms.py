"""Broadcasts: a namespace's rooms minus exclusions, each packet encoded once per revision."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from entryhw.socketio import packets as sp
from entryhw.socketio.packets import EVENT, Packet

if TYPE_CHECKING:
    from entryhw.socketio.namespace import Namespace
    from entryhw.socketio.sockets import Socket


class _Frames:
    """Encodes one packet at most once per revision (broadcasts)."""

    __slots__ = ("_cache", "_packet")

    def __init__(self, packet: Packet) -> None:
        self._packet = packet
        self._cache: dict[int, list[str | bytes]] = {}

    def get(self, rev: int) -> list[str | bytes]:
        frames = self._cache.get(rev)
        if frames is None:
            frames = self._cache[rev] = sp.encode(self._packet, rev, utf8=True)
        return frames


class Broadcast:
    """A set of target rooms minus exclusions; ``emit`` sends to what is left."""

    def __init__(self, namespace: Namespace, rooms: set[str],
                 exclude: set[Socket] | None = None, except_rooms: set[str] | None = None):
        self.namespace = namespace
        self.rooms = rooms
        self.exclude = exclude or set()
        self.except_rooms = except_rooms or set()

    def to(self, *rooms: str) -> Broadcast:
        return Broadcast(self.namespace, self.rooms | set(rooms), self.exclude,
                         self.except_rooms)

    def except_(self, *rooms: str) -> Broadcast:
        return Broadcast(self.namespace, self.rooms, self.exclude,
                         self.except_rooms | set(rooms))

    def targets(self) -> Iterable[Socket]:
        ns = self.namespace
        if len(self.rooms) == 1 and not self.exclude and not self.except_rooms:
            # The common case (one room, nobody left out): no set to build.
            (room,) = self.rooms
            return tuple(ns.rooms.get(room, ()))
        if self.rooms:
            found: set[Socket] = set()
            for room in self.rooms:
                found.update(ns.rooms.get(room, ()))
            targets: Iterable[Socket] = found
        else:
            targets = list(ns.sockets.values())
        if self.exclude or self.except_rooms:
            skip = set(self.exclude)
            for room in self.except_rooms:
                skip.update(ns.rooms.get(room, ()))
            targets = [s for s in targets if s not in skip]
        return targets

    def emit(self, event: str, *args: Any) -> int:
        """Send to every target (no acks on broadcasts); returns how many."""
        frames = _Frames(Packet(EVENT, self.namespace.name, [event, *args]))
        count = 0
        packet = frames._packet
        for socket in self.targets():
            if socket._pending is not None:  # still in its connect hook
                socket._pending.append(packet)
            else:
                try:
                    socket.client.send_frames(frames.get(socket.client.rev))
                except Exception:
                    # One target failing (a bug of ours) must not cost the others.
                    self.namespace.server.faults.bug("a broadcast to one socket")
                    continue
            count += 1
        return count
