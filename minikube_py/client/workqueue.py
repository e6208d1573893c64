"""A keyed work queue, as client-go's: the unit controllers and the kubelet work through.

A key waiting in the queue is there once however often it is added; a key being
processed is never handed to a second worker, and if it is added meanwhile it comes back
once the first worker is done. Failures come back later with exponential backoff, so
business logic never sleeps or retries by itself.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable


class ShutDown(Exception):
    """The queue was shut down; workers should return."""


class WorkQueue:
    def __init__(self, *, base_delay: float = 0.005, max_delay: float = 60.0) -> None:
        self._queue: collections.deque[str] = collections.deque()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._failures: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False
        self.base_delay = base_delay
        self.max_delay = max_delay

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: str) -> None:
        if self._closed:
            return
        if key in self._processing:
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._queue.append(key)
            self._wake_one()

    def _wake_one(self) -> None:
        """Hand the new key to one idle worker, not all of them."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def add_after(self, key: str, delay: float) -> None:
        """Add ``key`` in ``delay`` seconds (an earlier pending timer for it wins)."""
        if self._closed:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        due = loop.time() + delay
        if existing is not None and existing.when() <= due:
            return
        if existing is not None:
            existing.cancel()
        self._timers[key] = loop.call_at(due, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> str:
        while not self._queue:
            if self._closed:
                raise ShutDown
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # pass our wake-up on: the key is still there
                raise
        key = self._queue.popleft()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def retry(self, key: str) -> float:
        """Schedule ``key`` again after its next backoff delay; returns the delay."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = float(min(self.base_delay * (2.0**failures), self.max_delay))
        self.add_after(key, delay)
        return delay

    def forget(self, key: str) -> None:
        """The key succeeded: its next failure starts from the base delay again."""
        self._failures.pop(key, None)

    def shutdown(self) -> None:
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)


Reconcile = Callable[[str], Awaitable[float | None]]
"""Handles one key; returns seconds after which to look again (requeue), or None."""


async def work(
    queue: WorkQueue, reconcile: Reconcile, *, on_error: Callable[[str, Exception], None]
) -> None:
    """One worker: take keys until shutdown; failures are retried with backoff."""
    while True:
        try:
            key = await queue.get()
        except ShutDown:
            return
        try:
            again = await reconcile(key)
        except Exception as exc:  # a controller bug or API error must not kill the worker
            on_error(key, exc)
            queue.retry(key)
        else:
            queue.forget(key)
            if again is not None:
                queue.add_after(key, again)
        finally:
            queue.done(key)
