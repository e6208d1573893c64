"""The scheduler in a running cluster: three simulated nodes, real API, real watches.

Nodes are labelled and tainted through the client, as ``kubectl label``/``taint`` would;
every wait is on an observable condition (``wait_until``), never a sleep.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import minikube_py.scheduler.component  # noqa: F401  (registers COMPONENTS["scheduler"])
from minikube_py import errors
from minikube_py.client.events import EVENTS
from minikube_py.client.interface import Client, Selection
from minikube_py.cluster import Cluster
from minikube_py.meta.objects import Obj
from minikube_py.scheduler import standalone
from minikube_py.scheduler.scheduler import NODES, Scheduler
from minikube_py.scheduler.writer import PODS
from tests.scheduler.builders import node as node_object
from tests.support.cluster import running_cluster
from tests.support.waiting import wait_until

NODE_NAMES = ("sim-0", "sim-1", "sim-2")
GPU_TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


async def _nodes_ready(client: Client) -> bool:
    listed = await client.list(NODES)
    ready = [
        n
        for n in listed.items
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in n.get("status", {}).get("conditions") or []
        )
    ]
    return len(ready) == len(NODE_NAMES)


@contextlib.asynccontextmanager
async def _started(tmp_path: Path, components: tuple[str, ...]) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path, simulated_nodes=3, components=components) as cluster:
        await wait_until(lambda: _nodes_ready(cluster.client), within=30, what="3 nodes Ready")
        yield cluster


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with _started(tmp_path, ("scheduler",)) as started:
        yield started


def _pod(name: str, *, cpu: str | None = None, owner: str = "", **spec: Any) -> Obj:
    resources = {"requests": {"cpu": cpu}} if cpu else {}
    meta: Obj = {"name": name}
    if owner:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": owner,
                "uid": f"uid-{owner}",
                "controller": True,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "containers": [{"name": "main", "image": "busybox", "resources": resources}],
            **spec,
        },
    }


async def _create(client: Client, *pods: Obj) -> None:
    for pod in pods:
        await client.create(PODS, "default", pod)


async def _get(client: Client, name: str) -> Obj:
    return await client.get(PODS, "default", name)


async def _bound(client: Client, name: str, within: float = 15) -> str:
    async def placed() -> bool:
        return bool((await _get(client, name))["spec"].get("nodeName"))

    await wait_until(placed, within=within, what=f"pod {name} bound")
    return str((await _get(client, name))["spec"]["nodeName"])


async def _condition(client: Client, name: str) -> Obj:
    """The pod's PodScheduled condition, once the scheduler has written one."""

    async def written() -> bool:
        conditions = (await _get(client, name)).get("status", {}).get("conditions") or []
        return any(c.get("type") == "PodScheduled" for c in conditions)

    await wait_until(written, what=f"pod {name} PodScheduled condition")
    conditions = (await _get(client, name))["status"]["conditions"]
    return next(c for c in conditions if c["type"] == "PodScheduled")


async def _events(client: Client, name: str, reason: str) -> list[Obj]:
    listed = await client.list(EVENTS, Selection(namespace="default"))
    return [
        e for e in listed.items if e["involvedObject"]["name"] == name and e["reason"] == reason
    ]


async def _patch_node(client: Client, name: str, patch: Obj) -> None:
    await client.patch(NODES, "", name, patch)


async def test_pods_are_placed_spread_and_run(cluster: Cluster) -> None:
    client = cluster.client
    await _create(client, *(_pod(f"web-{i}", owner="web") for i in range(6)))
    placed = collections.Counter([await _bound(client, f"web-{i}") for i in range(6)])
    assert placed == {name: 2 for name in NODE_NAMES}  # a controller's pods spread out

    async def running() -> bool:
        phase = (await _get(client, "web-0")).get("status", {}).get("phase")
        return bool(phase == "Running")

    await wait_until(running, within=15, what="web-0 Running on its simulated node")
    scheduled = (await _get(client, "web-0"))["status"]["conditions"]
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in scheduled)

    async def event() -> bool:
        return bool(await _events(client, "web-0", "Scheduled"))

    await wait_until(event, what="Scheduled event")
    [recorded] = await _events(client, "web-0", "Scheduled")
    assert recorded["type"] == "Normal"
    assert recorded["source"]["component"] == "default-scheduler"
    node = (await _get(client, "web-0"))["spec"]["nodeName"]
    assert recorded["message"] == f"Successfully assigned default/web-0 to {node}"


