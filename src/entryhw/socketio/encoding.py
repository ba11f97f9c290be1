""":class:`~entryhw.socketio.protocol.Packet` values to Socket.IO frames (sans-I/O).

See :mod:`entryhw.socketio.packets` for the API and the rules. :func:`encode` has the fast
path for the bulk of the traffic (an EVENT on "/" without ack id) inside it; everything else
goes through the general path, which checks the packet and moves binary data out into
attachments.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

from entryhw import jsjson
from entryhw.engineio.packets import Utf8
from entryhw.socketio.protocol import (
    ACK,
    BINARY_ACK,
    BINARY_EVENT,
    CONNECT,
    DISCONNECT,
    EVENT,
    MAX_ACK_ID,
    PACKET_TYPE_NAMES,
    RESERVED_EVENTS,
    Packet,
    check_rev,
)

# encodeURIComponent leaves A-Z a-z 0-9 - _ . ! ~ * ' ( ) alone; quote() always keeps _.-~
_URI_COMPONENT_SAFE = "!*'()"

_dumps = jsjson.dumps_text
# orjson first on the hot paths (see entryhw.jsjson); whatever it refuses (bytes, lone
# surrogates, huge integers, cycles...) takes the stdlib paths, which decide as before.
_fast_dumps = jsjson.dumps_text_fast
_fast_dumps_utf8 = jsjson.dumps_utf8_fast
_well_formed = jsjson.well_formed


def _prepare(value: Any, buffers: list[bytes] | None, active: set[int]) -> Any:
    """Copy ``value`` for JSON: binary -> placeholders, NaN/Infinity -> None."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        if buffers is None:
            raise TypeError("binary data is only allowed in EVENT and ACK packets")
        buffers.append(bytes(value))
        return {"_placeholder": True, "num": len(buffers) - 1}
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # what JSON.stringify does
    if isinstance(value, (list, tuple, dict)):
        marker = id(value)
        if marker in active:
            raise ValueError("circular reference in packet data")
        active.add(marker)
        try:
            if isinstance(value, dict):
                return {key: _prepare(item, buffers, active) for key, item in value.items()}
            return [_prepare(item, buffers, active) for item in value]
        finally:
            active.discard(marker)
    return value


def _serialize(data: Any, buffers: list[bytes] | None) -> str:
    try:
        body = _fast_dumps(data)
    except (TypeError, ValueError):
        # bytes somewhere (TypeError), NaN/Infinity or a cycle (ValueError): walk the data.
        try:
            body = _dumps(_prepare(data, buffers, set()))
        except RecursionError:
            raise ValueError("packet data nested too deeply to serialise") from None
    return _well_formed(body)


def _is_sequence(data: Any) -> bool:
    return isinstance(data, (list, tuple))


def _check_event_name(data: Any, rev: int) -> None:
    if not _is_sequence(data) or not data:
        raise ValueError("EVENT data must be a non-empty list: [name, *args]")
    name = data[0]
    if isinstance(name, str):
        if rev == 5 and name in RESERVED_EVENTS:
            raise ValueError(f"{name!r} is a reserved event name")
    elif isinstance(name, bool) or not isinstance(name, (int, float)):
        raise ValueError(f"event name must be a str or a number, not {name!r}")


def _encode_query(query: Any) -> str:
    if not isinstance(query, dict):
        raise ValueError("revision 4 CONNECT data must be a dict of str (the query)")
    parts = []
    for key, value in query.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError("revision 4 CONNECT query keys and values must be str")
        parts.append(
            f"{quote(key, safe=_URI_COMPONENT_SAFE)}={quote(value, safe=_URI_COMPONENT_SAFE)}"
        )
    return "&".join(parts)


