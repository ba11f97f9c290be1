"""Notice when the parent is gone, even if the channel never reports EOF.

End-of-file on the channel is handled at once by the channel protocol; this
loop is the belt to those braces: it also catches a parent that died while the
socket somehow stayed open (e.g. inherited by a grandchild), which shows up as
this process being re-parented. (Under a PyInstaller one-file bootloader, the
parent that counts is the bootloader's: :func:`entryhw.frozen.parent_pid`.)
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.application.service import Service
from twisted.internet.task import LoopingCall

from entryhw.frozen import parent_pid


def parent_gone(channel_open: bool, ppid_now: int, ppid_at_start: int) -> str | None:
    """Why the parent counts as gone, or ``None`` while it is still there."""
    if not channel_open:
        return "the IPC channel is closed"
    if ppid_now != ppid_at_start:
        return f"the parent process {ppid_at_start} is gone (re-parented to {ppid_now})"
    return None


class WatchdogService(Service):
    """Every ``interval`` seconds, call ``on_gone(reason)`` once the parent is gone."""

    name = "watchdog"

    def __init__(
        self,
        interval: float,
        channel_open: Callable[[], bool],
        on_gone: Callable[[str], None],
        getppid: Callable[[], int] = parent_pid,
        clock: object = None,
    ) -> None:
        self.interval = interval
        self._channel_open = channel_open
        self._on_gone = on_gone
        self._getppid = getppid
        self._ppid = getppid()
        self._loop = LoopingCall(self.check)
        if clock is not None:
            self._loop.clock = clock

    def check(self) -> None:
        reason = parent_gone(self._channel_open(), self._getppid(), self._ppid)
        if reason is not None:
            if self._loop.running:
                self._loop.stop()
            self._on_gone(reason)

    def startService(self) -> None:
        super().startService()
        self._loop.start(self.interval, now=False)

    def stopService(self) -> None:
        super().stopService()
        if self._loop.running:
            self._loop.stop()
