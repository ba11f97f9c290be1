"""Engine.IO heartbeat for a client connection, on any ``IReactorTime`` (sans-I/O).

Kept apart from :mod:`entryhw.engineio.client` because the two protocol revisions differ
here more than anywhere else (who pings whom, what proves the peer alive), and because it
is best tested alone on a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from entryhw.engineio import packets as eio

__all__ = ["Heartbeat"]


class Heartbeat:
    """Engine.IO liveness for one connection, on any ``IReactorTime`` (a ``Clock`` in tests).

    ``send(packet_type)`` writes a bare PING or PONG; ``expired()`` is called once when the
    peer is considered gone; ``received(packet_type)`` must see every Engine.IO packet
    received after OPEN.  Times are in seconds.

    * Engine.IO 3 (engine.io-client 3.5 ``setPing``/``onHeartbeat``): the client sends a PING
      every ``ping_interval`` after the previous PONG and allows ``ping_timeout`` for the
      answer; any packet received proves liveness and moves the deadline to
      ``ping_interval + ping_timeout`` from now.
    * Engine.IO 4 (engine.io-client 6 ``_resetPingTimeout``): the server pings; the client
      answers each PING with a PONG, and expires when no PING came for
      ``ping_interval + ping_timeout``.
    """

    def __init__(self, clock: Any, eio_version: int, ping_interval: float, ping_timeout: float,
                 send: Callable[[int], None], expired: Callable[[], None]) -> None:
        if eio_version not in (3, 4):
            raise ValueError(f"unsupported Engine.IO protocol {eio_version!r}")
        self._clock = clock
        self._eio = eio_version
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self._send = send
        self._expired = expired
        self._ping_call: Any = None
        self._deadline_call: Any = None
        self._running = False

    def start(self) -> None:
        self._running = True
        if self._eio == 3:
            self._schedule_ping()
        self._arm(self.ping_interval + self.ping_timeout)

    def received(self, ptype: int) -> None:
        if not self._running:
            return
        if self._eio == 3:
            self._arm(self.ping_interval + self.ping_timeout)
            if ptype == eio.PONG:
                self._schedule_ping()
        elif ptype == eio.PING:
            self._send(eio.PONG)
            self._arm(self.ping_interval + self.ping_timeout)

    def stop(self) -> None:
        self._running = False
        for call in (self._ping_call, self._deadline_call):
            if call is not None and call.active():
                call.cancel()
        self._ping_call = self._deadline_call = None

    def _schedule_ping(self) -> None:
        if self._ping_call is not None and self._ping_call.active():
            self._ping_call.cancel()
        self._ping_call = self._clock.callLater(self.ping_interval, self._ping)

    def _ping(self) -> None:
        self._ping_call = None
        self._send(eio.PING)
        self._arm(self.ping_timeout)

    def _arm(self, delay: float) -> None:
        if self._deadline_call is not None and self._deadline_call.active():
            self._deadline_call.cancel()
        self._deadline_call = self._clock.callLater(delay, self._expire)

    def _expire(self) -> None:
        self._deadline_call = None
        self.stop()
        self._expired()
