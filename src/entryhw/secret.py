"""The parent's ``encrypt``/``decrypt`` IPC requests, byte-compatible with CryptoJS.

The original Node server answered them with ``CryptoJS.AES.encrypt(text,
secret).toString()`` and ``CryptoJS.AES.decrypt(text, secret).toString(
CryptoJS.enc.Utf8)``, and values it encrypted are stored by Entry Hardware, so
this module must read and write exactly that format: the OpenSSL
``enc -aes-256-cbc -md md5`` passphrase format, i.e. base64 of ``b"Salted__"``
+ 8-byte salt + AES-256-CBC ciphertext with PKCS#7 padding, where key and IV
come from ``EVP_BytesToKey(MD5, 1 iteration, UTF-8 passphrase, salt)``.

That format is legacy: MD5 with one iteration is a weak KDF and there is no
MAC, so a wrong passphrase is detected only through bad padding or bad UTF-8
(almost always, not always). It is kept for compatibility, not chosen.

Everything but :func:`load_secret` is sans-I/O. No message or log line made
here contains the secret, the plaintext or the ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
import stat

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from twisted.logger import Logger

from entryhw import hostos

log = Logger()

#: Longest plaintext or ciphertext accepted, in characters. IPC values are far
#: smaller; the cap keeps a bad request from costing unbounded memory and time.
MAX_INPUT = 16 * 1024 * 1024
#: Largest secret file read. A passphrase is short; a big file is the wrong file.
MAX_SECRET_FILE = 64 * 1024

_MAGIC = b"Salted__"
_SALT_LEN = 8
_KEY_LEN = 32
_IV_LEN = 16
_BLOCK = 16
# OpenSSL's ``enc -a`` wraps its base64 at 64 columns; CryptoJS never does.
_B64_SPACE = re.compile(r"[ \t\r\n]+")


class SecretError(ValueError):
    """Encryption, decryption or secret loading failed; the message says why.

    Messages never contain the secret, the plaintext or the ciphertext, so they
    are safe to log.
    """


def _utf8(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise SecretError(f"the {what} must be a str, not {type(text).__name__}")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # JSON allows "\ud800"; CryptoJS's Utf8.parse throws a URIError on it.
        raise SecretError(f"the {what} is not valid Unicode (it has a lone surrogate)") from None


def _check_size(text: object, what: str) -> None:
    if isinstance(text, str) and len(text) > MAX_INPUT:
        raise SecretError(f"the {what} is {len(text)} characters long, over the limit of "
                          f"{MAX_INPUT}")


def _key_iv(passphrase: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """OpenSSL's EVP_BytesToKey with MD5 and one iteration, as CryptoJS's EvpKDF.

    MD5 is marked ``usedforsecurity=False`` so that a FIPS-mode Python still
    computes it: the choice of hash is fixed by the stored data, not by us.
    """
    derived = b""
    block = b""
    while len(derived) < _KEY_LEN + _IV_LEN:
        block = hashlib.md5(block + passphrase + salt, usedforsecurity=False).digest()
        derived += block
    return derived[:_KEY_LEN], derived[_KEY_LEN:_KEY_LEN + _IV_LEN]


def encrypt(plaintext: str, passphrase: str, salt: bytes | None = None) -> str:
    """``CryptoJS.AES.encrypt(plaintext, passphrase).toString()``.

    ``salt`` is for known-answer tests only; by default a fresh random 8-byte
    salt is used, as CryptoJS does, so equal plaintexts encrypt differently.
    """
    _check_size(plaintext, "plaintext")
    data = _utf8(plaintext, "plaintext")
    key_material = _utf8(passphrase, "passphrase")
    if salt is None:
        salt = secrets.token_bytes(_SALT_LEN)
    elif not isinstance(salt, bytes) or len(salt) != _SALT_LEN:
        raise SecretError(f"the salt must be {_SALT_LEN} bytes")
    key, iv = _key_iv(key_material, salt)
    padder = padding.PKCS7(_BLOCK * 8).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    body = encryptor.update(padded) + encryptor.finalize()
    return base64.b64encode(_MAGIC + salt + body).decode("ascii")


def decrypt(ciphertext: str, passphrase: str) -> str:
    """``CryptoJS.AES.decrypt(ciphertext, passphrase).toString(CryptoJS.enc.Utf8)``.

    Stricter than CryptoJS, which returns garbage or ``""`` for much bad input:
    here every failure raises :class:`SecretError` (and nothing else does), so
    the caller can tell "decrypted to empty" from "could not decrypt". ASCII
    whitespace inside the base64 is ignored so OpenSSL's wrapped ``-a`` output
    reads too. Plaintexts CryptoJS encrypted decrypt identically.
    """
    _check_size(ciphertext, "ciphertext")
    if not isinstance(ciphertext, str):
        raise SecretError(f"the ciphertext must be a str, not {type(ciphertext).__name__}")
    key_material = _utf8(passphrase, "passphrase")
    compact = _B64_SPACE.sub("", ciphertext)
    if not compact:
        raise SecretError("the ciphertext is empty")
    if not compact.isascii():
        raise SecretError("the ciphertext is not base64 (it has non-ASCII characters)")
    try:
        raw = base64.b64decode(compact, validate=True)
    except binascii.Error:
        raise SecretError("the ciphertext is not valid base64 (bad character, length or "
                          "padding)") from None
    if not raw.startswith(_MAGIC):
        if len(raw) < len(_MAGIC) and _MAGIC.startswith(raw):
            raise SecretError("the ciphertext is truncated (it ends inside the 'Salted__' "
                              "header)")
        raise SecretError("the ciphertext lacks the 'Salted__' header of the CryptoJS/OpenSSL "
                          "passphrase format")
    salt = raw[len(_MAGIC):len(_MAGIC) + _SALT_LEN]
    body = raw[len(_MAGIC) + _SALT_LEN:]
    if len(salt) != _SALT_LEN or not body or len(body) % _BLOCK:
        raise SecretError(f"the ciphertext has the wrong length ({len(body)} bytes after the "
                          f"header and salt, not a positive multiple of {_BLOCK}): truncated "
                          "or corrupt")
    key, iv = _key_iv(key_material, salt)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(body) + decryptor.finalize()
    unpadder = padding.PKCS7(_BLOCK * 8).unpadder()
    try:
        data = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise SecretError("bad padding after decryption: wrong passphrase or corrupt "
                          "ciphertext") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError("the decrypted data is not UTF-8 text: wrong passphrase or corrupt "
                          "ciphertext") from None


def load_secret(path: str | os.PathLike[str]) -> str:
    """The passphrase stored in the file at ``path``.

    The file is read as UTF-8 and exactly one trailing ``"\\n"`` or ``"\\r\\n"``
    is removed: editors and ``echo`` add one, but the original server used the
    secret as an exact string, so any other whitespace is part of it and is
    kept. Raises :class:`SecretError` naming the file and the problem. Logs a
    warning when the file is readable or writable by group or others (POSIX),
    since anyone who reads it can decrypt every stored value.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            raw = f.read(MAX_SECRET_FILE + 1)
    except FileNotFoundError:
        raise SecretError(f"secret file {name!r} does not exist") from None
    except IsADirectoryError:
        raise SecretError(f"secret file {name!r} is a directory") from None
    except PermissionError:
        raise SecretError(f"secret file {name!r} is not readable (permission denied)") from None
    except OSError as e:
        raise SecretError(f"secret file {name!r} could not be read: "
                          f"{e.strerror or type(e).__name__}") from None
    if len(raw) > MAX_SECRET_FILE:
        raise SecretError(f"secret file {name!r} is larger than {MAX_SECRET_FILE} bytes; "
                          "is it the right file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SecretError(f"secret file {name!r} is not UTF-8 text (bad byte at offset "
                          f"{e.start})") from None
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise SecretError(f"secret file {name!r} is empty")
    if not hostos.private_enough(mode):
        log.warn("secret file {path!r} is accessible to group or others (mode {mode}); "
                 "run: chmod 600 {path}", path=name, mode=oct(stat.S_IMODE(mode)))
    if text.startswith("\ufeff"):
        log.warn("secret file {path!r} starts with a UTF-8 byte-order mark, which is kept as "
                 "part of the secret", path=name)
    return text


class Crypto:
    """The bridge's ``crypto(op, value) -> str`` callable, holding the secret.

    Failures answer ``""``, as the original server's CryptoJS calls did for
    most bad input, and log one line with the reason; the parent protocol has
    no error reply. The value and the secret are never logged, and ``repr``
    hides the secret.
    """

    def __init__(self, passphrase: str) -> None:
        if not isinstance(passphrase, str) or not passphrase:
            raise SecretError("the secret must be a non-empty str")
        _utf8(passphrase, "secret")
        self._passphrase = passphrase

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Crypto:
        """A :class:`Crypto` with the secret from :func:`load_secret`."""
        return cls(load_secret(path))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} secret=<hidden>>"

    def __call__(self, op: str, value: str) -> str:
        """``encrypt(value)`` or ``decrypt(value)`` per ``op``; ``""`` on any failure."""
        try:
            if op == "encrypt":
                return encrypt(value, self._passphrase)
            if op == "decrypt":
                return decrypt(value, self._passphrase)
            reason = "unknown operation"
        except SecretError as e:
            reason = str(e)
        except Exception as e:  # a bug here must not break the IPC channel
            reason = f"unexpected {type(e).__name__}"
        log.error("IPC {op} failed: {reason}; replying ''", op=op, reason=reason)
        return ""
