"""The listening factory builds its web site on first need, once."""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from entryhw.listener import Listener

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


class ListenerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.made: list[_Site] = []
        self.listener = Listener(self.make_site)

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

    def test_tls_bytes_without_tls_go_to_the_plain_site(self) -> None:
        # No certificates: even a TLS ClientHello is handed to HTTP, which rejects it.
        self.connect(b"\x16\x03\x01")
        self.assertEqual(self.made[0].built[0].received, [b"\x16\x03\x01"])
