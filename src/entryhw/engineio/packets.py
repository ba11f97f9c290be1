"""Engine.IO packet and payload codec for protocol revisions 3 and 4 (sans-I/O).

The wire formats follow the engine.io-protocol README (revision 4, and the v3 tag
for revision 3) and, where the README is vague, the code clients actually run:
engine.io-parser 2.x (revision 3), engine.io-parser 4/5 (revision 4), and the
engine.io server's polling and JSONP transports.

Everything here is a pure function of its arguments. The decoders raise only
:class:`DecodeError`, whatever bytes a peer sends; the encoders raise plain
``ValueError`` for packets that cannot be put on the wire, which is a bug in
the caller rather than in the peer.
"""

from __future__ import annotations

import base64
import json
import re
import sys
from array import array
from collections.abc import Sequence
from typing import NamedTuple
from urllib.parse import parse_qs

__all__ = [
    "CLOSE",
    "CONTENT_TYPE_BINARY",
    "CONTENT_TYPE_JSONP",
    "CONTENT_TYPE_TEXT",
    "MESSAGE",
    "NOOP",
    "OPEN",
    "PING",
    "PONG",
    "UPGRADE",
    "DecodeError",
    "Packet",
    "Utf8",
    "decode_packet",
    "decode_payload",
    "encode_packet",
    "encode_payload",
    "handshake_data",
    "js_length",
]


class DecodeError(ValueError):
    """The only exception the decoders raise for bad input."""


class Utf8(bytes):
    """A text message already encoded as UTF-8, as orjson writes it.

    ``Session.send`` takes one as text (``bytes`` alone means a binary message), so a
    payload goes from the JSON encoder to the WebSocket frame without a round trip
    through ``str``; only long-polling, whose payloads are text, decodes it.
    """

    __slots__ = ()


OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = range(7)


class Packet(NamedTuple):
    """One Engine.IO packet; ``bytes`` data marks a binary message.

    A text packet without data (``"4"``) decodes with ``data=None``, as the
    reference parsers leave ``data`` undefined; ``""`` and ``None`` encode alike.
    """

    type: int
    data: str | bytes | None = None


CONTENT_TYPE_TEXT = "text/plain; charset=UTF-8"
CONTENT_TYPE_BINARY = "application/octet-stream"
CONTENT_TYPE_JSONP = "text/javascript; charset=UTF-8"

# Packet(...) goes through NamedTuple's Python-level __new__; this is the same
# tuple built in C, for the per-frame hot path of decode_packet.
_new_packet = tuple.__new__
_TYPE_CHAR = {t: str(t) for t in range(7)}
_CHAR_TYPE = {str(t): t for t in range(7)}
_SEPARATOR = "\x1e"  # v4 record separator between packets of a payload
_BYTES_LIKE = (bytes, bytearray, memoryview)
# A body cannot hold more than 10**16 bytes, so a longer length field is garbage;
# the bound also keeps the colon / 0xFF searches from scanning a whole body.
_MAX_DIGITS = 16
_TO_DIGIT_BYTES = bytes.maketrans(b"0123456789", bytes(range(10)))
_FROM_DIGIT_BYTES = bytes.maketrans(bytes(range(10)), b"0123456789")
_UTF16 = "utf-16-le" if sys.byteorder == "little" else "utf-16-be"  # native, for array("H")
_JSONP_NEWLINE = re.compile(r"(\\)?\\n")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def js_length(s: str) -> int:
    """Length of ``s`` in UTF-16 code units, as JS ``String.length`` counts.

    Revision 3 payloads frame packets by this count: astral characters count 2.
    """
    if s.isascii():
        return len(s)
    return len(s.encode("utf-16-le", "surrogatepass")) >> 1


