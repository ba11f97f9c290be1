"""A throwaway development PKI: root CA, intermediate, leaf (no I/O; see entryhw.certs).

What the certificates look like and why (P-256, 825 days, names) is in the docstring
of :mod:`entryhw.certs`, the command that uses this. Tests import :func:`make_dev_ca`,
:func:`issue_leaf` and :func:`spki_sha256_b64` for a PKI of their own.
"""

from __future__ import annotations

import base64
import datetime
import errno
import hashlib
import ipaddress
import re
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: File names of the original server's layout (``--certs DIR``).
ROOT_FILE = "RootCA.crt"
CHAIN_FILE = "ChainCA1.crt"
CERT_FILE = "cert.pem"
KEY_FILE = "hardware.key"
LAYOUT = (ROOT_FILE, CHAIN_FILE, CERT_FILE, KEY_FILE)

#: Names every development leaf carries: the two the Entry workspace dials
#: (public DNS points both at 127.0.0.1) and loopback under every spelling.
DEFAULT_NAMES = ("hw.playentry.org", "hardware.playentry.org", "localhost", "127.0.0.1", "::1")

#: Longest leaf validity Apple platforms accept for a TLS server certificate.
MAX_LEAF_DAYS = 825
#: Validity of the development root and intermediate: long enough to be trusted once.
CA_DAYS = 3650
#: How far validity periods start in the past, for clocks that lag a little.
BACKDATE = datetime.timedelta(hours=1)

KEY_MODE = 0o600
CERT_MODE = 0o644
DIR_MODE = 0o700

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

SigningKey = CertificateIssuerPrivateKeyTypes


class ExistingFilesError(FileExistsError):
    """Some files of the layout already exist and ``force`` was not given."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        super().__init__(errno.EEXIST, "already exist: " + ", ".join(str(p) for p in self.paths))


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key (see the module docstring for why not RSA)."""
    return ec.generate_private_key(ec.SECP256R1())


def _hash_for(key: SigningKey) -> hashes.SHA256 | None:
    # Ed25519/Ed448 sign with their own built-in hash; cryptography wants None for them.
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    return hashes.SHA256()


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _period(days: int, start: datetime.datetime | None = None
            ) -> tuple[datetime.datetime, datetime.datetime]:
    """(not_before, not_after) spanning ``days`` days counted inclusively, backdated."""
    not_before = (start or utc_now()) - BACKDATE
    # RFC 5280 validity includes notAfter itself, hence the second taken off.
    return not_before, not_before + datetime.timedelta(days=days) - datetime.timedelta(seconds=1)


def _ca_name(role: str, tag: str) -> x509.Name:
    # A per-run tag tells roots from different runs apart in a trust store
    # (the old one has to be found to be removed after --force).
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "entryhw development (not for production)"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"entryhw development {role} {tag}"),
    ])


