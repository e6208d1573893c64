"""The plain SPDY/3.1 upgrade: how client-go asked for a stream connection before WebSockets.

kubectl before 1.31 (and later ones whose WebSocket was refused) sends ``Connection:
Upgrade``, ``Upgrade: SPDY/3.1`` and one ``X-Stream-Protocol-Version`` per protocol it
speaks, its favourite first. As apimachinery's ``httpstream.Handshake`` the server takes the
client's first choice among its own, answers ``101 Switching Protocols`` naming it, and
from then on the connection carries SPDY frames both ways. Port-forward and exec/attach
share this; they differ in the protocols offered and in what their streams carry.

Refusals are Status answers before anything is switched: no protocol named (400), none in
common (403, listing both sides as Go prints a ``[]string``), no SPDY in the headers (400).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import hdrs, web

from minikube_py import errors

PROTOCOL_HEADER = "X-Stream-Protocol-Version"
READ_SIZE = 256 * 1024
"""The most read from the client at once (and buffered before the transport pauses)."""


def tokens(values: Sequence[str], *, lower: bool = True) -> list[str]:
    """Comma-separated header values, split and trimmed (``Connection: keep-alive, Upgrade``)."""
    found = [token.strip() for value in values for token in value.split(",")]
    return [token.lower() if lower else token for token in found if token]


def requested(request: web.Request) -> bool:
    """An upgrade to SPDY (rather than to a WebSocket, or no upgrade at all)."""
    if "upgrade" not in tokens(request.headers.getall(hdrs.CONNECTION, [])):
        return False
    return request.headers.get(hdrs.UPGRADE, "").lower().startswith("spdy/")


def negotiate(request: web.Request, supported: Sequence[str]) -> str:
    """The protocol to speak: the client's first that is ``supported``, else a Status error."""
    offered = tokens(request.headers.getall(PROTOCOL_HEADER, []), lower=False)
    if not offered:
        raise errors.BadRequest(f"unable to upgrade: {PROTOCOL_HEADER} is required")
    chosen = next((protocol for protocol in offered if protocol in supported), None)
    if chosen is None:
        raise errors.Forbidden(
            "unable to upgrade: unable to negotiate protocol: client supports"
            f" [{' '.join(offered)}], server accepts [{' '.join(supported)}]"
        )
    if "spdy/3.1" not in request.headers.get(hdrs.UPGRADE, "").lower():
        raise errors.BadRequest("unable to upgrade: missing upgrade headers in request")
    return chosen


class RawInput:
    """The upgraded connection's bytes, taken from aiohttp's protocol like a WebSocket's.

    aiohttp switches protocols only for ``websocket`` and ``tcp``; for ``SPDY/3.1`` it
    would parse the client's frames as the next HTTP request. Installed as the payload
    parser before the 101 goes out, this receives every later byte instead; its buffer
    pauses the transport when the session falls behind. The connection's end (or loss)
    ends :meth:`chunks`.
    """

    def __init__(self, request: web.Request) -> None:
        self._reader = asyncio.StreamReader(limit=READ_SIZE)
        transport = request.transport
        if transport is not None:
            self._reader.set_transport(transport)
        protocol: Any = request.protocol
        protocol.set_parser(self)

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self._reader.feed_eof()

    async def chunks(self) -> AsyncIterator[bytes]:
        while chunk := await self._reader.read(READ_SIZE):
            yield chunk


class Upgraded:
    """A switched connection: bytes in (:meth:`chunks`), bytes out (:meth:`write`)."""

    def __init__(self, request: web.Request, response: web.StreamResponse) -> None:
        self.response = response
        self._request = request
        self._input = RawInput(request)

    @classmethod
    async def accept(cls, request: web.Request, protocol: str) -> Upgraded:
        """Send the 101 naming ``protocol``; the connection is SPDY's from here on."""
        response = web.StreamResponse(
            status=101,
            headers={
                hdrs.CONNECTION: "Upgrade",
                hdrs.UPGRADE: "SPDY/3.1",
                PROTOCOL_HEADER: protocol,
            },
        )
        response.force_close()
        upgraded = cls(request, response)  # the parser is in place before the client hears
        await response.prepare(request)
        return upgraded

    def chunks(self) -> AsyncIterator[bytes]:
        return self._input.chunks()

    async def write(self, data: bytes) -> None:
        """Raises ConnectionError once the client is gone."""
        await self.response.write(data)

    def abort(self) -> None:
        """Close the connection now, whatever is in flight (the server is going away)."""
        transport = self._request.transport
        if transport is not None:
            transport.close()
