"""Fan-out of committed events to in-process watch streams, with catch-up from history.

A stream registers before it reads history, so nothing committed after registration is
missed; events it already read from history are skipped by revision. A consumer that
falls too far behind drops its live buffer and catches up from the store's history
instead: memory stays bounded and the consumer still sees every event, in order.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

from minikube_py.storage.interface import Compacted, Event, StoreUnavailable

HistoryReader = Callable[[str, int, int, int], Awaitable[list[Event]]]
"""Reads events under a prefix with ``after < revision <= upto``, at most ``limit``."""

PAGE = 1000
MAX_BUFFERED = 10_000


class HubStream:
    """One watcher's ordered view: history first, then live events."""

    def __init__(self, hub: WatchHub, prefix: str, after_revision: int) -> None:
        self._hub = hub
        self._prefix = prefix
        self._cursor = after_revision  # every event at or below it was delivered or queued
        self._history_until = hub.revision  # events up to here come from history
        self._pending: collections.deque[Event] = collections.deque()
        self._live: collections.deque[Event] = collections.deque()
        self._wakeup = asyncio.Event()
        self._checked = False
        self._closed = False

    def offer(self, event: Event) -> None:
        """Called by the hub for every committed event, in revision order."""
        if not event.kv.key.startswith(self._prefix):
            return
        if len(self._live) >= MAX_BUFFERED:
            self._live.clear()
            self._history_until = event.revision
        else:
            self._live.append(event)
        self._wakeup.set()

    def end(self) -> None:
        self._closed = True
        self._wakeup.set()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        if not self._checked:
            self._checked = True
            if self._cursor < self._hub.compacted:
                raise Compacted(self._cursor, self._hub.compacted)
        while True:
            if self._pending:
                return self._pending.popleft()
            if self._cursor < self._history_until:
                await self._read_history()
                continue
            if self._live:
                event = self._live.popleft()
                if event.revision > self._cursor:
                    self._cursor = event.revision
                    return event
                continue
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()

    async def _read_history(self) -> None:
        upto = self._history_until
        events = await self._hub.read_history(self._prefix, self._cursor, upto, PAGE)
        self._pending.extend(events)
        self._cursor = events[-1].revision if len(events) == PAGE else upto

    async def close(self) -> None:
        self.end()
        self._hub.unsubscribe(self)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class WatchHub:
    """Owns the committed revision as watchers see it, and the set of live streams."""

    def __init__(self, read_history: HistoryReader, revision: int, compacted: int) -> None:
        self.read_history = read_history
        self.revision = revision
        self.compacted = compacted
        self._streams: set[HubStream] = set()
        self._closed = False

    def subscribe(self, prefix: str, after_revision: int) -> HubStream:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        stream = HubStream(self, prefix, after_revision)
        self._streams.add(stream)
        return stream

    def unsubscribe(self, stream: HubStream) -> None:
        self._streams.discard(stream)

    def publish(self, events: list[Event]) -> None:
        """Deliver events of one commit; call in revision order, on the event loop."""
        for event in events:
            self.revision = max(self.revision, event.revision)
            for stream in self._streams:
                stream.offer(event)

    def close(self) -> None:
        self._closed = True
        for stream in self._streams:
            stream.end()
        self._streams.clear()