def _ca_extensions(builder: x509.CertificateBuilder, public: CertificateIssuerPublicKeyTypes,
                   path_length: int | None) -> x509.CertificateBuilder:
    return (
        builder
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def make_dev_ca(days: int = CA_DAYS, *, now: datetime.datetime | None = None
                ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey,
                           x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new root CA and an intermediate it signed: ``(root, root_key, inter, inter_key)``.

    The root is CA:true without a path length limit; the intermediate is
    CA:true with path length 0, so it can sign leaves and nothing else. Both
    have keyCertSign and cRLSign only, and key identifiers, which strict
    verifiers (cryptography's, Chromium's) want for chain building. The two
    common names carry the same random tag. ``now`` pins the start for tests.
    """
    tag = secrets.token_hex(4)
    not_before, not_after = _period(days, now)
    root_key = new_key()
    root_name = _ca_name("root CA", tag)
    root = _ca_extensions(
        x509.CertificateBuilder()
        .subject_name(root_name).issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after),
        root_key.public_key(), None,
    ).sign(root_key, _hash_for(root_key))

    inter_key = new_key()
    inter = _ca_extensions(
        x509.CertificateBuilder()
        .subject_name(_ca_name("intermediate CA", tag)).issuer_name(root.subject)
        .public_key(inter_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after),
        inter_key.public_key(), 0,
    ).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False,
    ).sign(root_key, _hash_for(root_key))
    return root, root_key, inter, inter_key


def general_names(names: Iterable[str]) -> list[x509.GeneralName]:
    """SAN entries for ``names``: IP addresses as iPAddress, the rest as dNSName.

    Names are lower-cased, a trailing dot is dropped and duplicates go (first
    one kept). A DNS name must be an ASCII host name (an internationalised
    name in its ``xn--`` form); ``*`` is allowed as the whole leftmost label
    of a name with at least two more. Raises ValueError saying what is wrong,
    because a malformed SAN yields a certificate no browser accepts.
    """
    out: list[x509.GeneralName] = []
    for raw in names:
        name = raw.strip()
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            entry: x509.GeneralName = x509.DNSName(_dns_name(name))
        else:
            entry = x509.IPAddress(address)
        if entry not in out:
            out.append(entry)
    return out


def _dns_name(name: str) -> str:
    host = name.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise ValueError(f"{name!r} is not a host name")
    if not host.isascii():
        raise ValueError(f"{name!r} is not ASCII; give its xn-- form (IDNA A-label)")
    if len(host) > 253:
        raise ValueError(f"{name!r} is longer than 253 characters")
    labels = host.split(".")
    if labels[0] == "*":
        if len(labels) < 3:
            raise ValueError(f"{name!r}: a wildcard needs at least two labels after '*.'")
        labels = labels[1:]
    for label in labels:
        if not _LABEL.match(label):
            raise ValueError(f"{name!r} is not a host name (bad label {label!r}: use letters, "
                             "digits and inner hyphens, 1-63 characters)")
    return host


def issue_leaf(inter_cert: x509.Certificate, inter_key: SigningKey,
               names: Iterable[str] = DEFAULT_NAMES, days: int = MAX_LEAF_DAYS,
               not_before: datetime.datetime | None = None,
               not_after: datetime.datetime | None = None,
               key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
               ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey]:
    """A TLS server certificate for ``names`` signed by the intermediate, and its key.

    It has what browsers require of a server certificate: the names as SANs
    (browsers ignore the common name), extendedKeyUsage serverAuth,
    keyUsage digitalSignature (plus keyEncipherment for an RSA key, which
    TLS 1.2 RSA key exchange uses), CA:false and the issuer's key identifier.
    The first name is also the common name, for people reading it.

    ``not_before``/``not_after`` override the ``days``-long backdated period,
    so tests can make expired or not-yet-valid certificates; no limit is
    enforced here (the command enforces :data:`MAX_LEAF_DAYS`). ``key``
    certifies an existing key instead of a new P-256 one.
    """
    sans = general_names(names)
    if not sans:
        raise ValueError("a leaf certificate needs at least one name")
    leaf_key = key if key is not None else new_key()
    start, end = _period(days)
    first = str(sans[0].value)
    # A common name is at most 64 characters; a longer name is still in the SANs.
    common_name = first if len(first) <= 64 else "entryhw development server"
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    is_rsa = isinstance(leaf_key, rsa.RSAPrivateKey)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(inter_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or start).not_valid_after(not_after or end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=is_rsa,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            inter_key.public_key()), critical=False)
        .sign(inter_key, _hash_for(inter_key))
    )
    return cert, leaf_key


def spki_sha256_b64(cert: x509.Certificate) -> str:
    """base64(sha256(DER SubjectPublicKeyInfo)) of ``cert``'s public key.

    That is the pin Chromium's ``--ignore-certificate-errors-spki-list=`` takes
    (and HPKP's pin-sha256): a way to test over TLS without trusting the root.
    """
    der = cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")
