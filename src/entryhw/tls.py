"""TLS: loading the certificate files, the server policy, reload, client verification.

The key for hw.playentry.org is the reason this server is its own process, so
loading is strict and loud (every problem names its file), nothing of the key
is ever logged, and a renewed certificate is picked up without a restart.
pyOpenSSL is imported here only, so a plain-HTTP server never loads it.
"""

from __future__ import annotations

import datetime
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from OpenSSL import SSL
from twisted.application.internet import TimerService
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from twisted.logger import Logger
from zope.interface import implementer

from entryhw import hostos

log = Logger()

#: The original's four-file layout inside --certs.
KEY_FILE, CERT_FILE = "hardware.key", "cert.pem"
CHAIN_FILE, ROOT_FILE = "ChainCA1.crt", "RootCA.crt"
LAYOUT = (KEY_FILE, CERT_FILE, CHAIN_FILE, ROOT_FILE)
#: Names the browser uses for us; the client side verifies the first.
SERVER_NAMES = ("hw.playentry.org", "hardware.playentry.org")
#: Mozilla "intermediate" profile, TLS 1.2 suites (TLS 1.3 suites are OpenSSL's defaults).
CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
EXPIRY_WARNING = datetime.timedelta(days=30)


class TLSConfigError(Exception):
    """The configured certificate files cannot be used; the message names the file."""


@dataclass(frozen=True)
class Sources:
    """Where the certificate material comes from (paths only, never contents)."""

    key: Path
    cert: Path
    extra: tuple[Path, ...] = ()  # chain and root files, in that order

    @property
    def paths(self) -> tuple[Path, ...]:
        return (self.key, self.cert, *self.extra)

    def stamp(self) -> tuple[tuple[int, int, int], ...]:
        """(mtime_ns, size, inode) of each file: cheap change detection."""
        out = []
        for path in self.paths:
            try:
                st = path.stat()
            except OSError:
                out.append((0, 0, 0))
            else:
                out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(out)


def find_sources(certs: str | None, cert_file: str | None = None,
                 key_file: str | None = None) -> Sources | None:
    """The files to load, or None when nothing is configured (plain HTTP).

    ``--cert-file`` (leaf then chain, one PEM; may hold the key too) wins over
    ``--certs``; in ``--certs`` the four files must all be there, or none of
    them (a folder with only a ``secret`` is fine).
    """
    if cert_file is not None:
        return Sources(Path(key_file or cert_file), Path(cert_file))
    if key_file is not None:
        raise TLSConfigError("--key-file needs --cert-file")
    if certs is None:
        return None
    folder = Path(certs)
    present = [name for name in LAYOUT if (folder / name).exists()]
    if not present:
        return None
    missing = [name for name in LAYOUT if name not in present]
    if missing:
        raise TLSConfigError(
            f"{folder}: missing {', '.join(missing)} (found {', '.join(present)}); TLS needs "
            f"all of {', '.join(LAYOUT)}")
    return Sources(folder / KEY_FILE, folder / CERT_FILE,
                   (folder / CHAIN_FILE, folder / ROOT_FILE))


@dataclass(frozen=True)
class CertificateSet:
    """A validated key, leaf and chain."""

    sources: Sources
    key: PrivateKeyTypes
    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    stamp: tuple[tuple[int, int, int], ...]

    @property
    def not_after(self) -> datetime.datetime:
        return self.leaf.not_valid_after_utc


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TLSConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise TLSConfigError(f"{path}: is a directory") from None
    except PermissionError:
        raise TLSConfigError(f"{path}: permission denied") from None
    except OSError as e:
        raise TLSConfigError(f"{path}: cannot read ({e.strerror})") from None


def _certificates(path: Path, data: bytes) -> list[x509.Certificate]:
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise TLSConfigError(f"{path}: no PEM certificate in it")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as e:
        raise TLSConfigError(f"{path}: not a valid PEM certificate ({e})") from None


def _private_key(path: Path, data: bytes) -> PrivateKeyTypes:
    if b"PRIVATE KEY-----" not in data:
        raise TLSConfigError(f"{path}: no PEM private key in it")
    if b"ENCRYPTED" in data:
        raise TLSConfigError(f"{path}: the private key is encrypted; give an unencrypted key")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        # Never include the key text in the message.
        raise TLSConfigError(f"{path}: not a usable private key ({type(e).__name__})") from None


def _public_bytes(public: Any) -> bytes:
    return public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def key_is_private_enough(path: Path) -> bool:
    """False when group or others may read the key file (entryhw.hostos decides how)."""
    try:
        return hostos.private_enough(path.stat().st_mode)
    except OSError:
        return True


