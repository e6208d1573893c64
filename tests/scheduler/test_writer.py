"""The writer: bindings and status writes off the decision path, in order per pod."""

from __future__ import annotations

import asyncio
from typing import Any

from minikube_py import errors
from minikube_py.meta.objects import Obj
from minikube_py.scheduler.queue import QueuedPod
from minikube_py.scheduler.writer import PodWriter
from tests.scheduler.builders import info, pod
from tests.support.waiting import wait_until


class Recorder:
    """The two client calls the writer makes, recorded; the first bind may be held."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = 0
        """Calls held at the gate right now."""
        self.fail_binds = 0

    async def _pass(self) -> None:
        self.waiting += 1
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1

    async def bind(self, namespace: str, name: str, node: str) -> None:
        await self._pass()
        if self.fail_binds:
            self.fail_binds -= 1
            raise errors.InternalError("etcdserver: request timed out")
        self.calls.append(("bind", name, node))

    async def patch(self, info_: Any, namespace: str, name: str, patch: Obj, **kw: Any) -> Obj:
        await self._pass()
        message = patch["status"]["conditions"][0]["message"]
        self.calls.append(("status", name, message, kw["subresource"], kw["flavour"]))
        return {}


class Harness:
    def __init__(self) -> None:
        self.client = Recorder()
        self.pods: dict[str, Obj] = {"default/p": pod()}
        self.bound: list[str] = []
        self.failed: list[str] = []
        self.writer = PodWriter(
            self.client,  # type: ignore[arg-type]
            lookup=self.pods.get,
            bound=lambda q, node: self.bound.append(node),
            bind_failed=lambda q, node, exc: self.failed.append(f"{node}: {exc}"),
            workers=4,
            clock=lambda: 0.0,
        )


def _queued() -> QueuedPod:
    return QueuedPod(info(), seq=1)


async def test_a_status_write_still_queued_when_the_pod_is_placed_is_dropped() -> None:
    harness = Harness()
    harness.writer.mark_unschedulable("default/p", "0/1 nodes are available: a.")
    harness.writer.mark_unschedulable("default/p", "0/1 nodes are available: b.")
    harness.writer.bind("default/p", "n1", _queued())
    async with asyncio.TaskGroup() as group:
        task = group.create_task(harness.writer.run())
        await wait_until(lambda: harness.bound == ["n1"], what="bound")
        task.cancel()
    assert harness.client.calls == [("bind", "p", "n1")]


async def test_writes_for_one_pod_stay_in_order() -> None:
    harness = Harness()
    harness.client.gate.clear()
    async with asyncio.TaskGroup() as group:
        task = group.create_task(harness.writer.run())
        harness.writer.mark_unschedulable("default/p", "0/1 nodes are available: a.")
        await wait_until(lambda: harness.client.waiting == 1, what="status write in flight")
        harness.writer.bind("default/p", "n1", _queued())
        harness.client.gate.set()
        await wait_until(lambda: harness.bound == ["n1"], what="bound")
        task.cancel()
    assert harness.client.calls == [
        ("status", "p", "0/1 nodes are available: a.", "status", "strategic"),
        ("bind", "p", "n1"),
    ]


async def test_a_failed_binding_is_reported_not_retried_here() -> None:
    harness = Harness()
    harness.client.fail_binds = 1
    harness.writer.bind("default/p", "n1", _queued())
    async with asyncio.TaskGroup() as group:
        task = group.create_task(harness.writer.run())
        await wait_until(lambda: bool(harness.failed), what="failure reported")
        task.cancel()
    assert harness.failed == ["n1: etcdserver: request timed out"]
    assert harness.bound == []
    assert harness.writer.pending() == 0


async def test_no_status_write_for_a_pod_that_is_gone_or_bound() -> None:
    harness = Harness()
    harness.pods["default/p"]["spec"]["nodeName"] = "elsewhere"
    harness.writer.mark_unschedulable("default/p", "0/1 nodes are available: a.")
    harness.writer.mark_unschedulable("default/gone", "0/1 nodes are available: a.")
    async with asyncio.TaskGroup() as group:
        task = group.create_task(harness.writer.run())
        await wait_until(lambda: harness.writer.pending() == 0, what="writes done")
        task.cancel()
    assert harness.client.calls == []
