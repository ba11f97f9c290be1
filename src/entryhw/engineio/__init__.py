# The Engine.IO client, loaded on first use: a server never needs it.
_CLIENT_NAMES = ("EngineIOClient", "EngineURL", "Handshake", "Heartbeat", "engineio_url")


def __getattr__(name: str) -> object:
    if name in _CLIENT_NAMES:
        from entryhw.engineio import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
