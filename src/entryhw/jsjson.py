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
import re
from typing import Any

from entryhw.limits import MAX_DEPTH

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
_raw_decode = STRICT.raw_decode
#: JSON whitespace, the only characters JSON.parse skips around a document.
_WHITESPACE = " \t\n\r"
#: The stdlib, compact and unescaped, to ``str``; ValueError for NaN/Infinity and cycles.
dumps_text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_SURROGATE = re.compile("[\ud800-\udfff]")
_dumps_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode


class TooDeep(ValueError):
    """A document nested deeper than the limit (see :data:`entryhw.limits.MAX_DEPTH`)."""

    def __init__(self, limit: int) -> None:
        # The limit a user meets is the payload's; ``limit`` includes the envelope.
        super().__init__(f"nested more than {MAX_DEPTH} levels deep")


def loads(data: bytes | str, max_depth: int = MAX_DEPTH + 1, start: int = 0) -> Any:
    """``JSON.parse(data.slice(start))``, refusing documents nested deeper than ``max_depth``.

    ``start`` reads the JSON tail of a larger frame (a Socket.IO packet after its header)
    without slicing it on the stdlib path. Raises :class:`TooDeep` (a ValueError) past the
    limit, ValueError for bad JSON (``json.JSONDecodeError`` for the grammar, NaN/Infinity,
    trailing data; an integer of more than 4300 digits), UnicodeDecodeError for bytes that
    are not UTF-8; nothing else.
    """
    if orjson is not None:
        try:
            value = orjson.loads(data[start:] if start else data)
        except orjson.JSONDecodeError:
            pass  # let the stdlib accept what JSON.parse accepts, or say why not
        else:
            check_depth(data, value, max_depth)
            return value
    if isinstance(data, str):
        text = data
    else:
        text, start = (data[start:] if start else data).decode("utf-8"), 0
    end = len(text)
    if start < end and text[start] in _WHITESPACE:  # rare: skip it at C speed
        start = end - len(text[start:].lstrip(_WHITESPACE))
    try:
        # raw_decode(s, idx) runs the C scanner from idx: no slice of the frame, none of
        # the whitespace regexes json.loads() runs around it.
        value, stop = _raw_decode(text, start)
    except RecursionError:  # the C scanner guards its recursion: this is a deep document
        raise TooDeep(max_depth) from None
    if stop != end and text[stop:].strip(_WHITESPACE):
        raise json.JSONDecodeError("Extra data", text, stop)
    check_depth(text, value, max_depth)
    return value


def check_depth(text: bytes | str, value: Any, limit: int) -> None:
    """Raise :class:`TooDeep` if ``value`` (parsed from the JSON ``text``) nests past ``limit``.

    Nesting needs two characters and a bracket per level, so a short text
    passes at once, a longer one with fewer brackets than the limit after two
    C-speed scans; only bracket-heavy documents are walked.
    """
    if len(text) <= 2 * limit:  # n levels take 2n characters at least
        return
    if isinstance(text, str):
        brackets = text.count("[") + text.count("{")
    else:
        brackets = text.count(b"[") + text.count(b"{")
    if brackets > limit and depth_exceeds(value, limit):
        raise TooDeep(limit)


def depth_exceeds(value: Any, limit: int) -> bool:
    """True if ``value`` (lists and dicts, as parsed) is nested deeper than ``limit``."""
    if type(value) is not dict and type(value) is not list:
        return False
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if type(node) is dict else node
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
    return False


def well_formed(body: str) -> str:
    """``body`` (JSON text) with lone surrogates as ``\\uXXXX`` escapes, as ES2019's
    well-formed ``JSON.stringify`` writes them, so that it always encodes as UTF-8.

    Surrogates only come from strings, i.e. from inside JSON string literals, where the
    escape means the same thing.
    """
    if body.isascii() or _SURROGATE.search(body) is None:
        return body
    return _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", body)


def node_buffer(value: Any) -> Any:
    """What Node's ``JSON.stringify`` makes of a Buffer: ``{"type": "Buffer", "data": [...]}``.

    A browser may send binary data; the original server handed it to Node's
    IPC, which serialises a Buffer this way, so the parent expects that shape.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        return {"type": "Buffer", "data": list(bytes(value))}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(obj: Any) -> bytes:
    """``JSON.stringify`` as UTF-8: compact, NaN/Infinity as ``null``, binary as Node's Buffer.

    A lone surrogate (which JS strings may hold but UTF-8 cannot) is written as
    a ``\\uXXXX`` escape, which JS reads back unchanged. Raises TypeError for
    values JSON cannot carry and ValueError for circular or too deeply nested data.
    """
    if orjson is not None:
        try:
            return orjson.dumps(obj, default=node_buffer)
        except orjson.JSONEncodeError:
            pass
    try:
        try:
            text = dumps_text(obj)
        except TypeError:
            obj = _plain(obj)
            text = dumps_text(obj)
        except ValueError as e:
            if "Circular" in str(e):
                raise
            obj = _plain(obj)
            text = dumps_text(obj)
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            return _dumps_ascii(obj).encode("ascii")
    except RecursionError:
        raise ValueError("nested too deeply to serialise") from None


def dumps_utf8_fast(obj: Any) -> bytes:
    """:func:`dumps_text_fast` as UTF-8: orjson's bytes as they are (it refuses lone
    surrogates, so its output is always well-formed), else the stdlib's, made so."""
    if orjson is not None:
        try:
            return orjson.dumps(obj)
        except orjson.JSONEncodeError:
            pass
    try:
        return well_formed(dumps_text(obj)).encode()
    except RecursionError:
        raise ValueError("nested too deeply to serialise") from None


def dumps_text_fast(obj: Any) -> str:
    """:data:`dumps_text`, through orjson when it takes ``obj`` (NaN/Infinity then become null).

    ValueError for data nested too deeply for either encoder, as for NaN or cycles.
    """
    if orjson is not None:
        try:
            return orjson.dumps(obj).decode()
        except orjson.JSONEncodeError:
            pass
    try:
        return dumps_text(obj)
    except RecursionError:
        raise ValueError("nested too deeply to serialise") from None


def _plain(obj: Any) -> Any:
    """A copy the stdlib encoder takes: NaN/Infinity as None, binary as Node's Buffer."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, bytes | bytearray | memoryview):
        return node_buffer(obj)
    return obj
