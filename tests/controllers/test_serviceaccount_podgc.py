"""The ``default`` ServiceAccount in every namespace; pod GC of finished and orphaned pods.

The first test runs the real ``core-controllers`` component (default timings); the pod
GC tests shorten its period, threshold and quarantine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import minikube_py.controllers.core_component as core_component
from minikube_py import errors
from minikube_py.client.interface import Selection
from minikube_py.cluster import Cluster
from minikube_py.controllers.base import resource
from minikube_py.meta.objects import Obj
from tests.controllers.corecluster import condition, core_cluster, pod
from tests.support.cluster import running_cluster
from tests.support.waiting import wait_until

NAMESPACES = resource("", "Namespace")
SERVICE_ACCOUNTS = resource("", "ServiceAccount")
PODS = resource("", "Pod")
NS = "default"


def account_in(cluster: Cluster, namespace: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            await cluster.client.get(SERVICE_ACCOUNTS, namespace, "default")
        except errors.NotFound:
            return False
        return True

    return check


async def test_every_namespace_gets_a_default_service_account(tmp_path: Path) -> None:
    assert "core-controllers" in core_component.COMPONENTS
    async with running_cluster(
        tmp_path, simulated_nodes=0, components=("core-controllers",)
    ) as cluster:
        for namespace in ("default", "kube-system", "kube-public", "kube-node-lease"):
            await wait_until(account_in(cluster, namespace), what=f"default SA in {namespace}")
        await cluster.client.create(NAMESPACES, "", {"metadata": {"name": "team"}})
        await wait_until(account_in(cluster, "team"), what="default SA in a new namespace")
        await cluster.client.delete(SERVICE_ACCOUNTS, "team", "default")
        await wait_until(account_in(cluster, "team"), what="default SA recreated")


def test_settings_come_from_flag_style_keys() -> None:
    chosen = core_component.CoreSettings.from_extra(
        {"node-monitor-grace-period": "5", "terminated-pod-gc-threshold": 3, "other": "x"}
    )
    assert chosen.node_monitor_grace_period == 5.0
    assert chosen.terminated_pod_gc_threshold == 3
    assert chosen.pod_gc_period == 20.0
    with pytest.raises(ValueError, match="job-backoff-base"):
        core_component.CoreSettings.from_extra({"job-backoff-base": "soon"})


async def finish(cluster: Cluster, name: str, phase: str = "Succeeded") -> None:
    current = await cluster.client.get(PODS, NS, name)
    current["status"]["phase"] = phase
    await cluster.client.update(PODS, NS, current, subresource="status")


async def names(cluster: Cluster) -> set[str]:
    return {p["metadata"]["name"] for p in (await cluster.client.list(PODS, Selection(NS))).items}


async def test_terminated_pods_above_the_threshold_are_collected(tmp_path: Path) -> None:
    async with core_cluster(tmp_path, terminated_pod_gc_threshold=2, pod_gc_period=0.1) as cluster:
        await cluster.client.create(PODS, NS, pod("running"))
        for index in range(4):
            await cluster.client.create(PODS, NS, pod(f"done-{index}"))
            await finish(cluster, f"done-{index}", "Failed" if index % 2 else "Succeeded")

        async def trimmed() -> bool:
            return len(await names(cluster)) == 3

        await wait_until(trimmed, what="two finished pods collected")
        left = await names(cluster)
        assert "running" in left
        assert len(left - {"running"}) == 2


async def test_pods_of_a_node_that_is_gone_are_failed_and_removed(tmp_path: Path) -> None:
    async with core_cluster(tmp_path, pod_gc_period=0.1, orphaned_pod_quarantine=0.2) as cluster:
        await cluster.client.create(PODS, NS, pod("stranded"))
        await cluster.client.bind(NS, "stranded", "vanished-node")
        await cluster.client.create(PODS, NS, pod("unbound"))
        seen: list[str] = []

        def note(kind: str, obj: Obj, previous: Obj | None) -> None:
            if obj["metadata"]["name"] == "stranded":
                seen.append(condition(obj, "DisruptionTarget").get("reason", ""))

        cluster.informers.get(PODS).on_change(note)

        async def removed() -> bool:
            return await names(cluster) == {"unbound"}

        await wait_until(removed, what="orphaned pod removed")
        assert "DeletionByPodGC" in seen
