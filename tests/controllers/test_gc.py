"""Garbage collection by ownerReferences: Background, Orphan, Foreground, dangling owners."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from minikube_py import errors
from minikube_py.cluster import Cluster
from minikube_py.controllers.base import resource
from minikube_py.meta.objects import Obj
from minikube_py.registry.resource import ResourceInfo
from tests.controllers.corecluster import core_cluster
from tests.support.waiting import wait_until

CONFIGMAPS = resource("", "ConfigMap")
SECRETS = resource("", "Secret")
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
