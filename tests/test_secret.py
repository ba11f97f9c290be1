"""encrypt/decrypt against the real crypto-js (both directions), their errors,
and loading the secret file."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from entryhw import secret
from entryhw.secret import MAX_INPUT, Crypto, SecretError, decrypt, encrypt, load_secret
from tests.support import JS_DIR, node, require_npm_peers

#: (passphrase, salt hex, plaintext, ciphertext) made by crypto-js 4.2.0 with
#: ``CryptoJS.AES.encrypt(text, pass, {salt: CryptoJS.enc.Hex.parse(salt)})``;
#: the first agrees with ``openssl enc -aes-256-cbc -md md5 -S 0001020304050607``.
VECTORS = [
    ("correct horse", "0001020304050607", "hello",
     "U2FsdGVkX18AAQIDBAUGB7o8Nu0eXCFigzlnaOQwP0I="),
    ("correct horse", "0001020304050607", "",
     "U2FsdGVkX18AAQIDBAUGBzoHhZQYlD8dib37WRU3dkM="),
    ("correct horse", "a1b2c3d4e5f60718", "한글 😀",
     "U2FsdGVkX1+hssPU5fYHGBMrjzgldnEcqHr75VkcgQw="),
]

PASSPHRASE = "비밀 🔑 pass"
SAMPLES = [
    "hello, world",
    "엔트리 하드웨어 연결",
    "emoji 😀👍🏽 and 𝄞",
    "",
    "0123456789" * 1024,
    '{"json": ["quotes\\"", "\\n", "\u0000"]}',
]
FIXED_SALT = "0011223344556677"

fast = settings(max_examples=50, deadline=None)


def cryptojs(op: str, passphrase: str, items: list[Any]) -> list[dict[str, str]]:
    """One run of tests/js/cryptojs.js: the original server's CryptoJS calls."""
    require_npm_peers()
    request = json.dumps({"op": op, "passphrase": passphrase, "items": items}).encode()
    out = subprocess.run([node(), str(JS_DIR / "cryptojs.js")], input=request,
                         capture_output=True, timeout=30, check=True).stdout
    results = json.loads(out)
    if len(results) != len(items):
        raise AssertionError(f"cryptojs.js answered {len(results)} items for {len(items)}")
    return results


def captured_messages(events: list[dict[str, Any]], level: LogLevel) -> list[str]:
    return [formatEvent(e) for e in events if e.get("log_level") == level]


class KnownAnswerTests(SynchronousTestCase):
    def test_encrypt_with_fixed_salt(self) -> None:
        for passphrase, salt, plaintext, ciphertext in VECTORS:
            self.assertEqual(encrypt(plaintext, passphrase, bytes.fromhex(salt)), ciphertext)

    def test_decrypt(self) -> None:
        for passphrase, _salt, plaintext, ciphertext in VECTORS:
            self.assertEqual(decrypt(ciphertext, passphrase), plaintext)

    def test_random_salt(self) -> None:
        a, b = encrypt("same", "pw"), encrypt("same", "pw")
        self.assertNotEqual(a, b)
        self.assertEqual(base64.b64decode(a)[:8], b"Salted__")
        self.assertEqual((decrypt(a, "pw"), decrypt(b, "pw")), ("same", "same"))

    def test_wrapped_base64_is_read(self) -> None:
        ciphertext = encrypt("x" * 200, "pw")
        wrapped = "\n".join(ciphertext[i:i + 64] for i in range(0, len(ciphertext), 64)) + "\r\n"
        self.assertEqual(decrypt(wrapped, "pw"), "x" * 200)

    def test_bad_salt(self) -> None:
        for salt in (b"", b"1234567", b"123456789"):
            with self.assertRaises(SecretError):
                encrypt("x", "pw", salt)


class CryptoJSInteropTests(SynchronousTestCase):
    """The real crypto-js 4.2.0 in Node, one process per direction."""

    def test_cryptojs_encrypts_python_decrypts(self) -> None:
        items = [{"text": t} for t in SAMPLES] + [{"text": t, "salt": FIXED_SALT} for t in SAMPLES]
        results = cryptojs("encrypt", PASSPHRASE, items)
        for item, result in zip(items, results, strict=True):
            self.assertIn("ok", result, result)
            self.assertEqual(decrypt(result["ok"], PASSPHRASE), item["text"])
            if "salt" in item:
                self.assertEqual(encrypt(item["text"], PASSPHRASE, bytes.fromhex(FIXED_SALT)),
                                 result["ok"])

    def test_python_encrypts_cryptojs_decrypts(self) -> None:
        ciphertexts = [encrypt(t, PASSPHRASE) for t in SAMPLES]
        results = cryptojs("decrypt", PASSPHRASE, ciphertexts)
        self.assertEqual([r.get("ok") for r in results], SAMPLES)


