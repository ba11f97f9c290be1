"""entryhw-certs: the files it writes, their modes, the chain (cryptography's
verifier and the openssl CLI), overwrite protection, and a real TLS handshake
of a pyOpenSSL server with the files against a stdlib client trusting only
RootCA.crt."""

from __future__ import annotations

import datetime
import io
import ipaddress
import os
import queue
import re
import shutil
import socket
import ssl
import stat
import struct
import subprocess
import tempfile
import threading
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any
from unittest import mock

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from OpenSSL import SSL
from twisted.trial.unittest import SynchronousTestCase

from entryhw import certs
from entryhw.certs import (
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
    main,
    make_dev_ca,
    spki_sha256_b64,
    write_layout,
)

try:
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
except ImportError:  # cryptography < 42
    PolicyBuilder = None  # type: ignore[assignment,misc]

OPENSSL = shutil.which("openssl")
TIMEOUT = 10.0
DNS_NAMES = ["hw.playentry.org", "hardware.playentry.org", "localhost"]
IP_NAMES = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
SPKI_LINE = re.compile(r"^SPKI sha256 \(.*\): (\S+)$", re.MULTILINE)


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``main(argv)``; argparse exits become statuses."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def spki(public: Any) -> bytes:
    return public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def openssl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *args], input=data, capture_output=True, timeout=30)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


class TempDirMixin:
    """A fresh temporary folder per test, removed afterwards; ``self.dir`` is not created."""

    def make_temp(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="entryhw-certs-"))
        self.addCleanup(shutil.rmtree, self.base, True)  # type: ignore[attr-defined]
        self.dir = self.base / "certs"

    def generate(self, *extra: str) -> str:
        code, out, err = run_main(["--dir", str(self.dir), *extra])
        assert code == 0, (code, err)
        assert err == "", err
        return out


