"""The kubelet's relist (its PLEG): one cheap listing a round, and the pods it enqueues.

Run on both runtimes: the simulated one, and real Docker where the changes are made behind
the kubelet's back with the docker CLI, as a crash or an operator would make them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from minikube_py.client.interface import Client
from minikube_py.kubelet.kubelet import Kubelet, KubeletConfig
from minikube_py.kubelet.node import NodeConfig
from minikube_py.kubelet.runtime.docker import DockerRuntime
from minikube_py.kubelet.runtime.interface import (
    ContainerConfig,
    ContainerRuntime,
    ItemState,
    PodRef,
    SandboxConfig,
)
from minikube_py.kubelet.runtime.simulated import SimulatedRuntime
from tests.kubelet.conftest import BUSYBOX, DockerCLI
from tests.support.waiting import wait_until


@dataclass
class Node:
    """A runtime, and how to make a container exit or vanish without the kubelet."""

    runtime: ContainerRuntime
    crash: Callable[[str], Awaitable[None]]
    remove: Callable[[str], Awaitable[None]]


@pytest.fixture(params=["simulated", "docker"])
async def node(request: pytest.FixtureRequest) -> AsyncIterator[Node]:
    if request.param == "simulated":
        simulated = SimulatedRuntime("relist")

        async def stop(container_id: str) -> None:
            await simulated.stop_container(container_id, 0)

        async def drop(item_id: str) -> None:  # a sandbox or a container
            await simulated.remove_container(item_id)
            await simulated.remove_sandbox(item_id)

        yield Node(simulated, stop, drop)
        return
    docker: DockerCLI = request.getfixturevalue("docker")
    name = f"relist-{uuid.uuid4().hex[:8]}"
    runtime = DockerRuntime(node_name=name)

    async def kill(container_id: str) -> None:
        await docker.run("kill", container_id)

    async def remove(container_id: str) -> None:
        await docker.run("rm", "-f", container_id)

    try:
        yield Node(runtime, kill, remove)
    finally:
        await runtime.close()
        await docker.sweep(name)


class Relisting:
    """A kubelet whose relist runs every 20 ms; nothing else of it runs."""

    def __init__(self, runtime: ContainerRuntime, root: Path) -> None:
        config = KubeletConfig(node=NodeConfig(name="relist", root_dir=root), relist_interval=0.02)
        self.kubelet = Kubelet(cast(Client, None), runtime, config)
        self.rounds = 0
        listing = runtime.states

        async def counted() -> list[ItemState]:
            found = await listing()
            self.rounds += 1
            return found

        runtime.states = counted  # type: ignore[method-assign]

    def know(self, pod: PodRef) -> None:
        """As if the API's pod informer had told the kubelet of ``pod``."""
        self.kubelet.by_uid[pod.uid] = {"metadata": {"uid": pod.uid, "name": pod.name}}

    async def taken(self) -> set[str]:
        """The pod uids enqueued so far (taken out of the queue, so the next look is fresh)."""
        keys = set()
        while len(self.kubelet.queue):
            key = await self.kubelet.queue.get()
            self.kubelet.queue.done(key)
            keys.add(key)
        return keys

    async def enqueues(self, uid: str, what: str) -> None:
        found: set[str] = set()

        async def enqueued() -> bool:
            found.update(await self.taken())
            return uid in found

        await wait_until(enqueued, within=15, interval=0.01, what=what)

    async def two_rounds(self) -> None:
        """Wait until the relist has listed twice more (a change made before is seen)."""
        target = self.rounds + 2

        async def listed() -> bool:
            return self.rounds >= target

        await wait_until(listed, within=15, interval=0.01, what="two relist rounds")


@contextlib.asynccontextmanager
async def relisting(runtime: ContainerRuntime, root: Path) -> AsyncIterator[Relisting]:
    watcher = Relisting(runtime, root)
    task = asyncio.create_task(watcher.kubelet._relist())
    try:
        yield watcher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def new_pod() -> PodRef:
    return PodRef(uid=str(uuid.uuid4()), name=f"r-{uuid.uuid4().hex[:6]}", namespace="test")


async def running_pod(runtime: ContainerRuntime, pod: PodRef, **extra: Any) -> tuple[str, str]:
    """A sandbox and one long-running container in it: (sandbox id, container id)."""
    sandbox = await runtime.run_sandbox(SandboxConfig(pod=pod, attempt=0, hostname=pod.name))
    config = ContainerConfig(pod=pod, name="app", attempt=0, image=BUSYBOX, **extra)
    container_id = await runtime.create_container(sandbox.id, config)
    await runtime.start_container(container_id)
    return sandbox.id, container_id


async def test_relist_notices_exits_and_removals(node: Node, tmp_path: Path) -> None:
    pod = new_pod()
    sandbox_id, container_id = await running_pod(node.runtime, pod, command=("sleep", "3600"))
    async with relisting(node.runtime, tmp_path) as watcher:
        watcher.know(pod)
        await watcher.enqueues(pod.uid, "the new pod's containers noticed")
        await watcher.two_rounds()
        assert await watcher.taken() == set()  # nothing changed: nothing to sync
        await node.crash(container_id)
        await watcher.enqueues(pod.uid, "the exit noticed")
        await watcher.two_rounds()
        assert await watcher.taken() == set()  # an exit is told once
        await node.remove(container_id)
        await watcher.enqueues(pod.uid, "the removed container noticed")
        await node.remove(sandbox_id)
        await watcher.enqueues(pod.uid, "the pod's last sandbox gone noticed")
        # `docker rm -f` kills the running sandbox first: a listing made meanwhile may see it
        # exited, a change of its own; two rounds on, every listing began after the removal
        await watcher.two_rounds()
        await watcher.taken()
        await watcher.two_rounds()
        assert await watcher.taken() == set()


async def test_relist_enqueues_orphans_until_they_are_gone(node: Node, tmp_path: Path) -> None:
    """A pod the API does not have (deleted while the kubelet was down) is synced, to go."""
    orphan = new_pod()
    sandbox_id, container_id = await running_pod(node.runtime, orphan, command=("sleep", "3600"))
    async with relisting(node.runtime, tmp_path) as watcher:
        await watcher.enqueues(orphan.uid, "the orphan enqueued")
        await watcher.enqueues(orphan.uid, "the orphan enqueued again while it is there")
        await node.remove(container_id)
        await node.remove(sandbox_id)
        await watcher.two_rounds()
        await watcher.taken()
        await watcher.two_rounds()
        assert await watcher.taken() == set()
