"""Streaming a WATCH: one JSON event per line, flushed per event, ended by timeout or client.

Events come from the registry's watch cache, BOOKMARKs among them (the cache queues
those in order with the changes, so their revision is safe to resume from); this module
only frames them, and checks the watch-only query parameters as kube-apiserver does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import AsyncIterator, Callable, Mapping

import orjson
from aiohttp import web

from minikube_py import errors
from minikube_py.meta.objects import Obj
from minikube_py.registry.cache import CacheEvent
from minikube_py.registry.listing import LIST_OPTIONS, NOT_OLDER_THAN
from minikube_py.registry.options import ListOptions

Render = Callable[[CacheEvent, bool], Obj]
"""Turns an event's object into what the client asked for; the flag marks the first event."""

MIN_REQUEST_TIMEOUT = 1800
"""kube-apiserver's --min-request-timeout: watches without timeoutSeconds last 1x-2x this."""


def default_timeout() -> int:
    """A watch's length when the client names none, spread so reconnects do not bunch."""
    return int(MIN_REQUEST_TIMEOUT * (1 + random.random()))


def send_initial_events(query: Mapping[str, str]) -> bool | None:
    raw = query.get("sendInitialEvents")
    if raw is None or raw == "":
        return None
    if raw.lower() not in ("true", "false", "1", "0"):
        raise errors.BadRequest(f'invalid value for sendInitialEvents: "{raw}"')
    return raw.lower() in ("true", "1")


def check_list_query(query: Mapping[str, str]) -> None:
    """sendInitialEvents belongs to watches only."""
    if send_initial_events(query) is not None:
        raise errors.Invalid(
            LIST_OPTIONS,
            [errors.forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list")],
        )


def watch_options(
    query: Mapping[str, str], options: ListOptions, current: Callable[[], int]
) -> ListOptions:
    """A watch's options, checked as kube-apiserver checks them, with a concrete timeout.

    ``sendInitialEvents=true`` (which requires ``resourceVersionMatch=NotOlderThan``)
    makes the registry stream the list first. ``false`` means the changes after
    ``resourceVersion``, or after ``current()`` when none is given.
    """
    initial = send_initial_events(query)
    match = options.resource_version_match
    field = "resourceVersionMatch"
    problems: list[errors.FieldError] = []
    if initial is not None and match != NOT_OLDER_THAN:
        detail = f"sendInitialEvents requires setting resourceVersionMatch to {NOT_OLDER_THAN}"
        problems.append(errors.forbidden(field, detail))
    if match:
        if initial is None:
            detail = (
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
            )
            problems.append(errors.forbidden(field, detail))
        if match != NOT_OLDER_THAN:
            problems.append(errors.not_supported(field, match, [NOT_OLDER_THAN]))
        if options.continue_token:
            detail = "resourceVersionMatch is forbidden when continue is provided"
            problems.append(errors.forbidden(field, detail))
    if problems:
        raise errors.Invalid(LIST_OPTIONS, problems)
    timeout = options.timeout_seconds
    checked = dataclasses.replace(
        options, timeout_seconds=default_timeout() if timeout is None else timeout
    )
    if initial is False:
        start = options.resource_version
        if start in ("", "0"):
            start = str(current())
        checked = dataclasses.replace(checked, resource_version=start, resource_version_match="")
    elif initial:
        checked = dataclasses.replace(checked, send_initial_events=True)
    return checked


class WatchStreamer:
    def __init__(
        self,
        request: web.Request,
        events: AsyncIterator[CacheEvent],
        render: Render,
        *,
        timeout: float,
    ) -> None:
        self.request = request
        self.events = events
        self.render = render
        self.timeout = timeout
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
            try:
                event = await pending
            except StopAsyncIteration:
                return
            except errors.APIError as failure:  # found after the stream began
                await self._write(response, {"type": "ERROR", "object": failure.status()})
                return
            await self._send(response, event, is_first)
            is_first = is_first and event.type == "BOOKMARK"
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

    async def _send(self, response: web.StreamResponse, event: CacheEvent, first: bool) -> None:
        await self._write(response, {"type": event.type, "object": self.render(event, first)})

    @staticmethod
    async def _write(response: web.StreamResponse, frame: Obj) -> None:
        await response.write(orjson.dumps(frame) + b"\n")
