"""The PyInstaller builds of packaging/build.py (tox -e dist): what is inside, how they start.

Skipped when nothing is built (the normal suite) or PyInstaller, whose archive reader
this uses, is not installed. The process-level tests then run against the one-file
binary too (tox -e dist sets ENTRYHW_SERVER; docs/dist.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import marshal
import os
import pkgutil
import re
import socket
import zipfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from unittest import SkipTest

from twisted.trial.unittest import TestCase

from entryhw.fastpath.imports import MODULES as DEFERRED
from entryhw.listener import TLS_REFUSAL
from tests.support import LOOPBACK, NodeParent, http_get, port_is_free

ROOT = Path(__file__).resolve().parent.parent
DIST = Path(os.environ.get("ENTRYHW_DIST", ROOT / "dist"))
BUILD = ROOT / "build"
ONEFILE = DIST / "entryhw-server"
ONEDIR = DIST / "entryhw-server-dir"
BUILT = {"onefile": ONEFILE, "onedir": ONEDIR / "entryhw-server"}
DEFAULT_PORT = 23518

#: A PEM block with a body: a marker alone ("-----BEGIN " in libcrypto's PEM code, or
#: ssl.py's PEM_HEADER constant) is code, not key material.
PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,40})-----\r?\n[A-Za-z0-9+/=\r\n]{40,}")
#: Files taken as key material, wherever they are in the tree.
KEY_SUFFIXES = {".pem", ".crt", ".cer", ".key", ".der", ".p12", ".pfx", ".csr"}
SKIP_DIRS = {".git", ".tox", "dist", "node_modules", ".venv", "__pycache__", ".ruff_cache",
             ".hypothesis", ".pytest_cache", "onefile", "onedir"}  # the last two: build/'s work

#: Must be in the archive: every module of the installed entryhw, twistd's plugin, and
#: what entryhw imports inside functions (packaging/entryhw-server.spec).
REQUIRED = ("twisted.plugins.entryhw_plugin", "twisted.internet.epollreactor",
            "twisted.internet.stdio", "twisted.protocols.tls", "twisted.web.server",
            "autobahn.twisted.websocket", "autobahn.twisted.resource", "txaio.tx",
            "OpenSSL.SSL", "OpenSSL.crypto", "service_identity.pyopenssl",
            "cryptography.hazmat.primitives.ciphers")  # and the deferred ones (DEFERRED)
#: Must not be: build-time only, and their runtime hooks would import them at every start.
EXCLUDED = ("setuptools", "pkg_resources", "distutils", "_distutils_hack")


def readers() -> tuple[type, type]:
    try:
        from PyInstaller.archive.readers import CArchiveReader
        from PyInstaller.loader.pyimod01_archive import ZlibArchiveReader
    except ImportError:
        raise SkipTest("PyInstaller is not installed (tox -e dist has it)") from None
    return CArchiveReader, ZlibArchiveReader


def built(layout: str) -> Path:
    exe = BUILT[layout]
    if not exe.is_file():
        raise SkipTest(f"{exe} is not built: tox -e dist (or python packaging/build.py)")
    return exe


def blobs(path: Path) -> Iterator[tuple[str, bytes]]:
    """Every byte string a built file holds: the file, each entry of its PyInstaller
    archive decompressed, each module of the PYZ inside (marshalled code: a string
    constant is there as it is in the source), each member of a zip file."""
    carchive, _ = readers()
    data = path.read_bytes()
    yield str(path), data
    yield from _zip_members(str(path), data)
    try:
        archive = carchive(str(path))
    except Exception:  # not an executable of PyInstaller's
        return
    for name, entry in archive.toc.items():
        where = f"{path}!{name}"
        if entry[-1] == "z":  # the PYZ of Python modules
            pyz = archive.open_embedded_archive(name)
            for module in pyz.toc:
                blob = pyz.extract(module, raw=True)
                if blob:
                    yield f"{where}!{module}", blob
            continue
        content = archive.extract(name)
        yield where, content
        yield from _zip_members(where, content)


def _zip_members(where: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    if not data.startswith(b"PK\x03\x04"):
        return
    try:
        with zipfile.ZipFile(BytesIO(data)) as z:
            for name in z.namelist():
                yield f"{where}!{name}", z.read(name)
    except zipfile.BadZipFile:
        return


def built_files() -> list[Path]:
    """The one-file binary and every file of the one-folder build that exist."""
    files = [ONEFILE] if ONEFILE.is_file() else []
    if ONEDIR.is_dir():
        files += sorted(p for p in ONEDIR.rglob("*") if p.is_file() and not p.is_symlink())
    return files


def key_material(roots: list[Path]) -> dict[str, list[bytes]]:
    """Byte strings that must not be in a binary, by the file they come from: for each
    certificate, key or secret file under ``roots``, the DER of each PEM block and the
    start of its base64 body (or the whole file, if not PEM)."""
    found: dict[str, list[bytes]] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
            for name in filenames:
                path = Path(dirpath, name)
                if path.is_symlink() or not path.is_file() or path.stat().st_size > 1 << 20:
                    continue
                data = path.read_bytes()
                named = (path.suffix.lower() in KEY_SUFFIXES or name == "secret"
                         or name.endswith("-secret"))  # --secret-file's, and the canary's
                blocks = re.findall(rb"-----BEGIN [A-Z0-9 ]+-----\s*([A-Za-z0-9+/=\s]+?)"
                                    rb"-----END", data)
                if not (named or blocks):
                    continue
                needles = []
                for body in blocks:
                    flat = b"".join(body.split())
                    if len(flat) < 40:
                        continue  # a test's fake block, too short to identify anything
                    needles.append(flat[:64])
                    try:
                        needles.append(base64.b64decode(flat))
                    except binascii.Error:
                        pass
                if not blocks and len(data.strip()) >= 8:
                    needles.append(data.strip())
                if needles:
                    found[str(path)] = needles
    return found


def scan(files: list[Path], material: dict[str, list[bytes]]) -> list[str]:
    """Where a PEM block or a byte string of ``material`` occurs in ``files``."""
    hits = []
    for path in files:
        for where, blob in blobs(path):
            match = PEM_BLOCK.search(blob)
            if match:
                hits.append(f"{where}: a PEM block {match.group(1).decode()!r}")
            for source, needles in material.items():
                if any(needle in blob for needle in needles):
                    hits.append(f"{where}: bytes of {source}")
    return hits


class SecretsTests(TestCase):
    """No key, certificate or secret is ever inside a build."""

    def test_scan_finds_a_pem_block_and_key_bytes_in_a_module_constant(self) -> None:
        """The scanner itself: a key pasted into a module is found in its marshalled
        code, as in the PYZ (raw scanning of the compressed archive would see nothing)."""
        pem = (BUILD / "canary" / "entryhw-canary-ca.pem")
        body = (pem.read_bytes() if pem.exists() else
                b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(os.urandom(300))
                + b"-----END CERTIFICATE-----\n")
        code = marshal.dumps(compile(f"CERT = {body.decode()!r}\n", "m.py", "exec"))
        self.assertTrue(PEM_BLOCK.search(code))
        flat = b"".join(body.split(b"-----")[2].split())
        self.assertIn(flat[:64], code)
        self.assertIsNone(PEM_BLOCK.search(b'PEM_HEADER = "-----BEGIN CERTIFICATE-----"'))

    def test_no_pem_block_and_no_key_material_of_the_tree_or_the_build(self) -> None:
        files = built_files()
        if not files:
            raise SkipTest("nothing is built: tox -e dist (or python packaging/build.py)")
        readers()
        material = key_material([ROOT, BUILD] if BUILD.is_dir() else [ROOT])
        manifest = BUILD / "entryhw-dist.json"
        if manifest.is_file():
            kept = Path(json.loads(manifest.read_text())["canaries"]["kept"])
            canaries = {str(p) for p in kept.iterdir()}
            self.assertTrue(canaries, "packaging/build.py left no canary in build/canary/")
            self.assertLessEqual(canaries, set(material), "a canary is not looked for")
        self.assertEqual(scan(files, material), [])


class ContentsTests(TestCase):
    """What the archive holds, and what is beside the executable."""

    def modules(self, layout: str) -> set[str]:
        carchive, _ = readers()
        archive = carchive(str(built(layout)))
        pyz = archive.open_embedded_archive("PYZ.pyz")
        return set(pyz.toc)

    def test_every_entryhw_module_and_each_lazily_imported_one(self) -> None:
        import entryhw

        ours = {"entryhw", *(m.name for m in pkgutil.walk_packages(entryhw.__path__,
                                                                    "entryhw."))}
        for layout in BUILT:
            try:
                inside = self.modules(layout)
            except SkipTest:
                continue
            self.assertEqual(sorted(ours - inside), [], layout)
            self.assertEqual(sorted({*REQUIRED, *DEFERRED} - inside), [], layout)
            self.assertEqual(sorted(m for m in inside if m.split(".")[0] in EXCLUDED), [],
                             layout)

    def test_nothing_beside_the_one_folder_executable(self) -> None:
        """certs/ and entryhw.toml beside sys.executable are the user's: the build puts
        nothing there but the executable and _internal/."""
        built("onedir")
        self.assertEqual(sorted(p.name for p in ONEDIR.iterdir()),
                         ["_internal", "entryhw-server"])


class StartTests(TestCase):
    """Spawned as Entry Hardware does, with no arguments: standalone default port."""

    timeout = 60

    def check(self, layout: str) -> None:
        exe = built(layout)
        if not port_is_free(DEFAULT_PORT):
            raise SkipTest(f"port {DEFAULT_PORT} is in use here")
        parent = NodeParent([str(exe)], cleanup=self.addCleanup, env=clean_env())
        parent.send({"key": "open"})
        self.assertEqual(parent.message("runningModeChanged", 30)["value"], 2)
        self.assertEqual(http_get(DEFAULT_PORT, "/")[:2], (200, b"hello entry"))
        status = json.loads(http_get(DEFAULT_PORT, "/status")[1])
        self.assertIsNone(status["tls"])
        with socket.create_connection((LOOPBACK, DEFAULT_PORT), timeout=5) as s:
            s.sendall(b"\x16\x03\x01\x00\x05hello")  # TLS without certificates: refused
            s.settimeout(5)
            self.assertEqual(s.recv(64), TLS_REFUSAL)
        parent.write_json({"op": "signal", "name": "SIGTERM"})
        exit_event = parent.expect(lambda e: e.get("ev") == "exit", 10, "the server's exit")
        self.assertEqual((exit_event["code"], exit_event["signal"]), (0, None))
        self.assertTrue(port_is_free(DEFAULT_PORT))
        self.assertNotIn("Traceback", parent.log_text())

    def test_onefile(self) -> None:
        self.check("onefile")

    def test_onedir(self) -> None:
        self.check("onedir")


def clean_env() -> dict[str, str]:
    """The environment without anything pointing at this checkout or its venv."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "NODE_OPTIONS", "NODE_EXTRA_CA_CERTS")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep)
                                  if "venv" not in p and ".tox" not in p) or "/usr/bin:/bin"
    return env

