"""Configuration beside the executable: ``entryhw.toml`` and ``certs/``, for a zero-argument start.

Entry Hardware spawns its server with no arguments, so everything it needs must be found
without them: in the folder of the executable itself (the frozen binary's folder, or the
one holding the ``entryhw-server`` script of an installed package) entryhw looks for

* ``entryhw.toml`` (optional): keys are the long options (``port = 23518``,
  ``allow-origin = ["https://school.example"]``, ``log-level = "debug"``, a flag as
  ``tls-only = true``);
* ``certs/`` (optional): the four-file layout, used when no ``--certs``/``--cert-file``
  is given;
* ``modules/`` (optional): served under ``/modules/`` when no ``--modules`` is given.

``--config PATH`` or ``ENTRYHW_CONFIG`` names another file (then it must exist). The
file's options come first and the command line's after them, so the command line wins
(a repeatable option adds to the file's list). The file is part of the command line:
it is read while options are parsed, the certificates later, by ``makeService``.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE_NAME = "entryhw.toml"
CERTS_DIR = "certs"
MODULES_DIR = "modules"
ENV_VAR = "ENTRYHW_CONFIG"


class ConfigFileError(Exception):
    """The configuration file cannot be used; the message names it and says why."""


def home(executable: str | None = None, frozen: bool | None = None) -> Path:
    """The folder entryhw looks in: the frozen binary's, else the running script's."""
    # Not resolved: a link to the executable in another folder configures from there.
    if frozen if frozen is not None else getattr(sys, "frozen", False):
        return Path(os.path.abspath(executable or sys.executable)).parent
    script = executable or (sys.argv[0] if sys.argv and sys.argv[0] else sys.executable)
    return Path(os.path.abspath(script)).parent


@dataclass(frozen=True)
class Found:
    """What the lookup found: the file read (or None) and where it looked."""

    path: Path | None
    looked_in: Path
    argv: tuple[str, ...] = ()


def find(argv: Sequence[str], environ: Mapping[str, str] = os.environ,
         folder: Path | None = None, flags: Iterable[str] = (),
         parameters: Iterable[str] = ()) -> Found:
    """The configuration file for this command line, read and turned into options."""
    explicit = _explicit(argv) or environ.get(ENV_VAR) or None
    looked_in = folder if folder is not None else home()
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigFileError(f"--config {explicit!r}: no such file")
    else:
        path = looked_in / FILE_NAME
        if not path.is_file():
            return Found(None, looked_in)
    try:
        with path.open("rb") as f:
            table = tomllib.load(f)
    except OSError as e:
        raise ConfigFileError(f"{path}: cannot read it ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigFileError(f"{path}: not valid TOML ({e})") from None
    return Found(path, looked_in, tuple(to_argv(table, str(path), flags, parameters)))


def _explicit(argv: Sequence[str]) -> str | None:
    """The value of the last ``--config`` on the command line, if any."""
    found = None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith("--config="):
            found = arg.split("=", 1)[1]
    return found


#: Options a file may not set: they are about the command line itself.
NOT_IN_FILE = frozenset({"config", "help", "version"})


def to_argv(table: Mapping[str, Any], where: str, flags: Iterable[str] = (),
            parameters: Iterable[str] = ()) -> list[str]:
    """``{"port": 8000, "tls-only": true, "allow-origin": [...]}`` as long options.

    ``flags``/``parameters`` (the option names, when given) refuse unknown keys and
    values of the wrong kind here, with the file's name in the message.
    """
    flags, parameters = set(flags), set(parameters)
    argv: list[str] = []
    for key, value in table.items():
        if key in NOT_IN_FILE:
            raise ConfigFileError(f"{where}: {key!r} cannot be set in the file")
        if (flags or parameters) and key not in flags and key not in parameters:
            raise ConfigFileError(f"{where}: unknown key {key!r} (keys are the long options, "
                                  f"see --help)")
        if isinstance(value, bool):
            if parameters and key in parameters:
                raise ConfigFileError(f"{where}: {key} needs a value, not {value}")
            if value:
                argv.append(f"--{key}")
        elif isinstance(value, list):
            for item in value:
                argv += [f"--{key}", _scalar(item, key, where)]
        else:
            if flags and key in flags:
                raise ConfigFileError(f"{where}: {key} is a flag: true or false")
            argv += [f"--{key}", _scalar(value, key, where)]
    return argv


def _scalar(value: Any, key: str, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigFileError(f"{where}: {key} must be a string or a number")
    return str(value)


def beside(folder: Path, name: str) -> Path | None:
    """The folder ``name`` (``certs``, ``modules``) beside the executable, if there is one."""
    path = folder / name
    return path if path.is_dir() else None
