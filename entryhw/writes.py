"""Write-through after each read: the latency of a direct write, the batching of a buffered one.

Twisted buffers every write until the reactor's next poll reports the socket
writable, so a message from a browser left for the parent one reactor round
later, behind everything else of that round. Node (libuv) tries a write at
once. Here the read handlers on the message path (browser WebSocket, parent
channel) bracket their work with :func:`begin` / :func:`end`; writes made in
between through :func:`write` are flushed by :func:`end` when the whole read
is consumed. That is one send per read per destination: a lone message leaves
at once, a flood still goes out in large writes.

Flushing calls the transport's ``doWrite`` (what the reactor calls when the
socket is writable); whatever it cannot send stays buffered for the reactor,
and an outcome that needs the reactor (connection lost, close after flush)
is handed back to it by re-registering the transport for writing.
"""

from __future__ import annotations

from typing import Any

_depth = 0
_pending: list[Any] = []


def begin() -> None:
    """A read handler starts; writes until the matching :func:`end` are flushed then."""
    global _depth
    _depth += 1


def end() -> None:
    """The read handler is done: flush what it wrote (outermost handler only)."""
    global _depth
    _depth -= 1
    if _depth == 0 and _pending:
        flush()


def write(transport: Any, data: bytes) -> None:
    """``transport.write(data)``, flushed at the end of the current read, if any."""
    transport.write(data)
    if _depth:
        # Under TLS the transport is the TLS protocol; its ciphertext sits in the TCP
        # transport below, which is the one to flush.
        while not hasattr(transport, "doWrite"):
            transport = getattr(transport, "transport", None)
            if transport is None:
                return
        _pending.append(transport)


def flush() -> None:
    """Send what the pending transports have buffered, as far as the sockets take it."""
    targets = list(dict.fromkeys(_pending))
    _pending.clear()
    for transport in targets:
        if not transport.connected or transport.disconnecting:
            continue  # the reactor finishes those as usual
        if transport.doWrite() is not None:
            transport.startWriting()
