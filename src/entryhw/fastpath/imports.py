"""Start-up diet: modules our dependencies import eagerly but we need late or never.

This is the one place where entryhw changes how other libraries' modules are
imported (``sys.modules`` entries); with ``ENTRYHW_FASTPATH=0`` none of it happens
and every import is a plain one.

Nearly all of ``entryhw-server``'s start-up time is Python importing Twisted,
Autobahn and pyOpenSSL, and the parent and browser wait for all of it. Some of
those imports only bind a name that is used on paths a plain-HTTP server never
takes before its first connection (or at all): Twisted's endpoint and TLS
verification machinery (``twisted.internet.endpoints``, ``ssl`` → ``_sslverify``
→ ``service_identity``, ``cryptography.x509``), ``http.cookiejar`` (bound by
``twisted.python.compat`` for old callers), the error-page helpers of
``twisted.web.util`` (with their template engine and XML parser).

:func:`defer` registers such modules with :class:`importlib.util.LazyLoader`:
``from package import module`` (the form those imports use) binds a module
object at once, and the module's code runs on its first attribute access,
with the same result as an eager import. Any other use loads the module then
and there, so a list entry can never break anything; at worst it saves
nothing. ``tests/test_imports.py`` checks which ones stay deferred.

:func:`loading` runs the import-heavy parts (before the reactor starts, and
the web side just after the port is bound) without the cyclic garbage
collector, and freezes what they loaded.

Frozen (the PyInstaller builds of packaging/, docs/dist.md), both tricks stay on, by
design and by measurement, so nothing here looks at ``sys.frozen``: PyInstaller's
importer has the ``exec_module`` that :class:`~importlib.util.LazyLoader` needs and
gives ``autobahn.twisted`` a ``__path__`` its submodules are found on, so every module
of :data:`MODULES` stays deferred and the WAMP stack unloaded, as in a venv. With them
off, a one-folder build's spawn to first browser connection took 49 ms longer (307 ms
against 258, medians of 8 alternating runs) and 4.8 MB more memory. The spec names the
deferred modules as hidden imports, so they are in the archive when first used.

Autobahn's optional native helpers (NVX) build their cffi declarations with
pycparser at import, about a tenth of our start-up. The WebSocket hot path in
:mod:`entryhw.engineio.frames` masks, unmasks and validates without them, so
``AUTOBAHN_USE_NVX`` defaults to ``0`` here; set it to ``1`` to get them back.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

#: Deferred by ``entryhw-server`` before it imports Twisted; see the module docstring.
MODULES = (
    "http.cookiejar",
    "twisted.internet.endpoints",
    "twisted.internet.ssl",
    "twisted.internet._sslverify",
    "twisted.python.urlpath",
    "cryptography.x509",
    "cryptography.hazmat.primitives.serialization",
    "twisted.web.util",
)


class _KeepSelf:
    """Wraps a module's loader for :class:`importlib.util.LazyLoader`.

    A few modules put a wrapper in their own ``sys.modules`` slot while they
    run (the deprecation proxies of Twisted and cryptography), which LazyLoader
    refuses. Whoever imported the deferred module already holds the module
    itself, so it goes back in the slot: only deprecation warnings are lost.
    """

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)

    def exec_module(self, module: ModuleType) -> None:
        name = module.__spec__.name  # type: ignore[union-attr]
        self.loader.exec_module(module)
        sys.modules[name] = module
        module.__loader__ = module.__spec__.loader = self.loader  # type: ignore[union-attr]


def defer(names: Iterable[str] = MODULES) -> list[str]:
    """Make each not-yet-imported module in ``names`` load on first use.

    Returns the names actually deferred (missing or already loaded ones are skipped).
    """
    deferred = []
    for name in names:
        if name in sys.modules:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            continue
        spec.loader = importlib.util.LazyLoader(_KeepSelf(spec.loader))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        parent, _, child = name.rpartition(".")
        if parent:
            # So ``from parent import child`` binds the module without touching it.
            setattr(sys.modules[parent], child, module)
        deferred.append(name)
    return deferred


def is_deferred(name: str) -> bool:
    """True if ``name`` was deferred and its code has not run yet."""
    lazy = getattr(importlib.util, "_LazyModule", None)
    return lazy is not None and isinstance(sys.modules.get(name), lazy)


@contextmanager
def loading() -> Iterator[None]:
    """Around import-heavy start-up work: no cyclic GC meanwhile, everything frozen after.

    Imports make few reference cycles, but the collector's passes over the
    growing heap were about 7% of start-up. What the block loaded lives as long
    as the process, so :func:`gc.freeze` then moves it out of the collector's
    sight: its later full passes (pauses on the message path) walk only what
    serving creates. (No collection before freezing: that alone is a 20 ms pause.)
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def install() -> None:
    """What entryhw.tap does before Twisted loads: NVX off by default (a public switch of
    Autobahn's), and :data:`MODULES` deferred unless the fast paths are off."""
    os.environ.setdefault("AUTOBAHN_USE_NVX", "0")
    if _enabled():
        defer(MODULES)


def _enabled() -> bool:
    from entryhw import fastpath

    return fastpath.ENABLED


class _Autobahn:
    """Autobahn's Twisted WebSocket classes, as :func:`autobahn_websocket` found them."""

    def __init__(self) -> None:
        from autobahn.twisted.resource import WebSocketResource
        from autobahn.twisted.websocket import (
            WebSocketClientFactory,
            WebSocketClientProtocol,
            WebSocketServerFactory,
            WebSocketServerProtocol,
            connectWS,
        )

        self.WebSocketResource = WebSocketResource
        self.WebSocketClientFactory = WebSocketClientFactory
        self.WebSocketClientProtocol = WebSocketClientProtocol
        self.WebSocketServerFactory = WebSocketServerFactory
        self.WebSocketServerProtocol = WebSocketServerProtocol
        self.connectWS = connectWS


_autobahn: _Autobahn | None = None


def autobahn_websocket() -> _Autobahn:
    """Autobahn's Twisted WebSocket classes, without its WAMP client if possible.

    ``import autobahn.twisted.websocket`` first runs ``autobahn/twisted/__init__.py``,
    which imports the whole WAMP application stack: about 40 ms and a few MB that a
    WebSocket server never uses, paid on every start. While these modules load, the
    package is registered bare (same ``__path__``, ``__init__`` not run), then
    unregistered, so a later ``import autobahn.twisted`` elsewhere still gets the real
    package, whose submodules are then the very same ones. If that fails in any way
    (or the fast paths are off), the classes come from a plain import.
    """
    global _autobahn
    if _autobahn is not None:
        return _autobahn
    bare = _enabled() and "autobahn.twisted" not in sys.modules
    if bare:
        try:
            spec = importlib.util.find_spec("autobahn.twisted")
            sys.modules["autobahn.twisted"] = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            try:
                _autobahn = _Autobahn()
            finally:
                del sys.modules["autobahn.twisted"]
        except Exception:  # not the package layout we know: import it as anyone would
            for name in [n for n in sys.modules if n.startswith("autobahn.twisted.")]:
                del sys.modules[name]
            _autobahn = None
    if _autobahn is None:
        _autobahn = _Autobahn()
    return _autobahn
