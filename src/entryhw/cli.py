"""``entryhw-server``: the service in the foreground, logging to stderr, no pid file.

This is the single executable a parent spawns; twistd is there for those who want its
daemon options, but a child process needs none of them. Both run the same
``makeService`` and the same start-up (entryhw.tap applies the import diet).
"""

from __future__ import annotations

import gc
import sys

from entryhw.fastpath.imports import loading

#: The collector's first threshold while serving: Python's 700 container allocations
#: came every few dozen messages, and its young passes were a few percent of the CPU
#: under steady load; the frozen start-up heap (fastpath.imports.loading) keeps the
#: rarer full passes short.
GC_GEN0 = 10_000

with loading():
    from entryhw import tap  # first: it applies the import diet (entryhw.fastpath.imports)
    from entryhw.logs import start_logging


def main(argv: list[str] | None = None) -> int:
    """Run until shutdown; returns the exit status (0 after a clean stop)."""
    with loading():
        from entryhw.fastpath import reactor as fast_reactor
        from entryhw.frozen import follow_bootloader

        fast_reactor.install()  # before anything imports twisted.internet.reactor

        follow_bootloader()  # a one-file build's server stops with its bootloader
        options = tap.Options()
        options.parseOptions(sys.argv[1:] if argv is None else argv)
        start_logging(options["log-format"], options["log-level"], sys.stderr)

        from twisted.application import service
        from twisted.internet import reactor

        entry = tap.makeService(options)
        application = service.Application("entryhw")
        entry.setServiceParent(application)
        # What twisted.application.app.startApplication does (its module would import
        # twistd's runner, pdb and profile included, into every start).
        root = service.IService(application)
        root.privilegedStartService()
        reactor.callWhenRunning(root.startService)
        reactor.addSystemEventTrigger("before", "shutdown", root.stopService)
    gc.set_threshold(GC_GEN0, *gc.get_threshold()[1:])
    reactor.run()
    return entry.exit_code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
