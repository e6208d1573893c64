"""The scheduling queue: order, backoff, and retries on cluster events (no busy loops)."""

from __future__ import annotations

import asyncio

import pytest

from minikube_py.scheduler.queue import (
    ACTIVE,
    BACKOFF,
    IN_FLIGHT,
    UNSCHEDULABLE,
    SchedulingQueue,
)
from tests.scheduler.builders import info


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _queue(clock: Clock) -> SchedulingQueue:
    return SchedulingQueue(clock=clock, initial_backoff=1.0, max_backoff=10.0)


def _drain(queue: SchedulingQueue) -> list[str]:
    names = []
    while (queued := queue.pop_nowait()) is not None:
        names.append(queued.info.name)
    return names


def test_order_is_priority_then_age() -> None:
    queue = _queue(Clock())
    queue.add(info(name="new-low", created="2025-01-01T00:00:09Z"))
    queue.add(info(name="old-low", created="2025-01-01T00:00:01Z"))
    queue.add(info(name="new-high", created="2025-01-01T00:00:09Z", priority=1000))
    queue.add(info(name="old-high", created="2025-01-01T00:00:05Z", priority=1000))
    queue.add(info(name="same-age", created="2025-01-01T00:00:01Z"))  # then arrival order
    assert _drain(queue) == ["old-high", "new-high", "old-low", "same-age", "new-low"]


def test_adding_twice_keeps_one_entry() -> None:
    queue = _queue(Clock())
    queue.add(info(name="a"))
    queue.add(info(name="a"))
    assert len(queue) == 1
    assert _drain(queue) == ["a"]


def test_a_raised_priority_moves_a_waiting_pod_ahead() -> None:
    queue = _queue(Clock())
    queue.add(info(name="a", created="2025-01-01T00:00:01Z"))
    queue.add(info(name="b", created="2025-01-01T00:00:02Z"))
    queue.add(info(name="b", created="2025-01-01T00:00:02Z", priority=5))
    assert _drain(queue) == ["b", "a"]


@pytest.mark.parametrize(
    ("attempts", "delay"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)]
)
def test_backoff_doubles_up_to_the_maximum(attempts: int, delay: float) -> None:
    assert _queue(Clock()).backoff_for(attempts) == delay


def test_an_unschedulable_pod_waits_for_a_cluster_event_not_a_timer() -> None:
    clock = Clock()
    queue = _queue(clock)
    queue.add(info(name="a"))
    queued = queue.pop_nowait()
    assert queued is not None
    assert queue.where("default/a") == IN_FLIGHT
    queue.unschedulable(queued)
    assert queue.where("default/a") == UNSCHEDULABLE
    clock.now += 60  # long past its backoff: still not retried by time alone
    assert queue.pop_nowait() is None
    queue.move_all()
    assert queue.where("default/a") == ACTIVE  # backoff (1 s) is over
    again = queue.pop_nowait()
    assert again is not None
    assert again.attempts == 2


def test_an_event_during_backoff_retries_after_the_backoff() -> None:
    clock = Clock()
    queue = _queue(clock)
    queue.add(info(name="a"))
    queued = queue.pop_nowait()
    assert queued is not None
    queue.unschedulable(queued)
    clock.now += 0.5
    queue.move_all()
    assert queue.where("default/a") == BACKOFF
    assert queue.next_due() == pytest.approx(1001.0)
    assert queue.pop_nowait() is None
    clock.now += 0.5
    assert queue.pop_nowait() is queued


def test_an_event_while_a_pod_is_tried_sends_it_to_backoff_not_to_wait() -> None:
    clock = Clock()
    queue = _queue(clock)
    queue.add(info(name="a"))
    queued = queue.pop_nowait()
    assert queued is not None
    queue.move_all()  # e.g. a node was added while the decision was being made
    queue.unschedulable(queued)
    assert queue.where("default/a") == BACKOFF


def test_pods_unschedulable_for_too_long_are_retried() -> None:
    clock = Clock()
    queue = SchedulingQueue(clock=clock, unschedulable_timeout=300.0)
    queue.add(info(name="a"))
    queued = queue.pop_nowait()
    assert queued is not None
    queue.unschedulable(queued)
    assert queue.next_due() == pytest.approx(1300.0)
    clock.now += 299
    assert queue.pop_nowait() is None
    clock.now += 1
    assert queue.pop_nowait() is queued


def test_only_a_relevant_update_retries_an_unschedulable_pod() -> None:
    clock = Clock()
    queue = _queue(clock)
    pod = info(name="a", cpu="9")
    queue.add(pod)
    queued = queue.pop_nowait()
    assert queued is not None
    queue.unschedulable(queued)
    clock.now += 5
    status_only = info(name="a", cpu="9")
    status_only.obj["status"] = {"conditions": [{"type": "PodScheduled", "status": "False"}]}
    queue.add(status_only)
    assert queue.where("default/a") == UNSCHEDULABLE  # its own status write: no retry
    queue.add(info(name="a", cpu="9", tolerations=[{"operator": "Exists"}]))
    assert queue.where("default/a") == ACTIVE


def test_failed_binding_backs_off() -> None:
    clock = Clock()
    queue = _queue(clock)
    queue.add(info(name="a"))
    queued = queue.pop_nowait()
    assert queued is not None
    queue.done("default/a")
    assert len(queue) == 0
    queue.failed(queued)
    assert queue.where("default/a") == BACKOFF
    clock.now += 1
    assert queue.pop_nowait() is queued


def test_deleted_pods_are_never_handed_out() -> None:
    clock = Clock()
    queue = _queue(clock)
    queue.add(info(name="a"))
    queue.add(info(name="b"))
    queue.delete("default/a")
    assert _drain(queue) == ["b"]
    queue.add(info(name="c"))
    queued = queue.pop_nowait()
    assert queued is not None
    queue.delete("default/c")
    queue.unschedulable(queued)  # deleted meanwhile: dropped
    assert queue.where("default/c") is None
    queue.move_all()
    assert queue.pop_nowait() is None


async def test_pop_waits_for_a_pod_without_polling() -> None:
    queue = SchedulingQueue()
    waiter = asyncio.create_task(queue.pop())
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.add(info(name="a"))
    queued = await asyncio.wait_for(waiter, 5)
    assert queued.info.name == "a"


async def test_pop_wakes_when_a_backoff_expires() -> None:
    queue = SchedulingQueue(initial_backoff=0.05)
    queue.add(info(name="a"))
    queued = queue.pop_nowait()
    assert queued is not None
    queue.done("default/a")
    queue.failed(queued)
    loop = asyncio.get_running_loop()
    started = loop.time()
    again = await asyncio.wait_for(queue.pop(), 5)
    assert again is queued
    assert loop.time() - started >= 0.04
