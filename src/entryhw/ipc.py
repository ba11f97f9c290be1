"""The parent channel: Node.js IPC ("json" serialization) on a file descriptor.

Node's ``child_process`` IPC with the default serialization writes one
``JSON.stringify(message) + "\\n"`` per message on a UNIX socketpair, both ways.
:class:`LineDecoder` and :func:`encode` are the sans-I/O framing;
:class:`ChannelProtocol` and :func:`open_channel` are the thin Twisted glue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger, LogLevel

from entryhw import hostos, jsjson, writes
from entryhw.faults import Faults
from entryhw.limits import IPC_ENVELOPE, MAX_DEPTH, MAX_PARENT_BACKLOG

#: Longest line accepted from the parent; longer lines are discarded whole.
MAX_LINE = 16 * 1024 * 1024

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Message:
    """An application message ``{key, value}`` from the parent."""

    key: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class Exit:
    """The bare string ``"exit"``: the parent asks for a graceful shutdown."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A line that is not a usable message; ``reason`` is one line for the log.

    ``what`` names the sort of fault (log lines are rate-limited per sort);
    ``kind`` is the ``/status`` fault counter it belongs to.
    """

    reason: str
    what: str = ""
    kind: str = "ipcRejected"


@dataclass(frozen=True, slots=True)
class Ignored:
    """A valid line that carries nothing for us (Node internals, other strings)."""

    reason: str


Event = Message | Exit | Rejected | Ignored


def _preview(line: bytes) -> str:
    text = line[:40].decode("utf-8", "replace")
    return repr(text) + ("..." if len(line) > 40 else "")


def parse_line(line: bytes) -> Event:
    """Classify one complete line (without its ``\\n``)."""
    try:
        obj = jsjson.loads(line, MAX_DEPTH + IPC_ENVELOPE)
    except UnicodeDecodeError:
        return Rejected(f"line of {len(line)} bytes is not valid UTF-8", "utf-8")
    except jsjson.TooDeep as e:
        return Rejected(f"JSON {e}: {_preview(line)}", "depth", "tooDeep")
    except ValueError as e:
        return Rejected(f"invalid JSON ({e}): {_preview(line)}", "json")
    if isinstance(obj, dict):
        key = obj.get("key", _MISSING)
        if isinstance(key, str):
            return Message(key, obj.get("value"))
        cmd = obj.get("cmd")
        if isinstance(cmd, str) and cmd.startswith("NODE_"):
            return Ignored(f"Node internal message {cmd}")
        if key is _MISSING:
            return Rejected(f"object without a 'key': {_preview(line)}", "no key")
        return Rejected(f"'key' is not a string: {_preview(line)}", "key type")
    if isinstance(obj, str):
        if obj == "exit":
            return Exit()
        return Ignored(f"string message {obj[:40]!r}")
    return Rejected(f"expected an object, got JSON {type(obj).__name__}: {_preview(line)}",
                    f"not an object: {type(obj).__name__}")


class LineDecoder:
    """Split a byte stream into JSON lines; bounded memory, never raises.

    A line longer than ``max_line`` is reported once and skipped up to its
    newline, so one bad message never poisons the rest of the channel.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[Event]:
        """Take bytes as read from the channel; return the events they complete."""
        events: list[Event] = []
        if self._discarding:
            nl = data.find(b"\n")
            if nl < 0:
                return events
            self._discarding = False
            data = data[nl + 1 :]
        if b"\n" not in data:
            self._buf += data
            self._check_overflow(events)
            return events
        if self._buf:
            self._buf += data
            lines = bytes(self._buf).split(b"\n")
        else:
            lines = data.split(b"\n")
        self._buf = bytearray(lines.pop())
        for line in lines:
            if len(line) > self.max_line:
                events.append(self._too_long(len(line)))
            elif line.strip():
                events.append(parse_line(line))
        self._check_overflow(events)
        return events

    def _check_overflow(self, events: list[Event]) -> None:
        if len(self._buf) > self.max_line:
            events.append(self._too_long(len(self._buf), partial=True))
            self._buf = bytearray()
            self._discarding = True

    def _too_long(self, size: int, partial: bool = False) -> Rejected:
        more = " or more" if partial else ""
        return Rejected(f"line of {size}{more} bytes exceeds the {self.max_line}-byte limit",
                        "length")

    @property
    def pending(self) -> int:
        """Bytes buffered towards an unfinished line."""
        return len(self._buf)


def encode(key: str, value: Any = _MISSING) -> bytes:
    """One outbound message as a line Node's ``JSON.parse`` reads back exactly.

    Serialised as ``JSON.stringify`` would (see :func:`entryhw.jsjson.dumps`).
    Raises ``TypeError`` for values JSON cannot carry, ``ValueError`` for cycles.
    """
    msg = {"key": key} if value is _MISSING else {"key": key, "value": value}
    return jsjson.dumps(msg) + b"\n"


