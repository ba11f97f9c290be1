"""Autobahn's Twisted WebSocket classes, without its WAMP client.

``import autobahn.twisted.websocket`` first runs ``autobahn/twisted/__init__.py``,
which imports the whole WAMP application stack: about 40 ms and a few MB that
a WebSocket server never uses, paid on every start of a process whose start
time is measured. While our modules load, the package is registered bare
(same ``__path__``, ``__init__`` not run), then unregistered again, so any
later ``import autobahn.twisted`` elsewhere in the process still gets the
real package, whose submodules are then the very same ones.
"""

from __future__ import annotations

import importlib.util
import sys


def _register_bare_package() -> bool:
    if "autobahn.twisted" in sys.modules:
        return False
    spec = importlib.util.find_spec("autobahn.twisted")
    assert spec is not None
    sys.modules["autobahn.twisted"] = importlib.util.module_from_spec(spec)
    return True


_registered = _register_bare_package()
try:
    from autobahn.twisted.resource import WebSocketResource
    from autobahn.twisted.websocket import (
        WebSocketClientFactory,
        WebSocketClientProtocol,
        WebSocketServerFactory,
        WebSocketServerProtocol,
        connectWS,
    )
finally:
    if _registered:
        del sys.modules["autobahn.twisted"]

__all__ = [
    "WebSocketClientFactory",
    "WebSocketClientProtocol",
    "WebSocketResource",
    "WebSocketServerFactory",
    "WebSocketServerProtocol",
    "connectWS",
]
