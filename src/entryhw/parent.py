"""The parent channel as a service: open it at start, close it at stop, pass events on.

What a message means is the bridge's business (:meth:`entryhw.bridge.Bridge.from_parent`,
the one place parent messages are dispatched); this service owns the channel itself:
opening it, the standalone stand-in when there is none, and closing it, so that at stop
nothing more is written to a parent that may already be gone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from entryhw import ipc
from entryhw.faults import Faults


class StandaloneParent:
    """No parent: log what would have been sent, so a user can see it (a line per key
    a minute: a page sending a flood must not turn into a flood of log lines)."""

    closing = False
    connected_to_parent = False

    def __init__(self, faults: Faults) -> None:
        self.faults = faults

    def send(self, key: str, value: Any = None) -> None:
        if not self.closing:
            self.faults.throttled("to parent (standalone, not sent): {name} {value}",
                                  key=("standalone", key), name=key, value=repr(value)[:200])

    def close(self) -> Deferred[None]:
        self.closing = True
        return succeed(None)


class ParentService(Service):
    """Owns the channel to the parent (or the standalone stand-in).

    ``on_message(key, value)`` gets each message; without a channel it gets one
    ``open`` at start, as if a parent had sent it. ``on_gone(reason)`` is called once
    the parent is gone: end-of-file, ``exit``, or a channel that cannot be used (then
    :attr:`exit_code` is 1).
    """

    name = "parent"
    log = Logger()

    def __init__(self, where: str | int | None, on_message: Callable[[str, Any], None],
                 on_gone: Callable[[str], None], faults: Faults, reactor: Any) -> None:
        self.where = where
        self.on_message = on_message
        self.on_gone = on_gone
        self.faults = faults
        self.reactor = reactor
        self.exit_code = 0
        self.link: ipc.ChannelProtocol | StandaloneParent = StandaloneParent(faults)

    def send(self, key: str, *value: Any) -> None:
        """To the parent; never raises (dropped once closing)."""
        self.link.send(key, *value)

    @property
    def connected(self) -> bool:
        return self.link.connected_to_parent

    def startService(self) -> None:
        super().startService()
        if self.where is None:
            self.log.info("no parent IPC channel: standalone mode, opening at once")
            self.on_message("open", None)
            return
        channel = ipc.ChannelProtocol(self._event, self.on_gone, faults=self.faults)
        try:
            ipc.open_channel(self.reactor, self.where, channel)
        except (OSError, ipc.ChannelError) as e:
            self.log.critical("cannot use the IPC channel {where!r}: {err}", where=self.where,
                              err=e)
            self.exit_code = 1
            self.on_gone("no usable IPC channel")
            return
        self.link = channel
        self.log.info("IPC channel on {where}; waiting for 'open' from the parent",
                      where=self.where)

    def stopService(self) -> Deferred[None]:
        """Fires once the channel is closed (what was written before is flushed)."""
        super().stopService()
        return self.link.close()

    def _event(self, event: ipc.Event) -> None:
        if type(event) is ipc.Message:
            self.on_message(event.key, event.value)
        elif type(event) is ipc.Exit:
            self.on_gone("the parent sent 'exit'")
