"""entryhw.hostos: the operating-system seam (POSIX here; docs/platforms.md for the rest)."""

from __future__ import annotations

import os
import signal
import socket

from twisted.trial.unittest import SynchronousTestCase

from entryhw import hostos


class ChannelFdTests(SynchronousTestCase):
    def test_only_an_open_socket_can_be_the_channel(self) -> None:
        ours, theirs = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)
        self.assertIsNone(hostos.check_channel_fd(ours.fileno()))
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        self.assertIn("is not a socket", hostos.check_channel_fd(r) or "")
        closed = os.dup(r)
        os.close(closed)
        self.assertIn("is not open", hostos.check_channel_fd(closed) or "")

    def test_a_datagram_socket_is_refused(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(theirs.close)
        fd = ours.detach()
        self.addCleanup(lambda: os.close(fd) if _is_open(fd) else None)
        with self.assertRaises(ValueError):
            hostos.connect_channel(object(), fd, object())


class PermissionTests(SynchronousTestCase):
    def test_group_or_others_any_bit_is_too_much(self) -> None:
        self.assertTrue(hostos.private_enough(0o100600))
        self.assertTrue(hostos.private_enough(0o100400))
        self.assertFalse(hostos.private_enough(0o100640))
        self.assertFalse(hostos.private_enough(0o100604))

    def test_signals(self) -> None:
        self.assertEqual(hostos.STOP_SIGNALS, (signal.SIGTERM, signal.SIGINT))
        self.assertEqual(hostos.RELOAD_SIGNAL, signal.SIGHUP)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class _Resource:
    """resource as macOS behaves: an unlimited hard limit, but at most ``most`` granted."""

    RLIMIT_NOFILE = 8
    RLIM_INFINITY = -1

    def __init__(self, soft: int, hard: int, most: int) -> None:
        self.soft, self.hard, self.most = soft, hard, most

    def getrlimit(self, which: int) -> tuple[int, int]:
        return self.soft, self.hard

    def setrlimit(self, which: int, limits: tuple[int, int]) -> None:
        if limits[0] > self.most:
            raise ValueError("not allowed")
        self.soft = limits[0]


class FdLimitTests(SynchronousTestCase):
    def test_steps_down_to_what_the_system_grants(self) -> None:
        from entryhw import fdlimit

        fake = _Resource(256, _Resource.RLIM_INFINITY, 10240)
        self.patch(fdlimit, "resource", fake)
        self.assertEqual(fdlimit.raise_limit(), (256, 10240))
        self.assertEqual(fake.soft, 10240)

    def test_the_hard_limit_when_it_is_granted(self) -> None:
        from entryhw import fdlimit

        self.patch(fdlimit, "resource", _Resource(1024, 4096, 1 << 20))
        self.assertEqual(fdlimit.raise_limit(), (1024, 4096))
        self.patch(fdlimit, "resource", _Resource(1024, 4096, 512))  # refuses everything
        self.assertEqual(fdlimit.raise_limit(), (1024, 1024))
