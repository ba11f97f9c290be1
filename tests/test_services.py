"""The services makeService assembles, each on its own: start, stop, what stop waits for."""

from __future__ import annotations

import os
import signal
import socket
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.error import CannotListenError
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from entryhw.bridge import CLIENT, HOST
from entryhw.election import ElectionService
from entryhw.faults import Faults
from entryhw.parent import ParentService
from entryhw.service import EntryService
from entryhw.settings import ConfigError, Settings, load
from entryhw.signals import SignalService
from entryhw.tap import Options


class _Port:
    """A listening port whose stopListening the test finishes."""

    def __init__(self) -> None:
        self.stopped: defer.Deferred[None] | None = None

    def getHost(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 23518)

    def stopListening(self) -> defer.Deferred[None]:
        self.stopped = defer.Deferred()
        return self.stopped

    def stopReading(self) -> None:
        pass

    def startReading(self) -> None:
        pass


class _Endpoint:
    def __init__(self, result: Any) -> None:
        self.result = result
        self.factories: list[Any] = []

    def listen(self, factory: Any) -> defer.Deferred[Any]:
        self.factories.append(factory)
        if isinstance(self.result, Exception):
            return defer.fail(self.result)
        return defer.succeed(self.result)


class ElectionTests(SynchronousTestCase):
    def election(self, result: Any) -> tuple[ElectionService, list[tuple[Any, ...]], Any]:
        clock = MemoryReactorClock()
        sent: list[tuple[Any, ...]] = []
        service = ElectionService(Settings(port=23518), reactor=clock, faults=Faults(),
                                  to_parent=lambda *a: sent.append(a),
                                  endpoint=_Endpoint(result))
        return service, sent, clock

    def test_binds_through_the_endpoint_and_hosts(self) -> None:
        port = _Port()
        service, sent, _ = self.election(port)
        service.startService()
        self.assertEqual(sent, [])  # nothing before the parent's open
        service.open()
        self.assertIs(service.port, port)
        self.assertEqual(sent[:2], [("runningModeChanged", HOST), ("cloudModeChanged", 0)])
        service.open()  # a second open changes nothing
        self.assertEqual(len(sent), 2)

    def test_cannot_listen_means_dial_the_host(self) -> None:
        service, sent, clock = self.election(CannotListenError("127.0.0.1", 23518, OSError()))
        service.startService()
        service.open()
        self.assertEqual(sent[0], ("runningModeChanged", CLIENT))
        self.assertIsNotNone(service.client)
        host, port = clock.tcpClients[0][:2]
        self.assertEqual((host, port), ("127.0.0.1", 23518))
        service.stopService()
        self.assertIsNone(service.client)

    def test_stop_fires_once_the_port_is_closed(self) -> None:
        port = _Port()
        service, _, _ = self.election(port)
        service.startService()
        service.open()
        done: list[None] = []
        service.stopService().addCallback(done.append)
        self.assertIsNotNone(port.stopped)
        self.assertEqual(done, [])
        port.stopped.callback(None)
        self.assertEqual(done, [None])

    def test_unreachable_host_retries_with_the_shared_backoff(self) -> None:
        service, _, clock = self.election(CannotListenError("127.0.0.1", 23518, OSError()))
        service.startService()
        service.open()
        first = service.client
        service._host_unreachable(first, "refused")
        self.assertIsNone(service.client)
        self.assertEqual(service.backoff.attempts, 1)
        self.assertTrue(service._retry.active())
        delay = service._retry.getTime() - clock.seconds()
        self.assertTrue(0.25 <= delay <= 0.75, delay)  # Backoff(0.5 s, jitter 0.5)


class ParentTests(TestCase):
    def test_standalone_opens_at_once(self) -> None:
        got: list[tuple[str, Any]] = []
        service = ParentService(None, lambda k, v: got.append((k, v)), self.fail, Faults(),
                                reactor)
        service.startService()
        self.assertEqual(got, [("open", None)])
        return service.stopService()

    def test_unusable_channel_is_exit_status_1(self) -> None:
        gone: list[str] = []
        r, w = os.pipe()  # not a socket: open_channel refuses it
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        service = ParentService(r, lambda k, v: None, gone.append, Faults(), reactor)
        service.startService()
        self.assertEqual(service.exit_code, 1)
        self.assertEqual(gone, ["no usable IPC channel"])

    @defer.inlineCallbacks
    def test_stop_fires_once_the_channel_is_closed(self) -> Any:
        ours, theirs = socket.socketpair()
        self.addCleanup(theirs.close)
        got: list[tuple[str, Any]] = []
        service = ParentService(os.dup(ours.fileno()), lambda k, v: got.append((k, v)),
                                self.fail, Faults(), reactor)
        ours.close()
        service.startService()
        theirs.sendall(b'{"key":"open"}\n')
        for _ in range(100):
            if got:
                break
            yield deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(got, [("open", None)])
        service.send("runningModeChanged", 2)
        yield service.stopService()
        # Closed when the Deferred fired: what was sent first, then end-of-file.
        theirs.settimeout(2)
        data = b""
        while chunk := theirs.recv(4096):
            data += chunk
        self.assertEqual(data, b'{"key":"runningModeChanged","value":2}\n')


class _Running:
    """The reactor, as running: trial spins it without setting ``running``."""

    running = True

    def callWhenRunning(self, f: Any) -> None:
        f()

    def callFromThread(self, f: Any, *args: Any) -> None:
        reactor.callFromThread(f, *args)


class SignalTests(TestCase):
    @defer.inlineCallbacks
    def test_handler_runs_in_the_reactor_then_does_nothing_after_stop(self) -> Any:
        previous = signal.getsignal(signal.SIGUSR1)
        self.addCleanup(signal.signal, signal.SIGUSR1, previous)
        got: list[str] = []
        service = SignalService({signal.SIGUSR1: got.append}, _Running())
        service.startService()
        os.kill(os.getpid(), signal.SIGUSR1)
        yield deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(got, ["SIGUSR1"])
        service.stopService()
        os.kill(os.getpid(), signal.SIGUSR1)  # still ours, and ignored
        yield deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(got, ["SIGUSR1"])


class SettingsTests(SynchronousTestCase):
    def options(self, *argv: str) -> Options:
        options = Options()
        options.parseOptions(list(argv))
        return options

    def test_options_only_parse(self) -> None:
        # A folder that does not exist is not looked at while parsing...
        options = self.options("--certs", "/nonexistent/certs", "--ipc", "none")
        self.assertEqual(options["certs"], "/nonexistent/certs")
        # ...but loading says so, in the words of a usage error.
        with self.assertRaises(ConfigError) as raised:
            load(options)
        self.assertEqual(str(raised.exception),
                         "--certs '/nonexistent/certs' is not a directory")

    def test_load_without_files(self) -> None:
        settings = load(self.options("--ipc", "none", "--port", "0"), environ={})
        self.assertEqual((settings.port, settings.channel, settings.tls), (0, None, None))
        self.assertTrue(settings.loopback)

    def test_make_service_is_a_multiservice_of_named_services(self) -> None:
        service = EntryService(Settings(channel=None), reactor=MemoryReactorClock())
        self.assertEqual([s.name for s in service],
                         ["election", "signals", "parent"])
        with_channel = EntryService(Settings(channel="stdio", watchdog=2.0),
                                    reactor=MemoryReactorClock())
        self.assertEqual([s.name for s in with_channel],
                         ["election", "watchdog", "signals", "parent"])
