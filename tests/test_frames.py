"""The WebSocket fast path: frame splitting and building, checked against Autobahn itself."""

from __future__ import annotations

import os
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from entryhw import fastpath
from entryhw.engineio.frames import (
    FAST_MAX,
    build_frame,
    mask_payload,
    split_frames,
)


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


def server_frame_ref(payload: bytes, binary: bool = False, fin: bool = True,
                     opcode: int | None = None) -> bytes:
    """An unmasked server frame, built independently of the code under test."""
    frame = client_frame(payload, binary, fin, opcode, mask=b"\0\0\0\0")
    head_len = len(frame) - len(payload) - 4
    return frame[:1] + bytes([frame[1] & 0x7F]) + frame[2:head_len] + payload


class SplitFramesTests(SynchronousTestCase):
    def test_text_and_binary(self) -> None:
        data = client_frame(b'42["message",{}]') + client_frame(b"\x04\x01\x02", binary=True)
        self.assertEqual(split_frames(data), ([(b'42["message",{}]', False),
                                               (b"\x04\x01\x02", True)], len(data), False))

    def test_all_three_length_forms(self) -> None:
        for size in (0, 1, 125, 126, 127, 4000, 0xFFFF, 0x10000, 300_000):
            payload = os.urandom(size)
            frame = client_frame(payload, binary=True)
            self.assertEqual(split_frames(frame), ([(payload, True)], len(frame), False), size)

    def test_unmasked_frames_from_a_server(self) -> None:
        for size in (0, 5, 200, 70_000):
            payload = os.urandom(size)
            frame = server_frame_ref(payload)
            self.assertEqual(split_frames(frame, masked=False),
                             ([(payload, False)], len(frame), False), size)
            # Each side refuses the other's kind: Autobahn fails those connections.
            self.assertEqual(split_frames(frame, masked=True), ([], 0, False))
            self.assertEqual(split_frames(client_frame(payload), masked=False), ([], 0, False))

    def test_partial_frames_wait(self) -> None:
        for size in (300, 70_000):
            frame = client_frame(b"x" * size)
            cuts = list(range(1, 20)) + list(range(20, len(frame), 997))
            for cut in cuts:
                self.assertEqual(split_frames(frame[:cut]), ([], 0, True), (size, cut))
            self.assertEqual(split_frames(frame)[1:], (len(frame), False))

    def test_nothing_is_not_waiting(self) -> None:
        self.assertEqual(split_frames(b""), ([], 0, False))

    def test_stops_at_anything_else(self) -> None:
        simple = client_frame(b"4a")
        others = [
            client_frame(b"ping", opcode=9),            # control frame
            client_frame(b"part", fin=False),           # fragment
            client_frame(b"x" * (FAST_MAX + 1)),        # over the limit
            bytes([0x81, 2]) + b"4a",                   # unmasked
            bytes([0xC1]) + client_frame(b"4a")[1:],    # RSV1 (compression)
        ]
        for other in others:
            result = split_frames(simple + other + simple)
            self.assertEqual(result, ([(b"4a", False)], len(simple), False), other[:12])
            # Not waiting either, as soon as the header shows it (byte 1, or the length).
            head = 10 if other is others[2] else 2
            self.assertEqual(split_frames(simple + other[:head]),
                             ([(b"4a", False)], len(simple), False), other[:12])

    def test_limit(self) -> None:
        frame = client_frame(b"y" * 200)
        self.assertEqual(split_frames(frame, limit=100), ([], 0, False))
        self.assertEqual(split_frames(frame[:3], limit=100), ([], 0, True))  # length unseen
        self.assertEqual(split_frames(frame[:4], limit=100), ([], 0, False))
        self.assertEqual(split_frames(frame, limit=200)[1], len(frame))

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.tuples(st.binary(max_size=300), st.booleans()), max_size=8),
           st.binary(min_size=4, max_size=4))
    def test_round_trip(self, messages: list[tuple[bytes, bool]], mask: bytes) -> None:
        data = b"".join(client_frame(p, b, mask=mask) for p, b in messages)
        self.assertEqual(split_frames(data), (messages, len(data), False))

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=200), st.booleans())
    def test_garbage_never_raises_or_overruns(self, data: bytes, masked: bool) -> None:
        frames, used, _waiting = split_frames(data, masked=masked)
        self.assertLessEqual(used, len(data))
        self.assertLessEqual(sum(len(p) for p, _ in frames), used)


class BuildFrameTests(SynchronousTestCase):
    """Byte layout per RFC 6455 5.2 (real peers reading them: test_socketio_*)."""

    def test_lengths(self) -> None:
        self.assertEqual(build_frame(b"hi"), b"\x81\x02hi")
        self.assertEqual(build_frame(b"", True), b"\x82\x00")
        self.assertEqual(build_frame(b"a" * 125)[:2], b"\x81\x7d")
        self.assertEqual(build_frame(b"a" * 126, True)[:4], b"\x82\x7e\x00\x7e")
        self.assertEqual(build_frame(b"a" * 65535)[:4], b"\x81\x7e\xff\xff")
        big = build_frame(b"a" * 70000)
        self.assertEqual(big[:10], b"\x81\x7f" + (70000).to_bytes(8, "big"))
        self.assertEqual(len(big), 70010)

    def test_masked_frames_match_the_reference(self) -> None:
        for size in (0, 3, 125, 126, 0xFFFF, 0x10000):
            payload = os.urandom(size)
            mask = os.urandom(4)
            for binary in (False, True):
                self.assertEqual(build_frame(payload, binary, mask),
                                 client_frame(payload, binary, mask=mask), size)
                self.assertEqual(build_frame(payload, binary),
                                 server_frame_ref(payload, binary), size)

    def test_mask_is_its_own_inverse(self) -> None:
        payload, mask = os.urandom(1001), os.urandom(4)
        self.assertNotEqual(mask_payload(payload, mask), payload)
        self.assertEqual(mask_payload(mask_payload(payload, mask), mask), payload)


