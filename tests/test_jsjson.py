"""jsjson: the same answers with orjson and with the stdlib fallback, as JSON.parse/stringify."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from entryhw import jsjson
from entryhw.limits import MAX_DEPTH

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


class _Cases:
    """Run by both backends (the subclasses)."""

    def test_compact_and_unescaped(self) -> None:
        value = {"a": "한글\u2028", "b": [1, 2.5, None, True], "c": "\x00\n"}
        self.assertEqual(jsjson.dumps(value),
                         '{"a":"한글\u2028","b":[1,2.5,null,true],"c":"\\u0000\\n"}'.encode())

    def test_lone_surrogates_are_escaped_and_read_back(self) -> None:
        out = jsjson.dumps(["a\ud800", {"\udfff": "😀"}])
        # Escaped all through (UTF-8 cannot carry the surrogate); JS reads back the same.
        self.assertEqual(out, b'["a\\ud800",{"\\udfff":"\\ud83d\\ude00"}]')
        self.assertEqual(jsjson.loads(out), ["a\ud800", {"\udfff": "😀"}])

    def test_non_finite_numbers(self) -> None:
        self.assertEqual(jsjson.dumps([math.nan, {"x": math.inf}]), b'[null,{"x":null}]')
        self.assertEqual(jsjson.loads(b"[1e400]"), [math.inf])  # JSON.parse: Infinity
        for bad in (b"NaN", b"[Infinity]", b"-Infinity"):
            self.assertRaises(ValueError, jsjson.loads, bad)

    def test_big_integers_are_written_exactly(self) -> None:
        self.assertEqual(jsjson.dumps([10**30, -(2**70)]), b"[%d,%d]" % (10**30, -(2**70)))

    def test_refusals(self) -> None:
        self.assertRaises(TypeError, jsjson.dumps, {1, 2})
        loop: list[object] = []
        loop.append(loop)
        self.assertRaises(ValueError, jsjson.dumps, loop)
        for bad in (b"", b"{", b'{"a":1}x', b"\xff", b"[" * 100_000):
            self.assertRaises(ValueError, jsjson.loads, bad)

    def test_binary_is_written_as_node_writes_a_buffer(self) -> None:
        # JSON.stringify(Buffer.from([0, 1, 255])): what Node's IPC makes of a Buffer.
        expected = b'{"type":"Buffer","data":[0,1,255]}'
        for value in (b"\x00\x01\xff", bytearray(b"\x00\x01\xff"), memoryview(b"\x00\x01\xff")):
            self.assertEqual(jsjson.dumps(value), expected)
        self.assertEqual(jsjson.dumps({"d": [b"A"], "n": math.nan}),
                         b'{"d":[{"type":"Buffer","data":[65]}],"n":null}')

    def test_nesting_limit(self) -> None:
        # The payload limit plus one envelope level (IPC's {key, value}) is the default.
        ok = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
        self.assertEqual(jsjson.loads(ok), json.loads(ok))
        for depth in (MAX_DEPTH + 2, 990, 1023, 1025, 100_000):
            for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
                with self.assertRaises(jsjson.TooDeep, msg=depth):
                    jsjson.loads(text)
                with self.assertRaises(jsjson.TooDeep, msg=depth):
                    jsjson.loads(text.encode())
        # Brackets inside strings are not nesting.
        self.assertEqual(jsjson.loads('["' + "[" * 5000 + '"]'), ["[" * 5000])

    def test_deep_values_never_raise_recursion_error(self) -> None:
        value: list[object] = []
        for _ in range(5000):
            value = [value]
        self.assertRaises(ValueError, jsjson.dumps, value)

    def test_str_and_bytes_in(self) -> None:
        self.assertEqual(jsjson.loads(' {"k": [1, "é"]}\n'), {"k": [1, "é"]})
        self.assertEqual(jsjson.loads(' {"k": [1, "é"]}\n'.encode()), {"k": [1, "é"]})

    def test_start_reads_the_tail_of_a_frame(self) -> None:
        # A Socket.IO frame: its header is not JSON, the rest is.
        self.assertEqual(jsjson.loads('2/nsp,7["a",{"b":[1]}]', start=7), ["a", {"b": [1]}])
        self.assertEqual(jsjson.loads(b'xx \t[1] \r\n', start=2), [1])
        self.assertEqual(jsjson.loads('[2]', start=0), [2])
        for text, start in (('2["a"]x', 1), ('2["a"] x', 1), ("2", 1), ("2 ", 1), ("2[", 1),
                            ("2[NaN]", 1), ("2\u00a0[1]", 1), ("2" + "9" * 5000, 1)):
            with self.assertRaises(ValueError, msg=(text[:20], start)):
                jsjson.loads(text, start=start)
        # The nesting limit counts from where the document starts.
        self.assertEqual(jsjson.loads("[[[" + "[[]]", 2, start=3), [[]])
        self.assertRaises(jsjson.TooDeep, jsjson.loads, "[[[" + "[[[]]]", 2, start=3)
        self.assertRaises(jsjson.TooDeep, jsjson.loads, "x" + "[" * 100_000, start=1)

    @settings(max_examples=200, deadline=None,
              suppress_health_check=[HealthCheck.differing_executors])
    @given(st.text(max_size=5), st.text(max_size=30) | values.map(json.dumps))
    def test_start_is_the_same_as_slicing(self, head: str, tail: str) -> None:
        try:
            expected = jsjson.loads(tail)
        except ValueError as e:
            with self.assertRaises(type(e)):
                jsjson.loads(head + tail, start=len(head))
        else:
            self.assertEqual(jsjson.loads(head + tail, start=len(head)), expected)

    def test_well_formed_escapes_lone_surrogates_only(self) -> None:
        self.assertEqual(jsjson.well_formed('["a\ud800","\udfff"]'), '["a\\ud800","\\udfff"]')
        for body in ('["plain"]', '["한글 😀"]'):
            self.assertIs(jsjson.well_formed(body), body)

    # One test body, two backends: examples from one never apply to the other's code path.
    @settings(max_examples=200, deadline=None,
              suppress_health_check=[HealthCheck.differing_executors])
    @given(values)
    def test_round_trip(self, value: object) -> None:
        self.assertEqual(jsjson.loads(jsjson.dumps(value)), value)


class WithOrjson(_Cases, SynchronousTestCase):
    def setUp(self) -> None:
        if jsjson.orjson is None:
            self.skipTest("orjson is not installed")

    def test_backend(self) -> None:
        self.assertEqual(jsjson.BACKEND, "orjson")

    def test_integers_beyond_64_bits_read_as_doubles_like_javascript(self) -> None:
        self.assertEqual(jsjson.loads(b"[18446744073709552000]"), [1.8446744073709552e19])


class WithStdlib(_Cases, SynchronousTestCase):
    def setUp(self) -> None:
        self.patch(jsjson, "orjson", None)
