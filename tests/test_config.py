"""Configuration beside the executable: a zero-argument start, as Entry Hardware spawns it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from entryhw import config
from entryhw.certs import CERT_FILE, ROOT_FILE, spki_sha256_b64
from tests import test_entry
from tests.support import (
    LOOPBACK,
    Clients,
    NodeParent,
    free_port,
    http_get,
    server_command,
    wait_for,
)
from tests.test_browser import EntryPage, require_chromium
from tests.test_tls import handshake, leaf_der, try_handshake, write_set

FLAGS = {"tls-only", "allow-any-origin"}
PARAMETERS = {"port", "log-level", "allow-origin"}


class ToArgvTests(SynchronousTestCase):
    def test_keys_become_long_options(self) -> None:
        argv = config.to_argv({"port": 8000, "tls-only": True, "allow-any-origin": False,
                               "allow-origin": ["https://a.example", "https://b.example"],
                               "log-level": "debug"}, "f.toml", FLAGS, PARAMETERS)
        self.assertEqual(argv, ["--port", "8000", "--tls-only",
                                "--allow-origin", "https://a.example",
                                "--allow-origin", "https://b.example",
                                "--log-level", "debug"])

    def test_mistakes_name_the_file_and_the_key(self) -> None:
        cases = {
            "unknown key 'prot'": {"prot": 1},
            "'version' cannot be set in the file": {"version": True},
            "tls-only is a flag: true or false": {"tls-only": "yes"},
            "port needs a value, not True": {"port": True},
            "log-level must be a string or a number": {"log-level": {"a": 1}},
        }
        for needle, table in cases.items():
            with self.assertRaises(config.ConfigFileError) as raised:
                config.to_argv(table, "f.toml", FLAGS, PARAMETERS)
            self.assertIn("f.toml: ", str(raised.exception))
            self.assertIn(needle, str(raised.exception))


class FindTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="entryhw-config-"))
        self.addCleanup(shutil.rmtree, self.folder, True)

    def test_none_beside_the_executable_is_fine(self) -> None:
        found = config.find([], environ={}, folder=self.folder)
        self.assertEqual((found.path, found.looked_in, found.argv), (None, self.folder, ()))

    def test_beside_then_env_then_option(self) -> None:
        (self.folder / "entryhw.toml").write_text("port = 1\n")
        other = self.folder / "other.toml"
        other.write_text("port = 2\n")
        third = self.folder / "third.toml"
        third.write_text("port = 3\n")
        self.assertEqual(config.find([], {}, self.folder).argv, ("--port", "1"))
        env = {config.ENV_VAR: str(other)}
        self.assertEqual(config.find([], env, self.folder).argv, ("--port", "2"))
        self.assertEqual(config.find(["--config", str(third)], env, self.folder).argv,
                         ("--port", "3"))
        self.assertEqual(config.find([f"--config={third}"], env, self.folder).path, third)

    def test_a_named_file_must_exist_and_parse(self) -> None:
        with self.assertRaises(config.ConfigFileError) as raised:
            config.find(["--config", str(self.folder / "missing.toml")], {}, self.folder)
        self.assertIn("no such file", str(raised.exception))
        (self.folder / "entryhw.toml").write_text("port = [\n")
        with self.assertRaises(config.ConfigFileError) as raised:
            config.find([], {}, self.folder)
        self.assertIn("entryhw.toml: not valid TOML", str(raised.exception))

    def test_home_is_the_binary_or_the_script_folder(self) -> None:
        self.assertEqual(config.home("/opt/entry/server", frozen=True), Path("/opt/entry"))
        self.assertEqual(config.home("/venv/bin/entryhw-server", frozen=False),
                         Path("/venv/bin"))


class ZeroArgumentTests(test_entry.EntryCase):
    """A folder holding a link to the server, certs/ from entryhw-certs and an
    entryhw.toml that only sets the port: a Node parent spawns it with no arguments."""

    timeout = 90

    def setUp(self) -> None:
        super().setUp()
        self.folder = Path(tempfile.mkdtemp(prefix="entryhw-beside-"))
        self.addCleanup(shutil.rmtree, self.folder, True)
        # A copy, not a link: a frozen binary knows its real path, not the link's.
        self.exe = self.folder / "entryhw-server"
        shutil.copy2(server_command()[0], self.exe)
        self.certs = self.folder / "certs"
        write_set(self.certs)  # what entryhw-certs writes (tests/test_certs.py checks that)
        self.port = free_port()
        (self.folder / "entryhw.toml").write_text(f"port = {self.port}\n")

    def spawn(self) -> NodeParent:
        env = {k: v for k, v in os.environ.items() if k != config.ENV_VAR}
        parent = NodeParent([str(self.exe)], cleanup=self.addCleanup, env=env)
        parent.send({"key": "open"})
        self.assertEqual(parent.message("runningModeChanged")["value"], 2)
        return parent

    def test_certs_and_port_from_beside_the_executable(self) -> None:
        parent = self.spawn()
        certs = self.certs
        log = parent.log_text()
        self.assertIn(f"configuration {self.folder / 'entryhw.toml'}; certificates from "
                      f"{certs}", log)
        self.assertIn(f"listening on https://127.0.0.1:{self.port}/", log)
        # The name browsers use (SNI hw.playentry.org), verified against the root made.
        self.assertEqual(handshake(self.port, certs / ROOT_FILE), leaf_der(certs))
        clients = Clients(self)
        clients.connect("tls", "v2", f"https://{LOOPBACK}:{self.port}",
                        ca=(certs / ROOT_FILE).read_text(), **test_entry.browser_opts("r"))
        clients.expect(c="tls", ev="connect")
        parent.message("connection")
        self.assertPairTalks(parent, clients, "tls", "over-tls")
        self.browser(clients, "plain", self.port, "r")
        self.assertPairTalks(parent, clients, "plain", "over-http")
        # New files beside it, then SIGHUP: served from the next handshake on.
        new = write_set(certs, "second", force=True)
        os.kill(parent.server_pid, signal.SIGHUP)
        wait_for(lambda: try_handshake(self.port, certs / ROOT_FILE) == new, 10,
                 "the new certificate after SIGHUP")
        self.assertPairTalks(parent, clients, "plain", "after-reload")

    def test_the_entry_page_reaches_it_over_wss_hw_playentry_org(self) -> None:
        """Chromium, as https://playentry.org, trusting the leaf by its pin: the page's
        first address, https://hw.playentry.org:PORT, is the one that connects."""
        require_chromium()
        from cryptography import x509

        parent = self.spawn()
        leaf = x509.load_pem_x509_certificate((self.certs / CERT_FILE).read_bytes())
        page = EntryPage(self, self.port, "room-beside", spki=spki_sha256_b64(leaf))
        page.expect(30, ev="launched")
        outcome = page.proc.expect(lambda e: e.get("ev") in ("connect", "all_failed"), 60,
                                   "the Entry page to connect")
        self.assertEqual(outcome["ev"], "connect", outcome)
        self.assertEqual((outcome["url"], outcome["transport"]),
                         (f"https://hw.playentry.org:{self.port}", "websocket"))
        parent.message("connection")
        parent.send({"key": "send", "value": {"over": "wss"}})
        page.expect(10, ev="message", message={"data": {"over": "wss"}})
        page.close()

    def test_no_certs_folder_is_plain_http_and_says_so(self) -> None:
        shutil.rmtree(self.certs)
        modules = self.folder / "modules"  # served as the original serves its own
        modules.mkdir()
        (modules / "robot.json").write_text('{"block": "robot.js"}')
        (modules / "robot.js").write_text("Entry.robot = {};\n")
        parent = self.spawn()
        self.assertEqual(http_get(self.port, "/modules/robot")[:2], (200, b"Entry.robot = {};\n"))
        self.assertIn(f"no certificates (no --certs, no certs/ in {self.folder}): plain HTTP",
                      parent.log_text())
        clients = Clients(self)
        self.browser(clients, "plain", self.port, "r")
        parent.message("connection")
        self.assertPairTalks(parent, clients, "plain", "plain-only")

    def test_a_bad_file_is_one_line_and_status_2(self) -> None:
        (self.folder / "entryhw.toml").write_text("port = 'many'\n")
        done = subprocess.run([str(self.exe)], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL,
                              env={k: v for k, v in os.environ.items()
                                   if k not in (config.ENV_VAR, "NODE_CHANNEL_FD")})
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("entryhw: error:", done.stderr)
        self.assertIn("'many'", done.stderr)
        self.assertNotIn("Traceback", done.stderr)
