"""The server process as one Twisted service: parent link, listener, watchdog.

This is the glue the twistd plugin and ``entryhw-server`` both run. It owns
the process lifecycle (open, listen, shutdown); what messages mean belongs
to the bridge, not here.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger, LogLevel

from entryhw import fdlimit, ipc
from entryhw.faults import Faults
from entryhw.modes import Modes
from entryhw.policy import RequestPolicy
from entryhw.watchdog import WatchdogService


@dataclass(frozen=True)
class Settings:
    """What the command line decided; plain data so tests can build one."""

    port: int = 23518
    interface: str = "127.0.0.1"
    channel: str | int | None = None  # None: standalone; "stdio"; or an fd
    watchdog: float = 2.0
    certs: str | None = None
    modules: str | None = None
    crypto: Callable[[str, str], str] | None = None
    secret_file: str | None = None
    tls: Any = None  # entryhw.tls.ServerTLS when certificates are configured
    tls_only: bool = False
    insecure_client: bool = False
    reload_interval: float = 30.0
    policy: RequestPolicy | None = None  # None: the defaults for ``interface``


class StandaloneParent:
    """No parent: log what would have been sent, so a user can see it (a line per key
    a minute: a page sending a flood must not turn into a flood of log lines)."""

    closing = False

    def __init__(self, faults: Faults) -> None:
        self.faults = faults

    def send(self, key: str, value: Any = None) -> None:
        if not self.closing:
            self.faults.throttled("to parent (standalone, not sent): {name} {value}",
                                  key=("standalone", key), name=key, value=repr(value)[:200])

    def close(self) -> None:
        self.closing = True


class EntryService(MultiService):
    """Waits for ``open``, then hosts or joins a host; exits when the parent goes."""

    log = Logger()

    def __init__(self, settings: Settings, reactor: Any = None) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self.settings = settings
        self.reactor = reactor
        self.exit_code = 0
        self.opened = False
        self.channel: ipc.ChannelProtocol | None = None
        self.faults = Faults()
        self.parent_link: ipc.ChannelProtocol | StandaloneParent = StandaloneParent(self.faults)
        before, self.fd_limit = fdlimit.raise_limit()
        if self.fd_limit != before:
            self.log.debug("file descriptor limit raised from {a} to {b}", a=before,
                           b=self.fd_limit)
        self.modes = Modes(reactor=reactor, port=settings.port, interface=settings.interface,
                           faults=self.faults, policy=settings.policy,
                           max_connections=fdlimit.connection_cap(self.fd_limit, reactor),
                           modules=settings.modules, crypto=settings.crypto, tls=settings.tls,
                           tls_only=settings.tls_only, insecure_client=settings.insecure_client,
                           certs=settings.certs, secret_file=settings.secret_file,
                           to_parent=lambda *a: self.parent_link.send(*a))
        self._shutting_down = False
        self._cert_check: LoopingCall | None = None

    # -- lifecycle -----------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self.reactor.callWhenRunning(self._install_signal_handlers)
        tls = self.settings.tls
        if tls is not None:
            self.log.info("TLS certificate {subject}, valid until {when:%Y-%m-%d}",
                          subject=tls.certs.leaf.subject.rfc4514_string(), when=tls.not_after)
            if self.settings.reload_interval > 0:
                self._cert_check = LoopingCall(self._check_certificates)
                self._cert_check.clock = self.reactor
                self._cert_check.start(self.settings.reload_interval, now=False)
        if self.settings.insecure_client:
            self.log.warn("--insecure-client: in client mode the host's certificate is NOT "
                          "verified; anything on this port can pose as the host")
        where = self.settings.channel
        if where is None:
            self.log.info("no parent IPC channel: standalone mode, opening at once")
            self.open()
            return
        self.channel = ipc.ChannelProtocol(self._on_parent_event, self._on_parent_gone,
                                           faults=self.faults)
        self.parent_link = self.channel
        try:
            ipc.open_channel(self.reactor, where, self.channel)
        except (OSError, ipc.ChannelError) as e:
            self.log.critical("cannot use the IPC channel {where!r}: {err}", where=where, err=e)
            self.exit_code = 1
            self.shutdown("no usable IPC channel")
            return
        self.log.info("IPC channel on {where}; waiting for 'open' from the parent", where=where)
        if self.settings.watchdog > 0:
            watchdog = WatchdogService(
                self.settings.watchdog,
                lambda: self.channel is not None and self.channel.connected_to_parent,
                self._on_parent_gone,
            )
            watchdog.setServiceParent(self)

    def stopService(self) -> Deferred:
        """Close the channel first (nothing more is written), then the port and connections."""
        self._shutting_down = True
        self.parent_link.close()
        if self._cert_check is not None and self._cert_check.running:
            self._cert_check.stop()
        waits = [maybeDeferred(super().stopService), maybeDeferred(self.modes.stop)]
        return gatherResults(waits, consumeErrors=True).addCallback(lambda _: None)

    def shutdown(self, reason: str) -> None:
        """Stop everything once, whatever asked first; the reactor then exits."""
        if self._shutting_down:
            return
        self._shutting_down = True
        self.parent_link.close()
        self.log.info("shutting down: {reason}", reason=reason)
        if self.reactor.running:
            self.reactor.stop()
        else:
            self.reactor.callWhenRunning(self.reactor.stop)

    def _install_signal_handlers(self) -> None:
        # Our own handlers, so SIGTERM/SIGINT exit 0 after a clean shutdown
        # (twistd would otherwise re-raise the signal after stopping).
        def handler(signum: int, frame: Any) -> None:
            name = signal.Signals(signum).name
            self.reactor.callFromThread(self.shutdown, f"received {name}")

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, handler)
        if self.settings.tls is not None:
            signal.signal(signal.SIGHUP, lambda signum, frame: self.reactor.callFromThread(
                self.settings.tls.reload, "SIGHUP"))

    def _check_certificates(self) -> None:
        tls = self.settings.tls
        if tls.changed():
            tls.reload("the files changed")

    # -- parent messages ----------------------------------------------

    def _on_parent_event(self, event: ipc.Event) -> None:
        if type(event) is ipc.Message:
            key = event.key
            if key == "open":
                self.open()
            elif not self.modes.bridge.from_parent(key, event.value):
                self.faults.peer("ipcRejected", "IPC: ignoring a message with unknown key "
                                 "{name!r}", key=("unknown key", key[:40]), name=key[:40],
                                 level=LogLevel.warn)
        elif type(event) is ipc.Exit:
            self.shutdown("the parent sent 'exit'")

    def _on_parent_gone(self, reason: str) -> None:
        self.shutdown(reason)

    def open(self) -> None:
        """Start hosting or join a host; idempotent (the original flipped modes on a 2nd open)."""
        if self.opened:
            self.faults.throttled("'open' again while running: ignored")
            return
        self.opened = True
        self.modes.open()
