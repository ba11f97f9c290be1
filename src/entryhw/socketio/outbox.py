"""What the Socket.IO client owes and is owed (sans-I/O): buffered emits, acks.

Apart from :mod:`entryhw.socketio.client` so that the rules socket.io-client follows here
(ack ids never reused, callbacks forgotten with the connection that would have answered
them, a server's ack request answered at most once, emits kept in order until connected)
can be read and tested without a connection.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from entryhw.socketio import packets as sio

__all__ = ["AckRegistry", "SendBuffer", "once_ack"]


class AckRegistry:
    """Callbacks of emitted events waiting for the server's ACK, keyed by ack id.

    Ids count up from 0 for the life of the client, across reconnections, like
    socket.io-client's ``Socket.ids``; a server never acks an id twice, so an id is never
    reused (until 2**53, where it wraps).
    """

    def __init__(self) -> None:
        self._next_id = 0
        self._callbacks: dict[int, Callable[..., Any]] = {}

    def register(self, callback: Callable[..., Any]) -> int:
        """Keep ``callback`` under a new ack id, which is returned."""
        ack_id = self._next_id
        self._next_id = 0 if ack_id >= sio.MAX_ACK_ID else ack_id + 1
        self._callbacks[ack_id] = callback
        return ack_id

    def pop(self, ack_id: int | None) -> Callable[..., Any] | None:
        """The callback for an incoming ACK (once), or ``None`` for an unknown id."""
        if ack_id is None:
            return None
        return self._callbacks.pop(ack_id, None)

    def discard(self, ack_id: int) -> None:
        """Forget one callback (its packet was never sent); unknown ids are fine."""
        self._callbacks.pop(ack_id, None)

    def drop_all_except(self, keep: Iterable[int]) -> int:
        """Forget the callbacks not in ``keep``; returns how many were forgotten.

        On a lost connection the server will never ack what it got over it, so
        socket.io-client 4 (``Socket._clearAcks``) forgets those callbacks, keeping the ones
        of packets still in the send buffer.
        """
        keep = set(keep)
        dropped = [ack_id for ack_id in self._callbacks if ack_id not in keep]
        for ack_id in dropped:
            del self._callbacks[ack_id]
        return len(dropped)

    def __len__(self) -> int:
        return len(self._callbacks)

    def __contains__(self, ack_id: object) -> bool:
        return ack_id in self._callbacks


def once_ack(send: Callable[[list[Any]], None]) -> Callable[..., None]:
    """The callable an event handler gets for a server event with an ack id.

    Calling it sends one ACK with its arguments; later calls do nothing (socket.io-client
    ``Socket.ack``: "prevent double callbacks").  An argument JSON cannot carry raises from
    the call and leaves the ack unsent, so it can be retried.
    """
    sent = False

    def ack(*args: Any) -> None:
        nonlocal sent
        if sent:
            return
        send(list(args))
        sent = True

    return ack


class SendBuffer:
    """Emits made while not connected, in order, to go out on connect (``Socket.sendBuffer``).

    Unlike socket.io-client's, it holds at most ``size`` packets: when full, the oldest is
    dropped, and its ack callback with it.  ``dropped`` counts drops until its user resets it.
    """

    def __init__(self, size: int, acks: AckRegistry) -> None:
        self.size = max(0, size)
        self.dropped = 0
        self._acks = acks
        self._items: deque[tuple[list[str | bytes], int | None]] = deque()

    def add(self, frames: list[str | bytes], ack_id: int | None) -> None:
        """Keep one encoded packet (its frames) and the ack id it waits on, if any."""
        if self.size == 0:
            self._drop(ack_id)
            return
        if len(self._items) >= self.size:
            self._drop(self._items.popleft()[1])
        self._items.append((frames, ack_id))

    def popleft(self) -> list[str | bytes]:
        """The frames of the oldest packet, out of the buffer."""
        return self._items.popleft()[0]

    def ack_ids(self) -> set[int]:
        """The ack ids of the packets still waiting: their callbacks must be kept."""
        return {ack_id for _, ack_id in self._items if ack_id is not None}

    def __len__(self) -> int:
        return len(self._items)

    def _drop(self, ack_id: int | None) -> None:
        if ack_id is not None:
            self._acks.discard(ack_id)
        self.dropped += 1