def load(sources: Sources, now: datetime.datetime | None = None) -> CertificateSet:
    """Read and check every file; raise TLSConfigError naming the first problem."""
    now = now or datetime.datetime.now(datetime.UTC)
    stamp = sources.stamp()
    key_data = _read(sources.key)
    cert_data = key_data if sources.cert == sources.key else _read(sources.cert)
    key = _private_key(sources.key, key_data)
    certs = _certificates(sources.cert, cert_data)
    leaf, chain = certs[0], list(certs[1:])
    for path in sources.extra:
        chain += _certificates(path, _read(path))
    if _public_bytes(key.public_key()) != _public_bytes(leaf.public_key()):
        raise TLSConfigError(f"{sources.key}: this key does not belong to the certificate in "
                             f"{sources.cert}")
    for path, cert in [(sources.cert, leaf), *((None, c) for c in chain)]:
        where = path or _origin(cert, sources)
        if cert.not_valid_after_utc < now:
            raise TLSConfigError(f"{where}: certificate {_subject(cert)} expired on "
                                 f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
        if cert.not_valid_before_utc > now:
            raise TLSConfigError(f"{where}: certificate {_subject(cert)} is not valid before "
                                 f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    if not key_is_private_enough(sources.key):
        log.warn("{path} can be read by other users (mode {mode:o}); chmod 600 it",
                 path=str(sources.key), mode=stat.S_IMODE(sources.key.stat().st_mode))
    left = leaf.not_valid_after_utc - now
    if left < EXPIRY_WARNING:
        log.warn("the TLS certificate in {path} expires in {days} day(s), on {when:%Y-%m-%d}",
                 path=str(sources.cert), days=left.days, when=leaf.not_valid_after_utc)
    return CertificateSet(sources, key, leaf, tuple(chain), stamp)


def _subject(cert: x509.Certificate) -> str:
    return repr(cert.subject.rfc4514_string())


def _origin(cert: x509.Certificate, sources: Sources) -> str:
    return " / ".join(str(p) for p in sources.extra) or str(sources.cert)


def build_context(certs: CertificateSet) -> SSL.Context:
    """A server context: TLS 1.2-1.3, intermediate ciphers, full chain, ALPN http/1.1."""
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION)
    ctx.set_cipher_list(CIPHERS.encode())
    ctx.use_certificate(certs.leaf)
    for extra in certs.chain:
        ctx.add_extra_chain_cert(extra)
    ctx.use_privatekey(certs.key)
    ctx.check_privatekey()
    ctx.set_session_id(b"entryhw")
    ctx.set_alpn_select_callback(_select_alpn)
    return ctx


def _select_alpn(conn: SSL.Connection, offered: list[bytes]) -> bytes:
    return b"http/1.1" if b"http/1.1" in offered else SSL.NO_OVERLAPPING_PROTOCOLS


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLS:
    """The live server context; :meth:`reload` swaps it for new handshakes only."""

    def __init__(self, sources: Sources, on_change: Callable[[CertificateSet], None] | None = None
                 ) -> None:
        self.sources = sources
        self.certs = load(sources)
        self.context = build_context(self.certs)
        self.on_change = on_change

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        return SSL.Connection(self.context, None)

    @property
    def not_after(self) -> datetime.datetime:
        return self.certs.not_after

    def changed(self) -> bool:
        """Did any file change since the set in use was loaded (cheap: stat only)?"""
        return self.sources.stamp() != self.certs.stamp

    def reload(self, why: str) -> bool:
        """Load the files again; on any problem keep serving the old set."""
        # Stamp before reading: a file replaced while (or just after) a broken set is
        # read must still count as a change at the next check.
        stamp = self.sources.stamp()
        try:
            certs = load(self.sources)
            context = build_context(certs)
        except (TLSConfigError, SSL.Error) as e:
            log.error("TLS reload ({why}) refused, the previous certificate stays in use: {err}",
                      why=why, err=e)
            # Do not retry the same broken files on every check.
            self.certs = CertificateSet(self.certs.sources, self.certs.key, self.certs.leaf,
                                        self.certs.chain, stamp)
            return False
        self.certs, self.context = certs, context
        log.info("TLS certificate reloaded ({why}): {subject}, valid until {when:%Y-%m-%d}",
                 why=why, subject=_subject(certs.leaf), when=certs.not_after)
        if self.on_change is not None:
            self.on_change(certs)
        return True


@implementer(IOpenSSLClientConnectionCreator)
class _UncheckedClientTLS:
    """The original's ``rejectUnauthorized: false``: SNI, but no verification at all."""

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname.encode()
        self.context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        self.context.set_min_proto_version(SSL.TLS1_2_VERSION)

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        conn = SSL.Connection(self.context, None)
        conn.set_tlsext_host_name(self.hostname)
        conn.set_connect_state()
        return conn


def client_options(certs: CertificateSet | None, insecure: bool = False,
                   hostname: str = SERVER_NAMES[0]) -> Any:
    """How a child dials its host: SNI ``hostname``, chain checked against our roots.

    With no certificate set (combined PEM without a root), the platform's
    trust store checks the chain, as for the real hw.playentry.org certificate.
    """
    from twisted.internet import ssl

    if insecure:
        return _UncheckedClientTLS(hostname)
    cas = [c for c in (certs.chain if certs else ()) if _is_ca(c)]
    if cas:
        trust = ssl.trustRootFromCertificates(
            [ssl.Certificate.loadPEM(c.public_bytes(serialization.Encoding.PEM)) for c in cas])
    else:
        trust = ssl.platformTrust()
    return ssl.optionsForClientTLS(hostname, trustRoot=trust)


def refusal(error: object, hostname: str = SERVER_NAMES[0]) -> str | None:
    """What to log when dialling the host failed because its certificate was refused
    (the name, or the chain), or None for any other failure."""
    from service_identity import VerificationError

    if isinstance(error, VerificationError):
        return (f"TLS: the host's certificate is not valid for {hostname} ({error}); "
                "certificate verification failed")
    if isinstance(error, SSL.Error):
        return (f"TLS: the host's certificate was refused ({error}); certificate "
                "verification failed")
    return None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


class CertificateService(TimerService):
    """Every ``interval`` seconds, reload the TLS files if they changed (stat only)."""

    name = "certificates"
    log = Logger()

    def __init__(self, tls: Any, interval: float, clock: Any) -> None:
        super().__init__(interval, self.check)
        self.tls = tls
        self.clock = clock

    def check(self) -> None:
        if self.tls.changed():
            self.tls.reload("the files changed")

    def startService(self) -> None:
        self.log.info("TLS certificate {subject}, valid until {when:%Y-%m-%d}",
                      subject=self.tls.certs.leaf.subject.rfc4514_string(),
                      when=self.tls.not_after)
        super().startService()
