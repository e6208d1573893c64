"""Streaming a WATCH: one JSON event per line, flushed per event, ended by timeout or client.

Events come from the registry's watch cache; this module only frames them. Bookmarks,
when the client allows them, carry the cache's revision so a reconnect can resume there.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable

import orjson
from aiohttp import web

from minikube_py import errors
from minikube_py.meta.objects import Obj
from minikube_py.registry.cache import CacheEvent

Render = Callable[[CacheEvent, bool], Obj]
"""Turns an event's object into what the client asked for; the flag marks the first event."""

DEFAULT_TIMEOUT = 1800.0
BOOKMARK_INTERVAL = 60.0


class WatchStreamer:
    def __init__(
        self,
        request: web.Request,
        events: AsyncIterator[CacheEvent],
        render: Render,
        *,
        timeout: float | None,
        bookmark: Callable[[], Obj] | None,
        bookmark_interval: float = BOOKMARK_INTERVAL,
    ) -> None:
        self.request = request
        self.events = events
        self.render = render
        # kube-apiserver spreads default timeouts between 1x and 2x of its minimum.
        self.timeout = timeout if timeout is not None else DEFAULT_TIMEOUT * (1 + random.random())
        self.bookmark = bookmark
        self.bookmark_interval = bookmark_interval
        self._pending: asyncio.Future[CacheEvent] | None = None

    async def stream(self) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache"}
        )
        response.enable_chunked_encoding()
        pending = self._read_next()
        try:
            # A too-old resourceVersion fails at once: answer it as an ERROR event, as upstream.
            await asyncio.wait({pending}, timeout=0.05)
            await response.prepare(self.request)
            if pending.done() and isinstance(pending.exception(), errors.APIError):
                failure = pending.exception()
                assert isinstance(failure, errors.APIError)
                await self._write(response, {"type": "ERROR", "object": failure.status()})
                return response
            with contextlib.suppress(ConnectionResetError, asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(self.timeout):
                    await self._pump(response, pending)
        finally:
            await self._release()
        return response

    async def _pump(
        self, response: web.StreamResponse, pending: asyncio.Future[CacheEvent]
    ) -> None:
        is_first = True
        while True:
            done, _ = await asyncio.wait({pending}, timeout=self._next_bookmark())
            if not done:
                if self.bookmark is not None:
                    await self._write(response, {"type": "BOOKMARK", "object": self.bookmark()})
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            await self._send(response, event, is_first)
            is_first = False
            pending = self._read_next()

    def _read_next(self) -> asyncio.Future[CacheEvent]:
        self._pending = asyncio.ensure_future(anext(self.events))
        return self._pending

    async def _release(self) -> None:
        """Cancel the read in flight and close the event source, however the stream ended."""
        pending = self._pending
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(self.events, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(BaseException):
                await aclose()

    def _next_bookmark(self) -> float | None:
        return self.bookmark_interval if self.bookmark is not None else None

    async def _send(self, response: web.StreamResponse, event: CacheEvent, first: bool) -> None:
        await self._write(response, {"type": event.type, "object": self.render(event, first)})

    @staticmethod
    async def _write(response: web.StreamResponse, frame: Obj) -> None:
        await response.write(orjson.dumps(frame) + b"\n")
