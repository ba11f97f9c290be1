"""Seeded generators of hostile input for the server's three doors (sans-I/O, reusable).

Everything here is a pure function of a seed: :class:`Fuzzer` turns one
``random.Random(seed)`` into wire bytes and nothing else, so a failing run is
replayed by its seed, and the drivers (tests/test_fuzz.py) only move bytes.

* **WebSocket** (:meth:`Fuzzer.ws_plan`): an RFC 6455 handshake (sometimes a
  broken one, sometimes not even HTTP), then masked frames carrying Engine.IO
  3/4 packets that carry Socket.IO revision 4/5 packets, valid or mutated, plus
  frames that break WebSocket itself (reserved opcodes and bits, unmasked or
  oversized control frames, lying lengths, stray continuations) and raw bytes.
* **Long-polling** (:meth:`Fuzzer.polling_plan`): Engine.IO payloads (v3
  length-prefixed text and binary, v4 ``\\x1e``-separated, JSONP forms) with
  assorted Content-Types, and stray GETs.
* **IPC** (:meth:`Fuzzer.ipc_line`): lines a Node parent would never write.

Valid packets follow engine.io-protocol and socket.io-protocol; the mutations
are the ones parsers trip on: bit flips, truncation, duplication, splicing,
reserved event names, nesting of 100-1100 levels, huge numbers, invalid UTF-8,
lone surrogates, binary where text is expected, ``\\x1e``, v3 length prefixes
that lie, and plain random bytes.

Nothing generated may end the server or steer its routing by legitimate means:
no bare ``"exit"`` line, no ``addRoomId``, no ``childServer`` handshake query
(a copy's ``matchTarget`` could take a room over), no room named by the caller.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

#: Socket.IO lifecycle names a peer may never use as an event name.
RESERVED_EVENTS = ("connect", "connect_error", "disconnect", "disconnecting", "newListener",
                   "removeListener")
#: The events Entry's host handles, and some it does not.
EVENTS = ("message", "message", "message", "matchTarget", "mode", "frobnicate", "")
#: Depth of the nesting mutations; the server's limit (128) sits inside the range.
DEEP_MIN, DEEP_MAX = 100, 1100
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONTENT_TYPES = (
    "text/plain;charset=UTF-8", "text/plain; charset=UTF-8", "text/plain", None,
    "application/octet-stream", "application/octet-stream; charset=binary",
    "application/x-www-form-urlencoded", "application/json", "text/html",
    "multipart/form-data; boundary=----x", "APPLICATION/OCTET-STREAM", "\x7f/\x00", "",
)
_TEXTS = ("", "a", "엔트리 하드웨어", "🤖🔌", "\u2028\u2029", "\x00", "\\", '"', "\x1e",
          "disconnectHardware", "_placeholder", "__proto__", "constructor", "x" * 300)


@dataclass
class WsPlan:
    """One fuzzed WebSocket connection.

    ``preamble`` replaces the handshake when set (bytes that are not a WebSocket
    request at all). ``upgrade`` means: open a polling session first and join it
    with its sid (the upgrade path). Each of ``steps`` is one input: the wire
    bytes of one frame, or raw bytes.
    """

    eio: int
    query: str
    headers: list[tuple[str, str]]
    key: str = "dGhlIHNhbXBsZSBub25jZQ=="
    preamble: bytes | None = None
    upgrade: bool = False
    steps: list[bytes] = field(default_factory=list)
    close_frame: bool = False


@dataclass
class HttpStep:
    """One request on a polling session; POSTs of fuzzed payloads are the inputs."""

    method: str
    body: bytes = b""
    content_type: str | None = None
    query: str | None = None  # replaces the session's query (a forged one)
    fuzzed: bool = False


@dataclass
class PollingPlan:
    """One polling session: a handshake query, then requests on its sid."""

    eio: int
    query: str
    jsonp: bool
    steps: list[HttpStep] = field(default_factory=list)


# --------------------------------------------------------------------------- wire helpers


def ws_frame(payload: bytes, opcode: int = 1, *, fin: bool = True, rsv: int = 0,
             mask: bytes | None = b"\x00\x00\x00\x00", length: int | None = None) -> bytes:
    """One WebSocket frame as a client writes it (masked unless ``mask`` is None).

    ``length`` overrides the length field (a lie: the payload stays as given).
    """
    n = len(payload) if length is None else length
    head = bytearray([(0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0x0F)])
    bit = 0x80 if mask is not None else 0
    if n < 126:
        head.append(bit | n)
    elif n <= 0xFFFF:
        head.append(bit | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(bit | 127)
        head += (n & (2**64 - 1)).to_bytes(8, "big")
    if mask is None:
        return bytes(head) + payload
    return bytes(head) + mask + mask_bytes(payload, mask)


def mask_bytes(payload: bytes, mask: bytes) -> bytes:
    """RFC 6455 masking: XOR with the 4-byte key, repeated (one big-integer XOR)."""
    n = len(payload)
    if not n or not any(mask):
        return payload
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def ws_request(path: str, key: str, headers: list[tuple[str, str]]) -> bytes:
    """The opening handshake of RFC 6455 section 4.1."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def ws_accept(key: str) -> str:
    """The Sec-WebSocket-Accept a server must answer ``key`` with."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def parse_server_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Take complete unmasked frames ``(opcode, payload)`` off the front of ``buf``."""
    out = []
    while len(buf) >= 2:
        n = buf[1] & 0x7F
        head = 2
        if n == 126:
            if len(buf) < 4:
                break
            n, head = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, head = int.from_bytes(buf[2:10], "big"), 10
        if buf[1] & 0x80:
            head += 4  # a masked server frame is a server bug; skip the key anyway
        if len(buf) < head + n:
            break
        out.append((buf[0] & 0x0F, bytes(buf[head:head + n])))
        del buf[:head + n]
    return out


