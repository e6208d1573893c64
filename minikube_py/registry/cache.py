"""The watch cache: every LIST and WATCH is served from memory, fed by one store watch.

One store watch over ``/registry/`` feeds a ``ResourceCache`` per resource type. Because
that single stream carries every write, the last revision it delivered says how fresh
*all* caches are, so a consistent read is simply: ask the store for its current revision,
wait until the stream has passed it, answer from memory.

Bookmarks travel in the same queue as a subscriber's events: a timer puts one in with
the revision the cache has reached at that instant. Every event up to that revision was
already queued before it, so a client that resumes from a bookmark misses nothing.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

from minikube_py.meta.objects import Obj
from minikube_py.registry.codec import decode
from minikube_py.registry.resource import ResourceInfo
from minikube_py.storage.interface import (
    Compacted,
    Event,
    EventType,
    Store,
    StoreUnavailable,
)

log = structlog.get_logger(__name__)

HISTORY = 10_000
"""Events each resource keeps for watches that resume from a resourceVersion."""
SUBSCRIBER_BUFFER = 10_000
"""A watcher this far behind is cut off, as kube-apiserver does, and must re-watch."""
LIST_PAGE = 5_000
BOOKMARK_INTERVAL = 60.0
"""Seconds between BOOKMARKs to a watcher that allows them (kube-apiserver: one minute)."""
PRE_TIMEOUT_BOOKMARK = 2.0
"""A last BOOKMARK goes out this long before the watch's deadline, as upstream's cacher."""


@dataclass(frozen=True, slots=True)
class CacheEvent:
    """A change as watchers see it: ADDED, MODIFIED or DELETED, with the object before."""

    type: str
    obj: Obj
    prev: Obj | None
    revision: int


BOOKMARK = "BOOKMARK"
Filter = Callable[[Obj], bool]


@dataclass(frozen=True, slots=True)
class Bookmarks:
    """When a watcher gets BOOKMARKs: every ``interval`` seconds and shortly before
    ``deadline`` (event-loop time; None when the watch has none), each carrying
    ``revision()``, the revision up to which the cache has queued every event."""

    interval: float
    deadline: float | None
    revision: Callable[[], int]


class Subscription:
    """One client watch on one resource: a bounded queue the cache fills."""

    def __init__(
        self, cache: ResourceCache, accepts: Filter, bookmarks: Bookmarks | None = None
    ) -> None:
        self.cache = cache
        self.accepts = accepts
        self.queue: asyncio.Queue[CacheEvent | None] = asyncio.Queue()
        self.overflowed = False
        self.bookmarks = bookmarks
        self._timer: asyncio.TimerHandle | None = None
        if bookmarks is not None:
            self._schedule_bookmark()

    def _schedule_bookmark(self) -> None:
        """Arm the next BOOKMARK, as upstream's cacher: a heartbeat, or pre-timeout."""
        assert self.bookmarks is not None
        loop = asyncio.get_running_loop()
        now = loop.time()
        at = now + self.bookmarks.interval
        deadline = self.bookmarks.deadline
        if deadline is not None and deadline - PRE_TIMEOUT_BOOKMARK > now:
            at = min(at, deadline - PRE_TIMEOUT_BOOKMARK)
        # Past the deadline (an in-process watch nobody times out): heartbeats only.
        self._timer = loop.call_at(at, self._bookmark)

    def _bookmark(self) -> None:
        if self not in self.cache.subscribers or self.overflowed:
            return
        assert self.bookmarks is not None
        revision = self.bookmarks.revision()
        if revision > 0 and self.queue.qsize() < SUBSCRIBER_BUFFER:
            self.queue.put_nowait(CacheEvent(BOOKMARK, bookmark_object(revision), None, revision))
        self._schedule_bookmark()

    def offer(self, event: CacheEvent) -> None:
        translated = self.translate(event)
        if translated is None or self.overflowed:
            return
        if self.queue.qsize() >= SUBSCRIBER_BUFFER:
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(translated)

    def translate(self, event: CacheEvent) -> CacheEvent | None:
        """Selectors apply to both states: leaving the selection is a DELETED event."""
        now = event.type != "DELETED" and self.accepts(event.obj)
        before = event.prev is not None and self.accepts(event.prev)
        if event.type == "DELETED":
            return event if before or self.accepts(event.obj) else None
        if now and before:
            return event
        if now:
            return CacheEvent("ADDED", event.obj, event.prev, event.revision)
        if before:
            return CacheEvent("DELETED", event.obj, event.prev, event.revision)
        return None

    async def next(self) -> CacheEvent | None:
        """The next event; None when the cache cut this watcher off (or is closing)."""
        return await self.queue.get()

    def end(self) -> None:
        """Tell the watcher its stream is over (it re-watches, or relists on 410)."""
        self.queue.put_nowait(None)
        self.close()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.cache.subscribers.discard(self)


def bookmark_object(revision: int, annotations: dict[str, str] | None = None) -> Obj:
    """A BOOKMARK's object: only metadata.resourceVersion (kind and apiVersion are added
    where objects are handed out), plus the initial-events-end annotation when it marks
    the end of a streaming list."""
    meta: Obj = {"resourceVersion": str(revision)}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta}


