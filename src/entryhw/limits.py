"""Every bound the server puts on a peer, in one place, with the reason for each number.

A peer (a browser tab, a copy of the server, the parent) can only ever cost
its own connection: what it may send, how long it may take and how much it
may leave unread are capped here, and each cap is met with one log line and
a counter in ``/status``, never with an exception.
"""

from __future__ import annotations

#: Levels of nesting a payload may have: the parent's ``send`` value, a browser's
#: event argument. Entry's messages are two or three levels deep. The bound keeps
#: well below what either JSON implementation handles (orjson writes at most 254
#: levels, the stdlib recurses on the Python stack), so no message can make an
#: encoder raise halfway along a relay. The envelope around a payload (the IPC
#: ``{key, value}`` object; the Socket.IO argument array and the ``{data}`` object
#: the bridge wraps a parent's value in) is allowed on top, so whatever one door
#: let in passes every other door of a relay.
MAX_DEPTH = 128
#: Envelope levels of an IPC line (``{"key", "value"}``).
IPC_ENVELOPE = 1
#: Envelope levels of a Socket.IO packet (the argument array, the ``{data}`` wrapper).
SOCKETIO_ENVELOPE = 2

#: Seconds a new connection may stay silent. Chromium closes its own unused
#: preconnected sockets after about 10 s; a client that means to talk speaks at once.
FIRST_BYTE_TIMEOUT = 10.0
#: Seconds from the first byte to a complete TLS handshake, and from the first byte of
#: an HTTP request to the end of its head and body (slowloris sends a byte a second).
HANDSHAKE_TIMEOUT = 10.0
REQUEST_TIMEOUT = 10.0
#: Seconds an HTTP keep-alive connection may idle between requests (long-polling
#: clients ask again within a second; a held poll does not count as idle).
IDLE_TIMEOUT = 30.0
#: Seconds a connection we close may take to receive its last bytes; a peer that
#: stops reading would otherwise keep a closing connection, and its descriptor, for ever.
CLOSE_TIMEOUT = 10.0

#: Bytes a peer may leave unread (held by us while its socket does not take them)
#: before it is disconnected: minutes of Entry's 60 Hz traffic, one MiB of memory.
MAX_BACKLOG = 1024 * 1024
#: The same for the parent, which is never disconnected (that would end the
#: process): what it does not read beyond this is dropped, with a log line.
MAX_PARENT_BACKLOG = 64 * 1024 * 1024

#: File descriptors kept free for everything that is not a browser connection
#: (the parent channel, the host connection in client mode, certificate files,
#: logs, Twisted's own wakers). The connection cap is the soft limit minus this.
FD_RESERVE = 128
#: The most connections ever served at once, whatever the descriptor limit: an
#: Entry PC has a few browsers and copies, and this times MAX_BACKLOG bounds memory.
MAX_CONNECTIONS = 1024
#: Sockets a select()-based reactor can watch (macOS and other POSIX: descriptors
#: below 1024; Windows: 512 sockets), so the cap stays below them there.
SELECT_LIMIT_POSIX, SELECT_LIMIT_WINDOWS = 1024, 512
#: Seconds accepting pauses when the cap is reached and no idle connection can go.
ACCEPT_PAUSE = 1.0
#: A soft limit for systems whose hard limit is unlimited.
FD_LIMIT_FALLBACK = 65536

#: Seconds between two log lines of the same kind of peer fault.
LOG_INTERVAL = 60.0
