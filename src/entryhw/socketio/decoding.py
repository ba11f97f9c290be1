"""Socket.IO frames to :class:`~entryhw.socketio.protocol.Packet` values (sans-I/O).

See :mod:`entryhw.socketio.packets` for the API and the rules; this module holds the
parsing: the header (type, attachments, namespace, ack id), the JSON payload through
:func:`entryhw.jsjson.loads`, the checks per type and revision, and the reassembly of binary
packets. Only :class:`DecodeError` leaves it, whatever the input.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from entryhw import jsjson
from entryhw.limits import MAX_DEPTH, SOCKETIO_ENVELOPE
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
    DecodeError,
    Packet,
    TooDeepError,
    check_rev,
)

_MAX_ACK_DIGITS = len(str(MAX_ACK_ID))
_MAX_ATTACHMENT_DIGITS = 9
_TYPE_CHARS = "0123456"
_MAX_QUERY_KEYS = 1000
#: Levels a packet's JSON may nest: a payload's limit plus the envelope around it.
_MAX_NESTING = MAX_DEPTH + SOCKETIO_ENVELOPE


def _parse_json(text: str, start: int) -> Any:
    """``JSON.parse(text.slice(start))``, or DecodeError (TooDeepError past the nesting limit)."""
    try:
        return jsjson.loads(text, _MAX_NESTING, start)
    except jsjson.TooDeep as e:
        raise TooDeepError(f"invalid JSON payload: {e}") from None
    except ValueError as e:  # JSONDecodeError, NaN/Infinity, int too long to convert
        raise DecodeError(f"invalid JSON payload: {e}") from None


def _check_event_args(data: Any, rev: int) -> None:
    if type(data) is not list or not data:
        raise DecodeError("EVENT payload must be a non-empty array")
    name = data[0]
    kind = type(name)
    if kind is str:
        # Revision 4 parsers let these through and socket.io 2 then fired its own
        # lifecycle listeners with them (a forged "disconnect"); refused for both here.
        if name in RESERVED_EVENTS:
            raise DecodeError(f"reserved event name {name!r}")
    elif kind is not int and kind is not float:
        raise DecodeError("event name must be a string or a number")


def _split_query(nsp: str) -> tuple[str, dict[str, str] | None]:
    """What socket.io 2.x does with a CONNECT namespace: ``url.parse(nsp, true)``."""
    hash_at = nsp.find("#")
    if hash_at >= 0:
        nsp = nsp[:hash_at]
    query_at = nsp.find("?")
    if query_at < 0:
        return nsp, None
    # querystring.parse(), behind url.parse(nsp, true), stops after maxKeys = 1000 pairs
    segments = nsp[query_at + 1 :].split("&", _MAX_QUERY_KEYS)
    try:
        pairs = parse_qsl("&".join(segments[:_MAX_QUERY_KEYS]), keep_blank_values=True)
    except ValueError:  # pragma: no cover - parse_qsl only raises with strict_parsing
        raise DecodeError("invalid CONNECT query") from None
    return nsp[:query_at], dict(pairs)


def _find_placeholders(data: list[Any], count: int) -> list[tuple[Any, Any, int]]:
    """Validate the placeholders of a binary packet and return where they are.

    Iterative, so nesting depth is bounded only by what the JSON parser accepted.  Like
    ``_reconstructPacket``: any object whose ``_placeholder`` is ``true`` is a placeholder
    (its other members and children are not looked at) and needs ``0 <= num < count``.
    """
    slots: list[tuple[Any, Any, int]] = []
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        items = enumerate(node) if type(node) is list else node.items()
        for key, value in items:
            kind = type(value)
            if kind is dict:
                if value.get("_placeholder") is True:
                    num = value.get("num")
                    if type(num) is not int or not 0 <= num < count:
                        raise DecodeError("illegal attachments: bad placeholder")
                    slots.append((node, key, num))
                else:
                    stack.append(value)
            elif kind is list:
                stack.append(value)
    return slots


def _decode(
    text: str, rev: int, max_attachments: int | None = None
) -> tuple[Packet, int, list[tuple[Any, Any, int]] | None]:
    # Fast path: an EVENT on "/" without ack id, the bulk of the traffic.
    if text.startswith("2["):
        data = _parse_json(text, 1)
        _check_event_args(data, rev)
        return Packet(EVENT, "/", data, None), 0, None

    length = len(text)
    if not length:
        raise DecodeError("empty packet")
    ptype = _TYPE_CHARS.find(text[0])
    if ptype < 0:
        raise DecodeError(f"unknown packet type {text[0]!r}")
    i = 1

    count = 0
    if ptype >= BINARY_EVENT:
        j = i
        while j < length and "0" <= text[j] <= "9" and j - i <= _MAX_ATTACHMENT_DIGITS:
            j += 1
        if j == i or j >= length or text[j] != "-":
            raise DecodeError("illegal attachments")
        count = int(text[i:j])
        if count < 1:
            raise DecodeError("illegal attachments: a binary packet declares none")
        if max_attachments is not None and count > max_attachments:
            raise DecodeError("too many attachments")
        i = j + 1

    nsp = "/"
    if i < length and text[i] == "/":
        comma = text.find(",", i)
        if comma < 0:
            nsp = text[i:]
            i = length
        else:
            nsp = text[i:comma]
            i = comma + 1

    ack_id = None
    j = i
    while j < length and "0" <= text[j] <= "9":
        j += 1
        if j - i > _MAX_ACK_DIGITS:
            raise DecodeError("ack id too large")
    if j > i:
        ack_id = int(text[i:j])
        if ack_id > MAX_ACK_ID:
            raise DecodeError("ack id too large")
        i = j

    has_data = i < length
    data = _parse_json(text, i) if has_data else None

    if ptype == EVENT or ptype == BINARY_EVENT:
        _check_event_args(data, rev)  # a missing payload (None) fails too
    elif ptype == ACK or ptype == BINARY_ACK:
        if type(data) is not list:  # a missing payload (None) fails too
            raise DecodeError("ACK payload must be an array")
    elif ptype == CONNECT:
        if rev == 5:
            if has_data and type(data) is not dict:
                raise DecodeError("CONNECT payload must be an object")
        else:
            kind = type(data)
            if has_data and data is not None and kind is not dict and kind is not list:
                raise DecodeError("CONNECT payload must be an object")
            nsp, data = _split_query(nsp)
    elif ptype == DISCONNECT:
        if has_data:
            raise DecodeError("DISCONNECT takes no payload")
    elif has_data:  # CONNECT_ERROR / ERROR
        kind = type(data)
        if rev == 5:
            valid = kind is dict or kind is str
        else:
            valid = kind is dict or kind is str or kind is list or data is None
        if not valid:
            raise DecodeError(f"{PACKET_TYPE_NAMES[ptype]} payload must be an object or a string")

    slots = _find_placeholders(data, count) if count else None
    return Packet(ptype, nsp, data, ack_id), count, slots


def decode(text: str, rev: int = 5) -> tuple[Packet, int]:
    """Decode one text frame into ``(packet, attachment_count)``.

    For BINARY_EVENT/BINARY_ACK the placeholders stay in ``packet.data`` (checked against the
    count) and ``attachment_count >= 1``; otherwise the count is 0.  Use :class:`Decoder` to
    get the attachments put in.  Raises :class:`DecodeError` and nothing else on bad input.
    """
    check_rev(rev)
    if not isinstance(text, str):
        raise DecodeError(f"a text frame must be str, not {type(text).__name__}")
    packet, count, _ = _decode(text, rev)
    return packet, count


class Decoder:
    """Incremental decoder for the frames of one connection.

    ``feed()`` returns a complete :class:`Packet` or ``None`` while a binary packet waits for
    attachments.  A binary frame with no packet waiting, a text frame while attachments are
    pending, a header declaring more than ``max_attachments`` (default 10, as in the reference
    parsers) or a placeholder with a bad ``num`` raise :class:`DecodeError`; after an error
    the decoder is idle again (a pending packet is dropped), though the connection should
    be closed anyway.
    """

    __slots__ = ("_buffers", "_expected", "_pending", "_slots", "max_attachments", "rev")

    def __init__(self, rev: int = 5, max_attachments: int = 10) -> None:
        self.rev = check_rev(rev)
        if type(max_attachments) is not int or max_attachments < 0:
            raise ValueError(f"max_attachments must be an int >= 0, not {max_attachments!r}")
        self.max_attachments = max_attachments
        self._pending: Packet | None = None
        self._slots: list[tuple[Any, Any, int]] = []
        self._buffers: list[bytes] = []
        self._expected = 0

    @property
    def awaiting(self) -> int:
        """How many binary attachments the decoder still waits for (0 when idle)."""
        return self._expected - len(self._buffers) if self._pending is not None else 0

    def reset(self) -> None:
        """Drop a partially received binary packet."""
        self._pending = None
        self._slots = []
        self._buffers = []
        self._expected = 0

    def feed(self, frame: str | bytes) -> Packet | None:
        if isinstance(frame, str):
            if self._pending is not None:
                self.reset()
                raise DecodeError("got a text frame while binary attachments are pending")
            packet, count, slots = _decode(frame, self.rev, self.max_attachments)
            if not count:
                return packet
            self._pending = packet
            self._slots = slots or []
            self._buffers = []
            self._expected = count
            return None
        if isinstance(frame, (bytes, bytearray, memoryview)):
            pending = self._pending
            if pending is None:
                raise DecodeError("got a binary frame with no binary packet waiting")
            buffers = self._buffers
            buffers.append(bytes(frame))
            if len(buffers) < self._expected:
                return None
            for node, key, num in self._slots:
                node[key] = buffers[num]
            self.reset()
            return pending
        raise DecodeError(f"unsupported frame type {type(frame).__name__}")
