"""Build entryhw-server with PyInstaller: ``python packaging/build.py`` (what tox -e dist runs).

Outputs, from the environment this runs in (tox -e dist: the wheel and pinned versions):

* ``dist/entryhw-server``: one file (the bootloader unpacks itself under $TMPDIR at
  each start, see docs/dist.md);
* ``dist/entryhw-server-dir/entryhw-server``: one folder (PyInstaller's files in its
  ``_internal/``, nothing else beside the executable).

Each layout is its own PyInstaller run with its own work folder (``build/onefile``,
``build/onedir``), so neither can pick up the other's intermediate files. Nothing is
written outside ``build/`` and ``dist/``, except the canaries below, removed again.

Canaries: before building, a throwaway CA (certificate and key) and a secret are put
where a careless spec would collect them: the repository's ``certs/``, ``packaging/``
and the installed ``entryhw`` package's folder (never over an existing file); the
original stays in ``build/canary/`` (made once, reused while build/ lasts), where
tests/test_dist.py finds it among the key material it looks for in the binaries.
``build/entryhw-dist.json`` says what was built from what.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import importlib.metadata
import json
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "entryhw-server.spec"
LAYOUTS = {"onefile": Path("entryhw-server"), "onedir": Path("entryhw-server-dir/entryhw-server")}
#: Named in the manifest: what the binaries are made of.
DISTRIBUTIONS = ("entryhw", "pyinstaller", "pyinstaller-hooks-contrib", "twisted", "autobahn",
                 "txaio", "pyopenssl", "cryptography", "service-identity", "orjson",
                 "zope.interface", "cffi")
CANARY = "entryhw-canary"


def canary_files() -> dict[str, bytes]:
    """A fresh self-signed CA, its key and a secret: file name -> content."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{CANARY} {secrets.token_hex(8)}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return {
        f"{CANARY}-ca.pem": cert.public_bytes(serialization.Encoding.PEM),
        f"{CANARY}-ca.der": cert.public_bytes(serialization.Encoding.DER),
        f"{CANARY}-ca.key": key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()),
        f"{CANARY}-secret": secrets.token_urlsafe(24).encode() + b"\n",
    }


@contextlib.contextmanager
def canaries(work: Path) -> Iterator[list[str]]:
    """Plant the canaries for the build; yields where they went (build/canary/ stays)."""
    keep = work / "canary"
    files = canary_files()
    if keep.is_dir() and sorted(p.name for p in keep.iterdir()) == sorted(files):
        # The same canary for every build while build/ lasts: then it was there for each
        # binary in dist/, however many layouts one run rebuilt.
        files = {name: (keep / name).read_bytes() for name in files}
    else:
        shutil.rmtree(keep, ignore_errors=True)
        keep.mkdir(parents=True)
        for name, data in files.items():
            (keep / name).write_bytes(data)
    import entryhw

    folders = [ROOT / "certs", ROOT / "packaging", Path(entryhw.__file__).parent]
    planted: list[Path] = []
    try:
        for folder in folders:
            folder.mkdir(exist_ok=True)
            for name, data in files.items():
                path = folder / name
                if not path.exists():
                    path.write_bytes(data)
                    planted.append(path)
        yield [str(p) for p in planted]
    finally:
        for path in planted:
            path.unlink(missing_ok=True)


def pyinstaller(layout: str, dist: Path, work: Path) -> None:
    workpath = work / layout
    shutil.rmtree(workpath, ignore_errors=True)  # a fresh analysis, never a stale one
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
                    "--distpath", str(dist), "--workpath", str(workpath), str(SPEC),
                    "--", "--layout", layout], cwd=ROOT, check=True)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", choices=(*LAYOUTS, "both"), default="both")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--work", type=Path, default=ROOT / "build")
    args = parser.parse_args(argv)
    dist, work = args.dist.resolve(), args.work.resolve()
    layouts = list(LAYOUTS) if args.layout == "both" else [args.layout]
    work.mkdir(parents=True, exist_ok=True)
    manifest_path = work / "entryhw-dist.json"
    manifest_path.unlink(missing_ok=True)
    built = {}
    with canaries(work) as planted:
        for layout in layouts:
            pyinstaller(layout, dist, work)
            exe = dist / LAYOUTS[layout]
            # The smallest proof that it starts: parse the command line and stop.
            out = subprocess.run([str(exe), "--version"], capture_output=True, text=True,
                                 timeout=60, check=True, stdin=subprocess.DEVNULL)
            built[layout] = {"executable": str(exe), "sha256": sha256(exe),
                             "bytes": size(exe if layout == "onefile" else exe.parent),
                             "version": out.stdout.strip()}
    manifest = {
        "python": sys.version.split()[0],
        "distributions": {d: version(d) for d in DISTRIBUTIONS},
        "built": built,
        "canaries": {"kept": str(work / "canary"), "planted": planted},
    }
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    for layout, info in built.items():
        print(f"{layout}: {info['executable']} ({info['bytes'] / 1e6:.1f} MB, {info['version']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
