"""The Entry routing rules without any I/O.

docs/protocol.md: "The parent channel", "Routing on the host" and "Client mode (cloud PCs)".
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from entryhw.bridge import BROWSERS, CLIENT, CLOUD, HOST, SINGLE, Bridge, room_id


class Recorder:
    """Outputs that remember every call in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def to_parent(self, key: str, *value: Any) -> None:
        self.calls.append(("parent", key, *value))

    def emit_to_socket(self, sid: str, event: str, payload: Any) -> None:
        self.calls.append(("socket", sid, event, payload))

    def emit_to_room(self, room: str, event: str, payload: Any) -> None:
        self.calls.append(("room", room, event, payload))

    def join(self, sid: str, room: str) -> None:
        self.calls.append(("join", sid, room))

    def emit_to_host(self, event: str, payload: Any) -> None:
        self.calls.append(("host", event, payload))

    def open(self) -> None:
        self.calls.append(("open",))

    def take(self) -> list[tuple[Any, ...]]:
        calls, self.calls = self.calls, []
        return calls


def host() -> tuple[Bridge, Recorder]:
    out = Recorder()
    bridge = Bridge(out)
    bridge.became_host()
    out.take()
    return bridge, out


class HostSingleModeTests(SynchronousTestCase):
    def test_became_host_reports_modes(self) -> None:
        out = Recorder()
        Bridge(out).became_host()
        self.assertEqual(out.calls, [("parent", "runningModeChanged", HOST),
                                     ("parent", "cloudModeChanged", SINGLE)])

    def test_browser_connects_joins_its_room(self) -> None:
        bridge, out = host()
        bridge.socket_connected("b1", {"client": "true", "roomId": "r1"})
        self.assertEqual(out.take(), [("join", "b1", BROWSERS), ("join", "b1", "r1"),
                                      ("parent", "connection"),
                                      ("parent", "cloudModeChanged", SINGLE)])

    def test_message_goes_to_parent_unchanged_and_acks(self) -> None:
        bridge, out = host()
        bridge.socket_connected("b1", {"roomId": "r1"})
        out.take()
        payload = {"data": "[1,2]", "mode": 0, "type": "utf8", "nested": {"한": ["😀"]}}
        self.assertIs(bridge.message("b1", payload), True)
        self.assertEqual(out.take(), [("parent", "data", payload)])
        self.assertEqual(bridge.message("b1", {"key": 7, "data": 1}), 7)
        self.assertIs(bridge.message("b1", "plain string"), True)

    def test_send_reaches_every_browser(self) -> None:
        bridge, out = host()
        bridge.from_parent("send", {"x": 1})
        bridge.from_parent("disconnectHardware", None)
        self.assertEqual(out.take(), [("room", BROWSERS, "message", {"data": {"x": 1}}),
                                      ("room", BROWSERS, "message",
                                       {"data": "disconnectHardware"})])

    def test_disconnect_reports_close_with_room(self) -> None:
        bridge, out = host()
        bridge.socket_connected("b1", {"roomId": "r1"})
        bridge.socket_connected("b2", {})
        out.take()
        bridge.socket_disconnected("b1")
        bridge.socket_disconnected("b2")
        bridge.socket_disconnected("unknown")
        self.assertEqual(out.take(), [("parent", "close", "r1"),
                                      ("parent", "cloudModeChanged", SINGLE),
                                      ("parent", "close"),
                                      ("parent", "cloudModeChanged", SINGLE)])

    def test_unknown_parent_key_is_not_ours(self) -> None:
        bridge, out = host()
        self.assertFalse(bridge.from_parent("frobnicate", 1))
        self.assertEqual(bridge.faults.counts().get("ipcRejected"), 1)
        self.assertTrue(bridge.from_parent("open", None))
        self.assertEqual(out.take(), [("open",)])
        self.assertTrue(bridge.from_parent("connectHardwareSuccess", "arduino"))
        self.assertTrue(bridge.from_parent("connectHardwareFailed", None))
        self.assertEqual((bridge.stats.hardware_connected, bridge.stats.hardware_failed), (1, 1))
        self.assertEqual(out.take(), [])


class HostCloudModeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.bridge, self.out = host()
        self.bridge.from_parent("addRoomId", "own")
        b = self.bridge
        b.socket_connected("b-own", {"roomId": "own"})
        b.socket_connected("b-a", {"roomId": "A"})
        b.socket_connected("b-x", {"roomId": "X"})
        b.socket_connected("hw-a", {"childServer": "true"})
        self.connect_calls = self.out.take()
        b.match_target("hw-a", {"roomId": "A"})

    def test_hardware_client_switches_to_cloud(self) -> None:
        self.assertEqual(self.connect_calls[-2:], [("parent", "connection"),
                                                   ("parent", "cloudModeChanged", CLOUD)])
        self.assertEqual(self.bridge.cloud_mode, CLOUD)

    def test_browser_message_goes_to_its_matched_hardware_only(self) -> None:
        self.assertIs(self.bridge.message("b-a", {"data": "1"}), True)
        self.assertEqual(self.out.take(), [("socket", "hw-a", "message", {"data": "1"})])

    def test_hardware_message_goes_to_its_room(self) -> None:
        self.bridge.message("hw-a", {"data": "2"})
        self.assertEqual(self.out.take(), [("room", "A", "message", {"data": "2"})])

    def test_own_room_browser_goes_to_parent(self) -> None:
        self.bridge.message("b-own", {"data": "3"})
        self.assertEqual(self.out.take(), [("parent", "data", {"data": "3"})])

    def test_unmatched_room_is_dropped(self) -> None:
        self.bridge.message("b-x", {"data": "4"})
        self.assertEqual(self.out.take(), [])

    def test_parent_send_goes_to_own_room_only(self) -> None:
        self.bridge.from_parent("send", 5)
        self.assertEqual(self.out.take(), [("room", "own", "message", {"data": 5})])

    def test_match_target_accepts_string_and_refuses_garbage(self) -> None:
        self.bridge.match_target("hw-a", "X")
        self.bridge.message("b-x", {"data": "6"})
        self.bridge.message("b-a", {"data": "7"})  # A is no longer matched
        self.assertEqual(self.out.take(), [("socket", "hw-a", "message", {"data": "6"})])
        for garbage in (None, [], {"roomId": None}, "", "\x00evil", {}):
            self.bridge.match_target("hw-a", garbage)
        self.bridge.match_target("b-a", "A")  # a browser cannot claim a room
        self.assertEqual(self.bridge.matched, {"X": "hw-a"})

    def test_last_hardware_leaving_returns_to_single(self) -> None:
        self.bridge.socket_disconnected("hw-a")
        self.assertEqual(self.out.take(), [("parent", "close", "A"),
                                           ("parent", "cloudModeChanged", SINGLE)])
        self.assertEqual(self.bridge.matched, {})
        self.bridge.message("b-a", {"data": "8"})
        self.assertEqual(self.out.take(), [("parent", "data", {"data": "8"})])


class HardwareClientPolicyTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.bridge, self.out = host()
        self.bridge.socket_connected("b-a", {"roomId": "A"})
        self.bridge.socket_connected("hw-1", {"childServer": "true"})
        self.bridge.match_target("hw-1", "A")
        self.out.take()

    def test_a_page_claiming_child_server_is_a_browser(self) -> None:
        for sid, headers in (("page", {"origin": "https://evil.example"}),
                             ("img", {"sec-fetch-mode": "no-cors", "sec-fetch-dest": "image"})):
            self.bridge.socket_connected(sid, {"childServer": "true", "roomId": "P"}, headers)
            self.assertIn(sid, self.bridge.browsers)
            self.assertNotIn(sid, self.bridge.hardware)
            self.bridge.match_target(sid, "A")  # cannot take the victim's room either
        self.assertEqual(self.bridge.matched, {"A": "hw-1"})
        self.assertEqual(self.bridge.faults.counts()["impostors"], 2)

    def test_a_held_room_cannot_be_claimed_until_its_holder_leaves(self) -> None:
        self.bridge.socket_connected("hw-2", {"childServer": "true"})
        self.bridge.match_target("hw-2", {"roomId": "A"})
        self.assertEqual(self.bridge.matched, {"A": "hw-1"})
        self.assertEqual(self.bridge.faults.counts()["roomClaimsRefused"], 1)
        self.out.take()
        self.bridge.message("b-a", {"data": "x"})  # still to the holder, never to hw-2
        self.assertEqual(self.out.take(), [("socket", "hw-1", "message", {"data": "x"})])
        # The holder leaves (a copy back after a failover, say): the waiting claim is granted.
        self.bridge.socket_disconnected("hw-1")
        self.assertEqual(self.bridge.matched, {"A": "hw-2"})
        self.bridge.message("b-a", {"data": "y"})
        self.assertIn(("socket", "hw-2", "message", {"data": "y"}), self.out.take())

    def test_a_waiting_claim_is_dropped_when_its_claimant_leaves_or_moves(self) -> None:
        for sid in ("hw-2", "hw-3"):
            self.bridge.socket_connected(sid, {"childServer": "true"})
            self.bridge.match_target(sid, "A")
        self.bridge.socket_disconnected("hw-2")
        self.bridge.match_target("hw-3", "B")  # gives up on A
        self.bridge.socket_disconnected("hw-1")
        self.assertEqual(self.bridge.matched, {"B": "hw-3"})
        self.assertEqual(self.bridge.claims, {})

    def test_the_hosts_own_room_cannot_be_claimed(self) -> None:
        self.bridge.from_parent("addRoomId", "own")
        self.bridge.socket_connected("b-own", {"roomId": "own"})
        self.bridge.socket_connected("hw-2", {"childServer": "true"})
        self.bridge.match_target("hw-2", "own")
        self.assertNotIn("own", self.bridge.matched)
        self.assertEqual(self.bridge.faults.counts()["roomClaimsRefused"], 1)
        self.out.take()
        self.bridge.message("b-own", {"data": "secret"})
        self.assertEqual(self.out.take(), [("parent", "data", {"data": "secret"})])

    def test_naming_the_own_room_revokes_a_copys_claim_on_it(self) -> None:
        self.bridge.socket_connected("b-n", {"roomId": "N"})
        self.bridge.socket_connected("hw-2", {"childServer": "true"})
        self.bridge.match_target("hw-2", "N")
        self.bridge.from_parent("addRoomId", "N")
        self.assertNotIn("N", self.bridge.matched)
        self.out.take()
        self.bridge.message("b-n", {"data": "mine"})
        self.assertEqual(self.out.take(), [("parent", "data", {"data": "mine"})])

    def test_status_has_counts_only(self) -> None:
        self.bridge.from_parent("addRoomId", "own")
        status = self.bridge.status()
        self.assertEqual((status["rooms"], status["ownRoom"]), (1, True))
        self.assertNotIn("A", repr(status))
        self.assertNotIn("own", repr(status.values()))


class ClientModeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.out = Recorder()
        self.bridge = Bridge(self.out)
        self.bridge.became_client()

    def test_reports_client_and_cloud(self) -> None:
        self.assertEqual(self.out.take(), [("parent", "runningModeChanged", CLIENT),
                                           ("parent", "cloudModeChanged", CLOUD)])

    def test_match_target_after_add_room_id_and_every_reconnect(self) -> None:
        self.out.take()
        self.bridge.from_parent("addRoomId", "R")
        self.assertEqual(self.out.take(), [])  # not connected yet
        self.bridge.host_up()
        self.assertEqual(self.out.take(), [("host", "matchTarget", "R")])
        self.bridge.from_parent("addRoomId", "S")
        self.assertEqual(self.out.take(), [("host", "matchTarget", "S")])
        self.bridge.host_down()
        self.bridge.host_up()
        self.assertEqual(self.out.take(), [("host", "matchTarget", "S")])

    def test_relay_both_ways(self) -> None:
        self.out.take()
        self.bridge.host_up()
        self.bridge.from_parent("send", {"v": 1})
        self.bridge.host_message({"data": "x"})
        self.assertEqual(self.out.take(), [("host", "message", {"data": {"v": 1}}),
                                           ("parent", "data", {"data": "x"})])


class CryptoAndSecretTests(SynchronousTestCase):
    def test_no_secret_replies_empty(self) -> None:
        bridge, out = host()
        bridge.from_parent("encrypt", "text")
        bridge.from_parent("decrypt", "text")
        self.assertEqual(out.take(), [("parent", "encrypt", ""), ("parent", "decrypt", "")])

    def test_crypto_is_called(self) -> None:
        out = Recorder()
        bridge = Bridge(out, crypto=lambda op, value: f"{op}:{value}")
        bridge.from_parent("encrypt", "abc")
        bridge.from_parent("decrypt", 42)  # not a string
        self.assertEqual(out.take(), [("parent", "encrypt", "encrypt:abc"),
                                      ("parent", "decrypt", "")])

    def test_secret_is_never_sent(self) -> None:
        out = Recorder()
        bridge = Bridge(out, crypto=lambda op, value: "x")
        self.assertTrue(bridge.from_parent("secret", None))
        self.assertEqual(out.take(), [])


class RoomIdTests(SynchronousTestCase):
    def test_values(self) -> None:
        self.assertEqual(room_id("r"), "r")
        self.assertEqual(room_id({"roomId": "r"}), "r")
        self.assertEqual(room_id(12), "12")
        for bad in (None, True, "", "\x00x", [], {"roomId": None}, "x" * 300):
            self.assertIsNone(room_id(bad), bad)
