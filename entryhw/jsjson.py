"""JSON as JavaScript reads and writes it, fast where orjson is installed.

Every Entry message is parsed once and serialised once on its way through
(Node IPC on one side, Socket.IO on the other), and the stdlib ``json`` was
about a third of that per-message cost; orjson does the same work 5-10x
faster. It refuses a few things the stdlib takes (lone surrogates, integers
beyond 64 bits on output, numbers beyond a double), so both functions fall
back to the stdlib for those, and the results stay what ``JSON.parse`` /
``JSON.stringify`` give. One visible difference with orjson: integers beyond
64 bits parse as floats, i.e. as the doubles JavaScript makes of them.
"""

from __future__ import annotations

import json
import math
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; kept optional for odd platforms
    orjson = None  # type: ignore[assignment]

#: Which parser/serialiser is in use, for /status and --version.
BACKEND = "orjson" if orjson is not None else "json"


def _reject_constant(name: str) -> Any:
    # JSON.parse rejects NaN/Infinity; so do we, to read exactly what Node reads.
    raise ValueError(f"{name} is not JSON")


#: The stdlib decoder with JSON.parse's grammar (no NaN/Infinity).
STRICT = json.JSONDecoder(parse_constant=_reject_constant)
#: The stdlib, compact and unescaped, to ``str``; ValueError for NaN/Infinity and cycles.
dumps_text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_dumps_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode


def loads(data: bytes | str) -> Any:
    """``JSON.parse``: raises ValueError (bad JSON), UnicodeDecodeError or RecursionError."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # let the stdlib accept what JSON.parse accepts, or say why not
    return STRICT.decode(data.decode("utf-8") if isinstance(data, bytes) else data)


def dumps(obj: Any) -> bytes:
    """``JSON.stringify`` as UTF-8: compact, NaN/Infinity as ``null``.

    A lone surrogate (which JS strings may hold but UTF-8 cannot) is written as
    a ``\\uXXXX`` escape, which JS reads back unchanged. Raises TypeError for
    values JSON cannot carry and ValueError for circular data.
    """
    if orjson is not None:
        try:
            return orjson.dumps(obj)
        except orjson.JSONEncodeError:
            pass
    try:
        text = dumps_text(obj)
    except ValueError as e:
        if "Circular" in str(e):
            raise
        obj = _finite(obj)
        text = dumps_text(obj)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _dumps_ascii(obj).encode("ascii")


def dumps_text_fast(obj: Any) -> str:
    """:data:`dumps_text`, through orjson when it takes ``obj`` (NaN/Infinity then become null)."""
    if orjson is not None:
        try:
            return orjson.dumps(obj).decode()
        except orjson.JSONEncodeError:
            pass
    return dumps_text(obj)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj
