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

The PKI is made by :mod:`entryhw.devca` and written by :mod:`entryhw.certfiles`;
their names are re-exported here for the tests and other callers.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from cryptography import x509
from cryptography.x509.oid import NameOID

from entryhw.certfiles import existing_files, write_layout
from entryhw.devca import (
    CERT_FILE,
    CHAIN_FILE,
    DEFAULT_NAMES,
    KEY_FILE,
    LAYOUT,
    MAX_LEAF_DAYS,
    ROOT_FILE,
    ExistingFilesError,
    general_names,
    issue_leaf,
    make_dev_ca,
    new_key,
    spki_sha256_b64,
    utc_now,
)

__all__ = [
    "CERT_FILE", "CHAIN_FILE", "DEFAULT_NAMES", "KEY_FILE", "LAYOUT", "MAX_LEAF_DAYS",
    "ROOT_FILE", "ExistingFilesError", "existing_files", "general_names", "issue_leaf",
    "main", "make_dev_ca", "new_key", "run", "spki_sha256_b64", "write_layout",
]


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
    days_left = round((expires - utc_now()).total_seconds() / 86400)
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
