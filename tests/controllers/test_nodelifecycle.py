"""Node lifecycle: a node whose Lease stops is Unknown and tainted; its pods evicted.

The test plays the kubelets: it registers nodes, renews one node's Lease and lets the
other's lapse, with a grace period of one second instead of fifty.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from minikube_py import errors
from minikube_py.cluster import Cluster
from minikube_py.controllers import nodelifecycle
from minikube_py.controllers.base import resource
from minikube_py.meta.objects import Obj, format_micro_time, format_time, system_clock
from tests.controllers.corecluster import condition, core_cluster, pod
from tests.support.waiting import wait_until

NODES = resource("", "Node")
LEASES = resource("coordination.k8s.io", "Lease")
PODS = resource("", "Pod")
NS = "default"
GRACE = 1.0


def ready_conditions(status: str = "True") -> list[Obj]:
    now = format_time(system_clock())
    return [
        {
            "type": kind,
            "status": status if kind == "Ready" else "False",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
            "reason": "KubeletReady" if kind == "Ready" else "KubeletHasNoPressure",
            "message": "",
        }
        for kind in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
    ]


async def register(cluster: Cluster, name: str, *, ready: str = "True") -> None:
    """Act as a kubelet registering: the Node with its status, and its Lease."""
    node = {"metadata": {"name": name}, "status": {"conditions": ready_conditions(ready)}}
    await cluster.client.create(NODES, "", node)
    await renew(cluster, name)


async def renew(cluster: Cluster, name: str) -> None:
    spec = {"holderIdentity": name, "leaseDurationSeconds": 40}
    spec["renewTime"] = format_micro_time(system_clock())
    try:
        lease = await cluster.client.get(LEASES, "kube-node-lease", name)
    except errors.NotFound:
        body = {"metadata": {"name": name}, "spec": spec}
        await cluster.client.create(LEASES, "kube-node-lease", body)
        return
    lease["spec"] = spec
    await cluster.client.update(LEASES, "kube-node-lease", lease)


@contextlib.asynccontextmanager
async def heartbeat(cluster: Cluster, name: str) -> AsyncIterator[None]:
    """Renew ``name``'s Lease well within the grace period until the block ends."""

    async def beat() -> None:
        while True:
            await renew(cluster, name)
            await asyncio.sleep(GRACE / 5)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def node(cluster: Cluster, name: str) -> Obj:
    return await cluster.client.get(NODES, "", name)


def taint_keys(found: Obj) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in (found.get("spec") or {}).get("taints") or []}