def encode_packet(packet: Packet, eio: int, *, b64: bool = False) -> str | bytes:
    """Encode one packet as one WebSocket frame (``str``: text, ``bytes``: binary).

    ``b64`` is the session's ``b64=1`` query flag: binary data then goes out as
    a base64 text frame (``"b4..."`` in v3, ``"b..."`` in v4), as the engine.io
    server does for clients without binary support.
    """
    ptype, data = packet
    head = _TYPE_CHAR.get(ptype)
    if head is None:
        raise ValueError(f"unknown Engine.IO packet type {ptype!r}")
    if isinstance(data, str):
        return head + data
    if data is None:
        return head
    if not isinstance(data, _BYTES_LIKE):
        raise ValueError(f"packet data must be str, bytes or None, not {type(data).__name__}")
    if eio == 4:
        if ptype != MESSAGE:
            # v4 has no type on binary frames, nor in "b" payload entries.
            raise ValueError("protocol 4 carries binary data only in MESSAGE packets")
        return "b" + _b64encode(data) if b64 else bytes(data)
    if eio == 3:
        return "b" + head + _b64encode(data) if b64 else bytes((ptype,)) + data
    raise ValueError(f"unsupported Engine.IO protocol {eio!r}")


def decode_packet(frame: str | bytes, eio: int) -> Packet:
    """Decode one WebSocket frame (text as ``str``, binary as ``bytes``).

    Text frames may also carry base64 binary (``"b..."``) from clients that
    force base64. v4 binary frames are bare MESSAGE data; v3 binary frames
    start with the packet type byte.
    """
    if isinstance(frame, str):
        ptype = _CHAR_TYPE.get(frame[:1])
        if ptype is not None:
            return _new_packet(Packet, (ptype, frame[1:] or None))
        if frame[:1] == "b":
            return _decode_base64_packet(frame, eio)
        raise DecodeError(f"bad packet type in {frame[:8]!r}")
    if not isinstance(frame, _BYTES_LIKE):
        raise DecodeError(f"frame must be str or bytes, not {type(frame).__name__}")
    if eio == 4:
        return Packet(MESSAGE, bytes(frame))
    if eio == 3:
        frame = bytes(frame)
        if not frame or frame[0] > NOOP:
            raise DecodeError("bad packet type in binary frame")
        return Packet(frame[0], frame[1:])
    raise DecodeError(f"unsupported Engine.IO protocol {eio!r}")


def encode_payload(
    packets: Sequence[Packet], eio: int, *, b64: bool = False, jsonp: str | None = None
) -> tuple[bytes, str]:
    """Encode packets as one HTTP long-polling response body; returns (body, Content-Type).

    v4: packets joined by ``"\\x1e"``, binary always as ``"b"`` + base64.
    v3: ``"<len>:<packet>"`` with UTF-16 lengths, binary as ``"b4"`` + base64;
    but if any packet is binary and neither ``b64`` nor JSONP is in force, the
    v3 binary payload format (application/octet-stream) is used instead.
    ``jsonp`` is the ``j`` query value; the text payload is then wrapped as
    ``___eio[j]("...");`` exactly as the engine.io server's JSONP transport does.
    """
    if eio == 4:
        if not packets:
            # engine.io-client 4+ reads an empty body as a parse error and closes.
            raise ValueError("a protocol 4 payload needs at least one packet")
        parts = []
        for packet in packets:
            frame = encode_packet(packet, 4, b64=True)
            if _SEPARATOR in frame:
                # The peer would split here and read a forged packet.
                raise ValueError("protocol 4 text packets cannot contain '\\x1e'")
            parts.append(frame)
        text = _SEPARATOR.join(parts)
    elif eio == 3:
        if not b64 and jsonp is None and any(isinstance(p[1], _BYTES_LIKE) for p in packets):
            return _encode_binary_payload(packets), CONTENT_TYPE_BINARY
        if not packets:
            text = "0:"  # what engine.io-parser 2 emits; the client reads no packets
        else:
            parts = []
            for packet in packets:
                frame = encode_packet(packet, 3, b64=True)
                parts.append(f"{js_length(frame)}:{frame}")
            text = "".join(parts)
    else:
        raise ValueError(f"unsupported Engine.IO protocol {eio!r}")
    if jsonp is None:
        return _utf8(text), CONTENT_TYPE_TEXT
    return _jsonp_body(text, jsonp), CONTENT_TYPE_JSONP