class ResourceCache:
    """Current objects of one resource type plus a window of recent events."""

    def __init__(self, info: ResourceInfo) -> None:
        self.info = info
        self.objects: dict[str, Obj] = {}
        self._keys: list[str] | None = []
        self.history: collections.deque[CacheEvent] = collections.deque(maxlen=HISTORY)
        self.oldest = 0  # watches must start at or after this revision
        self.subscribers: set[Subscription] = set()

    def restart(self) -> None:
        """Forget everything and end every subscriber: a relist follows."""
        self.objects.clear()
        self._keys = []
        self.history.clear()
        self.end_watches()

    def end_watches(self) -> None:
        """End every client watch (they resume elsewhere or after a restart)."""
        for subscriber in list(self.subscribers):
            subscriber.end()

    def load(self, key: str, obj: Obj) -> None:
        self.objects[key] = obj
        self._keys = None

    def apply(self, key: str, event: CacheEvent) -> None:
        if event.type == "DELETED":
            self.objects.pop(key, None)
            self._keys = None
        else:
            if key not in self.objects:
                self._keys = None
            self.objects[key] = event.obj
        if len(self.history) == self.history.maxlen:
            self.oldest = self.history[0].revision
        self.history.append(event)
        for subscriber in list(self.subscribers):
            subscriber.offer(event)

    def sorted_keys(self) -> list[str]:
        if self._keys is None:
            self._keys = sorted(self.objects)
        return self._keys

    def items(self, prefix: str, start_after: str = "") -> Iterable[tuple[str, Obj]]:
        """Objects under ``prefix`` in key order, after ``start_after``."""
        keys = self.sorted_keys()
        start = max(prefix, start_after)
        index = bisect.bisect_right(keys, start) if start_after >= prefix else 0
        if start_after < prefix:
            index = bisect.bisect_left(keys, prefix)
        for key in keys[index:]:
            if not key.startswith(prefix):
                break
            yield key, self.objects[key]

    def events_after(self, revision: int) -> list[CacheEvent] | None:
        """Recent events after ``revision``, or None if the window no longer reaches back."""
        if revision < self.oldest:
            return None
        revisions = [e.revision for e in self.history]
        return list(self.history)[bisect.bisect_right(revisions, revision) :]

    def subscribe(self, accepts: Filter, bookmarks: Bookmarks | None = None) -> Subscription:
        subscription = Subscription(self, accepts, bookmarks)
        self.subscribers.add(subscription)
        return subscription


class WatchCache:
    """All resource caches, fed by one store watch; knows how fresh they are."""

    def __init__(
        self,
        store: Store,
        resources: Iterable[ResourceInfo],
        *,
        bookmark_interval: float = BOOKMARK_INTERVAL,
    ) -> None:
        self.store = store
        self.bookmark_interval = bookmark_interval
        self.caches: dict[str, ResourceCache] = {}
        for info in resources:
            self.caches.setdefault(info.key_root, ResourceCache(info))
        self.revision = 0
        self.ready = asyncio.Event()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def end_watches(self) -> None:
        for cache in self.caches.values():
            cache.end_watches()

    def cache_for(self, info: ResourceInfo) -> ResourceCache:
        return self.caches[info.key_root]

    def _route(self, key: str) -> ResourceCache | None:
        root = key[: key.find("/", len("/registry/")) + 1]
        cache = self.caches.get(root)
        if cache is None:  # storage names with a slash: services/specs, services/endpoints
            cache = self.caches.get(key[: key.find("/", len(root)) + 1])
        return cache

    async def _fill(self) -> int:
        """Load every object at one revision, in pages."""
        revision, start_after = 0, ""
        while True:
            page = await self.store.list(
                "/registry/", limit=LIST_PAGE, start_after=start_after, revision=revision
            )
            revision = page.revision
            for kv in page.items:
                cache = self._route(kv.key)
                if cache is not None:
                    cache.load(kv.key, decode(kv.value, kv.mod_revision))
            if not page.more:
                break
            start_after = page.items[-1].key
        for cache in self.caches.values():
            cache.oldest = revision
        return revision

    async def run(self) -> None:
        """Fill, then follow the store; if the stream breaks, relist and start again.

        As kube-apiserver's cacher does, a restart ends every client watch (clients
        re-watch from their last resourceVersion, or relist on 410).
        """
        delay = 0.1
        while True:
            try:
                await self._follow()
                return
            except (Compacted, StoreUnavailable) as exc:
                log.warning("watch cache restarting", error=str(exc))
                self.ready.clear()  # reads wait for the relist rather than see an empty cache
                for cache in self.caches.values():
                    cache.restart()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _follow(self) -> None:
        self.revision = max(self.revision, await self._fill())
        self.ready.set()
        log.info("watch cache synced", revision=self.revision, kinds=len(self.caches))
        async with self.store.watch("/registry/", after_revision=self.revision) as stream:
            async for event in stream:
                self._dispatch(event)
                self.revision = event.revision
                if self._waiters:
                    self._wake()

    def _wake(self) -> None:
        waiting = []
        for revision, future in self._waiters:
            if revision <= self.revision:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((revision, future))
        self._waiters = waiting

    def _dispatch(self, event: Event) -> None:
        cache = self._route(event.kv.key)
        if cache is None:
            return
        obj = decode(event.kv.value, event.revision)
        prev = cache.objects.get(event.kv.key)
        if event.type is EventType.DELETE:
            kind = "DELETED"
        else:
            kind = "MODIFIED" if prev is not None else "ADDED"
        cache.apply(event.kv.key, CacheEvent(kind, obj, prev, event.revision))

    async def wait_for(self, revision: int, within: float = 10.0) -> bool:
        """Wait until the cache has seen ``revision``; False if not ``within`` seconds."""
        if self.revision >= revision:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((revision, future))
        try:
            await asyncio.wait_for(future, within)
        except TimeoutError:
            return False
        return True

    async def wait_fresh(self) -> int:
        """A consistent read point: the store's current revision, once the cache has it."""
        await self.ready.wait()
        current = await self.store.current_revision()
        await self.wait_for(current)
        return max(current, self.revision)
