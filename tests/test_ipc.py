"""The channel framing and the watchdog rule, with no reactor and no sockets
(but for one check that Node's own JSON.parse reads what we write)."""

from __future__ import annotations

import json
import os
import socket
import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from entryhw import ipc
from entryhw.ipc import Exit, Ignored, LineDecoder, Message, Rejected, encode
from entryhw.watchdog import WatchdogService, parent_gone
from tests.support import node


def feed_all(decoder: LineDecoder, *chunks: bytes) -> list:
    events = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events


class LineDecoderTests(SynchronousTestCase):
    def test_one_message(self) -> None:
        self.assertEqual(LineDecoder().feed(b'{"key":"open","value":"x"}\n'),
                         [Message("open", "x")])

    def test_value_may_be_absent(self) -> None:
        self.assertEqual(LineDecoder().feed(b'{"key":"open"}\n'), [Message("open", None)])

    def test_coalesced_lines(self) -> None:
        data = b'{"key":"a"}\n{"key":"b","value":[1,2]}\n"exit"\n'
        self.assertEqual(LineDecoder().feed(data),
                         [Message("a"), Message("b", [1, 2]), Exit()])

    def test_line_split_across_reads(self) -> None:
        d = LineDecoder()
        self.assertEqual(d.feed(b'{"key":"se'), [])
        self.assertEqual(d.feed(b'nd","value":'), [])
        self.assertEqual(d.pending, 22)
        self.assertEqual(d.feed(b'{"a":1}}\n{"key"'), [Message("send", {"a": 1})])
        self.assertEqual(d.feed(b':"b"}\n'), [Message("b")])
        self.assertEqual(d.pending, 0)

    def test_multibyte_utf8_split_across_reads(self) -> None:
        line = json.dumps({"key": "send", "value": "한글 €𝄞"}, ensure_ascii=False).encode()
        for cut in range(1, len(line)):
            d = LineDecoder()
            self.assertEqual(feed_all(d, line[:cut], line[cut:] + b"\n"),
                             [Message("send", "한글 €𝄞")], cut)

    def test_byte_at_a_time(self) -> None:
        data = json.dumps({"key": "k", "value": "→"}, ensure_ascii=False).encode() + b"\n"
        self.assertEqual(feed_all(LineDecoder(), *[data[i:i + 1] for i in range(len(data))]),
                         [Message("k", "→")])

    def test_rejections_have_reasons(self) -> None:
        events = LineDecoder().feed(b'{bad\n42\n[1]\nnull\n{"value":1}\n{"key":5}\n\xff\n')
        self.assertTrue(all(type(e) is Rejected for e in events), events)
        reasons = [e.reason for e in events]
        self.assertIn("invalid JSON", reasons[0])
        self.assertIn("got JSON int", reasons[1])
        self.assertIn("got JSON list", reasons[2])
        self.assertIn("got JSON NoneType", reasons[3])
        self.assertIn("without a 'key'", reasons[4])
        self.assertIn("'key' is not a string", reasons[5])
        self.assertIn("not valid UTF-8", reasons[6])

    def test_nan_and_infinity_are_not_json(self) -> None:
        for text in (b'{"key":"a","value":NaN}', b'{"key":"a","value":-Infinity}'):
            (event,) = LineDecoder().feed(text + b"\n")
            self.assertIsInstance(event, Rejected)

    def test_node_internal_and_strings_ignored(self) -> None:
        events = LineDecoder().feed(b'{"cmd":"NODE_HANDLE"}\n"hello"\n\n  \n')
        self.assertEqual([type(e) for e in events], [Ignored, Ignored])

    def test_deep_nesting_is_rejected_not_raised(self) -> None:
        (event,) = LineDecoder().feed(b"[" * 100000 + b"\n")
        self.assertIsInstance(event, Rejected)

    def test_overlong_line_is_skipped_then_channel_recovers(self) -> None:
        d = LineDecoder(max_line=100)
        events = feed_all(d, b"x" * 60, b"x" * 60, b"x" * 500, b'tail\n{"key":"ok"}\n')
        self.assertEqual(len(events), 2)
        self.assertIsInstance(events[0], Rejected)
        self.assertIn("exceeds the 100-byte limit", events[0].reason)
        self.assertEqual(events[1], Message("ok"))
        self.assertEqual(d.pending, 0)

    def test_overlong_complete_line_in_one_read(self) -> None:
        events = LineDecoder(max_line=15).feed(b'"' + b"y" * 20 + b'"\n{"key":"ok"}\n')
        self.assertEqual([type(e) for e in events], [Rejected, Message])

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=300), st.lists(st.integers(1, 50), max_size=10))
    def test_arbitrary_bytes_never_raise(self, data: bytes, cuts: list[int]) -> None:
        d = LineDecoder(max_line=64)
        pos = 0
        for cut in cuts:
            d.feed(data[pos:pos + cut])
            pos += cut
        events = d.feed(data[pos:] + b"\n")
        self.assertTrue(all(isinstance(e, Message | Exit | Rejected | Ignored) for e in events))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


