"""Send a TCP transport's bytes now, not at the reactor's next poll.

``ITransport.write`` only buffers: Twisted registers the socket for writing (an
``epoll_ctl``), sends when the next poll finds it writable, and unregisters it (another
``epoll_ctl``): three system calls and a poll round per write, where Node makes one.

* :func:`send` writes straight to the socket when Twisted holds nothing for it (the
  common case: a 60 Hz message to a peer that reads), and hands Twisted only what the
  socket did not take, so order, producers and errors stay Twisted's. It relies on
  ``FileDescriptor``'s buffer attributes; :func:`self_test` checks at first use that
  they still mean what this module assumes, and without them every write takes the
  next way.
* :func:`push` calls the transport's ``doWrite``, which is what the reactor would call
  at the next poll (used under TLS, whose bytes must go through the TLS connection).

That is the reactor's side of the transport (``IWriteDescriptor``), not the protocol's,
hence the checks: without the fast path, or on a transport that lacks the parts,
the bytes are written with ``transport.write`` and the reactor sends them a poll
later, as it always would.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.abstract import FileDescriptor
from twisted.logger import Logger

from entryhw import fastpath

log = Logger()

#: What :func:`send` reads on a transport besides ``write``; checked per class.
_DIRECT_PARTS = ("socket", "TLS", "dataBuffer", "_tempDataLen", "_writeDisconnected",
                 "_aborting", "connected", "disconnecting")


def _descriptor(transport: Any) -> Any:
    """The TCP transport under ``transport``: itself, or below a wrapping protocol."""
    while transport is not None and not hasattr(transport, "doWrite"):
        transport = getattr(transport, "transport", None)
    return transport


_USABLE: dict[type, bool] = {}  # by transport class: checked once per class
_DIRECT: dict[type, bool] = {}


def usable(transport: Any) -> bool:
    """Does ``transport`` (or the one it wraps) offer what :func:`push` calls?"""
    tcp = _descriptor(transport)
    if tcp is None:
        return False
    kind = type(tcp)
    ok = _USABLE.get(kind)
    if ok is None:
        ok = _USABLE[kind] = all(hasattr(tcp, name) for name in (
            "doWrite", "startWriting", "connected", "disconnecting"))
    return ok


def _direct(transport: Any) -> bool:
    """May :func:`send` write to ``transport``'s socket itself (its class has the parts)?"""
    kind = type(transport)
    ok = _DIRECT.get(kind)
    if ok is None:
        # A FileDescriptor itself: a wrapper (TLSMemoryBIOProtocol) forwards unknown
        # attributes to the transport under it, socket included, and must not be bypassed.
        ok = _DIRECT[kind] = (
            _verdict() and isinstance(transport, FileDescriptor)
            and all(hasattr(transport, name) for name in _DIRECT_PARTS)
            and isinstance(transport.socket, socket.socket))
    return ok


def send(transport: Any, data: bytes) -> None:
    """``transport.write(data)``, sent now as far as the socket takes it.

    Straight to the socket when ``transport`` is a plain (not TLS) TCP or UNIX
    transport with nothing buffered and not closing or aborted; the rest, or all of it when
    that does not hold, is written to the transport, and pushed (:func:`push`) when
    the transport is not plain. A socket error is left for the reactor: the bytes
    are written to the transport, whose next ``doWrite`` meets the error and closes
    the connection as Twisted always does.
    """
    if (fastpath.ENABLED and _direct(transport) and not transport.TLS
            and transport.connected and not transport.disconnecting
            and not transport._aborting  # (abortConnection leaves connected set)
            and not transport._writeDisconnected and not transport.dataBuffer
            and not transport._tempDataLen and not getattr(transport, "_sendmsgQueue", None)):
        try:
            sent = transport.socket.send(data)
        except OSError:  # would block, or an error the reactor reports in its own way
            sent = 0
        if sent < len(data):
            transport.write(data[sent:] if sent else data)
        return
    transport.write(data)
    push(transport)


def push(transport: Any) -> None:
    """Send what ``transport`` has buffered now, as far as the socket takes it.

    What the socket does not take stays buffered for the reactor, and an outcome that
    needs the reactor (connection lost, close after the last byte) goes back to it by
    re-registering for writing.
    """
    if not fastpath.ENABLED:
        return
    tcp = _descriptor(transport)
    if tcp is None or not usable(tcp):
        return
    if tcp.connected and not tcp.disconnecting:
        if tcp.doWrite() is not None:
            tcp.startWriting()


_checked: bool | None = None


def _verdict() -> bool:
    global _checked
    if _checked is None:
        why = fastpath.untested("twisted") or self_test()
        _checked = why is None
        if why is not None:
            log.info("direct socket writes off ({why}): Twisted sends at its next poll",
                     why=why)
    return _checked


def self_test() -> str | None:
    """Why ``FileDescriptor``'s buffer does not behave as :func:`send` assumes, or None.

    :func:`send` writes to the socket itself only while ``dataBuffer`` and
    ``_tempDataLen`` say Twisted holds nothing; this checks on a socketless
    descriptor that a write shows up there and a full ``doWrite`` clears both.
    """
    class _Probe(FileDescriptor):
        def __init__(self) -> None:
            super().__init__(reactor=_NoReactor())
            self.connected = 1
            self.out = b""

        def writeSomeData(self, data: bytes) -> int:
            self.out += bytes(data)
            return len(data)

    try:
        probe = _Probe()
        if probe.dataBuffer or probe._tempDataLen or probe._writeDisconnected:
            return "a new descriptor does not start empty"
        probe.write(b"ab")
        if not (probe._tempDataLen == 2 or probe.dataBuffer):
            return "a write does not show in the buffer attributes"
        probe.doWrite()
        if probe.out != b"ab" or probe.dataBuffer or probe._tempDataLen:
            return "a full doWrite does not leave the buffer empty"
    except Exception as exc:  # any other shape of FileDescriptor: take the public path
        return f"{type(exc).__name__}: {exc}"
    return None


class _NoReactor:
    """Enough of a reactor for :func:`self_test`'s descriptor (it registers for writing)."""

    def addWriter(self, _: object) -> None:
        pass

    def removeWriter(self, _: object) -> None:
        pass

    def addReader(self, _: object) -> None:
        pass

    def removeReader(self, _: object) -> None:
        pass
