"""Writing the four-file layout: created exclusively, or replaced atomically with --force.

Kept apart from the generation (:mod:`entryhw.devca`) because this is where the care
is: ``O_EXCL`` creation with cleanup of a half-written set, or a write beside each
target renamed over it, so a replaced key gets mode 0600 whatever the old one had.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from entryhw.devca import (
    CERT_FILE,
    CERT_MODE,
    CHAIN_FILE,
    DIR_MODE,
    KEY_FILE,
    KEY_MODE,
    LAYOUT,
    ROOT_FILE,
    ExistingFilesError,
)


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
