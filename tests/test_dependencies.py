"""pyproject.toml's bounds, requirements/*lock.txt and fastpath.TESTED agree (README,
Dependencies)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from twisted.trial.unittest import SynchronousTestCase

from entryhw import fastpath

ROOT = Path(__file__).resolve().parents[1]


def _project() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]


RUNTIME = [Requirement(line) for line in _project()["dependencies"]]
TEST = [Requirement(line) for line in _project()["optional-dependencies"]["test"]]


def _pins(name: str) -> dict[str, tuple[str, list[str]]]:
    """A lock file's entries: name -> (version, hashes)."""
    text = (ROOT / "requirements" / name).read_text()
    entry = r"^([A-Za-z0-9._-]+)==(\S+)((?:\s*\\\n\s*--hash=\S+)*)"
    entries = re.findall(entry, text, re.MULTILINE)
    return {canonicalize_name(n): (v, re.findall(r"--hash=(\S+)", hashes))
            for n, v, hashes in entries}


class LockTests(SynchronousTestCase):
    def test_every_dependency_is_pinned_within_its_bounds(self) -> None:
        pins = _pins("lock.txt")
        for req in RUNTIME + TEST:
            name = canonicalize_name(req.name)
            self.assertIn(name, pins, f"{name} is not in requirements/lock.txt: run tox -e lock")
            self.assertIn(Version(pins[name][0]), req.specifier,
                          f"lock.txt pins {name} {pins[name][0]}, outside pyproject.toml's {req}")

    def test_every_pin_has_hashes(self) -> None:
        for lock in ("lock.txt", "dist-lock.txt"):
            pins = _pins(lock)
            self.assertIn("twisted", pins)
            for name, (_, hashes) in pins.items():
                self.assertTrue(hashes, f"{lock}: {name} has no --hash")
                self.assertTrue(all(h.startswith("sha256:") for h in hashes), (lock, name))

    def test_the_dist_lock_pins_the_runtime_as_the_lock_does(self) -> None:
        pins, dist = _pins("lock.txt"), _pins("dist-lock.txt")
        self.assertIn("pyinstaller", dist)
        for req in RUNTIME:
            name = canonicalize_name(req.name)
            self.assertEqual(dist[name][0], pins[name][0], name)
        for name, (version, _) in dist.items():
            if name in pins:
                self.assertEqual(version, pins[name][0], name)


class BoundTests(SynchronousTestCase):
    def test_every_runtime_dependency_has_an_upper_bound(self) -> None:
        for req in RUNTIME:
            self.assertTrue(any(s.operator == "<" for s in req.specifier), str(req))

    def test_the_bounds_are_the_range_fastpath_tested_names(self) -> None:
        bounds = {canonicalize_name(r.name): r.specifier for r in RUNTIME}
        for dist, (low, high) in fastpath.TESTED.items():
            spec = {s.operator: Version(s.version) for s in bounds[dist]}
            tested = {">=": Version("{}.{}".format(*low)), "<": Version("{}.{}".format(*high))}
            self.assertEqual(spec, tested, f"pyproject.toml's {dist}{bounds[dist]} is not"
                             f" fastpath.TESTED's {low}-{high}")
