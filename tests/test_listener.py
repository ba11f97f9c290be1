"""The listening factory builds its web site on first need, once."""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from entryhw.limits import CLOSE_TIMEOUT, FIRST_BYTE_TIMEOUT
from entryhw.listener import TLS_REFUSAL, Listener

ADDR = IPv4Address("TCP", "127.0.0.1", 50000)


class _Recorder(Protocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)


class _Site:
    def __init__(self) -> None:
        self.built: list[_Recorder] = []

    def buildProtocol(self, addr: Any) -> _Recorder:
        proto = _Recorder()
        self.built.append(proto)
        return proto


class _Served:
    """A protocol that took a connection over after its first request."""

    served = True


class ListenerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.made: list[_Site] = []
        self.clock = Clock()
        self.listener = Listener(self.make_site, clock=self.clock)

    def make_site(self) -> Any:
        site = _Site()
        self.made.append(site)
        return site

    def connect(self, first: bytes) -> StringTransport:
        transport = StringTransport()
        proto = self.listener.buildProtocol(ADDR)
        proto.makeConnection(transport)
        proto.dataReceived(first)
        return transport

    def test_a_connection_before_prepare_gets_the_site_made(self) -> None:
        self.assertIsNone(self.listener.site)
        self.connect(b"GET / HTTP/1.1\r\n")
        self.connect(b"GET /status HTTP/1.1\r\n")
        [site] = self.made
        self.assertIs(self.listener.site, site)
        self.assertEqual([p.received for p in site.built],
                         [[b"GET / HTTP/1.1\r\n"], [b"GET /status HTTP/1.1\r\n"]])

    def test_prepare_is_idempotent(self) -> None:
        site = self.listener.prepare()
        self.assertIs(self.listener.prepare(), site)
        self.connect(b"G")
        self.assertEqual(len(self.made), 1)
        self.assertEqual(site.built[0].received, [b"G"])  # type: ignore[attr-defined]

    def test_tls_without_certificates_is_refused_at_once(self) -> None:
        # No certificates: a ClientHello gets a TLS alert and a close, not a wait
        # (entryjs tries two https URLs, each with a 20 s timeout, before http).
        transport = self.connect(b"\x16\x03\x01\x02\x00\x01")
        self.assertEqual(transport.value(), TLS_REFUSAL)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.made[0].built, [])
        self.assertEqual(self.listener.faults.counts()["tlsRefused"], 1)

    def test_a_silent_connection_is_closed_after_the_first_byte_deadline(self) -> None:
        transport = StringTransport()
        proto = self.listener.buildProtocol(ADDR)
        proto.makeConnection(transport)
        self.clock.advance(FIRST_BYTE_TIMEOUT - 0.1)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.2)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.listener.faults.counts()["timeouts"], 1)

    def test_at_the_cap_the_oldest_idle_connection_makes_room(self) -> None:
        listener = Listener(self.make_site, clock=self.clock, max_connections=3)
        transports = []
        for _ in range(3):
            t = StringTransport()
            t.connected = True
            t.protocol = listener.buildProtocol(ADDR)  # as the reactor's transports have it
            t.protocol.makeConnection(t)
            transports.append(t)
        # The first one is in use (a request went through), the second is the oldest idle.
        transports[0].protocol = _Served()
        self.assertIsNotNone(listener.buildProtocol(ADDR))
        self.assertFalse(transports[0].disconnecting)
        self.assertTrue(transports[1].disconnecting)
        self.assertFalse(transports[2].disconnecting)
        self.assertEqual(listener.faults.counts()["evicted"], 1)

    def test_closing_connections_are_aborted_after_the_close_timeout(self) -> None:
        listener = Listener(self.make_site, clock=self.clock)
        listener.listening(_Port())
        t = _Closing()
        t.protocol = listener.buildProtocol(ADDR)
        t.protocol.makeConnection(t)
        t.disconnecting = True  # a close waiting for a peer that does not read
        self.clock.advance(CLOSE_TIMEOUT + CLOSE_TIMEOUT / 2 + 0.1)
        self.assertTrue(t.aborted)
        self.assertEqual(listener.faults.counts()["timeouts"], 1)
        listener.close_all()

    def test_close_all_fires_once_every_connection_is_closed(self) -> None:
        listener = Listener(self.make_site, clock=self.clock)
        listener.listening(_Port())
        quick, stuck = _Closing(), _Closing()
        for t in (quick, stuck):
            t.protocol = listener.buildProtocol(ADDR)
            t.protocol.makeConnection(t)
        fired: list[int] = []
        listener.close_all().addCallback(fired.append)
        self.assertEqual(fired, [])
        quick.connected = False
        quick.protocol.connectionLost(None)
        self.clock.advance(0.1)
        self.assertEqual(fired, [])  # the other one has not closed yet
        self.assertFalse(stuck.aborted)
        self.clock.advance(CLOSE_TIMEOUT)
        self.assertTrue(stuck.aborted)
        self.assertFalse(quick.aborted)
        self.assertEqual(fired, [2])


class _Port:
    connected = True


class _Closing(StringTransport):
    connected = True
    aborted = False

    def abortConnection(self) -> None:
        self.aborted = True
