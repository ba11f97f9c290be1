"""Signal handlers as a service: installed while it runs, the previous ones restored after.

Our own SIGTERM/SIGINT handlers rather than the reactor's: twistd re-raises the signal
after stopping, so the process would die of it instead of exiting 0 after a clean
shutdown, which is what the parent (and ``kill``) expect. They are installed once the
reactor runs, after its own, and only ever call into the reactor thread.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping
from typing import Any

from twisted.application.service import Service


class SignalService(Service):
    """Calls ``actions[signum](name)`` in the reactor thread when ``signum`` arrives.

    After stop the handlers stay and do nothing: a second SIGTERM during shutdown must
    not reach the reactor's own handler, which would stop a reactor already stopping.
    """

    name = "signals"

    def __init__(self, actions: Mapping[int, Callable[[str], None]], reactor: Any) -> None:
        self.actions = dict(actions)
        self.reactor = reactor

    def startService(self) -> None:
        super().startService()
        # At once if the reactor runs (it has installed its own by then), else after it.
        self.reactor.callWhenRunning(self._install)

    def stopService(self) -> None:
        super().stopService()

    def _install(self) -> None:
        if not self.running:
            return
        for signum, action in self.actions.items():
            signal.signal(signum, self._handler(action))

    def _handler(self, action: Callable[[str], None]) -> Callable[[int, Any], None]:
        def handle(signum: int, frame: Any) -> None:
            if self.running:
                self.reactor.callFromThread(action, signal.Signals(signum).name)

        return handle
