"""The start-up diet: deferred modules load on first use, and stay unloaded at start-up."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from unittest import SkipTest

from twisted.trial.unittest import SynchronousTestCase

from entryhw.fastpath.imports import MODULES, defer, is_deferred, loading


class DeferTests(SynchronousTestCase):
    def setUp(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="entryhw-defer-"))
        pkg = root / "dpkg"
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        (pkg / "plain.py").write_text(textwrap.dedent("""
            import sys
            sys.modules["dpkg"].ran.append("plain")
            VALUE = 42
        """))
        (pkg / "swaps.py").write_text(textwrap.dedent("""
            import sys, types
            sys.modules["dpkg"].ran.append("swaps")
            VALUE = "swapped"
            proxy = types.ModuleType(__name__)  # like Twisted's deprecation proxy
            proxy.VALUE = "proxy"
            sys.modules[__name__] = proxy
        """))
        (pkg / "user.py").write_text("from dpkg import plain, swaps\n")
        sys.path.insert(0, str(root))
        self.addCleanup(sys.path.remove, str(root))
        self.addCleanup(self._forget)
        import dpkg
        dpkg.ran = []  # type: ignore[attr-defined]
        self.pkg = dpkg

    def _forget(self) -> None:
        for name in [n for n in sys.modules if n == "dpkg" or n.startswith("dpkg.")]:
            del sys.modules[name]

    def test_runs_on_first_attribute_not_on_import(self) -> None:
        self.assertEqual(defer(["dpkg.plain", "dpkg.swaps"]), ["dpkg.plain", "dpkg.swaps"])
        from dpkg import user  # binds both modules, touches neither
        self.assertEqual(self.pkg.ran, [])
        self.assertTrue(is_deferred("dpkg.plain"))
        self.assertEqual(user.plain.VALUE, 42)
        self.assertEqual(self.pkg.ran, ["plain"])
        self.assertFalse(is_deferred("dpkg.plain"))
        self.assertTrue(is_deferred("dpkg.swaps"))

    def test_a_module_that_replaces_itself_still_loads(self) -> None:
        defer(["dpkg.swaps"])
        from dpkg import user
        self.assertEqual(user.swaps.VALUE, "swapped")
        self.assertIs(sys.modules["dpkg.swaps"], user.swaps)
        self.assertEqual(self.pkg.ran, ["plain", "swaps"])  # plain: not deferred here

    def test_loaded_and_missing_modules_are_skipped(self) -> None:
        import dpkg.plain
        self.assertEqual(defer(["dpkg.plain", "dpkg.nothing", "nope_no_such.module"]), [])
        self.assertIs(sys.modules["dpkg.plain"], dpkg.plain)
        self.assertFalse(is_deferred("dpkg.plain"))


class LoadingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.addCleanup(gc.unfreeze)
        self.addCleanup(gc.enable if gc.isenabled() else gc.disable)

    def test_no_collector_inside_and_frozen_after(self) -> None:
        gc.enable()
        before = gc.get_freeze_count()
        with loading():
            self.assertFalse(gc.isenabled())
            made = [[] for _ in range(1000)]
        self.assertTrue(gc.isenabled())
        self.assertGreaterEqual(gc.get_freeze_count(), before + len(made))

    def test_restores_on_error_and_keeps_a_disabled_collector_disabled(self) -> None:
        gc.enable()
        with self.assertRaises(KeyError), loading():
            raise KeyError("x")
        self.assertTrue(gc.isenabled())
        gc.disable()
        with loading():
            pass
        self.assertFalse(gc.isenabled())


_PROBE = """
import json, sys
WATCH = ("pycparser", "service_identity", "twisted.internet.tcp", "twisted.web.server", "autobahn")
def loaded():
    return [m for m in WATCH if m in sys.modules]
import entryhw.cli
from twisted.internet import reactor
from entryhw.fastpath.imports import MODULES, is_deferred
first = loaded()
import entryhw.election, entryhw.web, entryhw.socketio.server  # what the first connection needs
print(json.dumps({"eager": [m for m in MODULES if not is_deferred(m)], "first": first,
                  "serving": loaded()}))
"""


class StartupTests(SynchronousTestCase):
    """What a fresh ``entryhw-server`` process has imported when its reactor is about to run."""

    def probe(self, **env: str) -> dict[str, list[str]]:
        out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                             timeout=60, env={"PATH": "/usr/bin:/bin", **env}, check=True)
        return json.loads(out.stdout)

    def test_what_loads_before_listening_and_before_serving(self) -> None:
        seen = self.probe()
        self.assertTrue(MODULES)
        self.assertEqual(seen["eager"], [])
        # Binding the port needs the reactor only; the web stack comes after (hostsite.py).
        self.assertEqual(seen["first"], ["twisted.internet.tcp"])
        # TLS verification and Autobahn's cffi parser are not needed even to serve.
        self.assertEqual(seen["serving"], ["twisted.internet.tcp", "twisted.web.server",
                                           "autobahn"])

    def test_autobahn_nvx_can_be_asked_for(self) -> None:
        import autobahn.websocket

        if not getattr(autobahn.websocket, "HAS_NVX", False):
            raise SkipTest("this Autobahn was built without NVX")
        self.assertIn("pycparser", self.probe(AUTOBAHN_USE_NVX="1")["serving"])
