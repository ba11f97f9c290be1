"""``/modules/NAME``: hardware block scripts, confined to one folder.

The offline Entry app loads ``<script src=".../modules/NAME">``; the server
reads ``NAME.json`` in the modules folder and serves the file named by its
``block`` field. The original trusted the URL; here both the json and the
block file must resolve (symlinks included) to paths inside the folder.
"""

from __future__ import annotations

import json
import os

from twisted.web.resource import Resource
from twisted.web.server import Request

from entryhw.faults import Faults

#: Largest json descriptor or block file served (bytes).
MAX_FILE = 16 * 1024 * 1024


class ModuleError(Exception):
    """Why a module cannot be served: ``status`` is the HTTP code."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _inside(root: str, path: str) -> str | None:
    """``path`` resolved, if it stays inside ``root`` (already resolved); else None."""
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root or real == root:
        return None
    return real


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise ModuleError(404, f"{os.path.basename(path)} is larger than {MAX_FILE} bytes")
    return data


def find_block(folder: str, segments: list[str], forbidden: tuple[str, ...] = ()) -> bytes:
    """The block script for URL path ``segments`` (after /modules/), or ModuleError.

    Nothing inside a ``forbidden`` folder (the certificate folder) is served,
    even if the modules folder contains it or links into it.
    """
    root = os.path.realpath(folder)
    forbidden = tuple(os.path.realpath(f) for f in forbidden)
    if len(segments) != 1:
        raise ModuleError(404, "module names are one path segment")
    name = segments[0]
    if (not name or name.startswith(".") or "/" in name or "\\" in name or "\x00" in name
            or os.path.isabs(name)):
        raise ModuleError(404, f"refused module name {name!r}")
    descriptor = _inside(root, os.path.join(root, name + ".json"))
    if descriptor is None or not os.path.isfile(descriptor):
        raise ModuleError(404, f"no module {name!r}")
    try:
        meta = json.loads(_read(descriptor))
    except (OSError, ValueError) as e:
        raise ModuleError(400, f"{name}.json is not readable JSON ({e})") from None
    block = meta.get("block") if isinstance(meta, dict) else None
    if not isinstance(block, str) or not block:
        raise ModuleError(400, f"{name}.json has no 'block' field")
    if "\x00" in block or os.path.isabs(block):
        raise ModuleError(404, f"{name}.json: refused block path {block!r}")
    target = _inside(root, os.path.join(root, block))
    if target is not None and any(os.path.commonpath([f, target]) == f for f in forbidden):
        raise ModuleError(404, f"{name}.json: block {block!r} is in the certificate folder")
    if target is None or not os.path.isfile(target):
        raise ModuleError(404, f"{name}.json: block {block!r} is not a file inside the folder")
    try:
        return _read(target)
    except OSError as e:
        raise ModuleError(404, f"{name}.json: cannot read {block!r} ({e.strerror})") from None


class ModulesResource(Resource):
    """Serves :func:`find_block`; 404 for everything when no folder is configured."""

    isLeaf = True

    def __init__(self, folder: str | None, forbidden: tuple[str, ...] = (),
                 faults: Faults | None = None) -> None:
        super().__init__()
        self.folder = folder
        self.forbidden = forbidden
        self.faults = faults if faults is not None else Faults()

    def render_GET(self, request: Request) -> bytes:
        try:
            if self.folder is None:
                raise ModuleError(404, "no --modules folder configured")
            segments = [s.decode("utf-8") for s in request.postpath]
            body = find_block(self.folder, segments, self.forbidden)
        except UnicodeDecodeError:
            return self._refuse(request, ModuleError(404, "module name is not UTF-8"))
        except ModuleError as e:
            return self._refuse(request, e)
        request.setHeader(b"content-type", b"application/javascript; charset=utf-8")
        return body

    def _refuse(self, request: Request, error: ModuleError) -> bytes:
        # Any page can ask for any path: a line per reason a minute, not per request.
        self.faults.throttled("GET {path}: {status} ({reason})", key=("modules", error.reason),
                              path=request.path[:200], status=error.status, reason=error.reason)
        request.setResponseCode(error.status)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"Bad Request" if error.status == 400 else b"Not Found"