class AutobahnHooksTests(SynchronousTestCase):
    """FastFramesMixin overrides these Autobahn methods; a rename upstream must not go unseen."""

    def test_hooked_methods_exist(self) -> None:
        from entryhw.engineio._autobahn import WebSocketClientProtocol, WebSocketServerProtocol

        for cls in (WebSocketServerProtocol, WebSocketClientProtocol):
            for name in ("_dataReceived", "processData", "onMessageEnd", "sendMessage",
                         "sendData", "_closeConnection"):
                self.assertTrue(callable(getattr(cls, name, None)), f"{cls.__name__}.{name}")
            # State the mixin reads: set by Autobahn's own code, so look for the assignments.
            source = _autobahn_source(cls)
            for attr in ("current_frame", "inside_message", "send_queue", "message_data",
                         "message_is_binary", "failedByMe", "_perMessageCompress"):
                self.assertIn(f"self.{attr} =", source, f"{cls.__name__}.{attr}")


def _autobahn_source(cls: type) -> str:
    import inspect

    return "".join(inspect.getsource(c) for c in cls.__mro__ if c.__module__.startswith("autobahn"))


class FastPathCheckTests(SynchronousTestCase):
    """The self-test that decides, once per process, whether Autobahn's internals are used."""

    def test_the_installed_autobahn_passes(self) -> None:
        from entryhw.fastpath import frames

        if not fastpath.ENABLED:
            raise SkipTest("ENTRYHW_FASTPATH=0")
        self.assertIsNone(frames.self_test())
        self.assertIsNone(frames._why_not())

    def test_a_missing_internal_turns_it_off_with_the_reason(self) -> None:
        from entryhw.fastpath import frames

        self.patch(fastpath, "ENABLED", True)
        self.patch(frames, "METHODS", (*frames.METHODS, "_noSuchMethod"))
        self.assertEqual(frames._why_not(), "Autobahn has no _noSuchMethod")

    def test_an_untested_version_turns_it_off(self) -> None:
        from entryhw.fastpath import frames

        self.patch(fastpath, "ENABLED", True)
        self.patch(fastpath, "TESTED", {**fastpath.TESTED, "autobahn": ((1, 0), (2, 0))})
        self.assertIn("outside the tested 1.0-2.0", frames._why_not())

    def test_switched_off_the_protocols_use_autobahns_public_path(self) -> None:
        probe = ("from entryhw.engineio.server import EngineWebSocket\n"
                 "from entryhw.engineio.websocket import GuardedWebSocket\n"
                 "from entryhw.fastpath.frames import FastFrames\n"
                 "print(issubclass(EngineWebSocket, FastFrames), "
                 "issubclass(EngineWebSocket, GuardedWebSocket))\n")
        for value, expected in (("0", "False True"), ("1", "True True")):
            out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                 timeout=60, check=True,
                                 env={**os.environ, "ENTRYHW_FASTPATH": value})
            self.assertEqual(out.stdout.strip(), expected, out.stderr)


def _open_server_protocol() -> tuple[object, list[tuple[bytes, bool]], object]:
    """A real Autobahn server protocol with the fast path, after its handshake."""
    from entryhw.fastpath import frames

    got: list[tuple[bytes, bool]] = []
    proto, transport = frames.open_probe(got)
    transport.clear()
    return proto, got, transport


_STREAM = [  # (frame, what onMessage gets from it, if anything)
    (client_frame(b"4one"), (b"4one", False)),
    (client_frame(b"ping!", opcode=9), None),  # a control frame: Autobahn's parser, a PONG
    (client_frame(b"4tw", fin=False), None),  # a fragmented message ...
    (client_frame(b"o", fin=True, opcode=0), (b"4two", False)),  # ... ends here
    (client_frame(b"\x00\x01", binary=True), (b"\x00\x01", True)),
    (client_frame(b"4" + b"x" * 300), (b"4" + b"x" * 300, False)),
    (client_frame(b"4three"), (b"4three", False)),
]


class FastReadTests(SynchronousTestCase):
    """FastFrames.dataReceived splits reads on frame boundaries itself and hands Autobahn
    the rest: however the stream is cut into reads, the same messages come out, in order,
    and Autobahn still answers what is its own (a PING)."""

    def setUp(self) -> None:
        if not fastpath.ENABLED:
            raise SkipTest("ENTRYHW_FASTPATH=0")

    def check(self, cuts: list[int]) -> None:
        proto, got, transport = _open_server_protocol()
        stream = b"".join(f for f, _ in _STREAM)
        at = 0
        for cut in [*sorted(set(cuts)), len(stream)]:
            if cut > at:
                proto.dataReceived(stream[at:cut])
                at = cut
        self.assertEqual(got, [m for _, m in _STREAM if m is not None])
        proto.flush_writes()
        self.assertIn(b"\x8a\x05ping!", transport.value())  # the PONG
        self.assertEqual(proto.data, b"")

    def test_one_read(self) -> None:
        self.check([])

    def test_a_read_per_frame_and_frames_cut_in_two(self) -> None:
        ends, at = [], 0
        for frame, _ in _STREAM:
            ends += [at + len(frame) // 2, at + len(frame)]
            at += len(frame)
        self.check(ends)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.integers(min_value=1, max_value=400), max_size=12))
    def test_any_cuts(self, cuts: list[int]) -> None:
        self.check(cuts)
