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
