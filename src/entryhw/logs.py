"""Logging for ``entryhw-server``: one line per event on stderr, text or JSON.

stdout is left alone because ``--ipc stdio`` uses it as the parent channel.
"""

from __future__ import annotations

import json
import time
from typing import IO, Any

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
)
from zope.interface import provider

LEVELS = ("debug", "info", "warn", "error", "critical")


def _render(event: dict[str, Any]) -> str:
    text = formatEvent(event)
    failure = event.get("log_failure")
    if failure is not None:
        text = f"{text}\n{failure.getTraceback()}".rstrip()
    return text


def make_observer(fmt: str, stream: IO[str]) -> ILogObserver:
    """An observer writing ``fmt`` ("text" or "json") lines to ``stream``."""

    @provider(ILogObserver)
    def observe(event: dict[str, Any]) -> None:
        when = event.get("log_time") or time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(when))
        stamp += f".{int(when % 1 * 1000):03d}"
        level = event.get("log_level", LogLevel.info).name
        if fmt == "json":
            line = json.dumps(
                {
                    "time": when,
                    "level": level,
                    "namespace": event.get("log_namespace", ""),
                    "message": _render(event),
                },
                ensure_ascii=False,
            )
        else:
            line = f"{stamp} [{level}] {_render(event)}"
        stream.write(line + "\n")
        stream.flush()

    return observe


_level = LogLevel.info


def current_level() -> LogLevel:
    """The least severe level ``entryhw-server`` logs (info under twistd)."""
    return _level


def start_logging(fmt: str, level: str, stream: IO[str]) -> None:
    """Send the global log to ``stream`` at ``level`` and above."""
    global _level
    _level = LogLevel.levelWithName(level)
    predicate = LogLevelFilterPredicate(defaultLogLevel=_level)
    observer = FilteringLogObserver(make_observer(fmt, stream), [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