def http_request(method: str, path: str, body: bytes = b"", content_type: str | None = None,
                 extra: list[tuple[str, str]] | None = None) -> bytes:
    """An HTTP/1.1 keep-alive request with a Content-Length."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in extra or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body


def v3_length(text: str) -> int:
    """Length in UTF-16 code units, as Engine.IO 3 payloads count it."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def utf8(text: str) -> bytes:
    """UTF-8, with lone surrogates encoded as-is (which makes the bytes invalid UTF-8)."""
    return text.encode("utf-8", "surrogatepass")


# --------------------------------------------------------------------------- the generator


class Fuzzer:
    """Hostile and valid inputs from one seed; every method draws from ``self.rng``."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    # -- JSON ------------------------------------------------------------------

    def scalar(self) -> Any:
        r = self.rng
        kind = r.randrange(8)
        if kind == 0:
            return r.choice(_TEXTS)
        if kind == 1:
            return "".join(r.choice(string.printable) for _ in range(r.randrange(20)))
        if kind == 2:
            return r.randint(-(2**53), 2**53)
        if kind == 3:
            return r.uniform(-1e6, 1e6)
        if kind == 4:
            return r.choice((True, False, None))
        if kind == 5:
            return r.choice((0, -0.0, 2**53 + 1, -(2**63), 2**64, 1e308, 5e-324))
        if kind == 6:
            return {"_placeholder": r.choice((True, False, 1)), "num": r.randrange(-1, 12)}
        return r.randrange(100)

    def value(self, depth: int = 0) -> Any:
        """A random JSON value, a few levels deep at most."""
        r = self.rng
        if depth >= 4 or r.random() < 0.45:
            return self.scalar()
        if r.random() < 0.5:
            return [self.value(depth + 1) for _ in range(r.randrange(4))]
        keys = ("data", "mode", "type", "key", "roomId", "action", "port", "", "__proto__")
        return {r.choice(keys) + ("" if r.random() < 0.7 else str(i)): self.value(depth + 1)
                for i in range(r.randrange(4))}

    def entry_message(self) -> dict[str, Any]:
        """What entryjs emits: ``{data: JSON text, mode, type}``, sometimes keyed."""
        r = self.rng
        msg: dict[str, Any] = {"data": json.dumps([{"port": r.randrange(14),
                                                     "value": self.scalar()}]),
                               "mode": r.randrange(3), "type": "utf8"}
        if r.random() < 0.3:
            msg["key"] = f"k-{r.randrange(1000)}"
        return msg

    def depth(self) -> int:
        """A nesting depth in ``DEEP_MIN``..``DEEP_MAX``, often right at the limit (128)."""
        r = self.rng
        return r.choice((r.randint(DEEP_MIN, DEEP_MAX), r.randint(125, 132), DEEP_MAX))

    def nest(self, n: int, inner: str = "1") -> str:
        """``inner`` inside ``n`` arrays or objects."""
        if self.rng.random() < 0.5:
            return "[" * n + inner + "]" * n
        return '{"a":' * n + inner + "}" * n

    def deep(self, inner: str = "1") -> str:
        """JSON nested ``DEEP_MIN``..``DEEP_MAX`` levels (often just past the limit)."""
        return self.nest(self.depth(), inner)

    def huge_number(self) -> str:
        r = self.rng
        return r.choice(("1e999", "-1e400", "1" + "0" * r.randint(300, 5000),
                         "9" * r.randint(4290, 4310), "0." + "0" * 400 + "1",
                         str(2**64 + r.randrange(1000)), "-0", "1E+2147483648",
                         "123456789012345678901234567890"))

    def dumps(self, value: Any) -> str:
        return json.dumps(value, ensure_ascii=self.chance(0.3), separators=(",", ":"))

    def json_text(self, value: Any) -> str:
        """``value`` as JSON text, sometimes with a hostile part spliced into it."""
        r = self.rng
        if r.random() < 0.75:
            return self.dumps(value)
        hostile = r.choice((self.deep, self.huge_number, lambda: '"\\ud800"',
                            lambda: '"\\udfff\\ud800x"', lambda: '"\ud83e"',
                            lambda: "NaN", lambda: "Infinity", lambda: "[1,]", lambda: "{,}",
                            lambda: '{"a":1,"a":2}', lambda: "[" + "1," * 20000 + "1]"))()
        return f"[{self.dumps(value)},{hostile}]"

    # -- Socket.IO -------------------------------------------------------------

    def event_args(self) -> str:
        """A Socket.IO EVENT payload: ``[name, ...args]`` as JSON text."""
        r = self.rng
        roll = r.random()
        if roll < 0.12:
            name: Any = r.choice(RESERVED_EVENTS)
        elif roll < 0.16:
            name = r.choice((1, 2.5, None, [], {}, True))
        else:
            name = r.choice(EVENTS)
        if name == "matchTarget":
            args: list[Any] = [r.choice((f"room-{r.randrange(50)}", {"roomId": "r"}, None, 7))]
        elif name == "message" and r.random() < 0.7:
            args = [self.entry_message()]
        else:
            args = [self.value() for _ in range(r.randrange(3))]
        head = self.dumps([name])[:-1]  # '["name"'
        tail = "".join("," + self.json_text(a) for a in args)
        if r.random() < 0.08:
            tail += "," + self.deep()
        return head + tail + "]"

    def nsp(self) -> str:
        r = self.rng
        return r.choice(("", "", "", "", "/admin,", "/,", "/x?y=1,", "/" + "n" * 300 + ",",
                         "/\u00e9,", "/%2F,"))

    def sio_packet(self, rev: int) -> list[str | bytes]:
        """One valid-looking Socket.IO packet: its text frame, then its attachments."""
        r = self.rng
        kind = r.choices(("event", "ack", "connect", "disconnect", "error", "binary"),
                         (60, 8, 8, 4, 4, 16))[0]
        ack = str(r.randrange(10**r.randrange(1, 17))) if r.random() < 0.25 else ""
        nsp = self.nsp()
        if kind == "event":
            return ["2" + nsp + ack + self.event_args()]
        if kind == "ack":
            return ["3" + nsp + (ack or "0") + self.dumps([self.value()])]
        if kind == "connect":
            if rev == 5:
                body = r.choice(("", "", self.dumps({"token": self.scalar()}), "[]", '"x"'))
            else:
                body = r.choice(("", "", "/?client=true,", "/admin?x=1,", "{}", "[]"))
            return ["0" + (nsp if r.random() < 0.3 else "") + body]
        if kind == "disconnect":
            return ["1" + nsp + r.choice(("", "", "{}", "1"))]
        if kind == "error":
            return ["4" + nsp + r.choice(('{"message":"x"}', '"Invalid namespace"', "[]", "1"))]
        count = r.choice((1, 1, 2, 3, 0, 11, 999999))
        placeholders = [{"_placeholder": True, "num": i} for i in range(min(count, 12))]
        if r.random() < 0.2:
            placeholders.append({"_placeholder": True, "num": r.choice((-1, count, 1.5, "0"))})
        payload = [r.choice(("message", "message", "disconnect")), *placeholders]
        ptype = "5" if r.random() < 0.8 else "6"
        text = f"{ptype}{count}-{nsp}{ack if ptype == '5' else ack or '1'}{self.dumps(payload)}"
        attachments = [r.randbytes(r.choice((0, 1, 3, 64, 5000))) for _ in range(min(count, 12))]
        if r.random() < 0.15:
            attachments = attachments[:-1]  # one short: the next text frame meets a pending packet
        return [text, *attachments]

    # -- Engine.IO -------------------------------------------------------------

    def eio_frames(self, eio: int) -> list[tuple[bool, bytes]]:
        """One Engine.IO packet (or a message and its attachments) as WebSocket frames."""
        r = self.rng
        roll = r.random()
        if roll < 0.72:
            rev = 5 if eio == 4 else 4
            frames: list[tuple[bool, bytes]] = []
            for part in self.sio_packet(rev):
                if isinstance(part, str):
                    frames.append((False, utf8("4" + part)))
                elif eio == 4:
                    frames.append((True, part))
                elif r.random() < 0.85:
                    frames.append((True, b"\x04" + part))
                else:
                    frames.append((False, b"b4" + base64.b64encode(part)))
            return frames
        other = r.choice(("2", "2probe", "3", "3probe", "5", "6", "1", "0", "7", "", "4",
                          "b4AQID", "bAQID", "b4!!", "9", "0{}", "40" if eio == 4 else "40/,"))
        if eio == 4 and other in ("2", "2probe"):
            other = "3"  # v4: the server pings; a client ping is a protocol error
        if r.random() < 0.1:
            return [(True, bytes([r.randrange(8)]) + r.randbytes(r.randrange(8)))]
        return [(False, other.encode())]

    # -- mutations -------------------------------------------------------------

    def mutate(self, data: bytes, donor: bytes = b"") -> bytes:
        """One to three of the mutations parsers trip on."""
        r = self.rng
        out = bytearray(data)
        for _ in range(r.randint(1, 3)):
            op = r.randrange(12)
            if op == 0 and out:  # bit flips
                for _ in range(r.randint(1, 8)):
                    i = r.randrange(len(out))
                    out[i] ^= 1 << r.randrange(8)
            elif op == 1 and out:  # truncation
                del out[r.randrange(len(out)):]
            elif op == 2 and out:  # duplication of a slice
                i = r.randrange(len(out))
                j = r.randint(i, min(len(out), i + 64))
                out[j:j] = out[i:j] * r.randint(1, 4)
            elif op == 3:  # splice with another input
                other = donor or r.randbytes(16)
                i, j = r.randint(0, len(out)), r.randint(0, len(other))
                out = out[:i] + other[j:]
            elif op == 4:  # invalid UTF-8
                bad = r.choice((b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82",
                                b"\xf4\x90\x80\x80", b"\xfe\xff", b"\x80"))
                i = r.randint(0, len(out))
                out[i:i] = bad
            elif op == 5:  # a record separator (v4 payloads split there)
                i = r.randint(0, len(out))
                out[i:i] = b"\x1e"
            elif op == 6:  # a lone surrogate as a JSON escape or raw
                i = r.randint(0, len(out))
                out[i:i] = r.choice((b"\\ud800", b"\\udc00", utf8("\udbff")))
            elif op == 7:  # nesting around a part
                i = r.randint(0, len(out))
                n = r.randint(DEEP_MIN, DEEP_MAX)
                out[i:i] = b"[" * n + b"]" * n if r.random() < 0.5 else b"[" * n
            elif op == 8:  # a huge number
                i = r.randint(0, len(out))
                out[i:i] = self.huge_number().encode()
            elif op == 9:  # a reserved event name where a name may be
                name = self.dumps(r.choice(RESERVED_EVENTS)).encode()
                i = out.find(b'["')
                if i >= 0:
                    end = out.find(b'"', i + 2)
                    out[i + 1:end + 1 if end > 0 else i + 1] = name
                else:
                    out += b'["' + name[1:-1] + b'"]'
            elif op == 10:  # random bytes overwritten
                if out:
                    i = r.randrange(len(out))
                    out[i:i + 4] = r.randbytes(4)
            else:  # control characters and quotes
                i = r.randint(0, len(out))
                out[i:i] = bytes([r.choice((0, 10, 13, 34, 44, 58, 92, 0x7F))])
        return bytes(out)

    # -- WebSocket -------------------------------------------------------------

    def _ws_data_frame(self, binary: bool, payload: bytes, mutated: bool) -> bytes:
        r = self.rng
        mask = r.randbytes(4) if r.random() < 0.8 else b"\x00\x00\x00\x00"
        if mutated and r.random() < 0.25:
            binary = not binary  # text sent as binary, binary sent as text
        opcode = 2 if binary else 1
        if r.random() < 0.06 and len(payload) > 1:
            cut = r.randrange(1, len(payload))  # a valid fragmented message
            return (ws_frame(payload[:cut], opcode, fin=False, mask=mask)
                    + ws_frame(payload[cut:], 0, mask=mask))
        return ws_frame(payload, opcode, mask=mask)

    def ws_bad_frame(self) -> bytes:
        """Frames that break RFC 6455 itself, and bytes that are no frame at all."""
        r = self.rng
        mask = r.randbytes(4)
        kind = r.randrange(14)
        if kind == 0:
            return ws_frame(b"4x", r.choice((3, 4, 5, 6, 7, 11, 12, 13, 14, 15)), mask=mask)
        if kind == 1:
            return ws_frame(b"4x", 1, rsv=r.randint(1, 7), mask=mask)
        if kind == 2:
            return ws_frame(b"4x", 1, mask=None)  # unmasked from a client
        if kind == 3:
            return ws_frame(b"p" * 126, 9, mask=mask)  # control frame over 125 bytes
        if kind == 4:
            return ws_frame(b"p", 9, fin=False, mask=mask)  # fragmented control frame
        if kind == 5:
            return ws_frame(b"stray", 0, mask=mask)  # continuation with nothing to continue
        if kind == 6:
            return ws_frame(b"4a", 1, fin=False, mask=mask) + ws_frame(b"4b", 1, mask=mask)
        if kind == 7:  # close with a bad code / a reason that is not UTF-8
            code = r.choice((0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535))
            return ws_frame(code.to_bytes(2, "big") + r.choice((b"", b"\xff\xfe")), 8, mask=mask)
        if kind == 8:  # a length that lies: more than is sent, or beyond any limit
            n = r.choice((200, 70_000, 2**31, 2**63 + 1, 2**64 - 1))
            return ws_frame(b"4short", r.choice((1, 2)), mask=mask, length=n)
        if kind == 9:
            return ws_frame(r.randbytes(r.randrange(125)), 9, mask=mask)  # a valid ping
        if kind == 10:
            return ws_frame(b"", 10, mask=mask)  # an unsolicited pong (valid)
        if kind == 11:
            return ws_frame(b"\x03\xe8" + b"\xff", 8, mask=mask)  # close, reason not UTF-8
        if kind == 12:
            return r.randbytes(r.randint(1, 300))
        return bytes([r.randrange(256), r.randrange(256)]) + r.randbytes(r.randrange(40))

    def ws_plan(self, eio: int) -> WsPlan:
        """A connection's handshake and 1-12 steps of frames."""
        r = self.rng
        query = f"EIO={eio}&transport=websocket"
        if r.random() < 0.2:
            query += "&b64=1"
        if r.random() < 0.03:
            query = r.choice((f"{query}&sid=nope", "EIO=5&transport=websocket",
                              f"EIO={eio}&transport=polling", f"{query}&EIO=3",
                              f"{query}&%ff=%fe"))
        headers: list[tuple[str, str]] = []
        if r.random() < 0.1:
            headers.append(("Sec-WebSocket-Extensions",
                            "permessage-deflate; client_max_window_bits"))
        if r.random() < 0.1:
            headers.append(("Origin", r.choice(("https://playentry.org", "null", "http://x"))))
        key = base64.b64encode(r.randbytes(16)).decode()
        plan = WsPlan(eio, query, headers, key, upgrade=r.random() < 0.08)
        if r.random() < 0.02:
            plan.preamble = r.choice((
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + r.randbytes(200),  # ClientHello
                b"GET /socket.io/?EIO=3&transport=websocket HTTP/1.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Version: 8\r\n\r\n",
                b"GET /socket.io/?EIO=3&transport=websocket HTTP/1.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",  # no key
                r.randbytes(r.randint(1, 500)),
                b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 70_000 + b"\r\n\r\n",
            ))
            return plan
        if plan.upgrade:
            probe = [utf8("2probe"), utf8("5")]
            for p in probe:
                plan.steps.append(self._ws_data_frame(False, self.mutate(p) if self.chance(0.2)
                                                      else p, False))
        elif eio == 4 and r.random() < 0.85:
            plan.steps.append(ws_frame(b"40", 1, mask=r.randbytes(4)))  # namespace "/" CONNECT
        previous = b""
        for _ in range(r.randint(1, 12)):
            roll = r.random()
            if roll < 0.08:
                plan.steps.append(self.ws_bad_frame())
                continue
            frames = self.eio_frames(eio)
            mutated = roll < 0.55
            for binary, payload in frames:
                if mutated and r.random() < 0.7:
                    payload = self.mutate(payload, previous)
                previous = payload
                plan.steps.append(self._ws_data_frame(binary, payload, mutated))
        plan.close_frame = r.random() < 0.3
        return plan

    # -- long-polling ----------------------------------------------------------

    def _payload_packets(self, eio: int) -> list[tuple[bool, bytes]]:
        frames: list[tuple[bool, bytes]] = []
        for _ in range(self.rng.choice((1, 1, 1, 2, 3, 8))):
            frames.extend(self.eio_frames(eio))
        return frames

    def polling_body(self, eio: int, jsonp: bool) -> tuple[bytes, str | None]:
        """One POST body (an Engine.IO payload, valid or not) and its Content-Type."""
        r = self.rng
        frames = self._payload_packets(eio)
        roll = r.random()
        content_type = r.choice(CONTENT_TYPES) if r.random() < 0.25 else "text/plain;charset=UTF-8"
        if eio == 3 and (roll < 0.2 or (content_type or "").startswith("application/octet")):
            body = bytearray()  # the v3 binary payload: marker, length digits, 0xFF, packet
            for binary, payload in frames:
                n = len(payload) if r.random() < 0.9 else r.randrange(len(payload) + 20)
                body.append(1 if binary else 0)
                body += bytes(int(d) for d in str(n)) + b"\xff" + payload
            return bytes(body), "application/octet-stream"
        if eio == 3:
            parts = []
            for binary, payload in frames:
                text = ("b4" + base64.b64encode(payload[1:]).decode() if binary
                        else payload.decode("utf-8", "surrogateescape"))
                n = v3_length(text)
                if r.random() < 0.08:  # a length prefix that lies
                    n = r.choice((n + 1, max(n - 1, 0), 0, 10**17, n * 1000, -1))
                prefix = r.choice((str(n), str(n), str(n), f" {n}", f"{n}.0", "", "x")) \
                    if r.random() < 0.05 else str(n)
                parts.append(f"{prefix}:{text}")
            text = "".join(parts)
            body = text.encode("utf-8", "surrogateescape")
        else:
            texts = [b"b" + base64.b64encode(p) if binary else p for binary, p in frames]
            body = b"\x1e".join(texts)
        if jsonp:
            body = b"d=" + quote(body.decode("utf-8", "surrogateescape"),
                                 errors="surrogateescape").encode()
            content_type = "application/x-www-form-urlencoded"
        return body, content_type

    def polling_plan(self, eio: int) -> PollingPlan:
        """A session: handshake query, then 1-6 requests (mostly POSTs of payloads)."""
        r = self.rng
        jsonp = eio == 3 and r.random() < 0.08
        query = f"EIO={eio}&transport=polling"
        if jsonp:
            query += "&j=" + r.choice(("0", "1", "x", "<script>"))
        elif r.random() < 0.15:
            query += "&b64=1"
        plan = PollingPlan(eio, query, jsonp)
        if eio == 4 and r.random() < 0.85:
            plan.steps.append(HttpStep("POST", b"40", "text/plain;charset=UTF-8"))
        for _ in range(r.randint(1, 6)):
            roll = r.random()
            if roll < 0.1:
                plan.steps.append(HttpStep("GET"))
            elif roll < 0.13:
                plan.steps.append(HttpStep(r.choice(("PUT", "DELETE", "OPTIONS", "PATCH")),
                                           r.randbytes(8)))
            elif roll < 0.16:
                forged = r.choice(("EIO=5&transport=polling", f"EIO={7 - eio}&transport=polling",
                                   "EIO=3&transport=flash", "transport=polling"))
                body, ctype = self.polling_body(eio, jsonp)
                plan.steps.append(HttpStep("POST", body, ctype, query=forged, fuzzed=True))
            else:
                body, ctype = self.polling_body(eio, jsonp)
                if roll < 0.6:
                    body = self.mutate(body)
                elif roll < 0.66:
                    body = r.randbytes(r.randint(0, 2000))
                plan.steps.append(HttpStep("POST", body, ctype, fuzzed=True))
        return plan

    # -- the parent's channel --------------------------------------------------

    def ipc_line(self) -> tuple[bytes, str]:
        """One line (no newline inside) a well-behaved Node parent would never write, or one
        it might that the canary does not count; and what the server must make of it:
        ``"deep"`` (nested past the limit of 128), ``"bad"`` (bad JSON or UTF-8, not an
        object), or ``""`` (anything goes, as long as it costs nothing else)."""
        r = self.rng
        kind = r.randrange(10)
        verdict = "bad" if kind == 3 else ""
        if kind == 0:
            n = self.depth()
            line = b'{"key":"send","value":' + self.nest(n).encode() + b"}"
            verdict = "deep" if n > 128 else ""
        elif kind == 1:
            n = self.depth()
            line = self.nest(n, r.choice(("1", '"exit"', '{"key":"send"}'))).encode()
            verdict = "deep" if n > 129 else "bad"  # deeper than a whole line may be, or no key
        elif kind == 2:
            line = r.choice((b"42", b"[]", b"null", b"true", b'"hello"', b"1e999", b"[1,2]",
                             b'"exi"', b"-0", b'""', b"[{}]", b"{"))
            verdict = "" if line.startswith(b'"') else "bad"  # a string is ignored, not rejected
        elif kind == 3:
            line = r.choice((b"\xff\xfe", b'{"key":"send","value":"\xed\xa0\x80"}',
                             b'{"key":"\xc0\x80"}', b'{"key":"send","value":"\xf8\x88\x80\x80"}'))
        elif kind == 4:
            line = r.randbytes(r.randint(1, 400))
        elif kind == 5:
            line = r.choice((b'{"key": "frobnicate", "value": 1}', b'{"value": 1}',
                             b'{"key": 7}', b'{"cmd": "NODE_HANDLE_ACK"}', b'{"key":"secret"}',
                             b'{"key":"connectHardwareSuccess","value":"x"}',
                             b'{"key":"encrypt","value":[]}', b'{"key":"open"}',
                             b'{"key":"send","value":' + self.huge_number().encode() + b"}",
                             b'{"key":"send","value":"\\ud800"}'))
        else:
            base = json.dumps({"key": r.choice(("send", "send", "disconnectHardware",
                                                "connectHardwareFailed", "decrypt")),
                               "value": self.value()}).encode()
            line = self.mutate(base) if kind < 9 else base
        line = line.replace(b"\n", b" ")
        if not _harmless_ipc(line):
            return b'{"key":"frobnicate"}', ""
        return line, verdict


def _harmless_ipc(line: bytes) -> bool:
    """False for a line that would legitimately stop the server or move its rooms."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return b"exit" not in line or line.count(b"[") + line.count(b"{") > 0
    if obj == "exit":
        return False
    return not (isinstance(obj, dict) and obj.get("key") in ("addRoomId", "exit"))
