"""Socket.IO packet codec (sans-I/O) for protocol revisions 4 and 5.

Revision 4 is the protocol of socket.io 1.x/2.x (npm ``socket.io-parser`` 3.x, Engine.IO 3),
revision 5 the one of socket.io 3.x/4.x (``socket.io-parser`` 4.x, Engine.IO 4).  The wire
format is the same for both (``socket.io-protocol`` README, "Packet encoding")::

    <type>[<# of binary attachments>-][<namespace>,][<ack id>][JSON payload without binary]
    + one binary frame per attachment

This module only converts between :class:`Packet` values and the frames *inside* Engine.IO
``message`` packets: the Engine.IO ``"4"`` prefix is the engine layer's business, so a frame
here looks like ``2["message",{"data":1}]``, not ``42[...]``.  Nothing here does I/O, logs, or
imports Twisted.

API
===

``encode(packet, rev=5) -> list[str | bytes]``
    The text frame first, then the binary attachments.  EVENT/ACK packets whose data holds
    ``bytes``/``bytearray``/``memoryview`` anywhere (nested in lists, tuples, dicts) go out as
    BINARY_EVENT/BINARY_ACK with ``{"_placeholder":true,"num":N}`` placeholders, numbered
    depth-first in order like ``deconstructPacket()`` does.  A BINARY_* packet without any
    binary goes out as plain EVENT/ACK: current parsers (3.4.5, 4.2.7) reject a binary header
    declaring 0 attachments.  JSON is compact and not ASCII-escaped, like ``JSON.stringify``;
    NaN/Infinity become ``null`` (as ``JSON.stringify`` does) and lone surrogates are written
    as ``\\udXXX`` escapes (as the well-formed ``JSON.stringify`` of ES2019 does) so that the
    frame is always valid UTF-8.  Invalid packets raise ``ValueError``/``TypeError`` (caller
    bugs, never input): see :func:`encode`.

``Decoder(rev=5, max_attachments=10).feed(frame) -> Packet | None``
    One decoder per connection.  Text frames start packets; a binary packet returns ``None``
    until its attachments have arrived, then the packet with its *original* type
    (BINARY_EVENT/BINARY_ACK) and the placeholders replaced by ``bytes``.

``decode(text, rev=5) -> (Packet, attachment_count)``
    One text frame; placeholders are left in (validated against the count).

Only :class:`DecodeError` ever escapes ``decode`` and ``Decoder.feed``, whatever the input:
bad JSON, NaN/Infinity (``JSON.parse`` rejects them, ``json.loads`` would not), payloads
nested more than :data:`entryhw.limits.MAX_DEPTH` levels (:class:`TooDeepError`), oversized
numbers, unknown frame types, reserved event names.

Packet data by type
===================

==============  ====================================  =====================================
type            revision 5 (socket.io 3/4)            revision 4 (socket.io 2)
==============  ====================================  =====================================
CONNECT (0)     ``None`` or dict: the client's        ``None``, or the query of the
                ``auth`` object / the server's        namespace as a dict of str (see
                ``{"sid": ...}`` reply                below)
DISCONNECT (1)  ``None``                              ``None``
EVENT (2)       non-empty list, ``[name, *args]``;    the same (the reserved names are
                name a str (not a reserved event      refused too, unlike parser 3.4)
                name) or a number
ACK (3)         list (possibly empty)                 list
4               CONNECT_ERROR: dict                   ERROR: str, dict, list or ``None``
                ``{"message": str, "data"?: any}``    (``"Invalid namespace"``,
                or str (parser still accepts it)      ``err.data || err.message``)
BINARY_* (5/6)  as EVENT/ACK, ``bytes`` inside        as EVENT/ACK, ``bytes`` inside
==============  ====================================  =====================================

Revision 4 CONNECT query: a socket.io 2.x client connecting to a non-default namespace with
a query appends it to the namespace (``socket.io-client`` 2.x ``Manager.packet``:
``packet.nsp += '?' + packet.query``), and the 2.x server splits it with ``url.parse``
(``lib/client.js``).  ``decode("0/admin?token=1,", rev=4)`` therefore gives
``Packet(CONNECT, "/admin", data={"token": "1"})`` (values are str, percent-decoded, ``+`` is
a space, a repeated key keeps its last value, a ``#fragment`` is dropped, only the first
1000 ``&``-separated pairs count, like ``querystring.parse``'s ``maxKeys``); without ``?`` the
data is ``None``.  Encoding such a packet with ``rev=4`` writes the query back with
``encodeURIComponent`` escaping.  A JSON payload on a revision 4 CONNECT is validated like
``socket.io-parser`` 3.4.x does (object, array or null) and dropped, as the 2.x server never
reads it.  The server's own revision 4 CONNECT carries no data: ``"0"`` for ``/``,
``"0/admin,"`` otherwise; in revision 5 it is ``0{"sid":"..."}``.

Where this decoder is stricter than the reference parsers (all deliberate, none produced by
a real client): an empty frame (``Number("")`` is 0 in JS, so it decodes as CONNECT there),
EVENT/ACK without payload (the README says the payload is mandatory; the parsers only
validate payloads that are present), JS ``Number(" ") == " "`` quirks (a space is taken for
an ack id digit there; only ASCII digits count here), ack ids above 2**53 - 1, placeholder
``num`` values that are not integers, integers of more than 4300 digits (Python's int limit;
``JSON.parse`` makes them Infinity).  A revision 4 CONNECT path is taken verbatim, without
``url.parse``'s escaping of spaces and backslashes.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote

from entryhw import jsjson
from entryhw.limits import MAX_DEPTH, SOCKETIO_ENVELOPE

__all__ = [
    "ACK",
    "BINARY_ACK",
    "BINARY_EVENT",
    "CONNECT",
    "CONNECT_ERROR",
    "DISCONNECT",
    "ERROR",
    "EVENT",
    "MAX_ACK_ID",
    "PACKET_TYPE_NAMES",
    "RESERVED_EVENTS",
    "REVISIONS",
    "DecodeError",
    "Decoder",
    "Packet",
    "TooDeepError",
    "decode",
    "encode",
]

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

_MAX_ACK_DIGITS = len(str(MAX_ACK_ID))
_MAX_ATTACHMENT_DIGITS = 9
_TYPE_CHARS = "0123456"
_MAX_QUERY_KEYS = 1000
# encodeURIComponent leaves A-Z a-z 0-9 - _ . ! ~ * ' ( ) alone; quote() always keeps _.-~
_URI_COMPONENT_SAFE = "!*'()"


class DecodeError(ValueError):
    """The only exception the decoder raises for bad input."""


class TooDeepError(DecodeError):
    """A payload nested deeper than :data:`entryhw.limits.MAX_DEPTH` (a DecodeError too)."""


class Packet(NamedTuple):
    """A Socket.IO packet.

    For EVENT/ACK ``data`` is the list of arguments (event name first for EVENT); binary
    arguments are ``bytes``.  ``id`` is the ack id.  See the module docstring for the data of
    each type and revision.
    """

    type: int
    nsp: str = "/"
    data: Any = None
    id: int | None = None


# --------------------------------------------------------------------------- JSON

_dumps = jsjson.dumps_text
# orjson first on the hot paths (see entryhw.jsjson); whatever it refuses (bytes, lone
# surrogates, huge integers, cycles...) takes the stdlib paths, which decide as before.
_fast_dumps = jsjson.dumps_text_fast
_well_formed = jsjson.well_formed

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


# --------------------------------------------------------------------------- decoding


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


def _check_rev(rev: int) -> int:
    if rev != 5 and rev != 4:
        raise ValueError(f"unsupported Socket.IO protocol revision {rev!r}")
    return rev


def decode(text: str, rev: int = 5) -> tuple[Packet, int]:
    """Decode one text frame into ``(packet, attachment_count)``.

    For BINARY_EVENT/BINARY_ACK the placeholders stay in ``packet.data`` (checked against the
    count) and ``attachment_count >= 1``; otherwise the count is 0.  Use :class:`Decoder` to
    get the attachments put in.  Raises :class:`DecodeError` and nothing else on bad input.
    """
    _check_rev(rev)
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
        self.rev = _check_rev(rev)
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


# --------------------------------------------------------------------------- encoding


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
    _check_rev(rev)
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


def encode(packet: Packet, rev: int = 5) -> list[str | bytes]:
    """Encode ``packet`` into its text frame followed by its binary attachments.

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
            body = _fast_dumps(data)
        except (TypeError, ValueError):
            pass
        else:
            return ["2" + _well_formed(body)]
    return _encode_general(packet, rev)
