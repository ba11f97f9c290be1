"""TLS end to end: real processes, real clients, throwaway CAs made at test time.

socket.io-client 2.5.0 and 4.x over wss (trusting the test root through ``ca``)
next to a plain-HTTP browser on the same port; the handshake as ``openssl
s_client`` and Python's ssl see it (versions, full chain, ALPN, SNI); reload on
SIGHUP and on the periodic check while a browser stays connected; client mode
verified against the configured CAs; every broken certificate set refused with
its own message; the key never logged and never served; ``--tls-only``.

Keys are generated per run in temporary folders (never written into the tree).
Everything listens on 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import base64
import datetime
import functools
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.trial.unittest import SynchronousTestCase, TestCase

from entryhw.certs import DEFAULT_NAMES, issue_leaf, make_dev_ca, new_key, write_layout
from tests import test_entry
from tests.support import (
    LOOPBACK,
    Clients,
    NodeParent,
    Proc,
    free_port,
    http_get,
    server_command,
    wait_for,
)

SNI = "hw.playentry.org"
OPENSSL = shutil.which("openssl")
DER = serialization.Encoding.DER
PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
KEY_FILE, CERT_FILE, CHAIN_FILE, ROOT_FILE = (
    "hardware.key", "cert.pem", "ChainCA1.crt", "RootCA.crt")
FOUR = (KEY_FILE, CERT_FILE, CHAIN_FILE, ROOT_FILE)

#: PEM label of a key, split so no file here looks like it holds a private key.
PEM_KEY = "PRIVATE" + " KEY"


# -- a throwaway PKI ----------------------------------------------------------------


@functools.cache
def dev_ca(name: str = "main") -> tuple[Any, Any, Any, Any]:
    """(root, root_key, intermediate, intermediate_key), one per name for the whole run."""
    return make_dev_ca()


def write_set(folder: Path, ca: str = "main", names: Any = DEFAULT_NAMES, *,
              force: bool = False, **leaf_kw: Any) -> bytes:
    """Write the four files for a new leaf of CA ``ca``; returns the leaf's DER."""
    root, _root_key, inter, inter_key = dev_ca(ca)
    leaf, key = issue_leaf(inter, inter_key, names, **leaf_kw)
    write_layout(folder, root, inter, leaf, key, force=force)
    return leaf.public_bytes(DER)


def make_certs(test: Any, ca: str = "main", names: Any = DEFAULT_NAMES,
               **leaf_kw: Any) -> Path:
    """A fresh temporary ``certs`` folder (removed after the test)."""
    base = Path(tempfile.mkdtemp(prefix="entryhw-tls-"))
    test.addCleanup(shutil.rmtree, base, True)
    folder = base / "certs"
    write_set(folder, ca, names, **leaf_kw)
    return folder