class CommandTests(TempDirMixin, SynchronousTestCase):
    """``entryhw-certs`` writes the layout, says what it did and never overwrites silently."""

    def setUp(self) -> None:
        self.make_temp()

    def test_files_and_modes(self) -> None:
        """Exactly the four files (no CA keys, no leftovers); 0600 key in a 0700 folder."""
        self.generate()
        self.assertEqual(sorted(os.listdir(self.dir)), sorted(LAYOUT))
        self.assertEqual(stat.S_IMODE((self.dir / KEY_FILE).stat().st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(self.dir.stat().st_mode) & 0o077, 0)
        key_pem = (self.dir / KEY_FILE).read_bytes()
        self.assertTrue(key_pem.startswith(b"-----BEGIN " + b"PRIVATE KEY-----\n"))  # PKCS#8
        key = serialization.load_pem_private_key(key_pem, password=None)
        self.assertIsInstance(key, ec.EllipticCurvePrivateKey)
        for name in (ROOT_FILE, CHAIN_FILE, CERT_FILE):
            self.assertEqual(len(x509.load_pem_x509_certificates(
                (self.dir / name).read_bytes())), 1, name)

    def test_leaf_key_matches_certificate(self) -> None:
        self.generate()
        key = serialization.load_pem_private_key((self.dir / KEY_FILE).read_bytes(), None)
        self.assertEqual(spki(key.public_key()), spki(load_cert(self.dir / CERT_FILE).public_key()))

    def test_certificate_profile(self) -> None:
        """SANs exactly right (DNS and IP), serverAuth, CA flags, validity lengths."""
        self.generate()
        root, inter, leaf = (load_cert(self.dir / n) for n in (ROOT_FILE, CHAIN_FILE, CERT_FILE))
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(san.get_values_for_type(x509.DNSName), DNS_NAMES)
        self.assertEqual(san.get_values_for_type(x509.IPAddress), IP_NAMES)
        self.assertEqual(len(list(san)), 5)
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertEqual(list(eku), [ExtendedKeyUsageOID.SERVER_AUTH])
        ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
        self.assertTrue(ku.critical)
        self.assertTrue(ku.value.digital_signature)
        self.assertFalse(ku.value.key_encipherment)  # EC key: no RSA key transport
        self.assertFalse(ku.value.key_cert_sign)
        self.assertFalse(leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
        self.assertEqual(leaf.issuer, inter.subject)
        leaf.verify_directly_issued_by(inter)

        for ca, path_length in ((root, None), (inter, 0)):
            bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
            self.assertTrue(bc.critical)
            self.assertTrue(bc.value.ca)
            self.assertEqual(bc.value.path_length, path_length)
            ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
            self.assertTrue(ku.key_cert_sign and ku.crl_sign)
            self.assertFalse(ku.digital_signature)
        self.assertEqual(root.issuer, root.subject)
        root.verify_directly_issued_by(root)
        inter.verify_directly_issued_by(root)

        leaf_span = leaf.not_valid_after_utc - leaf.not_valid_before_utc
        # 825 days counted inclusively: never a second more (Apple's limit).
        self.assertEqual(leaf_span, datetime.timedelta(days=MAX_LEAF_DAYS, seconds=-1))
        now = datetime.datetime.now(datetime.UTC)
        self.assertLess(leaf.not_valid_before_utc, now)
        self.assertGreater(root.not_valid_after_utc - now, datetime.timedelta(days=9 * 365))
        self.assertLessEqual(leaf.not_valid_after_utc, inter.not_valid_after_utc)

    def test_chain_verifies_cryptography(self) -> None:
        if PolicyBuilder is None:
            raise self.skipTest("cryptography has no x509.verification")
        from cryptography.x509.verification import DNSName, IPAddress

        self.generate()
        root, inter, leaf = (load_cert(self.dir / n) for n in (ROOT_FILE, CHAIN_FILE, CERT_FILE))
        builder = PolicyBuilder().store(Store([root]))
        for subject in [*map(DNSName, DNS_NAMES), *map(IPAddress, IP_NAMES)]:
            chain = builder.build_server_verifier(subject).verify(leaf, [inter])
            self.assertEqual(chain, [leaf, inter, root])
        with self.assertRaises(VerificationError):
            builder.build_server_verifier(DNSName("example.com")).verify(leaf, [inter])
        with self.assertRaises(VerificationError):  # the intermediate is needed
            builder.build_server_verifier(DNSName(DNS_NAMES[0])).verify(leaf, [])

    def test_chain_verifies_openssl(self) -> None:
        if OPENSSL is None:
            raise self.skipTest("no openssl command")
        self.generate()
        d = self.dir

        def verify(*extra: str) -> subprocess.CompletedProcess[bytes]:
            return openssl("verify", "-CAfile", str(d / ROOT_FILE), "-purpose", "sslserver",
                           *extra, str(d / CERT_FILE))

        for name in DNS_NAMES:
            done = verify("-untrusted", str(d / CHAIN_FILE), "-verify_hostname", name)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn(b": OK", done.stdout)
        for ip in IP_NAMES:
            done = verify("-untrusted", str(d / CHAIN_FILE), "-verify_ip", str(ip))
            self.assertEqual(done.returncode, 0, done.stderr)
        self.assertNotEqual(verify("-untrusted", str(d / CHAIN_FILE),
                                   "-verify_hostname", "example.com").returncode, 0)
        self.assertNotEqual(verify().returncode, 0)  # without the intermediate

    def test_spki_hash_matches_openssl(self) -> None:
        """The printed pin is what openssl computes (and what Chromium's flag takes)."""
        if OPENSSL is None:
            raise self.skipTest("no openssl command")
        out = self.generate()
        printed = SPKI_LINE.search(out)
        self.assertIsNotNone(printed, out)
        assert printed is not None
        pem = openssl("x509", "-in", str(self.dir / CERT_FILE), "-pubkey", "-noout").stdout
        der = openssl("pkey", "-pubin", "-outform", "der", data=pem).stdout
        digest = openssl("dgst", "-sha256", "-binary", data=der).stdout
        expected = openssl("base64", "-A", data=digest).stdout.decode().strip()
        self.assertEqual(len(digest), 32)
        self.assertEqual(printed.group(1), expected)
        self.assertEqual(spki_sha256_b64(load_cert(self.dir / CERT_FILE)), expected)

    def test_output(self) -> None:
        """Files, expiry, trust instructions for each platform; never key material."""
        out = self.generate()
        for name in LAYOUT:
            self.assertIn(name, out)
        leaf = load_cert(self.dir / CERT_FILE)
        self.assertIn(f"expires: {leaf.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC", out)
        for needle in ["/usr/local/share/ca-certificates/entryhw-dev.crt",
                       "update-ca-certificates",
                       'certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n entryhw-dev -i',
                       "security add-trusted-cert -d -r trustRoot -k "
                       "/Library/Keychains/System.keychain",
                       'certutil -addstore -f "ROOT"',
                       f"entryhw-server --certs {self.dir}",
                       "127.0.0.1"]:
            self.assertIn(needle, out)
        self.assertNotIn("PRIVATE", out)
        key_lines = (self.dir / KEY_FILE).read_text().splitlines()[1:-1]
        for line in key_lines:
            self.assertNotIn(line, out)

    def test_extra_names(self) -> None:
        """--name adds DNS names and IPs, normalised and without duplicates."""
        self.generate("--name", "Dev.Example.TEST.", "192.168.1.20", "--name", "dev.example.test",
                      "--name", "localhost")
        san = load_cert(self.dir / CERT_FILE).extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
        self.assertEqual(san.get_values_for_type(x509.DNSName), [*DNS_NAMES, "dev.example.test"])
        self.assertEqual(san.get_values_for_type(x509.IPAddress),
                         [*IP_NAMES, ipaddress.ip_address("192.168.1.20")])

    def test_days(self) -> None:
        self.generate("--days", "30")
        leaf = load_cert(self.dir / CERT_FILE)
        self.assertEqual(leaf.not_valid_after_utc - leaf.not_valid_before_utc,
                         datetime.timedelta(days=30, seconds=-1))

    def test_usage_errors_write_nothing(self) -> None:
        for argv in (["--days", "826"], ["--days", "0"], ["--days", "x"],
                     ["--name", "bad_name"], ["--name", "*.test"], ["--name", "héllo.test"],
                     ["--bogus"]):
            code, _, err = run_main(["--dir", str(self.dir), *argv])
            self.assertEqual(code, 2, argv)
            self.assertIn("entryhw-certs: error:", err)
            self.assertFalse(self.dir.exists(), argv)

    def test_help(self) -> None:
        code, out, _ = run_main(["--help"])
        self.assertEqual(code, 0)
        for needle in [*LAYOUT, "--force", "--days", "--name", "--dir", "825", "P-256",
                       "--ignore-certificate-errors-spki-list", "entryhw-server --certs DIR",
                       "127.0.0.1", "never written"]:
            self.assertIn(needle, out)

    def test_second_run_refused(self) -> None:
        """Without --force: exit 1, every existing file named, not a byte changed."""
        self.generate()
        before = snapshot(self.dir)
        code, out, err = run_main(["--dir", str(self.dir)])
        self.assertEqual(code, 1)
        self.assertEqual(out, "")
        for name in LAYOUT:
            self.assertIn(str(self.dir / name), err)
        self.assertIn("--force", err)
        self.assertEqual(snapshot(self.dir), before)

    def test_one_existing_file_refused(self) -> None:
        """A single file of the set is enough to refuse; nothing else gets created."""
        self.dir.mkdir()
        (self.dir / CHAIN_FILE).write_bytes(b"mine")
        (self.dir / "secret").write_bytes(b"passphrase")
        code, _, err = run_main(["--dir", str(self.dir)])
        self.assertEqual(code, 1)
        self.assertIn(str(self.dir / CHAIN_FILE), err)
        self.assertNotIn(str(self.dir / CERT_FILE), err)
        self.assertEqual(snapshot(self.dir), {CHAIN_FILE: b"mine", "secret": b"passphrase"})

    def test_dangling_symlink_refused(self) -> None:
        """A symlink in place of a file counts as existing: nothing is written through it."""
        self.dir.mkdir()
        target = self.base / "elsewhere.key"
        (self.dir / KEY_FILE).symlink_to(target)
        code, _, err = run_main(["--dir", str(self.dir)])
        self.assertEqual(code, 1)
        self.assertIn(KEY_FILE, err)
        self.assertFalse(target.exists())
        self.assertEqual(os.listdir(self.dir), [KEY_FILE])

    def test_force_replaces(self) -> None:
        """--force replaces all four; a key loosened meanwhile comes back as 0600."""
        self.generate()
        before = snapshot(self.dir)
        (self.dir / KEY_FILE).chmod(0o644)
        (self.dir / "secret").write_bytes(b"keep me")
        self.generate("--force")
        after = snapshot(self.dir)
        self.assertEqual(sorted(after), sorted([*LAYOUT, "secret"]))  # no temp files left
        self.assertEqual(after["secret"], b"keep me")
        for name in LAYOUT:
            self.assertNotEqual(after[name], before[name], name)
        self.assertEqual(stat.S_IMODE((self.dir / KEY_FILE).stat().st_mode), 0o600)
        key = serialization.load_pem_private_key(after[KEY_FILE], None)
        self.assertEqual(spki(key.public_key()), spki(load_cert(self.dir / CERT_FILE).public_key()))

    def test_key_never_readable_by_others(self) -> None:
        """Even with umask 0 the key is created 0600 (O_EXCL, mode given to open)."""
        old = os.umask(0)
        self.addCleanup(os.umask, old)
        for extra in ([], ["--force"]):
            with mock.patch.object(certs.os, "open", wraps=os.open) as spy:
                self.generate(*extra)
            key_opens = [c for c in spy.call_args_list if KEY_FILE in os.fspath(c.args[0])]
            self.assertEqual(len(key_opens), 1, extra)
            _, flags, mode = key_opens[0].args
            self.assertTrue(flags & os.O_EXCL and flags & os.O_CREAT)
            self.assertEqual(mode, 0o600)
            self.assertEqual(stat.S_IMODE((self.dir / KEY_FILE).stat().st_mode), 0o600)
            self.assertEqual(stat.S_IMODE((self.dir / CERT_FILE).stat().st_mode), 0o644)
        self.assertEqual(stat.S_IMODE(self.dir.stat().st_mode), 0o700)

    def test_dir_is_a_file(self) -> None:
        self.dir.write_bytes(b"")
        code, _, err = run_main(["--dir", str(self.dir)])
        self.assertEqual(code, 1)
        self.assertIn("not a directory", err)

    def test_default_dir_is_certs_in_cwd(self) -> None:
        old = os.getcwd()
        os.chdir(self.base)
        self.addCleanup(os.chdir, old)
        code, _, err = run_main([])
        self.assertEqual(code, 0, err)
        self.assertEqual(sorted(os.listdir(self.base / "certs")), sorted(LAYOUT))


class BuildingBlockTests(TempDirMixin, SynchronousTestCase):
    """The functions other tests use for a throwaway PKI."""

    def setUp(self) -> None:
        self.make_temp()

    def test_expired_and_future_leaves(self) -> None:
        if PolicyBuilder is None:
            raise self.skipTest("cryptography has no x509.verification")
        from cryptography.x509.verification import DNSName

        now = datetime.datetime.now(datetime.UTC)
        # The CA itself must be valid at the past instant checked below.
        root, _, inter, inter_key = make_dev_ca(now=now - datetime.timedelta(days=30))
        expired, _ = issue_leaf(inter, inter_key, ["hw.playentry.org"],
                                not_before=now - datetime.timedelta(days=10),
                                not_after=now - datetime.timedelta(days=1))
        future, _ = issue_leaf(inter, inter_key, ["hw.playentry.org"],
                               not_before=now + datetime.timedelta(days=1))
        subject = DNSName("hw.playentry.org")
        for leaf in (expired, future):
            verifier = PolicyBuilder().store(Store([root])).time(now).build_server_verifier(
                subject)
            with self.assertRaises(VerificationError):
                verifier.verify(leaf, [inter])
        past = PolicyBuilder().store(Store([root])).time(now - datetime.timedelta(days=5))
        past.build_server_verifier(subject).verify(expired, [inter])

    def test_rsa_leaf_gets_key_encipherment(self) -> None:
        _, _, inter, inter_key = make_dev_ca()
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert, key = issue_leaf(inter, inter_key, key=rsa_key)
        self.assertIs(key, rsa_key)
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        self.assertTrue(ku.digital_signature and ku.key_encipherment)

    def test_write_layout_refuses_then_forces(self) -> None:
        root, _, inter, inter_key = make_dev_ca()
        leaf, key = issue_leaf(inter, inter_key)
        paths = write_layout(self.dir, root, inter, leaf, key)
        self.assertEqual([p.name for p in paths], list(LAYOUT))
        with self.assertRaises(ExistingFilesError) as caught:
            write_layout(self.dir, root, inter, leaf, key)
        self.assertEqual([p.name for p in caught.exception.paths], list(LAYOUT))
        self.assertIsInstance(caught.exception, FileExistsError)
        write_layout(self.dir, root, inter, leaf, key, force=True)
        self.assertEqual(sorted(os.listdir(self.dir)), sorted(LAYOUT))

    def test_failed_write_leaves_no_partial_set(self) -> None:
        """A write that fails half way removes the files it had created."""
        root, _, inter, inter_key = make_dev_ca()
        leaf, key = issue_leaf(inter, inter_key)
        real_open = os.open

        def failing_open(path: Any, *args: Any) -> int:
            if os.fspath(path).endswith(CERT_FILE):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real_open(path, *args)

        with mock.patch.object(certs.os, "open", failing_open), \
                self.assertRaises(PermissionError):
            write_layout(self.dir, root, inter, leaf, key)
        self.assertEqual(os.listdir(self.dir), [])

    def test_general_names(self) -> None:
        self.assertEqual(general_names(DEFAULT_NAMES), [
            *map(x509.DNSName, DNS_NAMES), *map(x509.IPAddress, IP_NAMES)])
        self.assertEqual(general_names(["*.Dev.Test", "xn--bcher-kva.test", "a-b.c"]),
                         [x509.DNSName("*.dev.test"), x509.DNSName("xn--bcher-kva.test"),
                          x509.DNSName("a-b.c")])
        for bad in ["", ".", "-a.test", "a-.test", "a..test", "*.test", "a.*.test",
                    "bücher.test", "a" * 64 + ".test", "a b.test"]:
            with self.assertRaises(ValueError, msg=bad):
                general_names([bad])

    def test_spki_sha256_b64(self) -> None:
        """32 bytes of hash, and it follows the key, not the certificate."""
        import base64
        import hashlib

        _, _, inter, inter_key = make_dev_ca()
        leaf1, key = issue_leaf(inter, inter_key)
        leaf2, _ = issue_leaf(inter, inter_key, ["other.test"], key=key)  # type: ignore[arg-type]
        pin = spki_sha256_b64(leaf1)
        self.assertEqual(pin, spki_sha256_b64(leaf2))
        self.assertEqual(base64.b64decode(pin), hashlib.sha256(spki(key.public_key())).digest())


class HandshakeTests(TempDirMixin, SynchronousTestCase):
    """A pyOpenSSL server (what Twisted uses) with the files, a stdlib client on 127.0.0.1."""

    def setUp(self) -> None:
        self.make_temp()
        self.generate()
        # The server sends the leaf and the intermediate, as entryhw does.
        self.fullchain = self.base / "fullchain.pem"
        self.fullchain.write_bytes((self.dir / CERT_FILE).read_bytes()
                                   + (self.dir / CHAIN_FILE).read_bytes())

    def server_context(self) -> SSL.Context:
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
        ctx.use_certificate_chain_file(str(self.fullchain))
        ctx.use_privatekey_file(str(self.dir / KEY_FILE))
        ctx.check_privatekey()
        return ctx

    def handshake(self, server_hostname: str, trust: Path | None
                  ) -> tuple[BaseException | bytes, BaseException | bytes]:
        """(client outcome, server outcome): the reply/request read, or the exception."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(TIMEOUT)
        port = listener.getsockname()[1]
        ctx = self.server_context()
        server_result: queue.Queue[BaseException | bytes] = queue.Queue()

        def serve() -> None:
            try:
                sock, _ = listener.accept()
            except BaseException as e:
                server_result.put(e)
                return
            try:
                sock.settimeout(None)  # pyOpenSSL wants a blocking socket...
                timeval = struct.pack("ll", int(TIMEOUT), 0)  # ...bounded by the kernel
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
                conn = SSL.Connection(ctx, sock)
                conn.set_accept_state()
                conn.do_handshake()
                request = conn.recv(64)
                conn.sendall(b"pong\n")
                conn.shutdown()
                server_result.put(request)
            except BaseException as e:
                server_result.put(e)
            finally:
                sock.close()

        thread = threading.Thread(target=serve, name="tls-server", daemon=True)
        thread.start()

        client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # hostname check + CERT_REQUIRED
        if trust is not None:
            client_ctx.load_verify_locations(cafile=str(trust))
        client: BaseException | bytes
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw, \
                    client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                tls.sendall(b"ping\n")
                client = tls.recv(64)
        except (OSError, ssl.SSLError) as e:
            client = e
        thread.join(TIMEOUT + 5)
        self.assertFalse(thread.is_alive(), "the server thread did not finish")
        return client, server_result.get_nowait()

    def test_trusting_only_root_succeeds(self) -> None:
        for name in [*DNS_NAMES, *map(str, IP_NAMES)]:
            client, server = self.handshake(name, self.dir / ROOT_FILE)
            self.assertEqual(client, b"pong\n", name)
            self.assertEqual(server, b"ping\n", name)

    def test_wrong_hostname_fails(self) -> None:
        client, server = self.handshake("example.com", self.dir / ROOT_FILE)
        self.assertIsInstance(client, ssl.SSLCertVerificationError)
        assert isinstance(client, ssl.SSLCertVerificationError)
        self.assertIn("Hostname mismatch", client.verify_message)
        self.assertIsInstance(server, SSL.Error)

    def test_untrusted_root_fails(self) -> None:
        """No trust in the dev root (e.g. before installing it): the chain is refused."""
        client, _ = self.handshake("hw.playentry.org", None)
        self.assertIsInstance(client, ssl.SSLCertVerificationError)
        other = self.base / "other"
        self.assertEqual(run_main(["--dir", str(other)])[0], 0)
        client, _ = self.handshake("hw.playentry.org", other / ROOT_FILE)
        self.assertIsInstance(client, ssl.SSLCertVerificationError)
