"""Garbage collection by ownerReferences: Background, Orphan, Foreground, dangling owners."""

from __future__ import annotations

import asyncio
import os
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import Awaitable, Callable
from pathlib import Path

import minikube_py.scheduler.component as scheduler_component
from minikube_py import errors
from minikube_py.client.interface import Selection
from minikube_py.cluster import Cluster
from minikube_py.controllers import workloads_component
from minikube_py.controllers.base import resource
from minikube_py.meta.objects import Obj
from minikube_py.registry.resource import ResourceInfo
from tests.controllers.corecluster import core_cluster
from tests.support.requirements import require_binary
from tests.support.waiting import wait_until

CONFIGMAPS = resource("", "ConfigMap")
SECRETS = resource("", "Secret")
PODS = resource("", "Pod")
REPLICASETS = resource("apps", "ReplicaSet")
NS = "default"


def ref(owner: Obj, *, block: bool = False) -> Obj:
    meta = owner["metadata"]
    return {
        "apiVersion": owner.get("apiVersion", "v1"),
        "kind": owner.get("kind", "ConfigMap"),
        "name": meta["name"],
        "uid": meta["uid"],
        "blockOwnerDeletion": block,
    }


async def owner(cluster: Cluster, name: str) -> Obj:
    return await cluster.client.create(CONFIGMAPS, NS, {"metadata": {"name": name}})


async def dependent(
    cluster: Cluster, name: str, refs: list[Obj], finalizers: list[str] | None = None
) -> Obj:
    meta: Obj = {"name": name, "ownerReferences": refs}
    if finalizers:
        meta["finalizers"] = finalizers
    return await cluster.client.create(SECRETS, NS, {"metadata": meta})


def gone(cluster: Cluster, info: ResourceInfo, name: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            await cluster.client.get(info, NS, name)
        except errors.NotFound:
            return True
        return False

    return check


async def test_background_deletes_dependents_of_a_deleted_owner(tmp_path: Path) -> None:
    async with core_cluster(tmp_path) as cluster:
        parent = await owner(cluster, "parent")
        await dependent(cluster, "child-a", [ref(parent)])
        await dependent(cluster, "child-b", [ref(parent)])
        await cluster.client.delete(CONFIGMAPS, NS, "parent")
        await wait_until(gone(cluster, SECRETS, "child-a"), what="child-a collected")
        await wait_until(gone(cluster, SECRETS, "child-b"), what="child-b collected")


async def test_a_dependent_created_with_a_missing_owner_is_collected(tmp_path: Path) -> None:
    async with core_cluster(tmp_path) as cluster:
        ghost = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000001"},
        }
        await dependent(cluster, "stray", [ref(ghost)])
        await wait_until(gone(cluster, SECRETS, "stray"), what="stray collected")


async def test_an_owner_recreated_under_the_same_name_does_not_save_dependents(
    tmp_path: Path,
) -> None:
    async with core_cluster(tmp_path) as cluster:
        first = await owner(cluster, "phoenix")
        await cluster.client.delete(CONFIGMAPS, NS, "phoenix")
        await owner(cluster, "phoenix")
        await dependent(cluster, "of-the-first", [ref(first)])
        await wait_until(gone(cluster, SECRETS, "of-the-first"), what="dependent collected")


async def test_a_surviving_owner_keeps_the_dependent_and_only_the_dead_reference_goes(
    tmp_path: Path,
) -> None:
    async with core_cluster(tmp_path) as cluster:
        alive, doomed = await owner(cluster, "alive"), await owner(cluster, "doomed")
        await dependent(cluster, "shared", [ref(alive), ref(doomed)])
        await cluster.client.delete(CONFIGMAPS, NS, "doomed")

        async def one_ref_left() -> bool:
            found = await cluster.client.get(SECRETS, NS, "shared")
            refs = found["metadata"].get("ownerReferences") or []
            return [r["name"] for r in refs] == ["alive"]

        await wait_until(one_ref_left, what="dead owner reference dropped")


async def test_owners_of_unknown_kinds_are_never_taken_as_gone(tmp_path: Path) -> None:
    async with core_cluster(tmp_path) as cluster:
        custom = {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "uid": "00000000-0000-0000-0000-000000000002"},
        }
        doomed = await owner(cluster, "doomed")
        await dependent(cluster, "kept", [ref(custom), ref(doomed)])
        await cluster.client.delete(CONFIGMAPS, NS, "doomed")

        async def dropped() -> bool:
            found = await cluster.client.get(SECRETS, NS, "kept")
            return [r["kind"] for r in found["metadata"]["ownerReferences"]] == ["Widget"]

        await wait_until(dropped, what="only the ConfigMap reference dropped")


