"""``entryhw-certs``: a throwaway development CA and a leaf in the original four-file layout.

The real hw.playentry.org key is deployment material and never in git, yet a
developer needs TLS to test what the browser sees (the Entry workspace talks
to ``https://hw.playentry.org:23518``, a name public DNS resolves to
127.0.0.1). This command writes what ``entryhw-server --certs DIR`` loads:

================  =========================================================
``RootCA.crt``    self-signed root CA (10 years); the one file to trust
``ChainCA1.crt``  intermediate CA signed by the root (path length 0)
``cert.pem``      leaf for hw.playentry.org, hardware.playentry.org,
                  localhost, 127.0.0.1, ::1 and any ``--name``
``hardware.key``  the leaf's private key, PKCS#8 PEM, mode 0600 from creation
================  =========================================================

Decisions, and why:

* **The CA private keys are not written anywhere.** The root ends up in the
  operating system's or browser's trust store, where it vouches for *every*
  host name; a root key lying in a developer folder (backed up, synced,
  copied next to a checkout) would let whoever reads it impersonate any web
  site to that machine. The command only ever needs them to sign one leaf, so
  they live in memory and are dropped. The price: changing the names or
  renewing the leaf means running again with ``--force`` and trusting the new
  root (and removing the old one). The leaf key, which must be on disk for
  the server, can only impersonate the names listed in ``cert.pem``.
* **EC P-256 keys, ECDSA with SHA-256.** Every browser and TLS library in use
  accepts them, key generation is instant (tests make many CAs), and they are
  small. RSA is not needed; :func:`issue_leaf` still accepts an RSA key from a
  caller that wants one (its certificate then also gets keyEncipherment).
* **At most 825 days for the leaf** (the default): Apple platforms reject TLS
  server certificates valid longer, even under a user-installed root; the
  398-day limit of public CAs does not apply to such roots. The validity
  period starts an hour in the past (a guest VM's clock may lag the host's)
  and, counted inclusively as RFC 5280 does, is never longer than asked.
* **Nothing is overwritten without ``--force``**, and the refusal happens
  before anything is generated or written. Without ``--force`` files are
  created with ``O_EXCL`` (a file appearing meanwhile is never clobbered, and
  files made by a run that fails half way are removed again); with
  ``--force`` each file is written beside its target and renamed over it, so
  a replaced ``hardware.key`` gets mode 0600 even if the old one was looser.

Nothing here prints or logs key material: output names files and shows the
public SPKI hash only.

Tests import :func:`make_dev_ca`, :func:`issue_leaf`, :func:`write_layout` and
:func:`spki_sha256_b64` to get a throwaway PKI without touching the command.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import errno
import hashlib
import ipaddress
import os
import re
import secrets
import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TextIO

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


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _period(days: int, start: datetime.datetime | None = None
            ) -> tuple[datetime.datetime, datetime.datetime]:
    """(not_before, not_after) spanning ``days`` days counted inclusively, backdated."""
    not_before = (start or _now()) - BACKDATE
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


def existing_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The files of the layout already in ``directory`` (dangling symlinks count)."""
    folder = Path(directory)
    return [folder / name for name in LAYOUT if os.path.lexists(folder / name)]


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _open_new(path: Path, mode: int) -> int:
    """Create ``path`` (must not exist) with ``mode`` from the first instant.

    O_EXCL also refuses a symlink planted at ``path``. fchmod pins the exact
    mode whatever the umask, without ever widening it past ``mode``.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, mode)
    if mode == KEY_MODE and hasattr(os, "fchmod"):
        try:
            os.fchmod(fd, mode)
        except OSError:
            os.close(fd)
            raise
    return fd


def _write_all(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_layout(directory: str | os.PathLike[str], root_cert: x509.Certificate,
                 inter_cert: x509.Certificate, leaf_cert: x509.Certificate,
                 leaf_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, *,
                 force: bool = False) -> list[Path]:
    """Write the four files into ``directory`` and return their paths (layout order).

    ``directory`` is created (mode 0700, parents as needed) if missing.
    Without ``force``, :class:`ExistingFilesError` lists every file of the set
    already there and nothing is written; with it, each file is replaced
    atomically. ``hardware.key`` is PKCS#8 PEM, unencrypted (the server starts
    unattended), mode 0600 from creation; certificates are 0644 less the umask.
    """
    folder = Path(directory)
    folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if not force:
        existing = existing_files(folder)
        if existing:
            raise ExistingFilesError(existing)
    contents = {
        ROOT_FILE: (_pem(root_cert), CERT_MODE),
        CHAIN_FILE: (_pem(inter_cert), CERT_MODE),
        CERT_FILE: (_pem(leaf_cert), CERT_MODE),
        KEY_FILE: (_key_pem(leaf_key), KEY_MODE),
    }
    if force:
        _replace_all(folder, contents)
    else:
        _create_all(folder, contents)
    return [folder / name for name in LAYOUT]


def _create_all(folder: Path, contents: dict[str, tuple[bytes, int]]) -> None:
    made: list[Path] = []
    try:
        for name, (data, mode) in contents.items():
            path = folder / name
            try:
                fd = _open_new(path, mode)
            except FileExistsError:
                raise ExistingFilesError([path]) from None
            made.append(path)
            _write_all(fd, data)
    except BaseException:
        # No half-written set: remove what this call created (and only that).
        for path in made:
            try:
                path.unlink()
            except OSError:
                pass
        raise


def _replace_all(folder: Path, contents: dict[str, tuple[bytes, int]]) -> None:
    # Write every file beside its target first, then rename them all, so a
    # failure while writing leaves the old set as it was.
    staged: list[tuple[Path, Path]] = []
    try:
        for name, (data, mode) in contents.items():
            tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
            fd = _open_new(tmp, mode)
            staged.append((tmp, folder / name))
            _write_all(fd, data)
        while staged:
            tmp, target = staged[0]
            os.replace(tmp, target)
            staged.pop(0)
    finally:
        for tmp, _ in staged:
            try:
                tmp.unlink()
            except OSError:
                pass


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if not 1 <= days <= MAX_LEAF_DAYS:
        raise argparse.ArgumentTypeError(
            f"{days} is out of range: 1 to {MAX_LEAF_DAYS} (Apple platforms reject server "
            f"certificates valid longer than {MAX_LEAF_DAYS} days)")
    return days


def _name(text: str) -> str:
    try:
        general_names([text])
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


DESCRIPTION = f"""\
Create a local development CA and a TLS certificate for entryhw, in the
original server's layout, so that entryhw can be run over TLS without the real
hw.playentry.org key (deployment material, never in git).