class OpenSSLInteropTests(SynchronousTestCase):
    """The same format from the ``openssl`` command, where there is one."""

    def setUp(self) -> None:
        self.openssl = shutil.which("openssl")
        if self.openssl is None:
            self.skipTest("no openssl command")

    def openssl_enc(self, data: bytes, *args: str) -> bytes:
        assert self.openssl is not None
        env = dict(os.environ, ENTRYHW_TEST_PASS=PASSPHRASE)
        return subprocess.run(
            [self.openssl, "enc", "-aes-256-cbc", "-md", "md5", "-a", "-pass",
             "env:ENTRYHW_TEST_PASS", *args],
            input=data, capture_output=True, timeout=30, check=True, env=env).stdout

    def test_openssl_encrypts_python_decrypts(self) -> None:
        text = "엔트리 " * 50  # long enough for openssl to wrap its base64
        out = self.openssl_enc(text.encode()).decode()
        self.assertIn("\n", out.strip())
        self.assertEqual(decrypt(out, PASSPHRASE), text)

    def test_python_encrypts_openssl_decrypts(self) -> None:
        text = "emoji 😀 " * 20
        ciphertext = encrypt(text, PASSPHRASE) + "\n"
        self.assertEqual(self.openssl_enc(ciphertext.encode(), "-d", "-A").decode(), text)


class DecryptErrorTests(SynchronousTestCase):
    def assertFails(self, ciphertext: Any, passphrase: Any, *phrases: str) -> None:
        with self.assertRaises(SecretError) as cm:
            decrypt(ciphertext, passphrase)
        for phrase in phrases:
            self.assertIn(phrase, str(cm.exception))

    def test_wrong_passphrase(self) -> None:
        for _passphrase, _salt, _plaintext, ciphertext in VECTORS:
            self.assertFails(ciphertext, "wrong horse", "wrong passphrase")

    def test_not_base64(self) -> None:
        self.assertFails("not base64!!", "pw", "not valid base64")
        self.assertFails("U2FsdGVkX18AAQIDBAUGB7o8Nu0eXCFigzlnaOQwP0I", "pw", "not valid base64")
        self.assertFails("U2FsdGVkX18-AQIDBAUGB7o8Nu0eXCFigzlnaOQwP0I=", "pw", "not valid base64")
        self.assertFails("U2FsdGVkX18é", "pw", "non-ASCII")

    def test_empty(self) -> None:
        self.assertFails("", "pw", "empty")
        self.assertFails(" \n", "pw", "empty")

    def test_no_header(self) -> None:
        self.assertFails(base64.b64encode(b"x" * 32).decode(), "pw", "'Salted__' header")
        self.assertFails(base64.b64encode(b"Salted!!" + b"x" * 24).decode(), "pw", "header")

    def test_truncated(self) -> None:
        ciphertext = VECTORS[0][3]
        self.assertFails(ciphertext[:-4], "correct horse", "wrong length", "truncated")
        self.assertFails(base64.b64encode(b"Salted__").decode(), "pw", "wrong length")
        self.assertFails(base64.b64encode(b"Salted__12345678").decode(), "pw", "wrong length")
        self.assertFails(base64.b64encode(b"Salt").decode(), "pw", "truncated")

    def test_corrupt_padding(self) -> None:
        raw = bytearray(base64.b64decode(VECTORS[0][3]))
        raw[-17] ^= 0x01  # flips the last plaintext byte: padding 0x0b becomes 0x0a
        self.assertFails(base64.b64encode(raw).decode(), "correct horse", "bad padding")

    def test_not_utf8(self) -> None:
        # In CBC a flipped ciphertext bit garbles its own block and flips the same
        # bit of the next: block 1 becomes noise, block 2's 0xc3 a lone 0x83.
        ciphertext = encrypt("a" * 16 + "\u00e9", "pw", bytes(8))
        raw = bytearray(base64.b64decode(ciphertext))
        raw[16] ^= 0x40
        self.assertFails(base64.b64encode(raw).decode(), "pw", "not UTF-8")

    def test_huge_input(self) -> None:
        self.assertFails("A" * (MAX_INPUT + 1), "pw", "over the limit")
        with self.assertRaises(SecretError):
            encrypt("A" * (MAX_INPUT + 1), "pw")

    def test_wrong_types(self) -> None:
        self.assertFails(None, "pw", "must be a str")
        self.assertFails(VECTORS[0][3].encode(), "correct horse", "must be a str")
        self.assertFails(VECTORS[0][3], None, "passphrase must be a str")
        for plaintext, passphrase in ((None, "pw"), (b"x", "pw"), ("x", None)):
            with self.assertRaises(SecretError):
                encrypt(plaintext, passphrase)  # type: ignore[arg-type]

    def test_lone_surrogates(self) -> None:
        with self.assertRaises(SecretError) as cm:
            encrypt("a\ud800", "pw")
        self.assertIn("lone surrogate", str(cm.exception))
        self.assertFails(VECTORS[0][3], "\udfff", "lone surrogate")

    def test_messages_do_not_leak(self) -> None:
        for ciphertext in ("c2VjcmV0LXZhbHVl", "secret-value!", VECTORS[0][3]):
            with self.assertRaises(SecretError) as cm:
                decrypt(ciphertext, "passphrase-xyz")
            for leak in ("secret-value", "c2VjcmV0", "passphrase-xyz", ciphertext[:12]):
                self.assertNotIn(leak, str(cm.exception))


