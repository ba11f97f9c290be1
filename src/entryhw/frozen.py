"""A PyInstaller one-file build runs as two processes; make them act as one.

A one-folder build (``dist/entryhw-server-dir/``) is one process, like the venv's
script. A one-file build (``dist/entryhw-server``, see docs/dist.md) is two: the
bootloader the parent spawned (the pid it knows, which forwards the signals it gets and
exits with the server's status) and, as its only child, the Python process that serves,
unpacked under ``$TMPDIR``. Two things would differ for the parent:

* SIGKILL of the pid it knows kills the bootloader alone, and the server would go on
  serving (until the watchdog noticed, or for ever without a parent channel). So the
  server asks the kernel for SIGTERM when its bootloader goes (``PR_SET_PDEATHSIG``)
  and stops at once, cleanly.
* The server's parent is the bootloader, which outlives the real parent, so the
  watchdog's "re-parented" check would never fire. :func:`parent_pid` is therefore the
  bootloader's parent: it changes when either of them goes.

Linux only (``/proc``, ``prctl``); anywhere else, and when not frozen, nothing changes.
"""

from __future__ import annotations

import os
import signal
import sys

#: prctl(2) option: the signal this process gets when its parent thread exits.
PR_SET_PDEATHSIG = 1


def bootloader() -> int | None:
    """The pid of this process's one-file bootloader, or None (not a one-file build)."""
    if not getattr(sys, "frozen", False):
        return None
    ppid = os.getppid()
    try:
        # The bootloader runs the server from the same executable file.
        same = os.readlink(f"/proc/{ppid}/exe") == os.readlink("/proc/self/exe")
    except OSError:
        return None
    return ppid if same else None


def parent_pid() -> int:
    """The pid of the parent as the parent sees it: ``os.getppid()``, or, under a
    one-file bootloader, the bootloader's parent (0 if it cannot be read)."""
    boot = bootloader()
    if boot is None:
        return os.getppid()
    try:
        with open(f"/proc/{boot}/stat", "rb") as f:
            stat = f.read()
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        return int(stat[stat.rindex(b")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def follow_bootloader() -> bool:
    """Under a one-file bootloader: get SIGTERM when it exits. True if that was set up."""
    boot = bootloader()
    if boot is None:
        return False
    import ctypes  # here only: one-file builds on Linux

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != boot:  # it went before we asked
        os.kill(os.getpid(), signal.SIGTERM)
    return True