Files written into DIR (created with mode 0700 if missing):
  {ROOT_FILE:<13} self-signed root CA, valid 10 years: trust this one
  {CHAIN_FILE:<13} intermediate CA signed by the root (path length 0)
  {CERT_FILE:<13} certificate for {", ".join(DEFAULT_NAMES)}
  {"":<13} and every --name; serverAuth; valid --days days
  {KEY_FILE:<13} its private key, PKCS#8 PEM, mode 0600 from creation

Keys are EC P-256. The CA private keys are never written: a trusted root
vouches for every web site, so a root key on disk would let anyone who reads
it impersonate any site to this machine. This root can sign nothing but the
one certificate; to change names or renew, run again with --force and trust
the new RootCA.crt (remove the old one). Existing files are never replaced
without --force (exit status 1, listing them).

Printed afterwards: the files, the certificate's expiry, its SPKI sha256 in
base64 (for Chromium's --ignore-certificate-errors-spki-list=, to test without
trusting the root), and how to trust RootCA.crt on Linux (Debian/Ubuntu and
Chrome/Chromium's NSS database), macOS and Windows. Then run
  entryhw-server --certs DIR
and open https://hw.playentry.org:23518/ : public DNS resolves
hw.playentry.org to 127.0.0.1, so no hosts-file change is needed.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="entryhw-certs", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default="certs", metavar="DIR",
                        help="where to write the files [default: ./certs]")
    parser.add_argument("--force", action="store_true",
                        help="replace files of the set that already exist")
    parser.add_argument("--days", type=_days, default=MAX_LEAF_DAYS, metavar="N",
                        help=f"validity of the certificate, 1-{MAX_LEAF_DAYS} days "
                             f"[default: {MAX_LEAF_DAYS}, the longest browsers accept]")
    parser.add_argument("--name", type=_name, action="extend", nargs="+", default=[],
                        metavar="NAME",
                        help="extra host name (or IP address) for the certificate; repeatable")
    return parser


