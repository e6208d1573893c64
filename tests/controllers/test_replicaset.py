"""The ReplicaSet controller: replicas kept, pods adopted and released, scale, status.

The pure parts (slow-start batches, which pods go first, the template hash) are checked
directly; the rest on an in-process cluster with the scheduler and simulated nodes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from minikube_py import errors
from minikube_py.cluster import Cluster
from minikube_py.controllers.podtemplate import compute_hash, equal_ignore_hash, slow_start_batch
from minikube_py.controllers.replicaset import pods_to_delete
from minikube_py.meta.objects import Obj, format_time
from tests.controllers import (
    PODS,
    REPLICASETS,
    events_about,
    live_pods,
    owner_uid,
    pod,
    ready_pods,
    replica_set,
    workload_cluster,
)
from tests.support.waiting import wait_until

WEB = {"app": "web"}


async def _status(cluster: Cluster, name: str) -> Obj:
    found = await cluster.client.get(REPLICASETS, "default", name)
    return dict(found.get("status") or {})


async def _settled(cluster: Cluster, name: str, replicas: int) -> None:
    """Wait until the set reports ``replicas`` ready pods for its latest spec."""

    async def done() -> bool:
        rs = await cluster.client.get(REPLICASETS, "default", name)
        status = rs.get("status") or {}
        return (
            status.get("observedGeneration") == rs["metadata"]["generation"]
            and status.get("replicas", 0) == replicas
            and status.get("readyReplicas", 0) == replicas
            and len(await ready_pods(cluster, "app=web")) == replicas
        )

    await wait_until(done, within=15, what=f"{name} settled at {replicas} ready pods")


def _events(cluster: Cluster, reason: str, count: int) -> Callable[[], Awaitable[bool]]:
    """Events are written off the controller's path: wait for them to land."""

    async def landed() -> bool:
        reasons = [e["reason"] for e in await events_about(cluster, "web")]
        return reasons.count(reason) == count

    return landed


# --- pure parts ----------------------------------------------------------------------------


async def test_slow_start_doubles_batches_and_stops_at_the_first_failing_one() -> None:
    batches: list[int] = []
    running = 0
    calls = 0

    async def create() -> None:
        nonlocal running, calls
        calls += 1
        if running == 0:
            batches.append(0)
        running += 1
        batches[-1] += 1
        await asyncio.sleep(0)
        running -= 1
        if calls > 7:
            raise errors.Forbidden("exceeded quota")

    created, failure = await slow_start_batch(20, 1, create)
    assert batches == [1, 2, 4, 8]
    assert created == 7  # 1 + 2 + 4; the whole batch of 8 failed
    assert isinstance(failure, errors.Forbidden)
    ok, none = await slow_start_batch(3, 1, lambda: asyncio.sleep(0))
    assert (ok, none) == (3, None)


def _pod(name: str, *, node: str = "n1", phase: str = "Running", ready: bool = True) -> Obj:
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if ready:
        conditions[0]["lastTransitionTime"] = format_time(1000)
    return {
        "metadata": {"name": name, "uid": name, "creationTimestamp": format_time(900)},
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, "conditions": conditions},
    }


def test_scale_down_takes_unscheduled_then_pending_then_unready_then_doubled_up_pods() -> None:
    running = _pod("running", node="n2")
    doubled = _pod("doubled", node="n1")
    doubled_too = _pod("doubled-too", node="n1")
    unready = _pod("unready", node="n3", ready=False)
    pending = _pod("pending", node="n3", phase="Pending", ready=False)
    unscheduled = _pod("unscheduled", node="", phase="Pending", ready=False)
    pods = [running, doubled, unready, pending, unscheduled, doubled_too]
    chosen = pods_to_delete(pods, pods, 4, now=2000)
    names = [p["metadata"]["name"] for p in chosen]
    assert names[:3] == ["unscheduled", "pending", "unready"]
    assert names[3] in ("doubled", "doubled-too")


def test_template_hash_is_stable_ignores_the_hash_label_and_changes_with_collisions() -> None:
    template = {"metadata": {"labels": WEB}, "spec": {"containers": [{"name": "a", "image": "x"}]}}
    first = compute_hash(template)
    assert first == compute_hash({"spec": template["spec"], "metadata": template["metadata"]})
    assert len(first) <= 10
    assert set(first) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert compute_hash(template, 1) != first
    changed = {**template, "spec": {"containers": [{"name": "a", "image": "y"}]}}
    assert compute_hash(changed) != first
    labelled = {
        "metadata": {"labels": {**WEB, "pod-template-hash": first}},
        "spec": template["spec"],
    }
    assert equal_ignore_hash(labelled, template)
    assert not equal_ignore_hash(changed, template)


# --- on a cluster --------------------------------------------------------------------------


