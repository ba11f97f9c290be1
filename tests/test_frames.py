"""The WebSocket fast path: frame splitting and building, checked against Autobahn itself."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from entryhw.engineio.frames import FAST_MAX, server_frame, split_frames


def client_frame(payload: bytes, binary: bool = False, fin: bool = True, opcode: int | None = None,
                 mask: bytes | None = None) -> bytes:
    """A masked client frame, built independently of the code under test."""
    mask = mask if mask is not None else os.urandom(4)
    op = opcode if opcode is not None else (2 if binary else 1)
    head = bytes([(0x80 if fin else 0) | op])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n <= 0xFFFF:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


class SplitFramesTests(SynchronousTestCase):
    def test_text_and_binary(self) -> None:
        data = client_frame(b'42["message",{}]') + client_frame(b"\x04\x01\x02", binary=True)
        self.assertEqual(split_frames(data), ([(b'42["message",{}]', False),
                                               (b"\x04\x01\x02", True)], len(data)))

    def test_empty_and_16_bit_lengths(self) -> None:
        for size in (0, 1, 125, 126, 127, 4000, FAST_MAX):
            payload = os.urandom(size)
            frame = client_frame(payload, binary=True)
            self.assertEqual(split_frames(frame), ([(payload, True)], len(frame)), size)

    def test_partial_frames_wait(self) -> None:
        frame = client_frame(b"x" * 300)
        for cut in range(len(frame)):
            self.assertEqual(split_frames(frame[:cut]), ([], 0), cut)

    def test_stops_at_anything_else(self) -> None:
        simple = client_frame(b"4a")
        others = [
            client_frame(b"ping", opcode=9),            # control frame
            client_frame(b"part", fin=False),           # fragment
            client_frame(b"x" * (FAST_MAX + 1)),        # 64-bit length
            bytes([0x81, 2]) + b"4a",                   # unmasked
            bytes([0xC1]) + client_frame(b"4a")[1:],    # RSV1 (compression)
        ]
        for other in others:
            frames, used = split_frames(simple + other + simple)
            self.assertEqual((frames, used), ([(b"4a", False)], len(simple)))

    def test_limit(self) -> None:
        frame = client_frame(b"y" * 200)
        self.assertEqual(split_frames(frame, limit=100), ([], 0))

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.tuples(st.binary(max_size=300), st.booleans()), max_size=8),
           st.binary(min_size=4, max_size=4))
    def test_round_trip(self, messages: list[tuple[bytes, bool]], mask: bytes) -> None:
        data = b"".join(client_frame(p, b, mask=mask) for p, b in messages)
        self.assertEqual(split_frames(data), (messages, len(data)))

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=200))
    def test_garbage_never_raises_or_overruns(self, data: bytes) -> None:
        frames, used = split_frames(data)
        self.assertLessEqual(used, len(data))
        self.assertLessEqual(sum(len(p) for p, _ in frames), used)


class ServerFrameTests(SynchronousTestCase):
    """Byte layout per RFC 6455 5.2 (real clients reading them: test_socketio_server)."""

    def test_lengths(self) -> None:
        self.assertEqual(server_frame(b"hi"), b"\x81\x02hi")
        self.assertEqual(server_frame(b"", True), b"\x82\x00")
        self.assertEqual(server_frame(b"a" * 125)[:2], b"\x81\x7d")
        self.assertEqual(server_frame(b"a" * 126, True)[:4], b"\x82\x7e\x00\x7e")
        self.assertEqual(server_frame(b"a" * 65535)[:4], b"\x81\x7e\xff\xff")
        big = server_frame(b"a" * 70000)
        self.assertEqual(big[:10], b"\x81\x7f" + (70000).to_bytes(8, "big"))
        self.assertEqual(len(big), 70010)
