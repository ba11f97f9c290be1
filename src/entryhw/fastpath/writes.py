"""Send a TCP transport's buffer now, not at the reactor's next poll.

``ITransport.write`` only buffers: Twisted sends at the next poll that finds the socket
writable, a round trip through epoll per write. :func:`push` calls the transport's
``doWrite``, which is what the reactor would call then. That method belongs to the
reactor's side of the transport (``IWriteDescriptor``), not to the protocol's, hence
the check: :func:`usable` tells whether a transport has it, and without the fast path
(or on a transport that lacks it, like TLS's) nothing is pushed and the reactor sends
the bytes a poll later, as it always would.
"""

from __future__ import annotations

from typing import Any

from entryhw import fastpath


def _descriptor(transport: Any) -> Any:
    """The TCP transport under ``transport``: itself, or below a wrapping protocol."""
    while transport is not None and not hasattr(transport, "doWrite"):
        transport = getattr(transport, "transport", None)
    return transport


_USABLE: dict[type, bool] = {}  # by transport class: checked once per class


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