async def test_keeps_replicas_and_replaces_a_deleted_pod(tmp_path: Path) -> None:
    async with workload_cluster(tmp_path) as cluster:
        created = await cluster.client.create(REPLICASETS, "default", replica_set("web", 3, WEB))
        await _settled(cluster, "web", 3)
        pods = await live_pods(cluster, "app=web")
        assert all(p["metadata"]["name"].startswith("web-") for p in pods)
        expected_ref = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web",
            "uid": created["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert all(p["metadata"]["ownerReferences"] == [expected_ref] for p in pods)
        status = await _status(cluster, "web")
        assert status == {
            "replicas": 3,
            "fullyLabeledReplicas": 3,
            "readyReplicas": 3,
            "availableReplicas": 3,
            "observedGeneration": 1,
        }
        victim = pods[0]["metadata"]["name"]
        await cluster.client.delete(PODS, "default", victim, grace_period=0)

        async def replaced() -> bool:
            names = {p["metadata"]["name"] for p in await ready_pods(cluster, "app=web")}
            return len(names) == 3 and victim not in names

        await wait_until(replaced, what="a replacement pod")
        await wait_until(_events(cluster, "SuccessfulCreate", 4), what="4 SuccessfulCreate events")


async def test_scale_subresource_up_and_down(tmp_path: Path) -> None:
    async with workload_cluster(tmp_path) as cluster:
        await cluster.client.create(REPLICASETS, "default", replica_set("web", 2, WEB))
        await _settled(cluster, "web", 2)
        for size in (7, 1, 0, 3):
            patch = {"spec": {"replicas": size}}
            await cluster.client.patch(REPLICASETS, "default", "web", patch, subresource="scale")
            await _settled(cluster, "web", size)
        scale = await cluster.client.get(REPLICASETS, "default", "web")
        assert scale["status"]["observedGeneration"] == scale["metadata"]["generation"] == 5
        await wait_until(_events(cluster, "SuccessfulDelete", 7), what="7 SuccessfulDelete events")


async def test_adopts_matching_orphans_and_counts_fully_labeled_pods(tmp_path: Path) -> None:
    labels = {"app": "web", "tier": "front"}
    async with workload_cluster(tmp_path) as cluster:
        await cluster.client.create(PODS, "default", pod("orphan-full", labels))
        await cluster.client.create(PODS, "default", pod("orphan-partial", WEB))
        await cluster.client.create(PODS, "default", pod("stranger", {"app": "other"}))
        manifest = replica_set("web", 3, WEB)
        manifest["spec"]["template"]["metadata"]["labels"] = labels
        rs = await cluster.client.create(REPLICASETS, "default", manifest)
        await _settled(cluster, "web", 3)
        pods = {p["metadata"]["name"]: p for p in await live_pods(cluster, "app=web")}
        assert {"orphan-full", "orphan-partial"} <= set(pods)
        assert {owner_uid(p) for p in pods.values()} == {rs["metadata"]["uid"]}
        stranger = await cluster.client.get(PODS, "default", "stranger")
        assert owner_uid(stranger) is None
        assert (await _status(cluster, "web"))["fullyLabeledReplicas"] == 2


async def test_releases_a_pod_whose_labels_stop_matching_and_replaces_it(tmp_path: Path) -> None:
    async with workload_cluster(tmp_path) as cluster:
        await cluster.client.create(REPLICASETS, "default", replica_set("web", 2, WEB))
        await _settled(cluster, "web", 2)
        leaving = (await live_pods(cluster, "app=web"))[0]["metadata"]["name"]
        patch = {"metadata": {"labels": {"app": "debug"}}}
        await cluster.client.patch(PODS, "default", leaving, patch)

        async def released() -> bool:
            found = await cluster.client.get(PODS, "default", leaving)
            return not found["metadata"].get("ownerReferences")

        await wait_until(released, what="the relabelled pod released")
        await _settled(cluster, "web", 2)
        assert leaving not in {p["metadata"]["name"] for p in await live_pods(cluster, "app=web")}


async def test_an_unschedulable_adopted_pod_is_the_first_deleted(tmp_path: Path) -> None:
    async with workload_cluster(tmp_path) as cluster:
        await cluster.client.create(REPLICASETS, "default", replica_set("web", 3, WEB))
        await _settled(cluster, "web", 3)
        before = {p["metadata"]["name"] for p in await live_pods(cluster, "app=web")}
        stray = pod("stray", WEB, nodeSelector={"disk": "none-has-this"})
        await cluster.client.create(PODS, "default", stray)

        async def stray_gone() -> bool:
            try:
                await cluster.client.get(PODS, "default", "stray")
            except errors.NotFound:
                return True
            return False

        await wait_until(stray_gone, what="the unscheduled pod deleted")
        assert {p["metadata"]["name"] for p in await live_pods(cluster, "app=web")} == before

        async def reported() -> bool:
            messages = [e["message"] for e in await events_about(cluster, "web")]
            return "Deleted pod: stray" in messages

        await wait_until(reported, what="a SuccessfulDelete event for the stray pod")


async def test_min_ready_seconds_delays_availability(tmp_path: Path) -> None:
    async with workload_cluster(tmp_path) as cluster:
        manifest = replica_set("web", 1, WEB, minReadySeconds=2)
        await cluster.client.create(REPLICASETS, "default", manifest)

        async def ready_not_available() -> bool:
            status = await _status(cluster, "web")
            return status.get("readyReplicas") == 1 and not status.get("availableReplicas")

        await wait_until(ready_not_available, what="ready but not yet available")

        async def available() -> bool:
            return (await _status(cluster, "web")).get("availableReplicas") == 1

        await wait_until(available, within=10, what="available after minReadySeconds")