class EncodeTests(SynchronousTestCase):
    def test_compact_utf8_line(self) -> None:
        self.assertEqual(encode("data", {"a": "한글", "b": [1, 2.5]}),
                         '{"key":"data","value":{"a":"한글","b":[1,2.5]}}\n'.encode())

    def test_without_value(self) -> None:
        self.assertEqual(encode("connection"), b'{"key":"connection"}\n')

    def test_lone_surrogate_falls_back_to_escapes(self) -> None:
        line = encode("data", "a\ud800b")
        self.assertEqual(line, b'{"key":"data","value":"a\\ud800b"}\n')

    def test_nan_and_infinity_become_null_as_in_json_stringify(self) -> None:
        self.assertEqual(encode("data", [float("nan"), {"x": float("-inf")}]),
                         b'{"key":"data","value":[null,{"x":null}]}\n')

    def test_what_json_cannot_carry_is_refused(self) -> None:
        self.assertRaises(TypeError, encode, "data", {1, 2})
        loop: list[object] = []
        loop.append(loop)
        self.assertRaises(ValueError, encode, "data", loop)

    @settings(max_examples=200, deadline=None)
    @given(json_values)
    def test_round_trip_through_decoder(self, value: object) -> None:
        self.assertEqual(LineDecoder().feed(encode("data", value)), [Message("data", value)])

    def test_node_reads_what_we_write(self) -> None:
        """Node's JSON.parse gives back the same values (checked by re-serialising there)."""
        values = ["한글 €𝄞", "a\ud800b", "\u2028\u2029", "\x00\x1f\"\\", 0.1, 1e21, -0.0,
                  2**53, [], {}, {"nested": [{"x": None}, True]}, 5e-324]
        lines = b"".join(encode("v", v) for v in values)
        script = ("const rl=require('readline').createInterface({input:process.stdin});"
                  "rl.on('line',l=>{const m=JSON.parse(l);"
                  "process.stdout.write(JSON.stringify(m.value,(k,v)=>"
                  "typeof v==='string'?v.split('').map(c=>c.charCodeAt(0)):v)+'\\n')})")
        out = subprocess.run([node(), "-e", script], input=lines, capture_output=True,
                             timeout=30, check=True).stdout.decode().splitlines()
        self.assertEqual(len(out), len(values))

        def utf16(v: object) -> object:
            if isinstance(v, str):
                units = v.encode("utf-16-le", "surrogatepass")
                return [int.from_bytes(units[i:i + 2], "little") for i in range(0, len(units), 2)]
            if isinstance(v, list):
                return [utf16(x) for x in v]
            if isinstance(v, dict):
                return {k: utf16(x) for k, x in v.items()}
            return v

        for value, seen in zip(values, out, strict=True):
            self.assertEqual(json.loads(seen), json.loads(json.dumps(utf16(value))), value)


class ResolveChannelTests(SynchronousTestCase):
    def test_modes(self) -> None:
        self.assertIsNone(ipc.resolve_channel("none", {"NODE_CHANNEL_FD": "3"}))
        self.assertIsNone(ipc.resolve_channel("auto", {}))
        self.assertEqual(ipc.resolve_channel("stdio", {}), "stdio")

    def test_auto_uses_node_channel_fd(self) -> None:
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        env = {"NODE_CHANNEL_FD": str(b.fileno()), "NODE_CHANNEL_SERIALIZATION_MODE": "json"}
        self.assertEqual(ipc.resolve_channel("auto", env), b.fileno())
        self.assertEqual(ipc.resolve_channel(f"fd:{b.fileno()}", {}), b.fileno())

    def test_errors_say_what_is_wrong(self) -> None:
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        cases = {
            ("auto", "x"): "not a file descriptor number",
            ("fd:-1", None): "not a file descriptor number",
            (f"fd:{r}", None): "is not a socket",
            ("fd:4000", None): "is not open",
            ("tcp:1", None): "must be auto, stdio, none or fd:N",
        }
        for (spec, fd), message in cases.items():
            env = {} if fd is None else {"NODE_CHANNEL_FD": fd}
            with self.assertRaises(ipc.ChannelError) as caught:
                ipc.resolve_channel(spec, env)
            self.assertIn(message, str(caught.exception))

    def test_advanced_serialization_is_refused(self) -> None:
        with self.assertRaises(ipc.ChannelError) as caught:
            ipc.resolve_channel("auto", {"NODE_CHANNEL_FD": "3",
                                         "NODE_CHANNEL_SERIALIZATION_MODE": "advanced"})
        self.assertIn("'advanced'", str(caught.exception))


class WatchdogTests(SynchronousTestCase):
    def test_rule(self) -> None:
        self.assertIsNone(parent_gone(True, 10, 10))
        self.assertIn("channel is closed", parent_gone(False, 10, 10))
        self.assertIn("re-parented to 1", parent_gone(True, 1, 10))

    def test_loop_fires_once_when_parent_goes(self) -> None:
        clock, ppid, gone = Clock(), [10], []
        dog = WatchdogService(2.0, lambda: True, gone.append, getppid=lambda: ppid[0],
                              clock=clock)
        dog.startService()
        clock.advance(2.0)
        self.assertEqual(gone, [])
        ppid[0] = 1
        clock.advance(1.9)
        self.assertEqual(gone, [])
        clock.advance(0.1)
        self.assertEqual(len(gone), 1)
        clock.advance(10)
        self.assertEqual(len(gone), 1)
        dog.stopService()
