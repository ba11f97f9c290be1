"""What depends on the operating system, in one place (docs/platforms.md).

Three things differ between POSIX and Windows: how the parent's IPC channel reaches
the child (a socketpair behind ``NODE_CHANNEL_FD`` here, a named pipe with libuv's
framing on Windows), which signals stop the server and reload its certificates, and
how to tell that a key or secret file is readable by others (mode bits here, ACLs on
Windows). The rest of entryhw asks this module; a Windows port is a second module
with the same four names, picked below, not edits across the code.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import sys
from typing import Any

__all__ = ["RELOAD_SIGNAL", "STOP_SIGNALS", "check_channel_fd", "connect_channel",
           "private_enough"]

if sys.platform == "win32":  # pragma: no cover - see docs/platforms.md
    raise ImportError("entryhw has no Windows transport yet: see docs/platforms.md")

#: Signals that stop the server cleanly (exit status 0).
STOP_SIGNALS: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)
#: The signal that reloads the certificates at once (None: the file check only).
RELOAD_SIGNAL: int | None = getattr(signal, "SIGHUP", None)


def check_channel_fd(fd: int) -> str | None:
    """Why ``fd`` cannot be Node's IPC channel, or None if it can."""
    try:
        mode_bits = os.fstat(fd).st_mode
    except OSError as e:
        return f"fd {fd} is not open ({e.strerror})"
    if not stat.S_ISSOCK(mode_bits):
        return f"fd {fd} is not a socket (Node's IPC channel is a socketpair)"
    return None


def connect_channel(reactor: Any, fd: int, factory: Any) -> None:
    """Give the channel on ``fd`` to the reactor, with ``factory``'s protocol on it.

    The reactor works on a duplicate; the original is closed so end-of-file is seen
    as soon as the parent's end closes. Raises ``ValueError`` for a non-stream socket.
    """
    probe = socket.socket(fileno=os.dup(fd))
    try:
        family, kind = probe.family, probe.type
    finally:
        probe.close()
    if kind != socket.SOCK_STREAM:
        raise ValueError(f"fd {fd} is not a stream socket")
    reactor.adoptStreamConnection(fd, family, factory)
    os.close(fd)


def private_enough(mode: int) -> bool:
    """False when group or others may read a file with ``st_mode`` ``mode``."""
    return not (mode & (stat.S_IRWXG | stat.S_IRWXO))