def _encode_general(packet: Packet, rev: int) -> list[str | bytes]:
    check_rev(rev)
    ptype, nsp, data, ack_id = packet
    if type(ptype) is not int or not CONNECT <= ptype <= BINARY_ACK:
        raise ValueError(f"unknown packet type {ptype!r}")
    if not isinstance(nsp, str) or not nsp.startswith("/") or "," in nsp:
        # README: "the namespace is delimited by a comma, and there is no escape sequence"
        raise ValueError(f"namespace must be a str starting with '/' without ',': {nsp!r}")
    if ack_id is not None and (type(ack_id) is not int or not 0 <= ack_id <= MAX_ACK_ID):
        raise ValueError(f"ack id must be None or an int in [0, 2**53 - 1], not {ack_id!r}")

    buffers: list[bytes] = []
    body = ""
    if ptype == EVENT or ptype == BINARY_EVENT:
        _check_event_name(data, rev)
        body = _serialize(data, buffers)
        ptype = BINARY_EVENT if buffers else EVENT
    elif ptype == ACK or ptype == BINARY_ACK:
        if not _is_sequence(data):
            raise ValueError("ACK data must be a list")
        body = _serialize(data, buffers)
        ptype = BINARY_ACK if buffers else ACK
    elif ptype == CONNECT:
        if rev == 4:
            if "?" in nsp or "#" in nsp:
                raise ValueError("revision 4 CONNECT namespace must not contain '?' or '#'")
            if data is not None:
                nsp = f"{nsp}?{_encode_query(data)}"
        elif data is not None:
            if not isinstance(data, dict):
                raise ValueError("CONNECT data must be None or a dict")
            body = _serialize(data, None)
    elif ptype == DISCONNECT:
        if data is not None:
            raise ValueError("DISCONNECT takes no data")
    elif data is not None:  # CONNECT_ERROR / ERROR
        # Never a bare number: it would be read back as (part of) the ack id.
        valid = (dict, str, list, tuple) if rev == 4 else (dict, str)
        if not isinstance(data, valid):
            raise ValueError(f"{PACKET_TYPE_NAMES[ptype]} data has an invalid type")
        body = _serialize(data, None)

    parts = [str(ptype)]
    if buffers:
        parts.append(f"{len(buffers)}-")
    if nsp != "/":
        parts.append(nsp)
        parts.append(",")
    if ack_id is not None:
        parts.append(str(ack_id))
    parts.append(body)
    frames: list[str | bytes] = ["".join(parts)]
    frames.extend(buffers)
    return frames


def encode(packet: Packet, rev: int = 5, *, utf8: bool = False) -> list[str | bytes]:
    """Encode ``packet`` into its text frame followed by its binary attachments.

    With ``utf8`` the text frame is a :class:`~entryhw.engineio.packets.Utf8` (bytes
    straight from the JSON encoder, which an Engine.IO session sends as text), not a str.

    Raises ``ValueError`` for packets the other side would reject (unknown type, namespace
    not starting with ``/`` or containing ``,``, ack id not an int in [0, 2**53 - 1], data of
    the wrong shape for the type and revision, reserved event name in revision 5, circular
    data) and ``TypeError`` for data JSON cannot represent (including binary outside
    EVENT/ACK).
    """
    ptype, nsp, data, ack_id = packet
    # Fast path: an EVENT on "/" without ack id whose name is a str; no walk over the data
    # unless json refuses it (bytes, NaN, cycles...), then the general path takes over.
    if (
        ptype == EVENT
        and nsp == "/"
        and ack_id is None
        and type(data) is list
        and data
        and type(data[0]) is str
        and ((rev == 5 and data[0] not in RESERVED_EVENTS) or rev == 4)
    ):
        try:
            if utf8:
                return [Utf8(b"2" + _fast_dumps_utf8(data))]
            body = _fast_dumps(data)
        except (TypeError, ValueError):
            pass
        else:
            return ["2" + _well_formed(body)]
    frames = _encode_general(packet, rev)
    if utf8:
        frames[0] = Utf8(frames[0].encode())  # type: ignore[union-attr]
    return frames