class PropertyTests(SynchronousTestCase):
    @fast
    @given(st.text(), st.text())
    def test_round_trip(self, plaintext: str, passphrase: str) -> None:
        self.assertEqual(decrypt(encrypt(plaintext, passphrase), passphrase), plaintext)

    @fast
    @given(st.text(), st.text(max_size=8))
    def test_any_text_fails_only_with_secret_error(self, ciphertext: str, passphrase: str) -> None:
        try:
            self.assertIsInstance(decrypt(ciphertext, passphrase), str)
        except SecretError:
            pass

    @fast
    @given(st.binary(max_size=80), st.booleans(), st.text(max_size=8))
    def test_any_bytes_fail_only_with_secret_error(self, data: bytes, header: bool,
                                                   passphrase: str) -> None:
        raw = b"Salted__" + data if header else data
        try:
            self.assertIsInstance(decrypt(base64.b64encode(raw).decode(), passphrase), str)
        except SecretError:
            pass

    @fast
    @given(st.text(max_size=40), st.data())
    def test_mutated_ciphertext_fails_only_with_secret_error(self, plaintext: str,
                                                             data: st.DataObject) -> None:
        ciphertext = encrypt(plaintext, "pw")
        i = data.draw(st.integers(0, len(ciphertext) - 1))
        c = data.draw(st.sampled_from("AQgw+/=é\n"))
        try:
            self.assertIsInstance(decrypt(ciphertext[:i] + c + ciphertext[i + 1:], "pw"), str)
        except SecretError:
            pass


class CryptoTests(SynchronousTestCase):
    def test_round_trip(self) -> None:
        crypto = Crypto("s3cret")
        ciphertext = crypto("encrypt", "한글")
        self.assertEqual(decrypt(ciphertext, "s3cret"), "한글")
        self.assertEqual(crypto("decrypt", ciphertext), "한글")

    def test_reads_cryptojs_output(self) -> None:
        passphrase, _salt, plaintext, ciphertext = VECTORS[2]
        self.assertEqual(Crypto(passphrase)("decrypt", ciphertext), plaintext)

    def test_failure_replies_empty_and_logs_one_safe_line(self) -> None:
        crypto = Crypto("s3cret-passphrase")
        value = encrypt("private-plaintext", "other")
        with capturedLogs() as events:
            self.assertEqual(crypto("decrypt", value), "")
        (line,) = captured_messages(events, LogLevel.error)
        self.assertIn("IPC decrypt failed", line)
        self.assertIn("wrong passphrase", line)
        for leak in ("s3cret", "private", value[:16]):
            self.assertNotIn(leak, "".join(formatEvent(e) + repr(e) for e in events))

    def test_other_failures(self) -> None:
        crypto = Crypto("pw")
        for op, value in (("decrypt", "garbage!"), ("encrypt", "\ud800"), ("decrypt", None),
                          ("rot13", "x")):
            with capturedLogs() as events:
                self.assertEqual(crypto(op, value), "")  # type: ignore[arg-type]
            self.assertEqual(len(captured_messages(events, LogLevel.error)), 1, (op, value))

    def test_unexpected_exception_is_contained(self) -> None:
        crypto = Crypto("pw")
        with mock.patch.object(secret, "encrypt", side_effect=RuntimeError("boom")):
            with capturedLogs() as events:
                self.assertEqual(crypto("encrypt", "x"), "")
        (line,) = captured_messages(events, LogLevel.error)
        self.assertIn("unexpected RuntimeError", line)

    def test_empty_decrypt_is_not_a_failure(self) -> None:
        with capturedLogs() as events:
            self.assertEqual(Crypto("pw")("decrypt", encrypt("", "pw")), "")
        self.assertEqual(captured_messages(events, LogLevel.error), [])

    def test_secret_is_hidden(self) -> None:
        crypto = Crypto("s3cret")
        self.assertNotIn("s3cret", repr(crypto))
        self.assertNotIn("s3cret", str(crypto))

    def test_bad_secret(self) -> None:
        for bad in ("", "\ud800", None):
            with self.assertRaises(SecretError):
                Crypto(bad)  # type: ignore[arg-type]


