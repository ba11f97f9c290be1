"""Tests for entryhw.engineio.packets: wire examples from the spec, round trips, fuzzing.

Exact byte strings come from the engine.io-protocol README (v3 tag and v4), the
engine.io-parser 4.0.0 changelog ("Encoding changes between v3 and v4") and the
engine.io-parser 2.x test suite.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from entryhw.engineio.packets import (
    CLOSE,
    CONTENT_TYPE_BINARY,
    CONTENT_TYPE_JSONP,
    CONTENT_TYPE_TEXT,
    MESSAGE,
    NOOP,
    OPEN,
    PING,
    PONG,
    UPGRADE,
    DecodeError,
    Packet,
    decode_packet,
    decode_payload,
    encode_packet,
    encode_payload,
    handshake_data,
    js_length,
)

FEW = settings(max_examples=200, deadline=None)
EMOJI = "\U0001f600"  # astral: two UTF-16 code units

eios = st.sampled_from([3, 4])
texts = st.text(max_size=40)
blobs = st.binary(max_size=40)
v3_packets = st.builds(Packet, st.integers(OPEN, NOOP), st.none() | texts | blobs)
# v4 binary exists only as MESSAGE, and "\x1e" would split a polling payload.
v4_text_packets = st.builds(
    Packet, st.integers(OPEN, NOOP), st.none() | texts.filter(lambda s: "\x1e" not in s)
)
v4_packets = v4_text_packets | st.builds(Packet, st.just(MESSAGE), blobs)


def normalized(packet: Packet) -> Packet:
    """What a packet decodes back to: empty text data is absent data, as in JS."""
    return Packet(packet.type, None if packet.data == "" else packet.data)


def jsonp_client_post(payload: str) -> bytes:
    """The form body engine.io-client 3's JSONP transport posts for ``payload``."""
    escaped = payload.replace("\\n", "\\\n").replace("\n", "\\n")
    return ("d=" + quote(escaped, safe="")).encode("ascii")


def jsonp_script_payload(body: bytes) -> tuple[str, str]:
    """Split ``___eio[j]("...");`` into (j, payload) the way a browser would run it."""
    text = body.decode("utf-8")
    head, sep, rest = text.partition("](")
    if not (head.startswith("___eio[") and sep and rest.endswith(");")):
        raise AssertionError(f"not a JSONP body: {text!r}")
    return head[len("___eio[") :], json.loads(rest[: -len(");")])


