"""The server process: a MultiService of small services, each owning one thing.

``makeService`` (entryhw.tap) builds an :class:`EntryService`, for twistd and
``entryhw-server`` alike. Its children, in start order:

* ``election`` (:mod:`entryhw.election`): the host port or the connection to a host;
* ``certificates`` (:mod:`entryhw.tls`): a TimerService re-reading the TLS files when
  they change;
* ``watchdog`` (:mod:`entryhw.watchdog`): notices a vanished parent;
* ``signals`` (:mod:`entryhw.signals`): SIGTERM/SIGINT stop, SIGHUP reloads;
* ``parent`` (:mod:`entryhw.parent`): the IPC channel.

Children stop in reverse order, so the channel closes first (nothing more is written to
a parent that may be gone), then the port and every connection. Each ``stopService``
returns a Deferred that fires when what it owns is closed. What messages mean belongs
to the bridge, not here.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import MultiService
from twisted.logger import Logger

from entryhw import config, fastpath, fdlimit, hostos
from entryhw.election import ElectionService
from entryhw.faults import Faults
from entryhw.parent import ParentService
from entryhw.settings import Settings
from entryhw.signals import SignalService
from entryhw.watchdog import WatchdogService


class EntryService(MultiService):
    """Waits for ``open``, then hosts or joins a host; stops when the parent goes."""

    log = Logger()

    def __init__(self, settings: Settings, reactor: Any = None) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self.settings = settings
        self.reactor = reactor
        self.faults = Faults()
        self._stopping = False
        before, self.fd_limit = fdlimit.raise_limit()
        if self.fd_limit != before:
            self.log.debug("file descriptor limit raised from {a} to {b}", a=before,
                           b=self.fd_limit)
        self.election = ElectionService(
            settings, reactor=reactor, faults=self.faults, to_parent=self._to_parent,
            max_connections=fdlimit.connection_cap(self.fd_limit, reactor))
        self.election.setServiceParent(self)
        self.bridge = self.election.bridge
        self.link = ParentService(settings.channel, self.bridge.from_parent, self.shutdown,
                                    self.faults, reactor)
        tls = settings.tls
        if tls is not None and settings.reload_interval > 0:
            from entryhw.tls import CertificateService  # with TLS only: TimerService's
            # module brings Twisted's client-service state machine along

            CertificateService(tls, settings.reload_interval, reactor).setServiceParent(self)
        if settings.channel is not None and settings.watchdog > 0:
            WatchdogService(settings.watchdog, lambda: self.link.connected, self.shutdown,
                            clock=reactor).setServiceParent(self)
        actions = dict.fromkeys(hostos.STOP_SIGNALS, self._signalled)
        if hostos.RELOAD_SIGNAL is not None:
            # Always ours: SIGHUP's default action would end a server without certificates.
            actions[hostos.RELOAD_SIGNAL] = (
                (lambda name: tls.reload(name)) if tls is not None
                else (lambda name: self.log.info("{name}: no certificates to reload", name=name)))
        SignalService(actions, reactor).setServiceParent(self)
        self.link.setServiceParent(self)

    @property
    def exit_code(self) -> int:
        """0 after a clean stop; 1 if the channel could not be used."""
        return self.link.exit_code

    def _to_parent(self, key: str, *value: Any) -> None:
        self.link.send(key, *value)

    def startService(self) -> None:
        settings = self.settings
        self._log_configuration()
        if settings.allow_any_origin:
            self.log.warn("--allow-any-origin: every web page can reach this server and drive "
                          "the hardware (the original's behaviour)")
        if not settings.loopback:
            self.log.warn("listening on {interface}, which is not a loopback address: other "
                          "machines can reach this server", interface=settings.interface)
        if not fastpath.ENABLED:
            self.log.info("ENTRYHW_FASTPATH=0: every fast path is off (public APIs only)")
        else:
            from entryhw.fastpath import reactor as fast_reactor

            if fast_reactor.skipped:
                self.log.info("Twisted's default reactor ({why})", why=fast_reactor.skipped)
        if settings.insecure_client:
            self.log.warn("--insecure-client: in client mode the host's certificate is NOT "
                          "verified; anything on this port can pose as the host")
        super().startService()

    def _log_configuration(self) -> None:
        """One line on where the configuration came from: a zero-argument start must
        show what it found."""
        settings = self.settings
        if settings.config_home is None:
            return
        used = (f"configuration {settings.config_file}" if settings.config_file
                else f"no {config.FILE_NAME} in {settings.config_home}")
        if settings.tls is not None:
            certs = f"certificates from {settings.certs or 'the --cert-file'}"
        elif settings.certs is not None:
            certs = f"no certificate files in {settings.certs}: plain HTTP"
        else:
            certs = (f"no certificates (no --certs, no {config.CERTS_DIR}/ in "
                     f"{settings.config_home}): plain HTTP")
        self.log.info("{used}; {certs}", used=used, certs=certs)

    def _signalled(self, name: str) -> None:
        self.shutdown(f"received {name}")

    def shutdown(self, reason: str) -> None:
        """Stop the reactor once, whatever asked first; stopService then closes all."""
        if self._stopping:
            return
        self._stopping = True
        self.log.info("shutting down: {reason}", reason=reason)
        if self.reactor.running:
            self.reactor.stop()
        else:
            self.reactor.callWhenRunning(self.reactor.stop)

    def status(self) -> dict[str, Any]:
        return self.election.status()
