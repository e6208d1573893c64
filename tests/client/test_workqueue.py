"""The keyed work queue: collapse, one worker per key, backoff."""

from __future__ import annotations

import asyncio
import itertools

from minikube_py.client.workqueue import WorkQueue, work


async def test_duplicates_collapse_and_order_is_kept() -> None:
    queue = WorkQueue()
    for key in ("a", "b", "a", "c", "b"):
        queue.add(key)
    assert len(queue) == 3
    assert [await queue.get() for _ in range(3)] == ["a", "b", "c"]


async def test_a_key_in_progress_comes_back_once_after_done() -> None:
    queue = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")
    queue.add("a")
    assert len(queue) == 0  # not handed to a second worker while in progress
    queue.done(key)
    assert len(queue) == 1
    assert await queue.get() == "a"


async def test_failures_retry_with_growing_backoff_then_succeed() -> None:
    queue = WorkQueue(base_delay=0.01)
    attempts: list[float] = []
    loop = asyncio.get_running_loop()
    finished = asyncio.Event()

    async def reconcile(key: str) -> float | None:
        attempts.append(loop.time())
        if len(attempts) < 4:
            raise RuntimeError("not yet")
        finished.set()
        return None

    errors: list[str] = []
    worker = asyncio.create_task(work(queue, reconcile, on_error=lambda k, e: errors.append(k)))
    queue.add("k")
    await asyncio.wait_for(finished.wait(), 5)
    queue.shutdown()
    await asyncio.wait_for(worker, 5)
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert errors == ["k", "k", "k"]
    assert gaps[0] >= 0.009
    assert gaps[1] >= 0.019
    assert gaps[2] >= 0.039


async def test_requeue_after() -> None:
    queue = WorkQueue()
    seen = 0
    twice = asyncio.Event()

    async def reconcile(key: str) -> float | None:
        nonlocal seen
        seen += 1
        if seen == 2:
            twice.set()
            return None
        return 0.01

    worker = asyncio.create_task(work(queue, reconcile, on_error=lambda k, e: None))
    queue.add("k")
    await asyncio.wait_for(twice.wait(), 5)
    queue.shutdown()
    await asyncio.wait_for(worker, 5)
    assert seen == 2
