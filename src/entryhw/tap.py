"""Command line and ``makeService``: ``twistd -n entryhw`` and ``entryhw-server`` share these."""
# ruff: noqa: E402 (the import diet must come before Twisted's imports)

from __future__ import annotations

from entryhw.fastpath import imports

imports.install()  # before Twisted loads: the same start-up for twistd and entryhw-server

import ipaddress
import sys
from typing import Any

from twisted.python import usage

from entryhw import __version__, config
from entryhw.logs import LEVELS
from entryhw.service import EntryService
from entryhw.settings import ConfigError, load


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ValueError(f"a port is a number from 0 to 65535, not {value!r}")
    return port


_port.coerceDoc = "0-65535; 0 picks a free port."  # type: ignore[attr-defined]


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"expected a number of seconds (0 or more), not {value!r}")
    return seconds


_seconds.coerceDoc = "Seconds; 0 turns it off."  # type: ignore[attr-defined]


def _choice(*allowed: str) -> Any:
    def coerce(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
        return value

    coerce.coerceDoc = f"One of: {', '.join(allowed)}."  # type: ignore[attr-defined]
    return coerce


class Options(usage.Options):
    """Options of the Entry hardware bridge server."""

    synopsis = "[options]"
    longdesc = (
        "Entry hardware bridge server: the child process that Entry Hardware spawns. It "
        "serves the Entry workspace (Socket.IO 2 and 4 clients) on 127.0.0.1:23518 and talks "
        "to its parent over Node's IPC channel (fd in NODE_CHANNEL_FD, JSON lines). Without a "
        "parent it runs standalone and opens at once. If the port is taken by another copy, "
        "it becomes that host's client (cloud mode) and takes over when the host goes away. "
        "With certificate files, TLS and plain HTTP share the port. SIGTERM, SIGINT, "
        "end-of-file on the channel or the message \"exit\" stop it cleanly (exit status 0); "
        "SIGHUP reloads the certificates. GET /status describes the running server, with "
        "counts of what peers did wrong. A peer only ever costs its own connection: JSON "
        "nested past 128 levels, silent or slow connections (10 s to the first byte and "
        "to a complete request head), and browsers leaving over 1 MiB unread are cut off "
        "with one log line a minute per kind; the soft file-descriptor limit is raised to "
        "the hard one. Only Entry's pages (https://playentry.org and its subdomains), local "
        "pages (localhost, 127.0.0.1, [::1]) and clients without an Origin are served, and "
        "only under a loopback, localhost or Entry Host name (see --allow-origin, "
        "--allow-host); a page can never pose as a copy of the server. "
        "entryhw-server leaves Autobahn's native helpers off unless AUTOBAHN_USE_NVX=1 is "
        "set (they cost start-up time and the message path does not use them)."
    )
    optFlags = [
        ["version", None, "Print the version and exit."],
        ["allow-any-origin", None,
         "Serve pages from any origin, as the original did (not recommended: any web "
         "page the pupil opens could then drive the hardware)."],
        ["tls-only", None, "Refuse plain HTTP on the port (by default TLS and plain share it)."],
        ["insecure-client", None,
         "In client mode, do not verify the host's certificate (the original's behaviour; "
         "not recommended)."],
    ]
    optParameters = [
        ["port", "p", 23518, "TCP port to listen on.", _port],
        ["interface", "i", "127.0.0.1", "Address to listen on. Keep it on loopback."],
        ["config", None, None,
         "A configuration file (TOML; keys are the long options) instead of entryhw.toml "
         "beside the executable; ENTRYHW_CONFIG names one too. Command-line options win."],
        ["certs", None, None,
         "Directory with the TLS files (hardware.key, cert.pem, ChainCA1.crt, RootCA.crt) "
         "[default: certs/ beside the executable, when present]; without them the server "
         "speaks plain HTTP."],
        ["cert-file", None, None,
         "One PEM with the leaf certificate then its chain (instead of --certs); it may "
         "hold the key too."],
        ["key-file", None, None, "The private key for --cert-file, if not inside it."],
        ["reload-interval", None, 30.0,
         "How often to check the certificate files for changes (they are reloaded "
         "without dropping connections; SIGHUP reloads at once).", _seconds],
        ["modules", None, None, "Directory of hardware block modules served under /modules/ "
         "[default: modules/ beside the executable, when present]."],
        ["secret-file", None, None,
         "File holding the passphrase for the parent's encrypt/decrypt messages "
         "[default: 'secret' in the --certs directory, when present]."],
        ["watchdog", None, 2.0,
         "How often to check that the parent is still there; end-of-file on the "
         "channel is handled at once regardless.", _seconds],
        ["ipc", None, "auto",
         "Parent channel: auto (NODE_CHANNEL_FD when set, else none), stdio (JSON lines "
         "on stdin/stdout), none (standalone), or fd:N."],
        ["log-format", None, "text", "Log line format on stderr.", _choice("text", "json")],
        ["log-level", None, "info", "Least severe level logged.", _choice(*LEVELS)],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["allow-origin"] = []
        self["allow-host"] = []
        self.found = config.Found(None, config.home())
        self.longdesc = type(self).longdesc + (
            f" With no options it looks beside its executable, in {self.found.looked_in}, "
            f"for {config.FILE_NAME} (keys are the long options: port = 23518, "
            f"allow-origin = [...], tls-only = true) and a {config.CERTS_DIR}/ folder.")

    def opt_allow_origin(self, origin: str) -> None:
        self["allow-origin"].append(origin)

    opt_allow_origin.__doc__ = (
        "Also serve pages from ORIGIN (repeatable): an exact origin like "
        "https://school.example, a pattern like https://*.example.org or http://lab.local:* "
        "(any port), or null / file:// by name. Entry's own pages (https://playentry.org and "
        "its subdomains) and localhost, 127.0.0.1 and [::1] on any port are always allowed; "
        "requests without an Origin (Node, copies of the server) too.")

    def opt_allow_host(self, name: str) -> None:
        self["allow-host"].append(name)

    opt_allow_host.__doc__ = (
        "Also answer requests whose Host is NAME (repeatable). Loopback addresses, localhost, "
        "hw.playentry.org, hardware.playentry.org and --interface always are; any other Host "
        "is refused (a defence against DNS rebinding).")

    def opt_version(self) -> None:
        print(f"entryhw {__version__}")
        sys.exit(0)

    def parseOptions(self, options: list[str] | None = None) -> None:
        """Parse the configuration file's options, then the command line's (which win);
        or print a one-line reason and exit with status 2 (usage error)."""
        argv = list(sys.argv[1:] if options is None else options)
        try:
            if "--help" not in argv and "-h" not in argv and "--version" not in argv:
                self.found = config.find(argv, folder=self.found.looked_in, **self._names())
            super().parseOptions([*self.found.argv, *argv])
        except config.ConfigFileError as e:
            sys.stderr.write(f"entryhw: error: {e}\nentryhw: see --help for the options\n")
            raise SystemExit(2) from None
        except usage.UsageError as e:
            sys.stderr.write(f"entryhw: error: {e}\nentryhw: see --help for the options\n")
            raise SystemExit(2) from None

    def _names(self) -> dict[str, set[str]]:
        flags = {f[0] for f in self.optFlags}
        parameters = {p[0] for p in self.optParameters} | {"allow-origin", "allow-host"}
        return {"flags": flags, "parameters": parameters}

    def parseArgs(self, *args: str) -> None:
        if args:
            raise usage.UsageError(f"unexpected argument(s): {' '.join(args)}")

    def postOptions(self) -> None:
        """Check what needs no disk; files are read by makeService (entryhw.settings)."""
        interface = self["interface"]
        try:
            ipaddress.ip_address(interface)
        except ValueError:
            raise usage.UsageError(f"--interface {interface!r} is not an IP address") from None


def makeService(options: Options) -> EntryService:
    """The twistd plugin's entry point (and entryhw-server's): load, then build.

    A setting that cannot be used (a folder, a certificate, the secret, the channel)
    ends the process here with one line and status 2, as a usage error does.
    """
    try:
        settings = load(options, found=options.found)
    except ConfigError as e:
        sys.stderr.write(f"entryhw: error: {e}\nentryhw: see --help for the options\n")
        raise SystemExit(2) from None
    return EntryService(settings)