def replace_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` in one step (so no check ever sees it half written)."""
    tmp = path.with_name(f".{path.name}.new")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def key_pem(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def leaf_der(folder: Path) -> bytes:
    return x509.load_pem_x509_certificate((folder / CERT_FILE).read_bytes()).public_bytes(DER)


def key_fragments(key_file: Path) -> list[str]:
    """The base64 body lines of a PEM key, and the body as one string."""
    lines = [line.strip() for line in key_file.read_text().splitlines()
             if line.strip() and not line.startswith("-----")]
    return [*lines, "".join(lines)]


# -- TLS clients ----------------------------------------------------------------------


def client_context(cafile: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def handshake(port: int, cafile: Path, sni: str = SNI, timeout: float = 5.0) -> bytes:
    """The DER leaf a verified handshake with SNI ``sni`` gets (raises if it fails)."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as raw, \
            client_context(cafile).wrap_socket(raw, server_hostname=sni) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def try_handshake(port: int, cafile: Path) -> bytes | None:
    try:
        return handshake(port, cafile)
    except (OSError, ssl.SSLError):
        return None


def https_get(port: int, path: str, cafile: Path, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET over TLS to https://127.0.0.1:port (the leaf's IP SAN is checked)."""
    conn = http.client.HTTPSConnection(LOOPBACK, port, timeout=timeout,
                                       context=client_context(cafile))
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def s_client(port: int, *args: str) -> str:
    """``openssl s_client`` output (stdout and stderr), stdin at end-of-file."""
    done = subprocess.run([OPENSSL or "openssl", "s_client", "-connect", f"{LOOPBACK}:{port}",
                           *args], input=b"", stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=15)
    return done.stdout.decode("utf-8", "replace")


def pem_der(block: bytes) -> bytes:
    return x509.load_pem_x509_certificate(block).public_bytes(DER)


# -- test bases -----------------------------------------------------------------------


def standalone(test: Any, port: int, *args: str) -> Proc:
    """``entryhw-server --ipc none`` listening on ``port`` (waits until it is)."""
    proc = Proc([*server_command(), "--ipc", "none", "--port", str(port), *args],
                cleanup=test.addCleanup, stdin=False, json_stdout=False)
    wait_for(lambda: "listening on" in proc.log_text() or proc.p.poll() is not None,
             15, "the server to listen")
    if "listening on https://" not in proc.log_text():
        raise AssertionError(f"the server is not listening over TLS:\n{proc.log_text()}")
    return proc


class KeyHygiene:
    def assertKeyNotIn(self, text: str | bytes, certs: Path) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        for fragment in key_fragments(certs / KEY_FILE):
            if fragment in text:
                raise AssertionError("key material in the output")
        if "PRIVATE KEY-----" in text:
            raise AssertionError("a PEM private key header in the output")


class TLSCase(KeyHygiene, test_entry.EntryCase):
    timeout = 60

    def standalone(self, port: int, *args: str) -> Proc:
        return standalone(self, port, *args)

    def wss_browser(self, clients: Clients, name: str, port: int, certs: Path, room: str,
                    version: str = "v2", *transports: str) -> str:
        clients.connect(name, version, f"https://{LOOPBACK}:{port}",
                        ca=(certs / ROOT_FILE).read_text(), **test_entry.browser_opts(
                            room, *transports))
        return clients.expect(c=name, ev="connect")["id"]

    def status(self, port: int, certs: Path) -> dict[str, Any]:
        status, body = https_get(port, "/status", certs / ROOT_FILE)
        self.assertEqual(status, 200)
        return json.loads(body)


# -- browsers ---------------------------------------------------------------------------


class BrowserTests(TLSCase):
    def test_socketio_v2_and_v4_over_wss_with_plain_v2_on_the_same_port(self) -> None:
        certs = make_certs(self)
        port = free_port()
        parent = self.host(port, "--certs", str(certs))
        clients = Clients(self)
        browsers = [("v2-ws", "v2", ("websocket",)), ("v2-up", "v2", ("polling", "websocket")),
                    ("v4-ws", "v4", ("websocket",)), ("v4-up", "v4", ("polling", "websocket"))]
        for name, version, transports in browsers:
            self.wss_browser(clients, name, port, certs, "room", version, *transports)
        for name in ("v2-up", "v4-up"):
            clients.expect(c=name, ev="upgrade", transport="websocket")
        # The workspace's http://127.0.0.1:23518 fallback, at the same time on the same port.
        self.browser(clients, "plain", port, "room", "polling", "websocket")
        # Control: without the test root the certificate is not trusted, so it is checked.
        clients.connect("untrusting", "v2", f"https://{LOOPBACK}:{port}", transports=["websocket"],
                        reconnection=False, query={"client": True})
        clients.expect(c="untrusting", ev="connect_error")

        for name in ("v2-ws", "v2-up", "v4-ws", "v4-up", "plain"):
            self.assertEqual(clients.transport(name), "websocket", name)
            self.assertPairTalks(parent, clients, name, f"tag-{name}")
        info = self.status(port, certs)
        self.assertEqual((info["browsers"], info["rooms"]), (5, 1))
        self.assertEqual(info["tls"]["plainHttp"], True)
        self.assertEqual(info["tls"]["subject"], f"CN={SNI}")
        self.assertKeyNotIn(parent.log_text(), certs)


# -- the handshake as openssl and Python see it ----------------------------------------


class HandshakeTests(KeyHygiene, TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.certs = make_certs(self)
        self.port = free_port()
        self.proc = standalone(self, self.port, "--certs", str(self.certs))
        self.leaf = leaf_der(self.certs)
        # Cleanups run last-in first-out: this one before the server is killed.
        self.addCleanup(lambda: self.assertKeyNotIn(self.proc.log_text(), self.certs))

    def need_openssl(self) -> None:
        if OPENSSL is None:
            self.skipTest("the openssl command is not installed")

    def test_tls_versions(self) -> None:
        self.need_openssl()
        for flag in ("-tls1", "-tls1_1"):
            # SECLEVEL=0 so that this client really offers the old version.
            out = s_client(self.port, flag, "-cipher", "DEFAULT:@SECLEVEL=0")
            if "no protocols available" in out:
                self.skipTest(f"this openssl cannot speak {flag}")
            self.assertIn("alert protocol version", out, flag)
            self.assertNotIn("BEGIN CERTIFICATE", out, flag)
        for flag, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            out = s_client(self.port, flag, "-servername", SNI)
            self.assertRegex(out, rf"New, {re.escape(name)}, Cipher is (?!\(NONE\))", flag)
        # Python's ssl agrees (and 1.1 is refused to it too when it would offer it).
        ctx = client_context(self.certs / ROOT_FILE)
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection((LOOPBACK, self.port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname=SNI) as tls:
            self.assertEqual(tls.version(), "TLSv1.2")
            self.assertIn("ECDHE", tls.cipher()[0])

    def test_full_chain_alpn_and_verification(self) -> None:
        self.need_openssl()
        out = s_client(self.port, "-showcerts", "-servername", SNI, "-alpn", "http/1.1",
                       "-CAfile", str(self.certs / ROOT_FILE), "-verify_hostname", SNI,
                       "-verify_return_error")
        blocks = PEM_BLOCK.findall(out.encode())
        self.assertGreaterEqual(len(blocks), 2, out)
        self.assertEqual(pem_der(blocks[0]), self.leaf)
        inter = x509.load_pem_x509_certificate((self.certs / CHAIN_FILE).read_bytes())
        self.assertEqual(pem_der(blocks[1]), inter.public_bytes(DER))
        # Only the root is trusted here: verification needs the intermediate from the server.
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertIn("ALPN protocol: http/1.1", out)
        self.assertIn("ALPN protocol: http/1.1",
                      s_client(self.port, "-servername", SNI, "-alpn", "h2,http/1.1"))
        nothing_shared = s_client(self.port, "-servername", SNI, "-alpn", "h2")
        self.assertIn("No ALPN negotiated", nothing_shared)
        self.assertRegex(nothing_shared, r"New, TLSv1\.[23], Cipher is (?!\(NONE\))")

    def test_sni_none_or_any_gets_the_same_certificate(self) -> None:
        self.need_openssl()
        for args in (["-noservername"], ["-servername", "example.com"],
                     ["-servername", "hardware.playentry.org"]):
            blocks = PEM_BLOCK.findall(s_client(self.port, *args).encode())
            self.assertTrue(blocks, args)
            self.assertEqual(pem_der(blocks[0]), self.leaf, args)

    def test_python_ssl_with_sni_and_ip_san(self) -> None:
        cafile = self.certs / ROOT_FILE
        self.assertEqual(handshake(self.port, cafile, SNI), self.leaf)
        self.assertEqual(handshake(self.port, cafile, "hardware.playentry.org"), self.leaf)
        self.assertEqual(https_get(self.port, "/", cafile), (200, b"hello entry"))
        # Plain HTTP on the same port.
        self.assertEqual(http_get(self.port, "/")[:2], (200, b"hello entry"))
        with self.assertRaises(ssl.SSLCertVerificationError):
            handshake(self.port, cafile, "example.com")


# -- reload ---------------------------------------------------------------------------------


class ReloadTests(TLSCase):
    def start(self, *extra: str) -> tuple[Path, int, NodeParent, Clients, str]:
        certs = make_certs(self)
        port = free_port()
        parent = self.host(port, "--certs", str(certs), *extra)
        clients = Clients(self)
        sid = self.wss_browser(clients, "b", port, certs, "r", "v2", "websocket")
        self.assertPairTalks(parent, clients, "b", "before")
        self.assertEqual(handshake(port, certs / ROOT_FILE), leaf_der(certs))
        return certs, port, parent, clients, sid

    def assertStillConnected(self, parent: NodeParent, clients: Clients, tag: str) -> None:
        self.assertPairTalks(parent, clients, "b", tag)
        clients.drain()
        self.assertEqual(clients.history(c="b", ev="disconnect"), [])
        self.assertEqual(len(clients.history(c="b", ev="connect")), 1)

    def test_sighup(self) -> None:
        certs, port, parent, clients, _ = self.start("--reload-interval", "0")
        old = leaf_der(certs)
        new = write_set(certs, force=True)
        self.assertNotEqual(new, old)
        time.sleep(0.3)
        # No periodic check: the old certificate stays until the signal.
        self.assertEqual(handshake(port, certs / ROOT_FILE), old)
        os.kill(parent.server_pid, signal.SIGHUP)
        wait_for(lambda: try_handshake(port, certs / ROOT_FILE) == new, 10,
                 "the new certificate after SIGHUP")
        self.assertIn("TLS certificate reloaded (SIGHUP)", parent.log_text())
        self.assertStillConnected(parent, clients, "after-reload")

        replace_file(certs / CERT_FILE, b"garbage, not a certificate\n")
        os.kill(parent.server_pid, signal.SIGHUP)
        wait_for(lambda: "TLS reload (SIGHUP) refused" in parent.log_text(), 10,
                 "the broken set to be refused")
        line = next(ln for ln in parent.log_text().splitlines() if "refused" in ln)
        self.assertIn(f"{CERT_FILE}: no PEM certificate", line)
        self.assertEqual(handshake(port, certs / ROOT_FILE), new)
        self.assertStillConnected(parent, clients, "after-refusal")
        self.assertEqual(self.status(port, certs)["tls"]["subject"], f"CN={SNI}")
        self.assertKeyNotIn(parent.log_text(), certs)

    def test_periodic_check_with_a_new_ca(self) -> None:
        certs, port, parent, clients, _ = self.start("--reload-interval", "0.5")
        new = write_set(certs, "second", force=True)
        # The new leaf chains to the new root only.
        wait_for(lambda: try_handshake(port, certs / ROOT_FILE) == new, 10,
                 "the new certificate from the periodic check")
        self.assertIn("TLS certificate reloaded (the files changed)", parent.log_text())
        self.assertStillConnected(parent, clients, "after-reload")

        def refusals() -> int:
            return parent.log_text().count("TLS reload (the files changed) refused")

        before = refusals()  # a check may have caught the four files half replaced
        replace_file(certs / KEY_FILE, key_pem(new_key()), 0o600)
        wait_for(lambda: refusals() > before, 10, "the mismatching key to be refused")
        self.assertIn("does not belong to the certificate", parent.log_text())
        self.assertEqual(handshake(port, certs / ROOT_FILE), new)
        time.sleep(1.6)  # three more checks: the same broken files are not retried
        self.assertEqual(refusals(), before + 1)
        self.assertStillConnected(parent, clients, "after-refusal")
        self.assertKeyNotIn(parent.log_text(), certs)


class ReloadRaceTests(SynchronousTestCase):
    """In-process: a set completed while a half-replaced one is being read is not missed."""

    def test_files_replaced_during_a_refused_reload_count_as_a_change(self) -> None:
        from entryhw import tls

        certs = make_certs(self)
        server = tls.ServerTLS(tls.find_sources(str(certs)))  # type: ignore[arg-type]
        _root, _, inter, inter_key = dev_ca()
        leaf, key = issue_leaf(inter, inter_key)
        replace_file(certs / CERT_FILE, leaf.public_bytes(serialization.Encoding.PEM))
        real_load = tls.load

        def load_then_key_arrives(sources: Any) -> Any:
            try:
                return real_load(sources)  # new leaf, old key: refused
            finally:
                replace_file(certs / KEY_FILE, key_pem(key), 0o600)

        self.patch(tls, "load", load_then_key_arrives)
        self.assertFalse(server.reload("test"))
        self.assertTrue(server.changed())
        self.patch(tls, "load", real_load)
        self.assertTrue(server.reload("test"))
        self.assertEqual(server.certs.leaf, leaf)
        self.assertFalse(server.changed())


# -- client mode ----------------------------------------------------------------------------


class ClientModeTests(TLSCase):
    def copy(self, port: int, *extra: str) -> NodeParent:
        copy = self.server(port, *extra)
        copy.send({"key": "open"})
        self.assertEqual(copy.message("runningModeChanged")["value"], 3)
        return copy

    def test_same_certs_verified_and_messages_relay(self) -> None:
        certs = make_certs(self)
        port = free_port()
        host = self.host(port, "--certs", str(certs))
        child = self.copy(port, "--certs", str(certs))
        child.send({"key": "addRoomId", "value": "child-room"})
        wait_for(lambda: "connected to the host on port" in child.log_text(), 10,
                 "the copy to join the host")
        self.assertIn(f"connected to https://{LOOPBACK}:{port}", child.log_text())
        wait_for(lambda: self.status(port, certs)["hardwareClients"] == 1, 10,
                 "one hardware client on the host")
        clients = Clients(self)
        self.wss_browser(clients, "cb", port, certs, "child-room")
        self.assertPairTalksAgain(child, clients, "cb", within=10)
        info = self.status(port, certs)
        self.assertEqual((info["cloudMode"], info["hardwareClients"]), (1, 1))
        for proc in (host, child):
            self.assertKeyNotIn(proc.log_text(), certs)

    def test_other_ca_refused_with_backoff_but_insecure_client_connects(self) -> None:
        certs = make_certs(self)
        other = make_certs(self, "second")
        port = free_port()
        self.host(port, "--certs", str(certs))
        strict = self.copy(port, "--certs", str(other))
        started = time.monotonic()
        insecure = self.copy(port, "--certs", str(other), "--insecure-client")
        wait_for(lambda: "connected to the host on port" in insecure.log_text(), 10,
                 "the --insecure-client copy to join")
        self.assertIn("--insecure-client: in client mode the host's certificate is NOT "
                      "verified", insecure.log_text())
        wait_for(lambda: "certificate verify failed" in strict.log_text(), 10,
                 "the verification failure in the log")
        time.sleep(max(0.0, 3.5 - (time.monotonic() - started)))
        log = strict.log_text()
        attempts = log.count("cannot reach a host on port")
        # Retrying, with a growing delay: 0.25 * 2**n s (+-50%) gives 2 to 5 tries in 3.5 s.
        self.assertGreaterEqual(attempts, 2, log)
        self.assertLessEqual(attempts, 6, log)
        self.assertNotIn("connected to the host", log)
        self.assertEqual(self.status(port, certs)["hardwareClients"], 1)

    def test_host_certificate_without_the_name_is_refused(self) -> None:
        certs = make_certs(self, names=["localhost", "127.0.0.1"])
        port = free_port()
        self.host(port, "--certs", str(certs))
        child = self.copy(port, "--certs", str(certs))
        wait_for(lambda: "cannot reach a host on port" in child.log_text(), 10,
                 "the copy to give up on the host")
        log = child.log_text()
        self.assertIn(f"the host's certificate is not valid for {SNI}", log)
        self.assertIn("certificate verification failed", log)
        self.assertNotIn("connected to the host", log)
        self.assertEqual(self.status(port, certs)["hardwareClients"], 0)


# -- broken files -----------------------------------------------------------------------------


class BadFilesTests(KeyHygiene, SynchronousTestCase):
    def run_all(self, folders: dict[str, Path], *extra: str) -> dict[str, tuple[int, str]]:
        """Start one server per folder at once; (exit status, stderr) of each."""
        procs = {name: subprocess.Popen(
            [*server_command(), "--certs", str(folder), "--ipc", "none", "--port", "0", *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True) for name, folder in folders.items()}
        results = {}
        for name, proc in procs.items():
            try:
                _, err = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            results[name] = (proc.returncode, err.decode("utf-8", "replace"))
        return results

    def test_each_problem_has_its_own_message_and_status_2(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        folders = {}
        for name in FOUR:
            folders[f"missing {name}"] = make_certs(self)
            (folders[f"missing {name}"] / name).unlink()
        folders["garbage cert"] = make_certs(self)
        replace_file(folders["garbage cert"] / CERT_FILE, b"this is not a certificate\n")
        folders["garbage key"] = make_certs(self)
        fake_body = base64.b64encode(os.urandom(90)).decode()
        replace_file(folders["garbage key"] / KEY_FILE,
                     f"-----BEGIN {PEM_KEY}-----\n{fake_body}\n-----END {PEM_KEY}-----\n"
                     .encode(), 0o600)
        folders["other key"] = make_certs(self)
        replace_file(folders["other key"] / KEY_FILE, key_pem(new_key()), 0o600)
        folders["expired"] = make_certs(self, not_before=now - datetime.timedelta(days=30),
                                        not_after=now - datetime.timedelta(days=1))
        results = self.run_all(folders)

        expected = {
            **{f"missing {name}": f"missing {name} (found " for name in FOUR},
            "garbage cert": f"{CERT_FILE}: no PEM certificate in it",
            "garbage key": f"{KEY_FILE}: not a usable private key",
            "other key": f"{KEY_FILE}: this key does not belong to the certificate in",
            "expired": f"{CERT_FILE}: certificate 'CN={SNI}' expired on",
        }
        for name, needle in expected.items():
            status, err = results[name]
            self.assertEqual(status, 2, f"{name}: {err}")
            self.assertIn(needle, err, name)
            self.assertIn(str(folders[name]), err, name)
            self.assertEqual(len(err.strip().splitlines()), 2, f"{name}: {err}")
            self.assertNotIn("Traceback", err, name)
            if name != f"missing {KEY_FILE}":
                self.assertKeyNotIn(err, folders[name])
        self.assertNotIn(fake_body, results["garbage key"][1])
        for name in FOUR:
            others = [n for n in FOUR if n != name]
            self.assertIn(", ".join(others), results[f"missing {name}"][1])
        # Each message is its own.
        self.assertEqual(len({err for _, err in results.values()}), len(results))

    def test_tls_only_needs_certificates(self) -> None:
        done = subprocess.run([*server_command(), "--tls-only", "--ipc", "none", "--port", "0"],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        self.assertEqual(done.returncode, 2)
        self.assertIn(b"--tls-only needs certificates", done.stderr)


class KeyModeTests(TLSCase):
    def test_readable_key_is_a_warning_not_an_error(self) -> None:
        certs = make_certs(self)
        os.chmod(certs / KEY_FILE, 0o644)
        port = free_port()
        proc = self.standalone(port, "--certs", str(certs))
        log = proc.log_text()
        self.assertRegex(log, r"\[warn\] .*hardware\.key can be read by other users "
                              r"\(mode 644\); chmod 600 it")
        self.assertEqual(handshake(port, certs / ROOT_FILE), leaf_der(certs))
        self.assertKeyNotIn(log, certs)


# -- nothing of the certificate folder over HTTP ------------------------------------------


class NotServedTests(TLSCase):
    def setUp(self) -> None:
        base = Path(tempfile.mkdtemp(prefix="entryhw-tls-modules-"))
        self.addCleanup(shutil.rmtree, base, True)
        self.base = base
        # Like certbot's live/ folder: the key file is a symlink to where it really is.
        private = base / "private"
        private.mkdir(mode=0o700)
        self.certs = base / "certs"
        write_set(self.certs)
        os.replace(self.certs / KEY_FILE, private / KEY_FILE)
        os.symlink(private / KEY_FILE, self.certs / KEY_FILE)
        self.secret = "the secret passphrase 1234"
        (self.certs / "secret").write_text(self.secret + "\n")
        os.chmod(self.certs / "secret", 0o600)
        modules = base / "modules"
        modules.mkdir()
        os.symlink(self.certs, modules / "certs")
        os.symlink(private, modules / "private")
        self.blocks = {
            "key": "certs/hardware.key", "cert": "certs/cert.pem", "chain": "certs/ChainCA1.crt",
            "root": "certs/RootCA.crt", "secret": "certs/secret", "realkey": "private/hardware.key",
        }
        for folder in (modules, base):
            for name, block in self.blocks.items():
                (folder / f"{name}.json").write_text(json.dumps({"block": block}))
            (folder / "ok.json").write_text(json.dumps({"block": "ok.js"}))
            (folder / "ok.js").write_text("ok();")
        self.folders = {"modules": modules, "base": base}

    def assertNothingServed(self, port: int, folder: str) -> None:
        cafile = self.certs / ROOT_FILE
        self.assertEqual(https_get(port, "/modules/ok", cafile), (200, b"ok();"), folder)
        paths = [f"/modules/{name}" for name in self.blocks] + [
            f"/{p}/{f}" for p in ("certs", "modules/certs", "modules") for f in
            (*FOUR, "secret")] + [f"/{f}" for f in (*FOUR, "secret")] + [
            "/modules/..%2fcerts%2fhardware.key", "/modules/certs%2fhardware.key"]
        bodies = b""
        for path in paths:
            for status, body in (https_get(port, path, cafile), http_get(port, path)[:2]):
                self.assertEqual(status, 404, f"{folder} {path}")
                bodies += body
        self.assertKeyNotIn(bodies, self.certs)
        self.assertNotIn(self.secret.encode(), bodies)
        self.assertNotIn(b"CERTIFICATE", bodies)

    def test_modules_folder_linking_to_the_certificates(self) -> None:
        port = free_port()
        proc = self.standalone(port, "--certs", str(self.certs), "--modules",
                               str(self.folders["modules"]))
        self.assertNothingServed(port, "modules")
        self.assertKeyNotIn(proc.log_text(), self.certs)
        self.assertNotIn(self.secret, proc.log_text())

    def test_modules_folder_containing_the_certificates(self) -> None:
        port = free_port()
        proc = self.standalone(port, "--certs", str(self.certs), "--modules",
                               str(self.folders["base"]))
        self.assertNothingServed(port, "base")
        self.assertKeyNotIn(proc.log_text(), self.certs)


# -- --tls-only -------------------------------------------------------------------------------


class TLSOnlyTests(TLSCase):
    def test_plain_http_is_refused(self) -> None:
        certs = make_certs(self)
        port = free_port()
        proc = self.standalone(port, "--certs", str(certs), "--tls-only")
        self.assertIn("(host mode)", proc.log_text())
        with socket.create_connection((LOOPBACK, port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            try:
                answer = sock.recv(1024)
            except ConnectionResetError:
                answer = b""
        self.assertEqual(answer, b"")
        with self.assertRaises(OSError):  # urllib: connection closed without a response
            http_get(port, "/")
        self.assertEqual(https_get(port, "/", certs / ROOT_FILE), (200, b"hello entry"))
        self.assertFalse(self.status(port, certs)["tls"]["plainHttp"])
        wait_for(lambda: "refused (--tls-only)" in proc.log_text(), 5, "the refusal logged")
