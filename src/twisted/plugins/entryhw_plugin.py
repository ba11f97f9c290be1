"""twistd plugin: ``twistd -n entryhw [options]``."""

from twisted.application.service import ServiceMaker

entryhw = ServiceMaker(
    "entryhw",
    "entryhw.tap",
    "Entry hardware bridge server (Socket.IO on 127.0.0.1:23518, Node IPC parent channel).",
    "entryhw",
)
