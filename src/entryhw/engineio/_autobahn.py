"""Autobahn's Twisted WebSocket classes, imported once (see entryhw.fastpath.imports)."""

from __future__ import annotations

from entryhw.fastpath.imports import autobahn_websocket

_ws = autobahn_websocket()
WebSocketClientFactory = _ws.WebSocketClientFactory
WebSocketClientProtocol = _ws.WebSocketClientProtocol
WebSocketResource = _ws.WebSocketResource
WebSocketServerFactory = _ws.WebSocketServerFactory
WebSocketServerProtocol = _ws.WebSocketServerProtocol
connectWS = _ws.connectWS

__all__ = [
    "WebSocketClientFactory",
    "WebSocketClientProtocol",
    "WebSocketResource",
    "WebSocketServerFactory",
    "WebSocketServerProtocol",
    "connectWS",
]