class LoadSecretTests(SynchronousTestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="entryhw-test-")
        self.addCleanup(tmp.cleanup)
        self.dir = Path(tmp.name)

    def write(self, data: bytes, mode: int = 0o600) -> Path:
        path = self.dir / "secret"
        path.write_bytes(data)
        path.chmod(mode)
        return path

    def assertFails(self, path: Path, *phrases: str) -> str:
        with self.assertRaises(SecretError) as cm:
            load_secret(str(path))
        message = str(cm.exception)
        self.assertIn(str(path), message)
        for phrase in phrases:
            self.assertIn(phrase, message)
        return message

    def test_one_trailing_newline_is_stripped(self) -> None:
        cases = {
            b"pw": "pw",
            b"pw\n": "pw",
            b"pw\r\n": "pw",
            b"pw\n\n": "pw\n",
            b"pw\r\n\r\n": "pw\r\n",
            b" pw \t\n": " pw \t",
            b"pw\r": "pw\r",
            "비밀 🔑\n".encode(): "비밀 🔑",
        }
        for data, expected in cases.items():
            self.assertEqual(load_secret(str(self.write(data))), expected, data)

    def test_path_like(self) -> None:
        self.assertEqual(load_secret(self.write(b"pw\n")), "pw")

    def test_missing(self) -> None:
        self.assertFails(self.dir / "nope", "does not exist")

    def test_empty(self) -> None:
        for data in (b"", b"\n", b"\r\n"):
            self.assertFails(self.write(data), "is empty")

    def test_directory(self) -> None:
        self.assertFails(self.dir, "is a directory")

    def test_not_a_directory_in_path(self) -> None:
        self.assertFails(self.write(b"pw") / "x", "could not be read")

    def test_not_utf8(self) -> None:
        message = self.assertFails(self.write(b"top-\xffsecret\n"), "not UTF-8")
        self.assertNotIn("secret\\n", message)
        self.assertNotIn("top-", message)

    def test_too_big(self) -> None:
        self.assertFails(self.write(b"x" * (secret.MAX_SECRET_FILE + 1)), "larger than")

    def test_unreadable(self) -> None:
        path = self.write(b"pw")
        if os.geteuid() == 0:  # root reads a mode-000 file anyway
            denied = PermissionError(13, "Permission denied")
            with mock.patch("builtins.open", side_effect=denied):
                self.assertFails(path, "not readable")
        else:
            path.chmod(0)
            self.assertFails(path, "not readable")

    def test_group_or_other_access_warns(self) -> None:
        for mode in (0o644, 0o640, 0o604, 0o620):
            path = self.write(b"topsecret\n", mode)
            with capturedLogs() as events:
                self.assertEqual(load_secret(str(path)), "topsecret")
            (line,) = captured_messages(events, LogLevel.warn)
            self.assertIn(str(path), line)
            self.assertIn("chmod 600", line)
            self.assertIn(oct(mode), line)
            self.assertNotIn("topsecret", line)

    def test_private_file_does_not_warn(self) -> None:
        for mode in (0o600, 0o400, 0o700):
            path = self.write(b"topsecret\n", mode)
            with capturedLogs() as events:
                load_secret(str(path))
            self.assertEqual(captured_messages(events, LogLevel.warn), [], oct(mode))

    def test_byte_order_mark_is_kept_with_a_warning(self) -> None:
        path = self.write("\ufeffpw\n".encode())
        with capturedLogs() as events:
            self.assertEqual(load_secret(str(path)), "\ufeffpw")
        (line,) = captured_messages(events, LogLevel.warn)
        self.assertIn("byte-order mark", line)

    def test_crypto_from_file(self) -> None:
        passphrase, _salt, plaintext, ciphertext = VECTORS[0]
        crypto = Crypto.from_file(self.write(passphrase.encode() + b"\n"))
        self.assertEqual(crypto("decrypt", ciphertext), plaintext)