def ready_is(cluster: Cluster, name: str, status: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return condition(await node(cluster, name), "Ready").get("status") == status

    return check


async def place(cluster: Cluster, name: str, on: str, tolerations: list[Obj] | None) -> None:
    body = pod(name) if tolerations is None else pod(name, tolerations=tolerations)
    await cluster.client.create(PODS, NS, body)
    await cluster.client.bind(NS, name, on)
    current = await cluster.client.get(PODS, NS, name)
    current["status"].update(
        {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    )
    await cluster.client.update(PODS, NS, current, subresource="status")


def unreachable_for(seconds: int | None) -> list[Obj]:
    toleration: Obj = {
        "key": nodelifecycle.UNREACHABLE,
        "operator": "Exists",
        "effect": "NoExecute",
    }
    if seconds is not None:
        toleration["tolerationSeconds"] = seconds
    return [toleration]


async def evicted(cluster: Cluster, name: str) -> bool:
    try:
        found = await cluster.client.get(PODS, NS, name)
    except errors.NotFound:
        return True
    return bool(found["metadata"].get("deletionTimestamp"))


async def test_a_silent_node_becomes_unknown_tainted_and_its_pods_go(tmp_path: Path) -> None:
    async with core_cluster(tmp_path, node_monitor_grace_period=GRACE) as cluster:
        await register(cluster, "alive")
        await register(cluster, "silent")
        async with heartbeat(cluster, "alive"):
            await place(cluster, "default-tolerations", "silent", None)
            await place(cluster, "short", "silent", unreachable_for(1))
            await place(cluster, "forever", "silent", unreachable_for(None))
            await place(cluster, "elsewhere", "alive", unreachable_for(0))
            await wait_until(ready_is(cluster, "silent", "Unknown"), what="silent node Unknown")

            lost = await node(cluster, "silent")
            ready = condition(lost, "Ready")
            assert ready["reason"] == "NodeStatusUnknown"
            assert ready["message"] == "Kubelet stopped posting node status."
            assert condition(lost, "MemoryPressure")["status"] == "Unknown"

            async def tainted() -> bool:
                return taint_keys(await node(cluster, "silent")) == {
                    (nodelifecycle.UNREACHABLE, "NoExecute"),
                    (nodelifecycle.UNREACHABLE, "NoSchedule"),
                }

            await wait_until(tainted, what="unreachable taints")
            taints = (await node(cluster, "silent"))["spec"]["taints"]
            assert all(t.get("timeAdded") for t in taints if t["effect"] == "NoExecute")

            await wait_until(lambda: evicted(cluster, "short"), within=5, what="short evicted")
            gone = await cluster.client.get(PODS, NS, "short")
            assert condition(gone, "DisruptionTarget")["reason"] == "DeletionByTaintManager"

            async def not_ready() -> bool:
                found = await cluster.client.get(PODS, NS, "forever")
                return condition(found, "Ready").get("status") == "False"

            await wait_until(not_ready, what="pods on the lost node marked not ready")
            assert not await evicted(cluster, "forever")
            assert not await evicted(cluster, "default-tolerations")  # 300 s by default
            assert not await evicted(cluster, "elsewhere")
            healthy = await node(cluster, "alive")
            assert condition(healthy, "Ready")["status"] == "True"
            assert not taint_keys(healthy)


async def test_a_node_recovers_when_its_kubelet_reports_ready_again(tmp_path: Path) -> None:
    async with core_cluster(tmp_path, node_monitor_grace_period=GRACE) as cluster:
        await register(cluster, "flaky")
        await wait_until(ready_is(cluster, "flaky", "Unknown"), what="Unknown")
        async with heartbeat(cluster, "flaky"):

            async def post_ready() -> bool:
                """As the kubelet does: read, write, and read again after a conflict."""
                back = await node(cluster, "flaky")
                back["status"]["conditions"] = ready_conditions()
                try:
                    await cluster.client.update(NODES, "", back, subresource="status")
                except errors.Conflict:
                    return False
                return True

            await wait_until(post_ready, what="Ready posted")

            async def untainted() -> bool:
                found = await node(cluster, "flaky")
                return condition(found, "Ready")["status"] == "True" and not taint_keys(found)

            await wait_until(untainted, what="taints removed after recovery")


async def test_conditions_and_unschedulable_become_taints(tmp_path: Path) -> None:
    async with core_cluster(tmp_path, node_monitor_grace_period=60) as cluster:
        await register(cluster, "sick", ready="False")

        async def not_ready_taints() -> bool:
            return taint_keys(await node(cluster, "sick")) == {
                (nodelifecycle.NOT_READY, "NoExecute"),
                (nodelifecycle.NOT_READY, "NoSchedule"),
            }

        await wait_until(not_ready_taints, what="not-ready taints")
        await cluster.client.create(
            NODES,
            "",
            {
                "metadata": {"name": "cordoned"},
                "spec": {
                    "unschedulable": True,
                    "taints": [{"key": "example.com/own", "effect": "NoSchedule"}],
                },
                "status": {"conditions": ready_conditions()},
            },
        )

        async def cordoned() -> bool:
            return taint_keys(await node(cluster, "cordoned")) == {
                ("example.com/own", "NoSchedule"),
                (nodelifecycle.UNSCHEDULABLE, "NoSchedule"),
            }

        await wait_until(cordoned, what="unschedulable taint beside the user's")


async def test_a_pod_that_does_not_tolerate_a_noexecute_taint_goes_at_once(
    tmp_path: Path,
) -> None:
    async with core_cluster(tmp_path) as cluster:
        await register(cluster, "shared")
        await place(cluster, "intolerant", "shared", None)
        await place(
            cluster,
            "tolerant",
            "shared",
            [{"key": "dedicated", "operator": "Equal", "value": "x", "effect": "NoExecute"}],
        )
        current = await node(cluster, "shared")
        current.setdefault("spec", {})["taints"] = [
            {"key": "dedicated", "value": "x", "effect": "NoExecute"}
        ]
        await cluster.client.update(NODES, "", current)
        await wait_until(lambda: evicted(cluster, "intolerant"), what="intolerant pod evicted")
        assert not await evicted(cluster, "tolerant")


def test_toleration_rules() -> None:
    taint = {"key": "k", "value": "v", "effect": "NoExecute"}
    assert nodelifecycle.tolerates({"operator": "Exists"}, taint)
    assert nodelifecycle.tolerates({"key": "k", "operator": "Exists"}, taint)
    assert nodelifecycle.tolerates({"key": "k", "value": "v"}, taint)
    assert not nodelifecycle.tolerates({"key": "k", "value": "w"}, taint)
    assert not nodelifecycle.tolerates(
        {"key": "k", "operator": "Exists", "effect": "NoSchedule"}, taint
    )
    assert nodelifecycle.eviction_delay([], [taint]) == 0
    assert nodelifecycle.eviction_delay([{"operator": "Exists"}], [taint]) is None
    both = [
        {"key": "k", "operator": "Exists", "tolerationSeconds": 30},
        {"operator": "Exists", "tolerationSeconds": 10},
    ]
    assert nodelifecycle.eviction_delay(both, [taint]) == 10
    assert (
        nodelifecycle.eviction_delay([{"operator": "Exists", "tolerationSeconds": -5}], [taint])
        == 0
    )
