"""Socket.IO packet codec (sans-I/O) for protocol revisions 4 and 5.

Revision 4 is the protocol of socket.io 1.x/2.x (npm ``socket.io-parser`` 3.x, Engine.IO 3),
revision 5 the one of socket.io 3.x/4.x (``socket.io-parser`` 4.x, Engine.IO 4).  The wire
format is the same for both (``socket.io-protocol`` README, "Packet encoding")::

    <type>[<# of binary attachments>-][<namespace>,][<ack id>][JSON payload without binary]
    + one binary frame per attachment

This module only converts between :class:`Packet` values and the frames *inside* Engine.IO
``message`` packets: the Engine.IO ``"4"`` prefix is the engine layer's business, so a frame
here looks like ``2["message",{"data":1}]``, not ``42[...]``.  Nothing here does I/O, logs, or
imports Twisted.  The code lives in :mod:`~entryhw.socketio.protocol` (types, constants,
exceptions), :mod:`~entryhw.socketio.decoding` and :mod:`~entryhw.socketio.encoding`; this
module is the API of all three.

API
===

``encode(packet, rev=5, *, utf8=False) -> list[str | bytes]`` (``utf8``: the text frame as
:class:`~entryhw.engineio.packets.Utf8`, what the server sends)
    The text frame first, then the binary attachments.  EVENT/ACK packets whose data holds
    ``bytes``/``bytearray``/``memoryview`` anywhere (nested in lists, tuples, dicts) go out as
    BINARY_EVENT/BINARY_ACK with ``{"_placeholder":true,"num":N}`` placeholders, numbered
    depth-first in order like ``deconstructPacket()`` does.  A BINARY_* packet without any
    binary goes out as plain EVENT/ACK: current parsers (3.4.5, 4.2.7) reject a binary header
    declaring 0 attachments.  JSON is compact and not ASCII-escaped, like ``JSON.stringify``;
    NaN/Infinity become ``null`` (as ``JSON.stringify`` does) and lone surrogates are written
    as ``\\udXXX`` escapes (as the well-formed ``JSON.stringify`` of ES2019 does) so that the
    frame is always valid UTF-8.  Invalid packets raise ``ValueError``/``TypeError`` (caller
    bugs, never input): see :func:`encode`.

``Decoder(rev=5, max_attachments=10).feed(frame) -> Packet | None``
    One decoder per connection.  Text frames start packets; a binary packet returns ``None``
    until its attachments have arrived, then the packet with its *original* type
    (BINARY_EVENT/BINARY_ACK) and the placeholders replaced by ``bytes``.

``decode(text, rev=5) -> (Packet, attachment_count)``
    One text frame; placeholders are left in (validated against the count).

Only :class:`DecodeError` ever escapes ``decode`` and ``Decoder.feed``, whatever the input:
bad JSON, NaN/Infinity (``JSON.parse`` rejects them, ``json.loads`` would not), payloads
nested more than :data:`entryhw.limits.MAX_DEPTH` levels (:class:`TooDeepError`), oversized
numbers, unknown frame types, reserved event names.

Packet data by type
===================

==============  ====================================  =====================================
type            revision 5 (socket.io 3/4)            revision 4 (socket.io 2)
==============  ====================================  =====================================
CONNECT (0)     ``None`` or dict: the client's        ``None``, or the query of the
                ``auth`` object / the server's        namespace as a dict of str (see
                ``{"sid": ...}`` reply                below)
DISCONNECT (1)  ``None``                              ``None``
EVENT (2)       non-empty list, ``[name, *args]``;    the same (the reserved names are
                name a str (not a reserved event      refused too, unlike parser 3.4)
                name) or a number
ACK (3)         list (possibly empty)                 list
4               CONNECT_ERROR: dict                   ERROR: str, dict, list or ``None``
                ``{"message": str, "data"?: any}``    (``"Invalid namespace"``,
                or str (parser still accepts it)      ``err.data || err.message``)
BINARY_* (5/6)  as EVENT/ACK, ``bytes`` inside        as EVENT/ACK, ``bytes`` inside
==============  ====================================  =====================================

Revision 4 CONNECT query: a socket.io 2.x client connecting to a non-default namespace with
a query appends it to the namespace (``socket.io-client`` 2.x ``Manager.packet``:
``packet.nsp += '?' + packet.query``), and the 2.x server splits it with ``url.parse``
(``lib/client.js``).  ``decode("0/admin?token=1,", rev=4)`` therefore gives
``Packet(CONNECT, "/admin", data={"token": "1"})`` (values are str, percent-decoded, ``+`` is
a space, a repeated key keeps its last value, a ``#fragment`` is dropped, only the first
1000 ``&``-separated pairs count, like ``querystring.parse``'s ``maxKeys``); without ``?`` the
data is ``None``.  Encoding such a packet with ``rev=4`` writes the query back with
``encodeURIComponent`` escaping.  A JSON payload on a revision 4 CONNECT is validated like
``socket.io-parser`` 3.4.x does (object, array or null) and dropped, as the 2.x server never
reads it.  The server's own revision 4 CONNECT carries no data: ``"0"`` for ``/``,
``"0/admin,"`` otherwise; in revision 5 it is ``0{"sid":"..."}``.

Where this decoder is stricter than the reference parsers (all deliberate, none produced by
a real client): an empty frame (``Number("")`` is 0 in JS, so it decodes as CONNECT there),
EVENT/ACK without payload (the README says the payload is mandatory; the parsers only
validate payloads that are present), JS ``Number(" ") == " "`` quirks (a space is taken for
an ack id digit there; only ASCII digits count here), ack ids above 2**53 - 1, placeholder
``num`` values that are not integers, integers of more than 4300 digits (Python's int limit;
``JSON.parse`` makes them Infinity).  A revision 4 CONNECT path is taken verbatim, without
``url.parse``'s escaping of spaces and backslashes.
"""
from __future__ import annotations

from entryhw.socketio.decoding import Decoder, decode
from entryhw.socketio.encoding import encode
from entryhw.socketio.protocol import (
    ACK,
    BINARY_ACK,
    BINARY_EVENT,
    CONNECT,
    CONNECT_ERROR,
    DISCONNECT,
    ERROR,
    EVENT,
    MAX_ACK_ID,
    PACKET_TYPE_NAMES,
    RESERVED_EVENTS,
    REVISIONS,
    DecodeError,
    Packet,
    TooDeepError,
)

__all__ = [
    "ACK",
    "BINARY_ACK",
    "BINARY_EVENT",
    "CONNECT",
    "CONNECT_ERROR",
    "DISCONNECT",
    "ERROR",
    "EVENT",
    "MAX_ACK_ID",
    "PACKET_TYPE_NAMES",
    "RESERVED_EVENTS",
    "REVISIONS",
    "DecodeError",
    "Decoder",
    "Packet",
    "TooDeepError",
    "decode",
    "encode",
]
