"""Package exports loaded on first use (PEP 562), for entryhw.engineio and entryhw.socketio.

A package's ``__init__`` names what it exports and where each name lives; importing the
package then costs nothing, and using a name imports just its module: the codecs need
no Twisted, a server never loads the client.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, names: Mapping[str, str], namespace: dict[str, Any]
            ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``names`` maps each public name
    to its module; a loaded name is stored in ``namespace`` (the package's globals)."""

    def getattr_(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # once loaded, an ordinary attribute
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *names})

    return getattr_, dir_
