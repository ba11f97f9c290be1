"""The origin, host and hardware-client rules on their own (real peers: test_policy_peers.py)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from entryhw.policy import (
    REPEATED,
    HostPolicy,
    OriginPolicy,
    PolicyError,
    RequestPolicy,
    is_hardware_client,
)


class OriginPolicyTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        policy = OriginPolicy.build()
        for origin in (None, "https://playentry.org", "https://www.playentry.org",
                       "https://space.playentry.org", "https://a.b.playentry.org",
                       "https://PLAYENTRY.org", "https://playentry.org:443",
                       "http://localhost", "http://localhost:8080", "https://localhost:3000",
                       "http://127.0.0.1", "http://127.0.0.1:23518", "https://127.0.0.1:1",
                       "http://[::1]:8000", "https://[::1]"):
            self.assertTrue(policy.allows(origin), origin)
        for origin in ("https://evil.example", "http://playentry.org",
                       "https://playentry.org.evil.example", "https://evilplayentry.org",
                       "https://playentry.org:8443", "null", "file://", "", " ",
                       "https://localhost.evil.example", "http://127.0.0.2",
                       "http://[::2]", "ws://localhost", "https://playentry.org/path",
                       "https://user@playentry.org", "chrome-extension://abc",
                       "https://playentry.org:99999"):
            self.assertFalse(policy.allows(origin), origin)

    def test_added_origins_and_patterns(self) -> None:
        policy = OriginPolicy.build(["https://school.example:8443", "https://*.example.org",
                                     "null", "http://lab.local:*"])
        for origin in ("https://school.example:8443", "https://a.example.org",
                       "https://b.c.example.org", "null", "http://lab.local:1234"):
            self.assertTrue(policy.allows(origin), origin)
        for origin in ("https://school.example", "https://example.org", "file://",
                       "http://a.example.org", "https://lab.local:1234"):
            self.assertFalse(policy.allows(origin), origin)
        self.assertTrue(policy.allows("https://playentry.org"))  # the defaults stay

    def test_allow_any(self) -> None:
        policy = OriginPolicy.build(allow_any=True)
        for origin in ("https://evil.example", "null", "file://", "garbage"):
            self.assertTrue(policy.allows(origin))

    def test_bad_entries_are_refused_with_a_reason(self) -> None:
        for text in ("evil.example", "ftp://x.example", "https://", "https://a/b",
                     "https://*", "https://x.*.example", "https://x:0", "https://x:70000",
                     "https://a b"):
            with self.assertRaises(PolicyError, msg=text) as caught:
                OriginPolicy.build([text])
            self.assertIn(repr(text), str(caught.exception))


class HostPolicyTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        policy = HostPolicy.build("127.0.0.1")
        for host in (None, "127.0.0.1", "127.0.0.1:23518", "127.5.6.7:80", "localhost",
                     "localhost:23518", "LOCALHOST", "hw.playentry.org:23518",
                     "hardware.playentry.org", "[::1]:23518", "[::1]", "localhost."):
            self.assertTrue(policy.allows(host), host)
        for host in ("evil.example", "evil.example:23518", "10.0.0.1", "", "[::2]:1",
                     "localhost.evil.example", "playentry.org", "hw.playentry.org.evil",
                     "127.0.0.1:abc", "[::1", "[::1]x"):
            self.assertFalse(policy.allows(host), host)

    def test_interface_and_added_names(self) -> None:
        policy = HostPolicy.build("192.168.1.5", ["entry.lab", "Pupil-PC"])
        for host in ("192.168.1.5:23518", "entry.lab", "pupil-pc:23518", "127.0.0.1"):
            self.assertTrue(policy.allows(host), host)
        self.assertFalse(policy.allows("192.168.1.6"))

    def test_bad_names(self) -> None:
        for name in ("", "a/b", "a b"):
            self.assertRaises(PolicyError, HostPolicy.build, "127.0.0.1", [name])


class HardwareClientTests(SynchronousTestCase):
    def test_only_without_an_origin_and_without_browser_fetch_headers(self) -> None:
        self.assertTrue(is_hardware_client({"childServer": "true"}, {}))
        self.assertFalse(is_hardware_client({"childServer": "true"},
                                            {"origin": "https://playentry.org"}))
        self.assertFalse(is_hardware_client({"childServer": "true"}, {"origin": "null"}))
        # An <img> or no-cors fetch carries no Origin, but browsers mark it.
        self.assertFalse(is_hardware_client({"childServer": "true"},
                                            {"sec-fetch-mode": "no-cors"}))
        self.assertFalse(is_hardware_client({"childServer": "1"}, {}))
        self.assertFalse(is_hardware_client({}, {}))


class RequestPolicyTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.policy = RequestPolicy()

    def test_the_host_is_checked_first_then_the_origin(self) -> None:
        check = self.policy.check
        self.assertIsNone(check(b"/socket.io/", "127.0.0.1:23518", "https://playentry.org", None))
        self.assertIsNone(check(b"/status", "localhost", None, None))
        refusal = check(b"/", "evil.example", "https://evil.example", None)
        self.assertEqual(refusal.kind, "hostsRefused")
        refusal = check(b"/", "127.0.0.1", "https://evil.example", None)
        self.assertEqual((refusal.kind, refusal.key), ("originsRefused",
                                                       ("origin", "https://evil.example")))

    def test_a_repeated_origin_or_host_is_refused(self) -> None:
        # The engine would echo one copy while the gate checked another.
        self.assertEqual(self.policy.check(b"/", REPEATED, None, None).kind, "hostsRefused")
        self.assertEqual(self.policy.check(b"/", "127.0.0.1", REPEATED, None).kind,
                         "originsRefused")

    def test_no_cors_and_navigations_never_reach_engine_io(self) -> None:
        for mode in ("no-cors", "navigate", "nested-navigate"):
            self.assertIsNotNone(self.policy.check(b"/socket.io/", "127.0.0.1", None, mode))
            self.assertIsNone(self.policy.check(b"/modules/x", "127.0.0.1", None, mode))
        self.assertIsNone(self.policy.check(b"/socket.io/", "127.0.0.1",
                                            "https://playentry.org", "cors"))
        self.assertIsNone(self.policy.check(b"/socket.io/", "127.0.0.1",
                                            "https://playentry.org", "websocket"))