def decode_payload(
    body: bytes, eio: int, *, content_type: str | bytes | None = None, jsonp: bool = False
) -> list[Packet]:
    """Decode a POSTed long-polling body into packets.

    ``content_type`` is the request's Content-Type header (``bytes`` as Twisted's
    ``getHeader`` returns it is fine); ``application/octet-stream``
    selects the v3 binary payload format (and is refused in v4, as the engine.io
    server does). ``jsonp`` means the body is the JSONP transport's form post
    ``d=<payload>``. The whole body is rejected if any part of it is bad.
    """
    if not isinstance(body, _BYTES_LIKE):
        raise DecodeError(f"body must be bytes, not {type(body).__name__}")
    if eio not in (3, 4):
        raise DecodeError(f"unsupported Engine.IO protocol {eio!r}")
    body = bytes(body)
    if not jsonp and content_type is not None and _is_octet_stream(content_type):
        if eio == 4:
            raise DecodeError("protocol 4 payloads are never binary")
        return _decode_binary_payload(body)
    text = _jsonp_form_data(body) if jsonp else _utf8_decode(body)
    if not text:
        raise DecodeError("empty payload")
    if eio == 4:
        return [decode_packet(frame, 4) for frame in text.split(_SEPARATOR)]
    return [decode_packet(frame, 3) for frame in _v3_frames(text)]


def handshake_data(
    sid: str, upgrades: list[str], ping_interval: int, ping_timeout: int, eio: int, max_payload: int
) -> str:
    """JSON for the OPEN packet, keys in the engine.io server's order.

    ``maxPayload`` goes to v3 clients too, as the current engine.io server
    sends it: engine.io-client 3 ignores unknown keys, and the v3 flavour of the
    public conformance suite expects it.
    """
    data: dict[str, object] = {
        "sid": sid,
        "upgrades": list(upgrades),
        "pingInterval": ping_interval,
        "pingTimeout": ping_timeout,
    }
    data["maxPayload"] = max_payload
    if eio not in (3, 4):
        raise ValueError(f"unsupported Engine.IO protocol {eio!r}")
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


# --- helpers -----------------------------------------------------------------------------------


