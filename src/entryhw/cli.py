"""``entryhw-server``: the service in the foreground, logging to stderr, no pid file.

This is the single executable a parent spawns; twistd is there for those who
want its daemon options, but a child process needs none of them.
"""

from __future__ import annotations

import sys

from entryhw.deferred_imports import loading, slim_startup

slim_startup()  # before anything imports Twisted

with loading():
    from entryhw.logs import start_logging
    from entryhw.tap import Options, makeService


def main(argv: list[str] | None = None) -> int:
    """Run until shutdown; returns the exit status (0 after a clean stop)."""
    with loading():
        options = Options()
        options.parseOptions(sys.argv[1:] if argv is None else argv)
        start_logging(options["log-format"], options["log-level"], sys.stderr)

        from twisted.internet import reactor

        service = makeService(options)
    reactor.callWhenRunning(service.startService)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()
    return service.exit_code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
