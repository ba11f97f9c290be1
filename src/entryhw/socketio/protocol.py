"""The vocabulary of the Socket.IO protocol (revisions 4 and 5): packet types, the
:class:`Packet` tuple, reserved names, limits and the codec's exceptions (sans-I/O).

Kept apart from :mod:`~entryhw.socketio.decoding` and :mod:`~entryhw.socketio.encoding` so
that both directions, and the server and client, share one definition.
"""

from __future__ import annotations

from typing import Any, NamedTuple

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = range(7)
#: Revision 4 name of type 4 (renamed CONNECT_ERROR in revision 5, same number and role).
ERROR = CONNECT_ERROR

PACKET_TYPE_NAMES = (
    "CONNECT",
    "DISCONNECT",
    "EVENT",
    "ACK",
    "CONNECT_ERROR",
    "BINARY_EVENT",
    "BINARY_ACK",
)

REVISIONS = (4, 5)

#: Event names a peer must not use (``RESERVED_EVENTS`` of socket.io-parser 4.2.x; its decoder
#: rejects EVENT packets carrying them).  Revision 4 (parser 3.4.x) has no such list, but the
#: decoder here refuses them in both revisions: they name lifecycle events, never messages.
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)

#: ``Number.MAX_SAFE_INTEGER``: the largest ack id a JS peer can represent exactly.
MAX_ACK_ID = 2**53 - 1


class DecodeError(ValueError):
    """The only exception the decoder raises for bad input."""


class TooDeepError(DecodeError):
    """A payload nested deeper than :data:`entryhw.limits.MAX_DEPTH` (a DecodeError too)."""


class Packet(NamedTuple):
    """A Socket.IO packet.

    For EVENT/ACK ``data`` is the list of arguments (event name first for EVENT); binary
    arguments are ``bytes``.  ``id`` is the ack id.  See :mod:`entryhw.socketio.packets` for the
    data of each type and revision.
    """

    type: int
    nsp: str = "/"
    data: Any = None
    id: int | None = None


def check_rev(rev: int) -> int:
    """``rev`` if it is a revision this codec speaks, else ValueError (a caller bug)."""
    if rev != 5 and rev != 4:
        raise ValueError(f"unsupported Socket.IO protocol revision {rev!r}")
    return rev