def _b64encode(data: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text
        raise DecodeError("bad base64 data") from exc


def _decode_base64_packet(frame: str, eio: int) -> Packet:
    if eio == 4:  # "b<base64>" is always a message in v4
        return Packet(MESSAGE, _b64decode(frame[1:]))
    if eio == 3:  # "b<type><base64>"
        ptype = _CHAR_TYPE.get(frame[1:2])
        if ptype is None:
            raise DecodeError(f"bad packet type in {frame[:8]!r}")
        return Packet(ptype, _b64decode(frame[2:]))
    raise DecodeError(f"unsupported Engine.IO protocol {eio!r}")


def _utf8(text: str) -> bytes:
    """UTF-8 encode like Node's ``Buffer.from``: lone surrogates become U+FFFD."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        # Pair up any surrogate halves the way JS strings would, replace the rest.
        paired = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return paired.encode()


def _utf8_decode(data: bytes) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise DecodeError("payload is not valid UTF-8") from exc


def _is_octet_stream(content_type: str | bytes) -> bool:
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    return content_type.partition(";")[0].strip().lower() == CONTENT_TYPE_BINARY


def _split_lengths(text: str) -> list[str]:
    """Split ``<len>:<frame>...`` where one ``text`` character is one length unit.

    Zero-length entries are skipped, as engine.io-parser 2 does (``"0:"`` is the
    empty payload).
    """
    frames = []
    pos, end = 0, len(text)
    while pos < end:
        colon = text.find(":", pos, pos + _MAX_DIGITS + 1)
        digits = text[pos:colon] if colon > pos else ""
        if not (digits.isascii() and digits.isdigit()):
            raise DecodeError("bad length in payload")
        start = colon + 1
        pos = start + int(digits)
        if pos > end:
            raise DecodeError("truncated payload")
        if pos > start:
            frames.append(text[start:pos])
    return frames


def _v3_frames(text: str) -> list[str]:
    """Split a v3 text payload; lengths count UTF-16 code units, not code points."""
    if text.isascii() or max(text) <= "\uffff":
        return _split_lengths(text)
    # Astral characters are two units: split a string holding one code point per
    # UTF-16 unit, then join the surrogate pairs back up.
    units = "".join(map(chr, array("H", text.encode(_UTF16))))
    try:
        return [
            frame.encode(_UTF16, "surrogatepass").decode(_UTF16) for frame in _split_lengths(units)
        ]
    except UnicodeDecodeError as exc:
        raise DecodeError("payload length splits a surrogate pair") from exc


def _encode_binary_payload(packets: Sequence[Packet]) -> bytes:
    """engine.io-parser 2 ``encodePayloadAsBinary``.

    Per packet: 0x00 (text) or 0x01 (binary), the decimal length as one byte per
    digit (0..9), 0xFF, then the frame: UTF-8 text, or type byte + data.
    """
    out = bytearray()
    for packet in packets:
        frame = encode_packet(packet, 3)
        if isinstance(frame, str):
            out.append(0)
            frame = _utf8(frame)  # lengths count bytes here, not UTF-16 units
        else:
            out.append(1)
        out += str(len(frame)).encode("ascii").translate(_TO_DIGIT_BYTES)
        out.append(0xFF)
        out += frame
    return bytes(out)


def _decode_binary_payload(body: bytes) -> list[Packet]:
    """Inverse of :func:`_encode_binary_payload`."""
    if not body:
        raise DecodeError("empty payload")
    packets = []
    pos, end = 0, len(body)
    while pos < end:
        marker = body[pos]
        stop = body.find(b"\xff", pos + 1, pos + 2 + _MAX_DIGITS)
        digits = body[pos + 1 : stop] if stop > pos + 1 else b""
        if marker > 1 or not digits or max(digits) > 9:
            raise DecodeError("bad packet header in binary payload")
        start = stop + 1
        pos = start + int(digits.translate(_FROM_DIGIT_BYTES))
        if pos > end:
            raise DecodeError("truncated payload")
        chunk = body[start:pos]
        packets.append(decode_packet(_utf8_decode(chunk) if marker == 0 else chunk, 3))
    return packets


def _jsonp_body(text: str, index: str) -> bytes:
    """``___eio[<j>](<JSON string>);`` as the engine.io JSONP transport writes it.

    Like the server, keep only the digits of ``j`` (it lands in script source),
    and escape U+2028/U+2029, which JSON allows in strings but older JS does not.
    """
    digits = "".join(c for c in index if "0" <= c <= "9")
    js = json.dumps(text, ensure_ascii=False)
    if not js.isascii():
        # JSON.stringify escapes lone surrogates; json.dumps would pass them through.
        js = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", js)
        js = js.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f"___eio[{digits}]({js});".encode()


def _jsonp_form_data(body: bytes) -> str:
    """The payload from a JSONP form post ``d=<urlencoded payload>``.

    The client sends newlines as ``\\n`` and ``\\n`` as ``\\\\n`` (textareas would
    turn bare newlines into CRLF); undo that as the engine.io server does.
    """
    try:
        fields = parse_qs(_utf8_decode(body), keep_blank_values=True, errors="strict")
    except ValueError as exc:  # UnicodeDecodeError from a bad %-escape
        raise DecodeError("bad JSONP form body") from exc
    values = fields.get("d")
    if values is None or len(values) != 1:
        raise DecodeError("JSONP form body needs exactly one 'd' field")
    data = _JSONP_NEWLINE.sub(lambda m: m[0] if m[1] else "\n", values[0])
    return data.replace("\\\\n", "\\n")
