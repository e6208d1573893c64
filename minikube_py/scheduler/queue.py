"""The scheduling queue: pending pods by priority then age, with backoff for failures.

Three places, as in kube-scheduler's ``PriorityQueue``:

* *active*: ready to try, highest priority first, then the oldest (creation time);
* *backoff*: waiting out a delay that doubles with every attempt (1 s up to 10 s);
* *unschedulable*: tried and fitting nowhere. Such a pod is not retried on a timer but
  when the cluster changes in a way that could help (a node added or changed, a pod
  removed: ``move_all``), and at the latest after ``unschedulable_timeout``.

Nothing here sleeps in a loop: ``pop`` waits on an event and, at most, until the next
backoff expiry. The clock is injected so the timing rules are testable without waiting.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

from minikube_py.scheduler.podinfo import PodInfo, scheduling_relevant

ACTIVE, BACKOFF, UNSCHEDULABLE, IN_FLIGHT = "active", "backoff", "unschedulable", "in-flight"


@dataclass(slots=True)
class QueuedPod:
    info: PodInfo
    seq: int
    attempts: int = 0
    cycle: int = 0
    """The scheduling cycle of its latest attempt (see ``unschedulable``)."""
    backoff_until: float = 0.0
    since: float = 0.0
    """When it became unschedulable."""


class SchedulingQueue:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        unschedulable_timeout: float = 300.0,
    ) -> None:
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.unschedulable_timeout = unschedulable_timeout
        self._pods: dict[str, QueuedPod] = {}
        self._where: dict[str, str] = {}
        self._active: list[tuple[int, str, int, str]] = []
        self._backoff: list[tuple[float, int, str]] = []
        self._unschedulable: dict[str, QueuedPod] = {}
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self.cycle = 0
        self.move_cycle = -1

    def __len__(self) -> int:
        return len(self._pods)

    def where(self, key: str) -> str | None:
        return self._where.get(key)

    def backoff_for(self, attempts: int) -> float:
        delay = self.initial_backoff
        for _ in range(1, attempts):
            delay *= 2
            if delay >= self.max_backoff:
                return self.max_backoff
        return min(delay, self.max_backoff)

    # -- pods arriving, changing, leaving --

    def add(self, info: PodInfo) -> None:
        """A pending pod, new or updated; an update that could change the outcome of a
        failed attempt (not a status write) gives it another try."""
        queued = self._pods.get(info.key)
        if queued is None:
            queued = QueuedPod(info, next(self._seq))
            self._pods[info.key] = queued
            self._activate(queued)
            return
        changed = scheduling_relevant(queued.info.obj) != scheduling_relevant(info.obj)
        reprioritised = queued.info.priority != info.priority
        queued.info = info
        place = self._where.get(info.key)
        if place == UNSCHEDULABLE and changed:
            del self._unschedulable[info.key]
            self._retry(queued, self.clock())
        elif place == ACTIVE and reprioritised:
            self._activate(queued)

    def delete(self, key: str) -> None:
        self._pods.pop(key, None)
        self._unschedulable.pop(key, None)
        self._where.pop(key, None)

    # -- the scheduling loop's side --

    def pop_nowait(self) -> QueuedPod | None:
        """The next pod to try (now in flight), or None when none is ready."""
        self.flush(self.clock())
        while self._active:
            _, _, seq, key = heapq.heappop(self._active)
            queued = self._pods.get(key)
            if queued is None or queued.seq != seq or self._where.get(key) != ACTIVE:
                continue  # deleted or re-queued since: a stale heap entry
            self._where[key] = IN_FLIGHT
            self.cycle += 1
            queued.cycle = self.cycle
            queued.attempts += 1
            return queued
        return None

    async def pop(self) -> QueuedPod:
        while True:
            queued = self.pop_nowait()
            if queued is not None:
                return queued
            self._wake.clear()
            due = self.next_due()
            delay = None if due is None else max(due - self.clock(), 0.0)
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def done(self, key: str) -> None:
        """The pod was placed (assumed): it leaves the queue."""
        self.delete(key)

    def unschedulable(self, queued: QueuedPod) -> None:
        """It fits nowhere. If the cluster changed while it was being tried, that change
        may already help, so it only backs off instead of waiting for the next one."""
        key = queued.info.key
        if self._pods.get(key) is not queued:
            return  # deleted meanwhile
        now = self.clock()
        queued.backoff_until = now + self.backoff_for(queued.attempts)
        if self.move_cycle >= queued.cycle:
            self._to_backoff(queued)
            return
        queued.since = now
        self._where[key] = UNSCHEDULABLE
        self._unschedulable[key] = queued
        self._wake.set()  # the next due time may have changed

    def failed(self, queued: QueuedPod) -> None:
        """An error (not a misfit), e.g. its binding failed: try again after backoff."""
        if self._pods.get(queued.info.key) is not queued:
            self._pods[queued.info.key] = queued
        queued.backoff_until = self.clock() + self.backoff_for(queued.attempts)
        self._to_backoff(queued)

    # -- cluster events and time --

    def move_all(self) -> None:
        """Something changed that may let unschedulable pods fit: try them again (after
        their backoff)."""
        self.move_cycle = self.cycle
        if not self._unschedulable:
            return
        now = self.clock()
        waiting, self._unschedulable = self._unschedulable, {}
        for queued in waiting.values():
            self._retry(queued, now)

    def flush(self, now: float) -> None:
        """Backoffs that expired become active; pods unschedulable for too long are retried."""
        while self._backoff and self._backoff[0][0] <= now:
            _, seq, key = heapq.heappop(self._backoff)
            queued = self._pods.get(key)
            if queued is not None and queued.seq == seq and self._where.get(key) == BACKOFF:
                self._activate(queued)
        # Insertion order is ``since`` order (a pod re-enters only after leaving), so the
        # stale ones are at the front and the scan stops at the first fresh one.
        while self._unschedulable:
            key, queued = next(iter(self._unschedulable.items()))
            if queued.since + self.unschedulable_timeout > now:
                break
            del self._unschedulable[key]
            self._retry(queued, now)

    def next_due(self) -> float | None:
        """When ``flush`` will next have something to do (None: only events can help)."""
        times = [self._backoff[0][0]] if self._backoff else []
        if self._unschedulable:
            oldest = next(iter(self._unschedulable.values()))
            times.append(oldest.since + self.unschedulable_timeout)
        return min(times, default=None)

    # -- moving between places --

    def _retry(self, queued: QueuedPod, now: float) -> None:
        if queued.backoff_until > now:
            self._to_backoff(queued)
        else:
            self._activate(queued)

    def _activate(self, queued: QueuedPod) -> None:
        info = queued.info
        queued.seq = next(self._seq)
        self._where[info.key] = ACTIVE
        heapq.heappush(self._active, (-info.priority, info.created, queued.seq, info.key))
        self._wake.set()

    def _to_backoff(self, queued: QueuedPod) -> None:
        queued.seq = next(self._seq)
        self._where[queued.info.key] = BACKOFF
        heapq.heappush(self._backoff, (queued.backoff_until, queued.seq, queued.info.key))
        self._wake.set()