async def test_orphan_propagation_keeps_dependents_and_strips_the_reference(
    tmp_path: Path,
) -> None:
    async with core_cluster(tmp_path) as cluster:
        parent = await owner(cluster, "parent")
        await dependent(cluster, "orphan-a", [ref(parent, block=True)])
        await dependent(cluster, "orphan-b", [ref(parent)])
        await cluster.client.delete(CONFIGMAPS, NS, "parent", propagation="Orphan")
        await wait_until(gone(cluster, CONFIGMAPS, "parent"), what="owner removed")
        for name in ("orphan-a", "orphan-b"):
            found = await cluster.client.get(SECRETS, NS, name)
            assert not found["metadata"].get("ownerReferences"), name


async def test_foreground_waits_for_blocking_dependents_then_removes_the_owner(
    tmp_path: Path,
) -> None:
    async with core_cluster(tmp_path) as cluster:
        client = cluster.client
        parent = await owner(cluster, "parent")
        await dependent(cluster, "blocker", [ref(parent, block=True)], ["example.com/hold"])
        await dependent(cluster, "bystander", [ref(parent)])
        await client.delete(CONFIGMAPS, NS, "parent", propagation="Foreground")

        async def blocker_deleting() -> bool:
            found = await client.get(SECRETS, NS, "blocker")
            return bool(found["metadata"].get("deletionTimestamp"))

        await wait_until(blocker_deleting, what="blocking dependent being deleted")
        await wait_until(gone(cluster, SECRETS, "bystander"), what="other dependent deleted")
        waiting = await client.get(CONFIGMAPS, NS, "parent")
        assert waiting["metadata"]["finalizers"] == ["foregroundDeletion"]
        assert waiting["metadata"].get("deletionTimestamp")
        blocker = await client.get(SECRETS, NS, "blocker")
        blocker["metadata"]["finalizers"] = []
        await client.update(SECRETS, NS, blocker)
        await wait_until(gone(cluster, SECRETS, "blocker"), what="blocker gone")
        await wait_until(gone(cluster, CONFIGMAPS, "parent"), what="owner gone after dependents")


async def test_foreground_chain_removes_grandchildren_first(tmp_path: Path) -> None:
    async with core_cluster(tmp_path) as cluster:
        client = cluster.client
        top = await owner(cluster, "top")
        middle = await client.create(
            CONFIGMAPS,
            NS,
            {"metadata": {"name": "middle", "ownerReferences": [ref(top, block=True)]}},
        )
        await dependent(cluster, "leaf", [ref(middle, block=True)])
        await client.delete(CONFIGMAPS, NS, "top", propagation="Foreground")
        await wait_until(gone(cluster, CONFIGMAPS, "top"), what="top gone")
        assert await gone(cluster, SECRETS, "leaf")()
        assert await gone(cluster, CONFIGMAPS, "middle")()


async def kubectl(cluster: Cluster, cache: Path, *args: str) -> str:
    binary = require_binary("kubectl")
    url = f"http://127.0.0.1:{cluster.config.apiserver.port}"
    env = {**os.environ, "KUBECONFIG": "/dev/null", "KUBECACHEDIR": str(cache)}
    process = await asyncio.create_subprocess_exec(
        binary, "-s", url, *args, stdout=PIPE, stderr=STDOUT, env=env
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, out.decode()
    return out.decode()


async def test_kubectl_delete_cascades_through_deployments(tmp_path: Path) -> None:
    """Background removes ReplicaSets and pods; orphan keeps them, unowned; foreground
    removes them before the Deployment. With the real scheduler and workload controllers."""
    also = (scheduler_component.NAME, workloads_component.NAME)
    async with core_cluster(tmp_path, simulated_nodes=2, also=also) as cluster:
        cache = tmp_path / "kubectl"

        async def pods(app: str, running: bool = False) -> list[Obj]:
            listed = await cluster.client.list(PODS, Selection(NS, label_selector=f"app={app}"))
            return [p for p in listed.items if not running or p["status"].get("phase") == "Running"]

        def count(app: str, n: int, running: bool = False) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return len(await pods(app, running)) == n

            return check

        for app in ("gone", "kept", "first"):
            await kubectl(
                cluster, cache, "create", "deployment", app, "--image=busybox", "--replicas=2"
            )
            await wait_until(count(app, 2, running=True), within=30, what=f"{app} running")
        await kubectl(cluster, cache, "delete", "deployment", "gone")
        await wait_until(count("gone", 0), within=30, what="pods of a deleted deployment gone")
        await kubectl(cluster, cache, "delete", "deployment", "kept", "--cascade=orphan")
        kept_sets = await cluster.client.list(REPLICASETS, Selection(NS, label_selector="app=kept"))
        [kept] = kept_sets.items
        assert not kept["metadata"].get("ownerReferences")
        assert len(await pods("kept")) == 2
        await kubectl(cluster, cache, "delete", "deployment", "first", "--cascade=foreground")
        await wait_until(count("first", 0), within=30, what="pods gone before the deployment")
