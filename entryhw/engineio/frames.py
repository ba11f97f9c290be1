"""A fast path through Autobahn for the frames Engine.IO traffic is made of.

Profiling the Entry hot path showed Autobahn's general frame machinery
(per-frame masker objects, per-message observer Deferreds, debug-log
arguments formatted eagerly on every write) costing more than all of
Engine.IO, Socket.IO and the bridge together. Nearly every frame here is
the simplest kind: one unfragmented text or binary frame, well under 64 KiB.

:func:`split_frames` (sans-I/O) peels complete frames of that kind off the
front of a client's byte buffer and stops at the first anything else (control
frames, fragments, big or unmasked frames, RSV bits), which Autobahn then
handles as before; :func:`server_frame` builds the unmasked frame a server
sends. :class:`FastFramesMixin` plugs both into an Autobahn server protocol,
and only while the connection is open and uncompressed.
"""

from __future__ import annotations

from typing import Any

from autobahn.websocket.protocol import WebSocketProtocol

#: First byte of an unfragmented (FIN) text / binary frame with no RSV bits.
TEXT, BINARY = 0x81, 0x82
#: Payloads above this go through Autobahn (its 8-byte length form, limits, etc.).
FAST_MAX = 0xFFFF


def _unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if not n:
        return b""
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def split_frames(data: bytes | bytearray, limit: int = FAST_MAX
                 ) -> tuple[list[tuple[bytes, bool]], int]:
    """Complete simple client frames at the start of ``data``.

    Returns ``([(payload, is_binary), ...], bytes consumed)``; the rest of
    ``data`` is left for the general parser.
    """
    out: list[tuple[bytes, bool]] = []
    pos, n = 0, len(data)
    limit = min(limit, FAST_MAX)
    while n - pos >= 6:
        b0 = data[pos]
        if b0 != TEXT and b0 != BINARY:
            break
        b1 = data[pos + 1]
        if not b1 & 0x80:  # clients must mask; let Autobahn fail the connection
            break
        length = b1 & 0x7F
        start = pos + 6
        if length == 126:
            if n - pos < 8:
                break
            length = (data[pos + 2] << 8) | data[pos + 3]
            start = pos + 8
        elif length == 127:
            break
        if length > limit:
            break
        end = start + length
        if end > n:
            break
        out.append((_unmask(bytes(data[start:end]), bytes(data[start - 4:start])),
                    b0 == BINARY))
        pos = end
    return out, pos


def server_frame(payload: bytes, binary: bool = False) -> bytes:
    """One unfragmented, unmasked frame as a server sends it."""
    n = len(payload)
    head = BINARY if binary else TEXT
    if n < 126:
        return bytes((head, n)) + payload
    if n <= 0xFFFF:
        return bytes((head, 126, n >> 8, n & 0xFF)) + payload
    return bytes((head, 127)) + n.to_bytes(8, "big") + payload


class FastFramesMixin:
    """For an Autobahn ``WebSocketServerProtocol`` whose ``onMessage`` does the work."""

    state: int
    data: bytes
    current_frame: Any
    inside_message: bool
    send_queue: Any
    transport: Any
    _perMessageCompress: Any
    maxMessagePayloadSize: int

    def _fast_ok(self) -> bool:
        return (self.state == WebSocketProtocol.STATE_OPEN and self._perMessageCompress is None
                and self.current_frame is None and not self.inside_message)

    def dataReceived(self, data: bytes) -> None:
        # Autobahn's version formats debug-log arguments on every read.
        self._dataReceived(data)  # type: ignore[attr-defined]

    def processData(self) -> bool:
        if self._fast_ok() and len(self.data) >= 6:
            limit = self.maxMessagePayloadSize or FAST_MAX
            frames, used = split_frames(self.data, limit)
            if used:
                self.data = self.data[used:]
                for payload, binary in frames:
                    self.onMessage(payload, binary)  # type: ignore[attr-defined]
                    if self.state != WebSocketProtocol.STATE_OPEN:
                        return False
                return len(self.data) > 0
        return super().processData()  # type: ignore[misc]

    def sendMessage(self, payload: bytes, isBinary: bool = False, *args: Any, **kw: Any) -> None:
        if (not args and not kw and self.state == WebSocketProtocol.STATE_OPEN
                and self._perMessageCompress is None and not self.send_queue):
            self.transport.write(server_frame(payload, isBinary))
            return
        super().sendMessage(payload, isBinary, *args, **kw)  # type: ignore[misc]