class JsLengthTests(SynchronousTestCase):
    def test_ascii(self) -> None:
        self.assertEqual(js_length(""), 0)
        self.assertEqual(js_length("4hello"), 6)

    def test_bmp_counts_one(self) -> None:
        self.assertEqual(js_length("€"), 1)
        self.assertEqual(js_length("4€€€"), 4)
        self.assertEqual(js_length("한글"), 2)

    def test_astral_counts_two(self) -> None:
        self.assertEqual(js_length(EMOJI), 2)
        self.assertEqual(js_length("4" + EMOJI + "€"), 4)

    def test_lone_surrogate_counts_one(self) -> None:
        self.assertEqual(js_length("\ud800"), 1)

    @FEW
    @given(st.text())
    def test_matches_utf16(self, s: str) -> None:
        self.assertEqual(js_length(s), len(s.encode("utf-16-le")) // 2)


class PacketTextTests(SynchronousTestCase):
    """Text frames, identical in both revisions (README "Packet" / "Packet encoding")."""

    def test_spec_examples(self) -> None:
        for eio in (3, 4):
            self.assertEqual(decode_packet("2probe", eio), Packet(PING, "probe"))
            self.assertEqual(encode_packet(Packet(PONG, "probe"), eio), "3probe")
            self.assertEqual(decode_packet("4HelloWorld", eio), Packet(MESSAGE, "HelloWorld"))
            self.assertEqual(encode_packet(Packet(MESSAGE, "hello"), eio), "4hello")
            self.assertEqual(decode_packet("5", eio), Packet(UPGRADE))
            self.assertEqual(encode_packet(Packet(NOOP), eio), "6")
            self.assertEqual(encode_packet(Packet(OPEN, '{"sid":"x"}'), eio), '0{"sid":"x"}')
            self.assertEqual(encode_packet(Packet(CLOSE), eio), "1")

    def test_no_data_decodes_to_none(self) -> None:
        self.assertEqual(decode_packet("4", 3), Packet(MESSAGE, None))
        self.assertEqual(encode_packet(Packet(MESSAGE, ""), 4), "4")

    def test_unicode_is_untouched(self) -> None:
        self.assertEqual(encode_packet(Packet(MESSAGE, "€" + EMOJI), 3), "4€" + EMOJI)
        self.assertEqual(decode_packet("4€" + EMOJI, 4), Packet(MESSAGE, "€" + EMOJI))

    def test_bad_text_frames(self) -> None:
        # ":::" and "94103" are engine.io-parser 2's own error cases.
        for frame in ("", ":::", "94103", "7", "x", " 4", "-1", "B"):
            for eio in (3, 4):
                self.assertRaises(DecodeError, decode_packet, frame, eio)

    def test_encode_rejects_bad_packets(self) -> None:
        for eio in (3, 4):
            self.assertRaises(ValueError, encode_packet, Packet(7, "x"), eio)
            self.assertRaises(ValueError, encode_packet, Packet(-1, "x"), eio)
            self.assertRaises(ValueError, encode_packet, Packet(MESSAGE, 12), eio)  # type: ignore[arg-type]


class PacketBinaryTests(SynchronousTestCase):
    def test_v3_binary_frame_has_type_byte(self) -> None:
        # README v3: "4|0|1|2|3|4|5" is a message with bytes 0..5.
        frame = bytes([4, 0, 1, 2, 3, 4, 5])
        self.assertEqual(encode_packet(Packet(MESSAGE, bytes(range(6))), 3), frame)
        self.assertEqual(decode_packet(frame, 3), Packet(MESSAGE, bytes(range(6))))
        self.assertEqual(decode_packet(b"\x02", 3), Packet(PING, b""))

    def test_v4_binary_frame_is_raw(self) -> None:
        # Changelog 4.0.0: <Buffer 01 02 03> is sent as is in v4, as <04 01 02 03> in v3.
        self.assertEqual(encode_packet(Packet(MESSAGE, b"\x01\x02\x03"), 4), b"\x01\x02\x03")
        self.assertEqual(encode_packet(Packet(MESSAGE, b"\x01\x02\x03"), 3), b"\x04\x01\x02\x03")
        self.assertEqual(decode_packet(b"\x01\x02\x03", 4), Packet(MESSAGE, b"\x01\x02\x03"))
        self.assertEqual(decode_packet(b"", 4), Packet(MESSAGE, b""))

    def test_bytes_like_frames(self) -> None:
        self.assertEqual(decode_packet(bytearray(b"\x04\x09"), 3), Packet(MESSAGE, b"\x09"))
        self.assertEqual(decode_packet(memoryview(b"\x09"), 4), Packet(MESSAGE, b"\x09"))
        self.assertEqual(encode_packet(Packet(MESSAGE, bytearray(b"\x09")), 3), b"\x04\x09")  # type: ignore[arg-type]

    def test_base64_text_frames(self) -> None:
        # b64=1 sessions get binary as text; clients with forceBase64 send it so.
        self.assertEqual(encode_packet(Packet(MESSAGE, b"\x01\x02\x03"), 3, b64=True), "b4AQID")
        self.assertEqual(encode_packet(Packet(MESSAGE, b"\x01\x02\x03"), 4, b64=True), "bAQID")
        self.assertEqual(decode_packet("b4AQID", 3), Packet(MESSAGE, b"\x01\x02\x03"))
        self.assertEqual(decode_packet("b2AQID", 3), Packet(PING, b"\x01\x02\x03"))
        self.assertEqual(decode_packet("bAQIDBA==", 4), Packet(MESSAGE, b"\x01\x02\x03\x04"))
        self.assertEqual(decode_packet("b", 4), Packet(MESSAGE, b""))

    def test_v4_binary_only_in_messages(self) -> None:
        self.assertRaises(ValueError, encode_packet, Packet(PING, b"x"), 4)
        self.assertRaises(ValueError, encode_packet, Packet(PING, b"x"), 4, b64=True)
        self.assertEqual(encode_packet(Packet(PING, b"x"), 3), b"\x02x")

    def test_bad_binary_frames(self) -> None:
        for frame in (b"", b"\x07", b"\xff\x00", b"4hello"):
            self.assertRaises(DecodeError, decode_packet, frame, 3)
        for frame in ("b", "b9AQID", "bxAQID", "b4AQI", "b4A=QI", "b4€", "b4AQ ID"):
            self.assertRaises(DecodeError, decode_packet, frame, 3)
        for frame in ("bAQI", "b4!!", "b€", "bAQ\nID"):
            self.assertRaises(DecodeError, decode_packet, frame, 4)

    def test_bad_inputs_and_versions(self) -> None:
        self.assertRaises(DecodeError, decode_packet, None, 3)  # type: ignore[arg-type]
        self.assertRaises(DecodeError, decode_packet, b"\x04", 5)
        self.assertRaises(ValueError, encode_packet, Packet(MESSAGE, b"x"), 2)


class PayloadV3Tests(SynchronousTestCase):
    def test_changelog_strings(self) -> None:
        body, ctype = encode_payload([Packet(MESSAGE, "hello"), Packet(MESSAGE, "€€€")], 3)
        self.assertEqual(body, "6:4hello4:4€€€".encode())
        self.assertEqual(ctype, CONTENT_TYPE_TEXT)
        self.assertEqual(
            decode_payload(body, 3), [Packet(MESSAGE, "hello"), Packet(MESSAGE, "€€€")]
        )

    def test_parser_suite_example(self) -> None:
        packets = [Packet(MESSAGE, "€€€"), Packet(MESSAGE, "\u03b1")]
        self.assertEqual(encode_payload(packets, 3)[0], "4:4€€€2:4\u03b1".encode())

    def test_lengths_count_utf16_units(self) -> None:
        # README v4 "From v3 to v4": "€ was encoded to 2:4€, though Buffer.byteLength('€') === 3".
        self.assertEqual(encode_payload([Packet(MESSAGE, "€")], 3)[0], "2:4€".encode())
        self.assertEqual(encode_payload([Packet(MESSAGE, EMOJI)], 3)[0], f"3:4{EMOJI}".encode())
        body = f"3:4{EMOJI}2:4€5:4a{EMOJI}b".encode()
        self.assertEqual(
            decode_payload(body, 3),
            [Packet(MESSAGE, EMOJI), Packet(MESSAGE, "€"), Packet(MESSAGE, f"a{EMOJI}b")],
        )

    def test_length_splitting_a_surrogate_pair(self) -> None:
        # "2:" would take "4" and half of the emoji: a client counting bytes or code points.
        self.assertRaises(DecodeError, decode_payload, f"2:4{EMOJI}".encode(), 3)
        self.assertRaises(DecodeError, decode_payload, f"5:4{EMOJI}".encode(), 3)

    def test_empty_payload(self) -> None:
        self.assertEqual(encode_payload([], 3), (b"0:", CONTENT_TYPE_TEXT))
        self.assertEqual(decode_payload(b"0:", 3), [])
        self.assertEqual(decode_payload(b"0:1:20:", 3), [Packet(PING)])

    def test_base64_in_text_payload(self) -> None:
        # The length covers the whole "b4AQID" (README v3 says "+ 1"; the parser counts all).
        packets = [Packet(MESSAGE, "hello"), Packet(MESSAGE, b"\x01\x02\x03")]
        body, ctype = encode_payload(packets, 3, b64=True)
        self.assertEqual((body, ctype), (b"6:4hello6:b4AQID", CONTENT_TYPE_TEXT))
        self.assertEqual(decode_payload(body, 3), packets)
        self.assertEqual(decode_payload(body, 3, content_type="text/plain;charset=UTF-8"), packets)

    def test_changelog_binary_payload(self) -> None:
        packets = [Packet(MESSAGE, "hello"), Packet(MESSAGE, b"\x01\x02\x03")]
        body, ctype = encode_payload(packets, 3)
        self.assertEqual(body, bytes.fromhex("00 06 ff 34 68 65 6c 6c 6f 01 04 ff 04 01 02 03"))
        self.assertEqual(ctype, CONTENT_TYPE_BINARY)
        self.assertEqual(decode_payload(body, 3, content_type=CONTENT_TYPE_BINARY), packets)
        self.assertEqual(
            decode_payload(body, 3, content_type="Application/Octet-Stream; charset=UTF-8"),
            packets,
        )
        self.assertEqual(decode_payload(body, 3, content_type=b"application/octet-stream"), packets)

    def test_binary_payload_text_is_utf8_with_byte_lengths(self) -> None:
        packets = [Packet(MESSAGE, "€"), Packet(CLOSE), Packet(MESSAGE, bytes(123))]
        body, _ = encode_payload(packets, 3)
        expected = (
            b"\x00\x04\xff4\xe2\x82\xac"  # "4€" is 4 UTF-8 bytes
            + b"\x00\x01\xff1"
            + b"\x01\x01\x02\x04\xff\x04"  # 124 = type byte + 123 bytes
            + bytes(123)
        )
        self.assertEqual(body, expected)
        self.assertEqual(decode_payload(body, 3, content_type=CONTENT_TYPE_BINARY), packets)

    def test_text_only_payload_ignores_binary_support(self) -> None:
        self.assertEqual(
            encode_payload([Packet(PING), Packet(PONG)], 3), (b"1:21:3", CONTENT_TYPE_TEXT)
        )

    def test_bad_text_payloads(self) -> None:
        # The first seven are engine.io-parser 2's own error cases.
        bad = ["1!", "", "))", "1:", "3:99:", "1:aa", "1:a2:b", "٣:4ab", "+1:4", "1:7"]
        bad += ["2:4", ":4", "1:4x", "4:4ab", "99999999999999999999:4", "1" * 100_000]
        for text in bad:
            self.assertRaises(DecodeError, decode_payload, text.encode(), 3)
        self.assertRaises(DecodeError, decode_payload, b"2:4\xff", 3)  # invalid UTF-8

    def test_bad_binary_payloads(self) -> None:
        octet = CONTENT_TYPE_BINARY
        bad = [
            b"",
            b"@",  # engine.io-parser 2's own error case
            b"\x02\x01\xff4",  # unknown marker
            b"\x00\xff",  # no length digits
            b"\x00\x0a\xff4444444444",  # "digit" 10
            b"\x00\x02\xff4",  # truncated
            b"\x00\x02\xff4\xff",  # invalid UTF-8
            b"\x00\x01\xff9",  # unknown type
            b"\x01\x00\xff",  # empty binary frame
            b"\x01\x01\xff\x07",  # unknown type byte
            b"\x00" + b"\x01" * 40 + b"\xff",  # absurd length
        ]
        for body in bad:
            self.assertRaises(DecodeError, decode_payload, body, 3, content_type=octet)


class PayloadV4Tests(SynchronousTestCase):
    def test_spec_examples(self) -> None:
        packets = [Packet(MESSAGE, "hello"), Packet(PING), Packet(MESSAGE, "world")]
        self.assertEqual(encode_payload(packets, 4), (b"4hello\x1e2\x1e4world", CONTENT_TYPE_TEXT))
        self.assertEqual(decode_payload(b"4hello\x1e2\x1e4world", 4), packets)
        packets = [Packet(MESSAGE, "hello"), Packet(MESSAGE, b"\x01\x02\x03\x04")]
        self.assertEqual(encode_payload(packets, 4)[0], b"4hello\x1ebAQIDBA==")
        self.assertEqual(decode_payload(b"4hello\x1ebAQIDBA==", 4), packets)

    def test_changelog_examples(self) -> None:
        packets = [Packet(MESSAGE, "hello"), Packet(MESSAGE, "€€€")]
        self.assertEqual(encode_payload(packets, 4)[0], "4hello\x1e4€€€".encode())
        packets = [Packet(MESSAGE, "hello"), Packet(MESSAGE, b"\x01\x02\x03")]
        self.assertEqual(encode_payload(packets, 4), (b"4hello\x1ebAQID", CONTENT_TYPE_TEXT))
        # b64=False does not matter: v4 polling always uses base64.
        self.assertEqual(encode_payload(packets, 4, b64=False)[0], b"4hello\x1ebAQID")

    def test_unicode_needs_no_lengths(self) -> None:
        body = f"4{EMOJI}\x1e4€".encode()
        self.assertEqual(encode_payload([Packet(MESSAGE, EMOJI), Packet(MESSAGE, "€")], 4)[0], body)
        self.assertEqual(decode_payload(body, 4), [Packet(MESSAGE, EMOJI), Packet(MESSAGE, "€")])

    def test_encode_refusals(self) -> None:
        self.assertRaises(ValueError, encode_payload, [], 4)
        self.assertRaises(ValueError, encode_payload, [Packet(MESSAGE, "a\x1e4b")], 4)
        self.assertRaises(ValueError, encode_payload, [Packet(PING, b"x")], 4)
        self.assertRaises(ValueError, encode_payload, [Packet(PING)], 5)

    def test_binary_content_type_refused(self) -> None:
        # engine.io's polling transport: octet-stream with protocol 4 is "invalid content".
        self.assertRaises(
            DecodeError, decode_payload, b"4hello", 4, content_type=CONTENT_TYPE_BINARY
        )

    def test_bad_payloads(self) -> None:
        bad = [b"", b"\x1e", b"4a\x1e", b"\x1e4a", b"7", b"4a\x1e9", b"bAQI", b"b!!!!", b"4\xff"]
        for body in bad:
            self.assertRaises(DecodeError, decode_payload, body, 4)

    def test_bad_arguments(self) -> None:
        self.assertRaises(DecodeError, decode_payload, "4hello", 4)  # type: ignore[arg-type]
        self.assertRaises(DecodeError, decode_payload, b"4hello", 2)


class JsonpTests(SynchronousTestCase):
    def test_spec_frame(self) -> None:
        body, ctype = encode_payload([Packet(MESSAGE, "hello")], 3, jsonp="4")
        self.assertEqual(body, b'___eio[4]("6:4hello");')
        self.assertEqual(ctype, CONTENT_TYPE_JSONP)

    def test_escaping_matches_json_stringify(self) -> None:
        data = 'q"b\\s\nn\tt\x01c\x1er\u2028l\u2029p€é\x7f' + EMOJI
        body, _ = encode_payload([Packet(MESSAGE, data)], 3, jsonp="0")
        js = '\\"'.join(["q", "b\\\\s\\nn\\tt\\u0001c\\u001er\\u2028l\\u2029p€é\x7f" + EMOJI])
        self.assertEqual(body, f'___eio[0]("23:4{js}");'.encode())

    def test_lone_surrogates_escaped_like_well_formed_stringify(self) -> None:
        body, _ = encode_payload([Packet(MESSAGE, "\ud800x")], 3, jsonp="1")
        self.assertEqual(body, b'___eio[1]("3:4\\ud800x");')

    def test_index_keeps_digits_only(self) -> None:
        body, _ = encode_payload([Packet(NOOP)], 3, jsonp='4"]);alert(1);//2')
        self.assertEqual(body, b'___eio[412]("1:6");')

    def test_binary_forced_to_base64(self) -> None:
        body, ctype = encode_payload([Packet(MESSAGE, b"\x01\x02\x03")], 3, jsonp="0")
        self.assertEqual((body, ctype), (b'___eio[0]("6:b4AQID");', CONTENT_TYPE_JSONP))

    def test_v4_shares_the_wrapper(self) -> None:
        body, _ = encode_payload([Packet(MESSAGE, "a"), Packet(PING)], 4, jsonp="3")
        self.assertEqual(body, b'___eio[3]("4a\\u001e2");')

    def test_form_post(self) -> None:
        self.assertEqual(decode_payload(b"d=6%3A4hello", 3, jsonp=True), [Packet(MESSAGE, "hello")])
        self.assertEqual(decode_payload(b"d=6:4a+b+c", 3, jsonp=True), [Packet(MESSAGE, "a b c")])
        self.assertEqual(decode_payload(b"d=2%3A4%E2%82%AC", 3, jsonp=True), [Packet(MESSAGE, "€")])
        # The content type is irrelevant to a form post.
        self.assertEqual(
            decode_payload(b"d=1%3A2", 3, jsonp=True, content_type=CONTENT_TYPE_BINARY),
            [Packet(PING)],
        )

    def test_form_post_newline_unescaping(self) -> None:
        # A newline arrives as "\n" (2 chars), an escaped "\n" as "\\n" (3 chars).
        self.assertEqual(
            decode_payload(b"d=12%3A4hello%5Cnworld", 3, jsonp=True),
            [Packet(MESSAGE, "hello\nworld")],
        )
        self.assertEqual(
            decode_payload(b"d=7%3A4%22a%5C%5Cnb%22", 3, jsonp=True),
            [Packet(MESSAGE, '"a\\nb"')],
        )
        self.assertEqual(jsonp_client_post('7:4"a\\nb"'), b"d=7%3A4%22a%5C%5Cnb%22")

    def test_form_post_is_lossy_for_backslash_newline(self) -> None:
        # Client and server escaping (engine.io 3) cannot tell "\\\n" from "\\n".
        sent = [Packet(MESSAGE, "\\\n")]
        body = jsonp_client_post(encode_payload(sent, 3)[0].decode())
        self.assertEqual(decode_payload(body, 3, jsonp=True), [Packet(MESSAGE, "\\n")])

    def test_bad_form_posts(self) -> None:
        for body in (b"", b"x=1", b"d=1:2&d=1:2", b"d=", b"d=%FF", b"\xff", b"d=1%3A9"):
            self.assertRaises(DecodeError, decode_payload, body, 3, jsonp=True)


class HandshakeTests(SynchronousTestCase):
    def test_v3(self) -> None:
        self.assertEqual(
            handshake_data("abc", ["websocket"], 25000, 5000, 3, 1_000_000),
            '{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,'
            '"maxPayload":1000000}',
        )

    def test_v4_spec_example(self) -> None:
        text = handshake_data("lv_VI97HAXpY6yYWAAAC", ["websocket"], 25000, 20000, 4, 1_000_000)
        self.assertEqual(
            text,
            '{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,'
            '"pingTimeout":20000,"maxPayload":1000000}',
        )
        self.assertEqual(decode_packet(encode_packet(Packet(OPEN, text), 4), 4), Packet(OPEN, text))

    def test_no_upgrades(self) -> None:
        self.assertIn('"upgrades":[]', handshake_data("s", [], 1, 2, 4, 3))
        self.assertRaises(ValueError, handshake_data, "s", [], 1, 2, 5, 3)


class RoundTripTests(SynchronousTestCase):
    @FEW
    @given(v3_packets, st.booleans())
    def test_packet_v3(self, packet: Packet, b64: bool) -> None:
        frame = encode_packet(packet, 3, b64=b64)
        self.assertIsInstance(frame, bytes if isinstance(packet.data, bytes) and not b64 else str)
        self.assertEqual(decode_packet(frame, 3), normalized(packet))

    @FEW
    @given(v4_packets, st.booleans())
    def test_packet_v4(self, packet: Packet, b64: bool) -> None:
        frame = encode_packet(packet, 4, b64=b64)
        self.assertIsInstance(frame, bytes if isinstance(packet.data, bytes) and not b64 else str)
        self.assertEqual(decode_packet(frame, 4), normalized(packet))

    @FEW
    @given(st.lists(v3_packets, max_size=6), st.booleans())
    def test_payload_v3(self, packets: list[Packet], b64: bool) -> None:
        body, ctype = encode_payload(packets, 3, b64=b64)
        has_binary = any(isinstance(p.data, bytes) for p in packets)
        self.assertEqual(
            ctype, CONTENT_TYPE_BINARY if has_binary and not b64 else CONTENT_TYPE_TEXT
        )
        self.assertEqual(
            decode_payload(body, 3, content_type=ctype), [normalized(p) for p in packets]
        )

    @FEW
    @given(st.lists(v4_packets, min_size=1, max_size=6), st.booleans())
    def test_payload_v4(self, packets: list[Packet], b64: bool) -> None:
        body, ctype = encode_payload(packets, 4, b64=b64)
        self.assertEqual(ctype, CONTENT_TYPE_TEXT)
        self.assertEqual(
            decode_payload(body, 4, content_type=ctype), [normalized(p) for p in packets]
        )

    @FEW
    @given(st.lists(v3_packets, max_size=6), st.text(alphabet="0123456789x", max_size=4))
    def test_jsonp_v3(self, packets: list[Packet], index: str) -> None:
        body, ctype = encode_payload(packets, 3, jsonp=index)
        self.assertEqual(ctype, CONTENT_TYPE_JSONP)
        j, payload = jsonp_script_payload(body)
        self.assertEqual(j, index.replace("x", ""))
        assume("\\\n" not in payload)  # the one thing JSONP posting cannot carry
        self.assertEqual(
            decode_payload(jsonp_client_post(payload), 3, jsonp=True),
            [normalized(p) for p in packets],
        )

    @FEW
    @given(st.lists(v4_packets, min_size=1, max_size=6))
    def test_jsonp_v4(self, packets: list[Packet]) -> None:
        _, payload = jsonp_script_payload(encode_payload(packets, 4, jsonp="1")[0])
        assume("\\\n" not in payload)
        self.assertEqual(
            decode_payload(jsonp_client_post(payload), 4, jsonp=True),
            [normalized(p) for p in packets],
        )

    @FEW
    @given(st.lists(st.text(max_size=20).map(lambda s: Packet(MESSAGE, s + "x")), max_size=6))
    def test_v3_text_lengths_are_js_lengths(self, packets: list[Packet]) -> None:
        text = encode_payload(packets, 3)[0].decode()
        pos = 0
        for packet in packets:
            header = f"{js_length(packet.data) + 1}:4"  # type: ignore[arg-type]
            self.assertTrue(text.startswith(header, pos))
            pos += len(header) + len(packet.data)  # type: ignore[arg-type]
        self.assertEqual(pos, len(text) if packets else 0)


class FuzzTests(SynchronousTestCase):
    """Whatever arrives, decoders return or raise DecodeError, and nothing else."""

    def assertOnlyDecodeError(self, func, *args, **kwargs) -> None:
        try:
            result = func(*args, **kwargs)
        except DecodeError:
            return
        self.assertIsInstance(result, (Packet, list))

    @FEW
    @given(st.text() | st.binary(), eios)
    def test_decode_packet(self, frame: str | bytes, eio: int) -> None:
        self.assertOnlyDecodeError(decode_packet, frame, eio)

    @FEW
    @given(
        st.binary(),
        eios,
        st.sampled_from([None, CONTENT_TYPE_BINARY, CONTENT_TYPE_TEXT, "", ";", b"\xff;"]),
        st.booleans(),
    )
    def test_decode_payload_bytes(
        self, body: bytes, eio: int, ctype: str | None, jsonp: bool
    ) -> None:
        self.assertOnlyDecodeError(decode_payload, body, eio, content_type=ctype, jsonp=jsonp)

    @FEW
    @given(st.text(alphabet="0123456789:b4\x1e=A€d%&+\\n\n" + EMOJI), eios, st.booleans())
    def test_decode_payload_framing_alphabet(self, text: str, eio: int, jsonp: bool) -> None:
        self.assertOnlyDecodeError(decode_payload, text.encode(), eio, jsonp=jsonp)

    @FEW
    @given(st.lists(v3_packets, min_size=1, max_size=4), st.booleans(), st.data())
    def test_mutated_v3_payloads(
        self, packets: list[Packet], b64: bool, data: st.DataObject
    ) -> None:
        body, ctype = encode_payload(packets, 3, b64=b64)
        cut = data.draw(st.integers(0, len(body)))
        flip = data.draw(st.integers(0, len(body) - 1))
        value = data.draw(st.integers(0, 255))
        for mutated in (body[:cut], body[:flip] + bytes([value]) + body[flip + 1 :]):
            self.assertOnlyDecodeError(decode_payload, mutated, 3, content_type=ctype)

    @FEW
    @given(st.lists(v4_packets, min_size=1, max_size=4), st.data())
    def test_mutated_v4_payloads(self, packets: list[Packet], data: st.DataObject) -> None:
        body, _ = encode_payload(packets, 4)
        cut = data.draw(st.integers(0, len(body)))
        flip = data.draw(st.integers(0, len(body) - 1))
        value = data.draw(st.integers(0, 255))
        for mutated in (body[:cut], body[:flip] + bytes([value]) + body[flip + 1 :]):
            self.assertOnlyDecodeError(decode_payload, mutated, 4)

    def test_huge_inputs_fail_fast(self) -> None:
        big = b"9" * 2_000_000
        self.assertRaises(DecodeError, decode_payload, big, 3)
        self.assertRaises(
            DecodeError,
            decode_payload,
            b"\x00" + b"\x09" * 2_000_000,
            3,
            content_type=CONTENT_TYPE_BINARY,
        )
        self.assertRaises(DecodeError, decode_payload, b"d=" + big, 3, jsonp=True)
        self.assertRaises(DecodeError, decode_payload, b"\x1e" * 2_000_000, 4)
