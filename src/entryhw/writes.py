"""Writes made while handling a read go out together, as soon as the read is handled.

Twisted buffers every write until the reactor's next poll reports the socket
writable, so a message from a browser left for the parent one reactor round
later, behind everything else of that round, and every write paid Twisted's
bookkeeping (buffer, producer check, epoll registration). Node (libuv) tries
a write at once.

Here the read handlers on the message path (browser WebSocket, parent
channel) bracket their work with :func:`begin` / :func:`end`. A protocol
mixing in :class:`BatchedWrites` collects what it writes in between and hands
it to its transport in one piece when the outermost read ends, then has it
sent right away (:func:`push`): one send per read per destination, so a lone
message leaves at once and a flood goes out in large writes. Outside a read,
writes go straight to the transport as usual.

A protocol that also writes or closes its transport by other paths must call
:meth:`BatchedWrites.flush_writes` first, to keep the order of its bytes.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from zope.interface import implementer

log = Logger()

_depth = 0
_waiting: list[BatchedWrites] = []


def begin() -> None:
    """A read handler starts; batched writes wait for the matching :func:`end`."""
    global _depth
    _depth += 1


def end() -> None:
    """The read handler is done; the outermost one sends what was batched.

    One protocol whose flush fails (its peer is gone in some odd way) must not
    keep the others' bytes back: each is flushed on its own.
    """
    global _depth, _waiting
    _depth -= 1
    if _depth == 0 and _waiting:
        waiting, _waiting = _waiting, []
        for proto in waiting:
            try:
                proto.flush_writes()
            except Exception:
                faults = getattr(proto, "faults", None)
                if faults is not None:
                    faults.bug("flushing a protocol's writes")
                else:
                    log.failure("flushing the writes of {proto!r}", proto=proto)


@implementer(IPushProducer)
class Backlog:
    """What a peer has not taken yet, held here while its transport is full.

    Registered as the transport's streaming producer, it hears from Twisted
    itself when the transport's buffer passes its size (``pauseProducing``) and
    when it has drained (``resumeProducing``). In between, writes wait in
    :attr:`held` instead of piling up in the transport, so what the peer leaves
    unread is counted exactly (the transport holds at most its buffer size
    more); on resume they go out in one piece. Reading from the peer goes on:
    TLS pauses its producer during the handshake too, which must still be read.
    """

    def __init__(self, limit: int, on_resume: Any) -> None:
        self.limit = limit
        self.paused = False
        self.held: list[bytes] = []
        self.size = 0
        self._on_resume = on_resume

    def attach(self, transport: Any) -> None:
        """Become ``transport``'s producer (taking the place of twisted.web's channel,
        which registers itself on the connections it serves before a WebSocket takes over)."""
        try:
            transport.unregisterProducer()
        except RuntimeError:  # nothing was registered (some transports say so loudly)
            pass
        transport.registerProducer(self, True)

    def hold(self, data: bytes) -> bool:
        """Keep ``data`` for the resume; False (nothing kept) if it would pass the limit."""
        if self.size + len(data) > self.limit:
            return False
        self.held.append(data)
        self.size += len(data)
        return True

    def take(self) -> bytes:
        """Everything held, in order, and forget it."""
        data = b"".join(self.held)
        self.held, self.size = [], 0
        return data

    def pauseProducing(self) -> None:
        self.paused = True  # (Twisted calls this on every write while its buffer is full)

    def resumeProducing(self) -> None:
        if self.paused:
            self.paused = False
            self._on_resume()

    def stopProducing(self) -> None:
        self.paused = False
        self.held, self.size = [], 0


def push(transport: Any) -> None:
    """Send what ``transport`` has buffered now, as far as the socket takes it.

    This calls the transport's ``doWrite`` (what the reactor calls when the
    socket is writable); what the socket does not take stays buffered for the
    reactor, and an outcome that needs the reactor (connection lost, close
    after the last byte) goes back to it by re-registering for writing.
    """
    # Under TLS the transport is the TLS protocol; its ciphertext sits in the TCP
    # transport below, which is the one to push.
    while not hasattr(transport, "doWrite"):
        transport = getattr(transport, "transport", None)
        if transport is None:
            return
    if transport.connected and not transport.disconnecting:
        if transport.doWrite() is not None:
            transport.startWriting()


class BatchedWrites:
    """Mixin for a protocol whose writes during a read should leave together.

    With :meth:`watch_backlog`, what the peer has not taken is bounded: while
    the transport is full, writes wait in the :class:`Backlog`, and one that
    would pass its limit is not made; :meth:`backlog_exceeded` decides what
    happens to the peer then.
    """

    transport: Any
    _batched: list[bytes] | None = None
    backlog: Backlog | None = None

    def watch_backlog(self, limit: int) -> None:
        """Bound what this protocol's peer may leave unread (call once connected)."""
        self.backlog = Backlog(limit, self._backlog_drained)
        self.backlog.attach(self.transport)

    def backlog_exceeded(self, size: int) -> None:
        """A write of ``size`` bytes was refused: the peer is not reading. Override."""

    def write_batched(self, data: bytes) -> None:
        """``self.transport.write(data)``, deferred to the end of the current read."""
        backlog = self.backlog
        if backlog is not None and backlog.paused:
            if not backlog.hold(data):
                self.backlog_exceeded(len(data))
            return
        if not _depth:
            self.transport.write(data)
            return
        batched = self._batched
        if batched is None:
            self._batched = [data]
            _waiting.append(self)
        else:
            batched.append(data)

    def flush_writes(self, force: bool = False) -> None:
        """Hand what was batched to the transport and send it.

        ``force`` (before writing to the transport by another path, to keep
        the order of the bytes) also hands over what the backlog holds.
        """
        batched, self._batched = self._batched, None
        transport = self.transport
        if transport is None:
            return
        backlog = self.backlog
        if backlog is not None and (backlog.paused or backlog.held):
            if batched and not all(backlog.hold(data) for data in batched):
                self.backlog_exceeded(sum(len(d) for d in batched))
                return
            if not force:
                return
            batched = [backlog.take()]
        if batched:
            transport.write(batched[0] if len(batched) == 1 else b"".join(batched))
            push(transport)

    def write_direct(self, data: bytes, write: Any) -> None:
        """``write(data)`` for bytes another layer sends itself (Autobahn's control
        frames): after what was batched, and held like the rest while the peer is full."""
        backlog = self.backlog
        if backlog is not None and (backlog.paused or backlog.held):
            self.flush_writes()
            if not backlog.hold(data):
                self.backlog_exceeded(len(data))
            return
        self.flush_writes()
        write(data)

    def _backlog_drained(self) -> None:
        backlog = self.backlog
        if backlog is not None and backlog.held and self.transport is not None:
            self.transport.write(backlog.take())
