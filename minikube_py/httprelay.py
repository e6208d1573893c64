"""Copying a stream of chunks to an HTTP client until it ends or the client leaves.

Shared by the API server (relaying a kubelet's logs) and the kubelet (serving them):
aiohttp does not cancel a handler when its client disconnects, and a write is the only
other way to notice, so a quiet ``follow`` would hold its source open forever. The copy
runs as a task and the connection is checked every ``poll`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

DISCONNECT_POLL = 1.0


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def relay(
    request: web.Request,
    response: web.StreamResponse,
    chunks: AsyncIterator[bytes],
    *,
    poll: float = DISCONNECT_POLL,
) -> None:
    """Write each chunk as it comes until the stream ends or the client is gone."""

    async def copy() -> None:
        async for chunk in chunks:
            await response.write(chunk)

    copying = asyncio.create_task(copy())
    try:
        while not copying.done():
            await asyncio.wait({copying}, timeout=poll)
            if not copying.done() and client_gone(request):
                copying.cancel()
    finally:
        copying.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await copying