async def test_node_selector_and_node_affinity(cluster: Cluster) -> None:
    client = cluster.client
    await _patch_node(client, "sim-1", {"metadata": {"labels": {"disk": "ssd"}}})
    await _patch_node(client, "sim-2", {"metadata": {"labels": {"zone": "b", "cores": "64"}}})
    not_b = {"key": "zone", "operator": "NotIn", "values": ["b"]}
    no_disk = {"key": "disk", "operator": "DoesNotExist"}
    many_cores = {"key": "cores", "operator": "Gt", "values": ["32"]}
    await _create(
        client,
        _pod("selector", nodeSelector={"disk": "ssd"}),
        _pod("required", affinity=_required([not_b, no_disk])),
        _pod("numeric", affinity=_required([many_cores])),
        _pod(
            "either",
            affinity=_required(
                [{"key": "disk", "operator": "In", "values": ["ssd"]}],
                [{"key": "zone", "operator": "Exists"}],
            ),
        ),
        _pod(
            "preferred",
            affinity={
                "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 100,
                            "preference": {
                                "matchExpressions": [
                                    {"key": "zone", "operator": "In", "values": ["b"]}
                                ]
                            },
                        }
                    ]
                }
            },
        ),
    )
    assert await _bound(client, "selector") == "sim-1"
    assert await _bound(client, "required") == "sim-0"
    assert await _bound(client, "numeric") == "sim-2"
    assert await _bound(client, "either") in ("sim-1", "sim-2")
    assert await _bound(client, "preferred") == "sim-2"


def _required(*terms: list[Obj]) -> Obj:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": t} for t in terms]
            }
        }
    }


async def test_taints_and_tolerations(cluster: Cluster) -> None:
    client = cluster.client
    await _patch_node(client, "sim-0", {"spec": {"taints": [GPU_TAINT]}})
    no_execute = {"key": "maintenance", "effect": "NoExecute"}
    await _patch_node(client, "sim-1", {"spec": {"taints": [no_execute]}})
    await _create(client, *(_pod(f"plain-{i}") for i in range(3)))
    for i in range(3):
        assert await _bound(client, f"plain-{i}") == "sim-2"
    tolerant = _pod(
        "gpu-job",
        nodeSelector={"kubernetes.io/hostname": "sim-0"},
        tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu"}],
    )
    maintenance = _pod(
        "maintainer",
        nodeSelector={"kubernetes.io/hostname": "sim-1"},
        tolerations=[{"key": "maintenance", "operator": "Exists", "effect": "NoExecute"}],
    )
    await _create(client, tolerant, maintenance)
    assert await _bound(client, "gpu-job") == "sim-0"
    assert await _bound(client, "maintainer") == "sim-1"


async def test_an_unschedulable_pod_is_told_why_and_placed_when_a_node_appears(
    cluster: Cluster,
) -> None:
    client = cluster.client
    await _create(client, _pod("picky", nodeSelector={"pool": "big"}))
    condition = await _condition(client, "picky")
    message = (
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
        " preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "False",
        "Unschedulable",
        message,
    )

    async def warned() -> bool:
        return bool(await _events(client, "picky", "FailedScheduling"))

    await wait_until(warned, what="FailedScheduling event")
    [event] = await _events(client, "picky", "FailedScheduling")
    assert (event["type"], event["message"]) == ("Warning", message)
    assert event["source"]["component"] == "default-scheduler"

    await client.create(NODES, "", node_object("big-1", labels={"pool": "big"}))
    assert await _bound(client, "picky") == "big-1"
    scheduled = (await _get(client, "picky"))["status"]["conditions"]
    assert [(c["type"], c["status"]) for c in scheduled if c["type"] == "PodScheduled"] == [
        ("PodScheduled", "True")
    ]


