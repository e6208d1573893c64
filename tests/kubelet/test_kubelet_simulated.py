"""The kubelet's logic end to end on the simulated runtime (the product's simulated nodes).

Docker-backed behaviour is tested in the Docker kubelet tests; here the node object,
lease, pod status and deletion flow are checked without containers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from minikube_py import errors
from minikube_py.apiserver import server as apiserver
from minikube_py.apiserver.bootstrap import ensure_system_objects
from minikube_py.client.local import LocalClient
from minikube_py.config import APIServerConfig, StoreConfig
from minikube_py.kubelet.kubelet import Kubelet, KubeletConfig
from minikube_py.kubelet.node import LEASES, NODES, NodeConfig
from minikube_py.kubelet.runtime.simulated import SimulatedRuntime
from minikube_py.kubelet.sync import PODS
from minikube_py.storage.sqlite import SQLiteStore
from tests.support.etcd import free_port
from tests.support.waiting import wait_until


@dataclass
class Cluster:
    client: LocalClient
    runtime: SimulatedRuntime
    node: str


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    store = await SQLiteStore.open(tmp_path / "state.db")
    port = free_port()
    server = apiserver.build(store, APIServerConfig(store=StoreConfig(tmp_path), port=port))
    client = LocalClient(server.api)
    runtime = SimulatedRuntime("sim-1")
    config = KubeletConfig(
        node=NodeConfig(name="sim-1", root_dir=tmp_path / "kubelet", status_interval=0.2),
        relist_interval=0.1,
    )
    kubelet = Kubelet(client, runtime, config)
    started = asyncio.Event()
    tasks = [asyncio.create_task(server.serve("127.0.0.1", port, started))]
    await started.wait()
    await server.registries.cache.ready.wait()
    await ensure_system_objects(server.registries, port)
    tasks.append(asyncio.create_task(kubelet.run()))
    try:
        yield Cluster(client, runtime, "sim-1")
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await store.close()


async def test_node_registers_ready_with_a_lease(cluster: Cluster) -> None:
    async def ready() -> bool:
        try:
            node = await cluster.client.get(NODES, "", cluster.node)
        except errors.NotFound:
            return False
        conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        return conditions.get("Ready") == "True"

    async def leased() -> bool:
        try:
            await cluster.client.get(LEASES, "kube-node-lease", cluster.node)
        except errors.NotFound:
            return False
        return True

    await wait_until(ready, what="node Ready")
    await wait_until(leased, what="node Lease")
    node = await cluster.client.get(NODES, "", cluster.node)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "sim-1"
    assert labels["kubernetes.io/os"] == "linux"
    assert int(node["status"]["capacity"]["cpu"]) >= 1
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"] == "simulated://1.0"
    lease = await cluster.client.get(LEASES, "kube-node-lease", "sim-1")
    assert lease["spec"]["holderIdentity"] == "sim-1"


async def test_pod_runs_and_deletes(cluster: Cluster) -> None:
    pod = {
        "metadata": {"name": "web"},
        "spec": {
            "nodeName": cluster.node,
            "containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
        },
    }
    await cluster.client.create(PODS, "default", pod)

    async def running() -> bool:
        status = (await cluster.client.get(PODS, "default", "web")).get("status", {})
        statuses = status.get("containerStatuses") or []
        return (
            status.get("phase") == "Running"
            and all(s["ready"] for s in statuses)
            and len(statuses) == 2
        )

    await wait_until(running, what="pod Running")
    status = (await cluster.client.get(PODS, "default", "web"))["status"]
    assert status["podIP"].startswith("10.")
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Ready"] == "True"
    assert conditions["ContainersReady"] == "True"
    assert len(await cluster.runtime.containers()) == 2
    await cluster.client.delete(PODS, "default", "web")

    async def gone() -> bool:
        try:
            await cluster.client.get(PODS, "default", "web")
        except errors.NotFound:
            return not await cluster.runtime.containers() and not await cluster.runtime.sandboxes()
        return False

    await wait_until(gone, what="pod deleted and containers removed")


def test_simulated_commands_that_end() -> None:
    from minikube_py.kubelet.runtime.simulated import planned_exit

    assert planned_exit(("true",)) == (0.0, 0)
    assert planned_exit(("/bin/false",)) == (0.0, 1)
    assert planned_exit(("sleep", "2")) == (2.0, 0)
    assert planned_exit(("sh", "-c", "sleep 3; exit 4")) == (3.0, 4)
    assert planned_exit(("sh", "-c", "echo hi; exit 0")) == (0.0, 0)
    assert planned_exit(("sh", "-c", "while true; do sleep 1; done")) is None
    assert planned_exit(("sleep", "infinity")) is None
    assert planned_exit(()) is None


async def test_simulated_pod_completes(cluster: Cluster) -> None:
    pod = {
        "metadata": {"name": "done"},
        "spec": {
            "nodeName": cluster.node,
            "restartPolicy": "Never",
            "containers": [{"name": "a", "image": "busybox", "command": ["sh", "-c", "exit 0"]}],
        },
    }
    await cluster.client.create(PODS, "default", pod)

    async def succeeded() -> bool:
        status = (await cluster.client.get(PODS, "default", "done")).get("status", {})
        return status.get("phase") == "Succeeded"

    await wait_until(succeeded, what="pod Succeeded")


async def test_two_hundred_pods_on_simulated_nodes(tmp_path: Path) -> None:
    from minikube_py.client.interface import Selection
    from minikube_py.scheduler import component  # noqa: F401 - registers the scheduler
    from tests.support.cluster import running_cluster

    async with running_cluster(tmp_path, simulated_nodes=20, components=("scheduler",)) as running:
        pods = [
            {
                "metadata": {"name": f"p{i:03d}"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            }
            for i in range(200)
        ]
        await asyncio.gather(*(running.client.create(PODS, "default", pod) for pod in pods))

        async def all_running() -> bool:
            listed = await running.client.list(PODS, Selection("default"))
            phases = [p.get("status", {}).get("phase") for p in listed.items]
            return len(phases) == 200 and all(phase == "Running" for phase in phases)

        await wait_until(all_running, within=120, what="200 pods Running")
        listed = await running.client.list(PODS, Selection("default"))
        nodes = {p["spec"]["nodeName"] for p in listed.items}
        assert len(nodes) == 20  # spread over every simulated node
