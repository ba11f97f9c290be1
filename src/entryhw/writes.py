"""A protocol's writes of one reactor turn go out together, as soon as the turn ends.

Twisted buffers every write until the reactor's next poll reports the socket
writable, so a message from a browser left for the parent one reactor round
later, behind everything else of that round, and every write paid Twisted's
bookkeeping (buffer, producer check, epoll registration). Node (libuv) tries
a write at once.

A protocol mixing in :class:`BatchedWrites` says so at each call site:
:meth:`~BatchedWrites.write_batched` collects the bytes, and the first one of a
turn puts the protocol on its clock's :class:`Turn`, which flushes every protocol
waiting on it with one ``callLater(0)`` that the reactor runs right after the reads
of this round (on entryhw-server's reactor, right after the poll's events:
:mod:`entryhw.fastpath.reactor`): one send per turn per destination, so a lone
message leaves at once and a flood goes out in large writes, and a message for 20
browsers costs one timer, not 20. Each protocol's flush is its own: one that fails
costs that protocol's bytes, logged once, and nobody else's.

A protocol that also writes or closes its transport by other paths must call
:meth:`BatchedWrites.flush_writes` first, to keep the order of its bytes.
"""

from __future__ import annotations

import weakref
from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from zope.interface import implementer

from entryhw.fastpath import writes as fast

log = Logger()


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
        self.held: list[Any] = []
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

    def hold(self, item: Any, size: int | None = None) -> bool:
        """Keep ``item`` (bytes, or a message of ``size`` bytes) for the resume;
        False (nothing kept) if it would pass the limit."""
        size = len(item) if size is None else size
        if self.size + size > self.limit:
            return False
        self.held.append(item)
        self.size += size
        return True

    def take(self) -> list[Any]:
        """Everything held, in order, and forget it."""
        held = self.held
        self.held, self.size = [], 0
        return held

    def pauseProducing(self) -> None:
        self.paused = True  # (Twisted calls this on every write while its buffer is full)

    def resumeProducing(self) -> None:
        if self.paused:
            self.paused = False
            self._on_resume()

    def stopProducing(self) -> None:
        self.paused = False
        self.held, self.size = [], 0


class Turn:
    """The protocols with writes waiting in this reactor turn, and the one call that
    flushes them all when the turn ends."""

    def __init__(self, clock: Any) -> None:
        # Weak: the registry below is keyed weakly by the clock, which its Turn must not
        # keep alive (a protocol with its own clock holds it itself).
        self._clock = weakref.ref(clock)
        self.waiting: list[BatchedWrites] = []
        self.scheduled = False

    def add(self, proto: BatchedWrites) -> None:
        self.waiting.append(proto)
        if not self.scheduled:
            self.scheduled = True
            clock = self._clock()
            at_end = getattr(clock, "at_end_of_poll", None)  # entryhw.fastpath.reactor
            if at_end is not None:
                at_end(self.run)
            else:
                clock.callLater(0, self.run)

    def run(self) -> None:
        self.scheduled = False
        waiting, self.waiting = self.waiting, []
        for proto in waiting:  # each guards its own flush (a protocol flushed early is a no-op)
            proto._end_of_turn()


_TURNS: weakref.WeakKeyDictionary[Any, Turn] = weakref.WeakKeyDictionary()


def turn_of(clock: Any = None) -> Turn:
    """The :class:`Turn` of ``clock`` (None: the global reactor), made at first use."""
    if clock is None:
        from twisted.internet import reactor as clock
    turn = _TURNS.get(clock)
    if turn is None:
        turn = _TURNS[clock] = Turn(clock)
    return turn


class BatchedWrites:
    """Mixin for a protocol whose writes during a read should leave together.

    With :meth:`watch_backlog`, what the peer has not taken is bounded: while
    the transport is full, writes wait in the :class:`Backlog`, and one that
    would pass its limit is not made; :meth:`backlog_exceeded` decides what
    happens to the peer then.
    """

    transport: Any
    #: What times the flush (``callLater``); None: the global reactor.
    clock: Any = None
    _batched: list[bytes] | None = None
    _turn: Turn | None = None
    backlog: Backlog | None = None

    def watch_backlog(self, limit: int) -> None:
        """Bound what this protocol's peer may leave unread (call once connected)."""
        self.backlog = Backlog(limit, self._backlog_drained)
        self.backlog.attach(self.transport)

    def backlog_exceeded(self, size: int) -> None:
        """A write of ``size`` bytes was refused: the peer is not reading. Override."""

    def write_batched(self, data: bytes) -> None:
        """``self.transport.write(data)`` at the end of this reactor turn, with the
        rest of the turn's writes to this peer."""
        backlog = self.backlog
        if backlog is not None and backlog.paused:
            if not backlog.hold(data):
                self.backlog_exceeded(len(data))
            return
        batched = self._batched
        if batched is None:
            self._batched = [data]
            turn = self._turn
            if turn is None:
                turn = self._turn = turn_of(self.clock)
            turn.add(self)
        else:
            batched.append(data)

    def _end_of_turn(self) -> None:
        if self._batched is None:
            return  # flushed before the turn ended (what a backlog holds waits for its resume)
        try:
            self.flush_writes()
        except Exception:
            faults = getattr(self, "faults", None)
            if faults is not None:
                faults.bug("flushing a protocol's writes")
            else:
                log.failure("flushing the writes of {proto!r}", proto=self)

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
            batched = backlog.take()
        if batched:
            fast.send(transport, batched[0] if len(batched) == 1 else b"".join(batched))

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
            self.transport.write(b"".join(backlog.take()))
