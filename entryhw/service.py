"""The server process as one Twisted service: parent link, listener, watchdog.

This is the glue the twistd plugin and ``entryhw-server`` both run. It owns
the process lifecycle (open, listen, shutdown); what messages mean belongs
to the bridge, not here.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from entryhw import ipc
from entryhw.watchdog import WatchdogService
from entryhw.web import ConnectionTracker, make_site

#: runningModeChanged values (PROTOCOL.md section 1).
HOST, CLIENT = 2, 3
#: cloudModeChanged values.
SINGLE, CLOUD = 0, 1


@dataclass(frozen=True)
class Settings:
    """What the command line decided; plain data so tests can build one."""

    port: int = 23518
    interface: str = "127.0.0.1"
    channel: str | int | None = None  # None: standalone; "stdio"; or an fd
    watchdog: float = 2.0
    certs: str | None = None
    modules: str | None = None


class Parent(Protocol):
    """Where messages for the parent go."""

    def send(self, key: str, value: Any = ...) -> None: ...


class StandaloneParent:
    """No parent: log what would have been sent, so a user can see it."""

    log = Logger()
    closing = False

    def send(self, key: str, value: Any = None) -> None:
        if not self.closing:
            self.log.info("to parent (standalone, not sent): {key} {value!r}", key=key, value=value)

    def close(self) -> None:
        self.closing = True


class EntryService(MultiService):
    """Listens on ``open``, reports modes to the parent, exits when it goes."""

    log = Logger()

    def __init__(self, settings: Settings, reactor: Any = None) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self.settings = settings
        self.reactor = reactor
        self.exit_code = 0
        self.running_mode: int | None = None
        self.started_at = time.monotonic()
        self.site = make_site()
        self.factory = ConnectionTracker(self.site)
        self.port: Any = None
        self.channel: ipc.ChannelProtocol | None = None
        self.parent_link: ipc.ChannelProtocol | StandaloneParent = StandaloneParent()
        self._shutting_down = False
        self._handlers: dict[str, Callable[[Any], None]] = {"open": self.open}

    # -- lifecycle -----------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self.reactor.callWhenRunning(self._install_signal_handlers)
        where = self.settings.channel
        if where is None:
            self.log.info("no parent IPC channel: standalone mode, opening at once")
            self.open()
            return
        self.channel = ipc.ChannelProtocol(self._on_parent_event, self._on_parent_gone)
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
        waits = [maybeDeferred(super().stopService)]
        if self.port is not None:
            port, self.port = self.port, None
            waits.append(maybeDeferred(port.stopListening))
        closed = self.factory.close_all()
        if closed:
            self.log.info("closed {n} connection(s)", n=closed)
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

    # -- parent messages ----------------------------------------------

    def _on_parent_event(self, event: ipc.Event) -> None:
        if type(event) is ipc.Message:
            handler = self._handlers.get(event.key)
            if handler is None:
                self.log.warn("IPC: ignoring a message with unknown key {key!r}", key=event.key)
                return
            handler(event.value)
        elif type(event) is ipc.Exit:
            self.shutdown("the parent sent 'exit'")

    def _on_parent_gone(self, reason: str) -> None:
        self.shutdown(reason)

    def open(self, value: Any = None) -> None:
        """Start listening; idempotent (the original flipped to client mode on a 2nd open)."""
        if self.running_mode is not None:
            self.log.info("'open' again while running: ignored (already {mode})",
                          mode="host" if self.running_mode == HOST else "client")
            return
        if self.settings.certs:
            self.log.warn("--certs is not supported yet by this version: serving plain HTTP")
        interface, port = self.settings.interface, self.settings.port
        try:
            self.port = self.reactor.listenTCP(port, self.factory, interface=interface)
        except CannotListenError as e:
            self.running_mode = CLIENT
            self.log.error(
                "cannot listen on {interface}:{port} ({err}); another server holds it? "
                "reporting client mode",
                interface=interface, port=port, err=e.socketError,
            )
            self.parent_link.send("runningModeChanged", CLIENT)
            self.parent_link.send("cloudModeChanged", CLOUD)
            return
        self.running_mode = HOST
        bound = self.port.getHost()
        self.log.info("listening on http://{host}:{port}/", host=bound.host, port=bound.port)
        self.parent_link.send("runningModeChanged", HOST)
        self.parent_link.send("cloudModeChanged", SINGLE)
