"""The WebSocket frames Engine.IO traffic is made of, parsed and built (sans-I/O).

Nearly every frame here is the simplest kind: one unfragmented text or binary
frame. Parsing and building those here, rather than through Autobahn's general
frame machinery, is most of the fast path of :mod:`entryhw.fastpath.frames`.

:func:`split_frames` (sans-I/O) peels complete frames of that kind off the
front of a byte buffer and stops at the first anything else (control frames,
fragments, oversized frames, a wrong mask bit, RSV bits), which Autobahn then
handles as before; :func:`build_frame` makes the frame we send (masked when we
are the client). Masking is one big-integer XOR, so neither direction needs
Autobahn's native (NVX) helpers.
"""

from __future__ import annotations

#: First byte of an unfragmented (FIN) text / binary frame with no RSV bits.
TEXT, BINARY = 0x81, 0x82
#: Largest payload taken when the protocol sets no message size limit.
FAST_MAX = 16 * 1024 * 1024
#: Close code for a text frame that is not UTF-8: RFC 6455's 1007 is not one an
#: application may send through Autobahn's ``sendClose``, so it is 1007 in the
#: private range (4000-4999).
INVALID_UTF8 = 4007


def mask_payload(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``mask`` (masking and unmasking alike)."""
    n = len(payload)
    if not n:
        return b""
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def split_frames(data: bytes | bytearray, limit: int = FAST_MAX, *, masked: bool = True
                 ) -> tuple[list[tuple[bytes, bool]], int, bool]:
    """Complete simple frames at the start of ``data``.

    ``masked`` says which frames are expected: masked ones from a client (we
    are the server) or unmasked ones from a server. Returns
    ``([(payload, is_binary), ...], bytes consumed, waiting)``; ``waiting`` is
    true when the rest of ``data`` is the start of a frame this function will
    take once it is complete. Anything else is left for the general parser.
    """
    out: list[tuple[bytes, bool]] = []
    pos, n = 0, len(data)
    limit = min(limit, FAST_MAX)
    mask_bit = 0x80 if masked else 0
    key_len = 4 if masked else 0
    while pos < n:
        b0 = data[pos]
        if b0 != TEXT and b0 != BINARY:
            return out, pos, False
        if n - pos < 2:
            return out, pos, True
        b1 = data[pos + 1]
        if b1 & 0x80 != mask_bit:  # a wrong mask bit fails the connection, in Autobahn
            return out, pos, False
        length = b1 & 0x7F
        head = 2
        if length == 126:
            head = 4
        elif length == 127:
            head = 10
        if n - pos < head:
            return out, pos, True
        if length == 126:
            length = (data[pos + 2] << 8) | data[pos + 3]
        elif length == 127:
            length = int.from_bytes(data[pos + 2:pos + 10], "big")
        if length > limit:
            return out, pos, False
        start = pos + head + key_len
        end = start + length
        if end > n:
            return out, pos, True
        payload = bytes(data[start:end])
        if masked:
            payload = mask_payload(payload, bytes(data[start - 4:start]))
        out.append((payload, b0 == BINARY))
        pos = end
    return out, pos, False


def build_frame(payload: bytes, binary: bool = False, mask: bytes | None = None) -> bytes:
    """One unfragmented frame: unmasked as a server sends it, or masked with ``mask``."""
    n = len(payload)
    first = BINARY if binary else TEXT
    bit = 0 if mask is None else 0x80
    if n < 126:
        head = bytes((first, bit | n))
    elif n <= 0xFFFF:
        head = bytes((first, bit | 126, n >> 8, n & 0xFF))
    else:
        head = bytes((first, bit | 127)) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + mask_payload(payload, mask)