class ChannelProtocol(writes.BatchedWrites, Protocol):
    """Frames the channel and hands each event to ``on_event``; EOF to ``on_close``.

    Only end-of-file ends the channel (and so the process): each event is
    handled inside :meth:`Faults.guard`, so whatever one message sets off,
    down to a browser that vanished while it was being written to, costs that
    message and nothing more.
    """

    log = Logger()

    def __init__(
        self,
        on_event: Callable[[Event], None],
        on_close: Callable[[str], None],
        max_line: int = MAX_LINE,
        faults: Faults | None = None,
    ) -> None:
        self._decoder = LineDecoder(max_line)
        self._on_event = on_event
        self._on_close = on_close
        self.faults = faults if faults is not None else Faults()
        self.connected_to_parent = False
        self.closing = False
        self._closed: list[Deferred[None]] = []

    def connectionMade(self) -> None:
        self.connected_to_parent = True
        self.watch_backlog(MAX_PARENT_BACKLOG)

    def backlog_exceeded(self, size: int) -> None:
        # The parent is never disconnected (that ends the process): what it leaves
        # unread beyond the limit is dropped instead.
        self.faults.peer("sendsDropped", "IPC: the parent is not reading (over {n} bytes "
                         "unread); dropping messages to it", n=MAX_PARENT_BACKLOG,
                         level=LogLevel.warn)

    def dataReceived(self, data: bytes) -> None:
        guard = self.faults.guard
        for event in self._decoder.feed(data):
            if type(event) is Message:
                guard("handling an IPC message", self._on_event, event)
            elif type(event) is Rejected:
                self.faults.peer(event.kind, "IPC: rejected a message from the parent: "
                                 "{reason}", key=("ipc", event.what), reason=event.reason,
                                 level=LogLevel.warn)
            elif type(event) is Ignored:
                self.log.debug("IPC: ignored {reason}", reason=event.reason)
            else:
                guard("handling an IPC message", self._on_event, event)

    def connectionLost(self, reason: Any = None) -> None:
        self.connected_to_parent = False
        waiting, self._closed = self._closed, []
        for d in waiting:
            d.callback(None)
        if not self.closing:
            self._on_close("the parent closed the IPC channel")

    def send(self, key: str, value: Any = _MISSING) -> None:
        """Write one message, unless shutdown has started; never raises."""
        if self.closing or not self.connected_to_parent:
            return
        try:
            line = encode(key, value)
        except (TypeError, ValueError) as e:
            self.faults.peer("sendsDropped", "IPC: cannot send {key!r} to the parent: {err}",
                             key=key, err=e, level=LogLevel.error)
            return
        self.write_batched(line)

    def close(self) -> Deferred[None]:
        """Stop writing and close our end (after flushing what was written).

        The Deferred fires once the channel is closed, at once if it was not open.
        """
        self.closing = True
        if self.transport is None or not self.connected_to_parent:
            return succeed(None)
        self.flush_writes(force=True)
        d: Deferred[None] = Deferred()
        self._closed.append(d)
        self.transport.loseConnection()
        return d


class ChannelError(Exception):
    """The configured channel cannot be used; the message says why."""


def resolve_channel(spec: str, environ: Mapping[str, str]) -> str | int | None:
    """Turn ``--ipc`` into ``None`` (no parent), ``"stdio"`` or an fd number.

    ``auto`` means Node's ``NODE_CHANNEL_FD`` when set; a Node parent that asks
    for another serialization than "json" is refused with a clear message.
    """
    if spec == "none":
        return None
    if spec == "stdio":
        return "stdio"
    if spec == "auto":
        raw = environ.get("NODE_CHANNEL_FD")
        if raw is None or raw == "":
            return None
        mode = environ.get("NODE_CHANNEL_SERIALIZATION_MODE", "json")
        if mode != "json":
            raise ChannelError(
                f"the parent uses the {mode!r} IPC serialization; only 'json' is supported"
            )
        where = f"NODE_CHANNEL_FD={raw!r}"
    elif spec.startswith("fd:"):
        raw = spec[3:]
        where = f"--ipc {spec}"
    else:
        raise ChannelError(f"--ipc must be auto, stdio, none or fd:N, not {spec!r}")
    try:
        fd = int(raw)
    except ValueError:
        raise ChannelError(f"{where}: not a file descriptor number") from None
    if fd < 0:
        raise ChannelError(f"{where}: not a file descriptor number")
    why = hostos.check_channel_fd(fd)
    if why is not None:
        raise ChannelError(f"{where}: {why}")
    return fd


def open_channel(reactor: Any, where: str | int, protocol: ChannelProtocol) -> None:
    """Connect ``protocol`` to the channel ``where`` (an fd number or "stdio")."""
    if where == "stdio":
        from twisted.internet.stdio import StandardIO

        StandardIO(protocol, reactor=reactor)
        return
    assert isinstance(where, int)
    factory = Factory.forProtocol(lambda: protocol)
    factory.noisy = False
    try:
        hostos.connect_channel(reactor, where, factory)
    except ValueError as e:
        raise ChannelError(str(e)) from None