def _instructions(folder: Path, root: x509.Certificate, leaf: x509.Certificate,
                  names: Sequence[str]) -> str:
    root_path = shlex.quote(str(folder / ROOT_FILE))
    root_cn = root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    expires = leaf.not_valid_after_utc
    # The period starts backdated, so count to the nearest day, not whole days left.
    days_left = round((expires - _now()).total_seconds() / 86400)
    return f"""\
entryhw-certs: wrote a development CA and certificate into {folder}
  {ROOT_FILE:<13} root CA "{root_cn}", valid until {root.not_valid_after_utc:%Y-%m-%d}
  {CHAIN_FILE:<13} intermediate CA
  {CERT_FILE:<13} certificate for {", ".join(names)}
  {KEY_FILE:<13} its private key (mode 0600; never share or commit it)
The CA private keys were not saved, so this root can sign nothing else. To change
names or renew, run again with --force and trust the new root (remove this one).

Certificate expires: {expires:%Y-%m-%d %H:%M:%S} UTC (in {days_left} days)
SPKI sha256 (Chromium --ignore-certificate-errors-spki-list=): {spki_sha256_b64(leaf)}

Trust {ROOT_FILE} (after a --force run, first remove the previous "entryhw development root CA"):
  Debian/Ubuntu:
    sudo cp {root_path} /usr/local/share/ca-certificates/entryhw-dev.crt
    sudo update-ca-certificates
  Chrome/Chromium on Linux (NSS; remove an old one with -D -n entryhw-dev):
    certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n entryhw-dev -i {root_path}
  macOS:
    sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain \\
      {root_path}
  Windows (administrator prompt):
    certutil -addstore -f "ROOT" {root_path}

Run the server with them:
  entryhw-server --certs {shlex.quote(str(folder))}
hw.playentry.org resolves to 127.0.0.1 in public DNS, so https://hw.playentry.org:23518/
reaches the local server without editing the hosts file.
"""


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run the command; returns the exit status (0 done, 1 refused or failed, 2 usage).

    ``stdout``/``stderr`` default to the process's streams (looked up at call
    time, so tests may redirect them).
    """
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    args = _parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    folder = Path(args.dir).absolute()
    if os.path.lexists(folder) and not folder.is_dir():
        err.write(f"entryhw-certs: {folder} exists and is not a directory\n")
        return 1
    # Refuse before generating anything: the usual mistake is a second run.
    existing = [] if args.force else existing_files(folder)
    if existing:
        _refuse(err, existing)
        return 1
    names = [str(n.value) for n in general_names([*DEFAULT_NAMES, *args.name])]
    root, _root_key, inter, inter_key = make_dev_ca()
    leaf, leaf_key = issue_leaf(inter, inter_key, names, args.days)
    try:
        write_layout(folder, root, inter, leaf, leaf_key, force=args.force)
    except ExistingFilesError as e:
        _refuse(err, e.paths)
        return 1
    except OSError as e:
        where = f" {e.filename}" if e.filename else f" {folder}"
        err.write(f"entryhw-certs: cannot write{where}: {e.strerror or e}\n")
        return 1
    out.write(_instructions(folder, root, leaf, names))
    out.flush()
    return 0


def _refuse(err: TextIO, paths: Sequence[Path]) -> None:
    err.write("entryhw-certs: not overwriting existing file(s):\n")
    for path in paths:
        err.write(f"  {path}\n")
    err.write("entryhw-certs: use --force to replace them (the old root CA then stops "
              "matching; trust the new one)\n")


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