async def test_resources_are_respected_and_freed_room_is_reused(cluster: Cluster) -> None:
    client = cluster.client
    node = await client.get(NODES, "", "sim-0")
    cpu = node["status"]["allocatable"]["cpu"]  # the machine's: simulated nodes report it
    await _create(client, *(_pod(f"whole-{i}", cpu=cpu) for i in range(3)))
    placed = {await _bound(client, f"whole-{i}") for i in range(3)}
    assert placed == set(NODE_NAMES)  # one per node: a second would not fit

    await _create(client, _pod("waiting", cpu=cpu))
    condition = await _condition(client, "waiting")
    assert condition["message"] == (
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available:"
        " 3 No preemption victims found for incoming pod."
    )
    await client.delete(PODS, "default", "whole-1", grace_period=0)
    freed = await _bound(client, "waiting")
    assert freed in NODE_NAMES


async def test_untolerated_taint_message_then_a_toleration_is_added(cluster: Cluster) -> None:
    client = cluster.client
    for name in NODE_NAMES:
        await _patch_node(client, name, {"spec": {"taints": [GPU_TAINT]}})
    await _create(client, _pod("blocked"))
    condition = await _condition(client, "blocked")
    assert condition["message"] == (
        "0/3 nodes are available: 3 node(s) had untolerated taint {dedicated: gpu}."
        " preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )
    pod = await _get(client, "blocked")
    pod["spec"]["tolerations"].append({"key": "dedicated", "operator": "Exists"})
    await client.update(PODS, "default", pod)
    assert await _bound(client, "blocked") in NODE_NAMES


async def test_pods_for_other_schedulers_are_left_alone(cluster: Cluster) -> None:
    client = cluster.client
    await _create(client, _pod("theirs", schedulerName="other-scheduler"), _pod("ours"))
    await _bound(client, "ours")
    theirs = await _get(client, "theirs")
    assert not theirs["spec"].get("nodeName")
    assert not theirs.get("status", {}).get("conditions")


async def test_the_standalone_scheduler_over_http(tmp_path: Path) -> None:
    async with _started(tmp_path, ()) as cluster:
        port = cluster.config.apiserver.port
        kubeconfig = tmp_path / "scheduler.conf"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: local\n"
            f"clusters:\n- name: local\n  cluster:\n    server: http://127.0.0.1:{port}\n"
            "contexts:\n- name: local\n  context:\n    cluster: local\n"
        )
        parser = _parser()
        config = standalone.config_from(parser.parse_args(["--kubeconfig", str(kubeconfig)]))
        task = asyncio.create_task(standalone.run(config))
        try:
            await _create(cluster.client, _pod("remote", cpu="100m"))
            assert await _bound(cluster.client, "remote") in NODE_NAMES
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


def _parser() -> Any:
    import argparse

    parser = argparse.ArgumentParser()
    standalone.add_flags(parser)
    return parser


class FlakyBinds:
    """The cluster's client, whose first binding fails as a timed-out write would."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.failures = 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def bind(self, namespace: str, name: str, node: str) -> None:
        if self.failures:
            self.failures -= 1
            raise errors.Timeout("the binding timed out")
        await self.client.bind(namespace, name, node)


async def test_a_failed_binding_gives_the_room_back_and_is_retried(tmp_path: Path) -> None:
    async with _started(tmp_path, ()) as cluster:
        client = FlakyBinds(cluster.client)
        scheduler = Scheduler(client, cluster.informers)
        async with asyncio.TaskGroup() as group:
            task = group.create_task(scheduler.run())
            await _create(cluster.client, _pod("retried", cpu="100m"))
            node = await _bound(cluster.client, "retried")
            task.cancel()
        assert scheduler.stats.bind_errors == 1
        assert scheduler.stats.bound == 1
        assert scheduler.cache.node_of("default/retried") == node
        counted = [n.name for n in scheduler.cache.infos.values() if n.req_cpu]
        assert counted == [node]  # counted once, on the node it is bound to
        assert scheduler.cache.infos[node].req_cpu == 100
