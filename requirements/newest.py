"""tox -e newest: the versions the suite runs with, against the lock and pyproject.toml's bounds.

``--upgrade`` first upgrades every dependency pyproject.toml names (install_requires and the
``test`` extra) and all of theirs to their newest releases, past requirements/lock.txt and
past the upper bounds; the table then says, for each, whether a bound may move (if the
suite passes). Without it, only the table.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    from entryhw.fastpath import TESTED
except ImportError:  # run before the package is installed
    TESTED = {}

ROOT = Path(__file__).resolve().parents[1]


def declared() -> dict[str, SpecifierSet]:
    """pyproject.toml's dependencies and test extra: name -> the specifiers (merged)."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    lines = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    specs: dict[str, SpecifierSet] = {}
    for line in filter(None, (line.strip() for line in lines)):
        req = Requirement(line)
        name = canonicalize_name(req.name)
        specs[name] = specs.get(name, SpecifierSet()) & req.specifier
    return specs


def locked() -> dict[str, str]:
    """requirements/lock.txt's pins: name -> version."""
    pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", (ROOT / "requirements/lock.txt").read_text(),
                      re.MULTILINE)
    return {canonicalize_name(name): version for name, version in pins}


def verdict(name: str, version: Version, spec: SpecifierSet) -> str:
    if spec.contains(version, prereleases=True):
        return "within the bounds"
    uppers = [s.version for s in spec if s.operator in ("<", "<=")]
    if not uppers or version < Version(min(uppers, key=Version)):
        return f"outside {spec}"
    if name in TESTED:
        # fastpath.untested() turns the fast paths off outside TESTED: only the public paths ran.
        return (f"PAST {spec}, so its fast paths were off: raise the bound and"
                " entryhw.fastpath.TESTED together, then run tox -e newest again")
    return f"PAST {spec}: move the bound if the suite passes"


def report() -> None:
    specs, pins = declared(), locked()
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    rows = [("package", "running", "lock", "pyproject.toml", "")]
    for name, spec in sorted(specs.items()):
        version = installed.get(name, "-")
        note = verdict(name, Version(version), spec) if version != "-" else "NOT INSTALLED"
        rows.append((name, version, pins.get(name, "-"), str(spec) or "any", note))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    print("tox -e newest: the versions the suite runs with")
    for row in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
              + "  " + row[4])
    others = sorted(
        f"{name}=={v}" + ("" if pins.get(name) in (None, v) else f" (lock {pins[name]})")
        for name, v in installed.items() if name not in specs and name != "entryhw")
    print("  and: " + ", ".join(others))


def main(argv: list[str]) -> int:
    if "--upgrade" in argv:
        subprocess.run([sys.executable, "-m", "pip", "install", "--upgrade",
                        "--upgrade-strategy", "eager", *sorted(declared())], check=True)
    report()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
