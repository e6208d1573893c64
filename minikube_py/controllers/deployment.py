"""The Deployment controller: roll a pod template out through ReplicaSets.

As kube-controller-manager's (``pkg/controller/deployment``): each template gets its own
ReplicaSet named by the template's hash; RollingUpdate grows the new set and shrinks old
ones within maxSurge/maxUnavailable, Recreate empties the old sets before the new one
starts; a resize while a rollout is under way is shared proportionally; a paused
Deployment only scales. Which branch runs, and in what order, follows ``syncDeployment``.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from minikube_py import errors
from minikube_py.client.events import EventRecorder
from minikube_py.client.informer import key_of
from minikube_py.client.informers import SharedInformers
from minikube_py.client.interface import Client
from minikube_py.controllers import deployment_util as du
from minikube_py.controllers.base import Controller, KeysFor, own_key, resource
from minikube_py.controllers.deployment_rollout import (
    DEPLOYMENTS,
    REPLICASETS,
    MaybeRS,
    Rollout,
)
from minikube_py.controllers.podtemplate import (
    Claimer,
    controller_of,
    in_namespace,
    is_deleting,
    uid_of,
)
from minikube_py.meta import labels
from minikube_py.meta.objects import (
    Clock,
    Obj,
    deep_copy,
    dig,
    labels_of,
    namespace_of,
    system_clock,
)
from minikube_py.registry.resource import ResourceInfo

log = structlog.get_logger(__name__)
PODS = resource("", "Pod")


# --- RollingUpdate -----------------------------------------------------------------------------


async def rollout_rolling(r: Rollout) -> None:
    """rolloutRolling: scale up if allowed, else scale down if allowed, then report."""
    new_rs, old = await r.all_replica_sets(create=True)
    assert new_rs is not None
    all_rss: list[MaybeRS] = [*old, new_rs]
    if await _reconcile_new(r, all_rss, new_rs):
        return await r.sync_rollout_status(all_rss, new_rs)
    if await _reconcile_old(r, du.active(old), new_rs):
        return await r.sync_rollout_status(all_rss, new_rs)
    if du.complete(r.d, r.d.get("status") or {}):
        await r.cleanup(old)
    await r.sync_rollout_status(all_rss, new_rs)


async def _reconcile_new(r: Rollout, all_rss: list[MaybeRS], new_rs: Obj) -> bool:
    new_rs = r.fresh(new_rs) or new_rs
    wanted = du.replicas_of(r.d)
    if du.replicas_of(new_rs) == wanted:
        return False
    if du.replicas_of(new_rs) > wanted:
        return (await r.scale_to(new_rs, wanted))[0]
    fresh = [r.fresh(rs) for rs in all_rss]
    return (await r.scale_to(new_rs, du.new_rs_new_replicas(r.d, fresh, new_rs)))[0]


async def _reconcile_old(r: Rollout, old: list[Obj], new_rs: Obj) -> bool:
    """reconcileOldReplicaSets: first drop unhealthy old pods, then healthy ones as allowed."""
    if du.total_replicas(old) == 0:
        return False
    new_rs = r.fresh(new_rs) or new_rs
    min_available = du.replicas_of(r.d) - du.max_unavailable(r.d)
    new_unavailable = du.replicas_of(new_rs) - du.status_count(new_rs, "availableReplicas")
    budget = du.total_replicas([*old, new_rs]) - min_available - new_unavailable
    if budget <= 0:
        return False
    old, cleaned = await _cleanup_unhealthy(r, old, budget)
    scaled = await _scale_down_old(r, [*old, new_rs], old)
    return cleaned + scaled > 0


async def _cleanup_unhealthy(r: Rollout, old: list[Obj], budget: int) -> tuple[list[Obj], int]:
    """Scaling away pods that are not available costs no availability: do it first."""
    result, total = [], 0
    for rs in sorted(old, key=du.creation_key):
        unhealthy = du.replicas_of(rs) - du.status_count(rs, "availableReplicas")
        if total < budget and du.replicas_of(rs) > 0 and unhealthy > 0:
            count = min(budget - total, unhealthy)
            _, rs = await r.scale_to(rs, du.replicas_of(rs) - count)
            total += count
        result.append(rs)
    return result, total


async def _scale_down_old(r: Rollout, all_rss: list[Obj], old: list[Obj]) -> int:
    """Shrink old sets, oldest first, while availability stays above replicas-maxUnavailable."""
    min_available = du.replicas_of(r.d) - du.max_unavailable(r.d)
    available = sum(du.available_at_least(rs) for rs in all_rss)
    if available <= min_available:
        return 0
    wanted, done = available - min_available, 0
    for rs in sorted(old, key=du.creation_key):
        if done >= wanted:
            break
        if du.replicas_of(rs) == 0:
            continue
        count = min(du.replicas_of(rs), wanted - done)
        await r.scale_to(rs, du.replicas_of(rs) - count)
        done += count
    return done


# --- Recreate ----------------------------------------------------------------------------------


async def rollout_recreate(r: Rollout) -> None:
    """rolloutRecreate: old sets to zero, wait until their pods are gone, then the new set."""
    new_rs, old = await r.all_replica_sets(create=False)
    all_rss: list[MaybeRS] = [*old, new_rs]
    scaled_down = False
    for rs in du.active(old):
        scaled, _ = await r.scale_to(rs, 0)
        scaled_down = scaled_down or scaled
    if scaled_down or _old_pods_running(r, new_rs, old):
        return await r.sync_rollout_status(all_rss, new_rs)
    if new_rs is None:
        new_rs, old = await r.all_replica_sets(create=True)
        all_rss = [*old, new_rs]
    assert new_rs is not None
    await r.scale_to(new_rs, du.replicas_of(r.d))
    if du.complete(r.d, r.d.get("status") or {}):
        await r.cleanup(old)
    await r.sync_rollout_status(all_rss, new_rs)


def _old_pods_running(r: Rollout, new_rs: MaybeRS, old: list[Obj]) -> bool:
    if du.total_status(old, "replicas") > 0:
        return True
    new_uid = uid_of(new_rs) if new_rs is not None else None
    return any(
        dig(pod, "status", "phase") not in ("Failed", "Succeeded")
        for uid, pods in r.pods_by_rs.items()
        if uid != new_uid
        for pod in pods
    )


# --- scaling (paused or resized) -----------------------------------------------------------------


def _active_or_latest(new_rs: MaybeRS, old: list[Obj]) -> MaybeRS:
    """FindActiveOrLatest: the only active set, or the newest if none is active."""
    if new_rs is None and not old:
        return None
    newest_first = sorted(old, key=du.creation_key, reverse=True)
    actives = du.active([*newest_first, new_rs])
    if not actives:
        return new_rs if new_rs is not None else newest_first[0]
    return actives[0] if len(actives) == 1 else None


async def scale(r: Rollout, new_rs: MaybeRS, old: list[Obj]) -> None:
    """dc.scale: one active set takes the new size; several share it in proportion."""
    target = _active_or_latest(new_rs, old)
    if target is not None:
        await r.scale_to(target, du.replicas_of(r.d))
        return
    if du.is_saturated(r.d, new_rs):
        for rs in du.active(old):
            await r.scale_to(rs, 0)
        return
    if du.is_rolling(r.d):
        await _scale_proportionally(r, du.active([*old, new_rs]))


async def _scale_proportionally(r: Rollout, actives: list[Obj]) -> None:
    d = r.d
    allowed = du.replicas_of(d) + du.max_surge(d) if du.replicas_of(d) > 0 else 0
    to_add = allowed - du.total_replicas(actives)
    order = sorted(actives, key=du.creation_key, reverse=to_add > 0)
    order.sort(key=lambda rs: -du.replicas_of(rs))
    sizes: dict[str, int] = {}
    added = 0
    for rs in order:
        share = du.proportion(rs, d, to_add, added)
        sizes[uid_of(rs)] = du.replicas_of(rs) + share
        added += share
    operation = "up" if to_add > 0 else "down"
    for index, rs in enumerate(order):
        size = sizes[uid_of(rs)]
        if index == 0 and to_add != 0:
            size = max(size + to_add - added, 0)
        await r.scale_rs(rs, size, operation)


async def is_scaling_event(r: Rollout) -> bool:
    """The desired-replicas annotation of an active set differs from spec.replicas."""
    new_rs, old = await r.all_replica_sets(create=False)
    for rs in du.active([*old, new_rs]):
        desired = du.int_annotation(rs, du.DESIRED_REPLICAS)
        if desired is not None and desired != du.replicas_of(r.d):
            return True
    return False


async def sync_scaling(r: Rollout) -> None:
    """dc.sync: scale, tidy history when paused, report counts (no progress estimate)."""
    new_rs, old = await r.all_replica_sets(create=False)
    await scale(r, new_rs, old)
    if dig(r.d, "spec", "paused"):
        await r.cleanup(old)
    await r.sync_deployment_status([*old, new_rs], new_rs)


async def sync_deployment(r: Rollout) -> None:
    """syncDeployment after the claim: deleting → status; paused/resized → scale; else roll."""
    if is_deleting(r.d):
        new_rs, old = await r.all_replica_sets(create=False)
        return await r.sync_deployment_status([*old, new_rs], new_rs)
    await r.check_paused_conditions()
    if dig(r.d, "spec", "paused") or await is_scaling_event(r):
        return await sync_scaling(r)
    if dig(r.d, "spec", "strategy", "type") == "Recreate":
        return await rollout_recreate(r)
    return await rollout_rolling(r)


# --- the controller ------------------------------------------------------------------------------


class DeploymentController(Controller):
    name = "deployment-controller"
    workers = 5

    def __init__(
        self,
        client: Client,
        informers: SharedInformers,
        events: EventRecorder,
        *,
        clock: Clock = system_clock,
    ) -> None:
        self.clock = clock
        self.deployments = informers.get(DEPLOYMENTS)
        self.replicasets = informers.get(REPLICASETS)
        self.pods = informers.get(PODS)
        super().__init__(client, informers, events)

    def watches(self) -> list[tuple[ResourceInfo, KeysFor]]:
        return [(DEPLOYMENTS, own_key), (REPLICASETS, self._rs_keys), (PODS, self._pod_keys)]

    def _failed(self, key: str, exc: Exception) -> None:
        """A conflict means the cache was behind a write; the retry is routine, not news."""
        if isinstance(exc, errors.Conflict):
            log.debug("reconcile conflict", controller=self.name, key=key)
            return
        super()._failed(key, exc)

    @staticmethod
    def selector(d: Obj) -> labels.LabelSelector:
        try:
            return labels.from_label_selector(dig(d, "spec", "selector"))
        except labels.SelectorError:
            return labels.LabelSelector.nothing()

    def _rs_keys(self, kind: str, rs: Obj, previous: Obj | None) -> Iterable[str]:
        """A set change wakes its Deployment, or for an orphan every Deployment selecting it."""
        keys: set[str] = set()
        for candidate in (rs, previous):
            if candidate is None:
                continue
            ref = controller_of(candidate)
            if ref is None:
                keys.update(
                    key_of(d)
                    for d in in_namespace(self.deployments.objects.values(), namespace_of(rs))
                    if self.selector(d).matches(labels_of(candidate))
                )
            elif ref.get("kind") == "Deployment":
                keys.add(f"{namespace_of(candidate)}/{ref.get('name')}")
        return keys

    def _pod_keys(self, kind: str, pod: Obj, previous: Obj | None) -> Iterable[str]:
        """A pod going away may unblock a Recreate rollout waiting for old pods to end."""
        ref = controller_of(pod)
        if kind != "DELETED" or ref is None or ref.get("kind") != "ReplicaSet":
            return []
        rs = self.replicasets.get(f"{namespace_of(pod)}/{ref.get('name')}")
        owner = controller_of(rs) if rs is not None else None
        if owner is None or owner.get("kind") != "Deployment":
            return []
        return [f"{namespace_of(pod)}/{owner.get('name')}"]

    async def reconcile(self, key: str) -> float | None:
        cached = self.deployments.get(key)
        if cached is None:
            return None
        d = deep_copy(cached)
        if self.selector(d).is_empty():
            await self._selecting_everything(d)
            return None
        rss = await self._claim(d)
        rollout = Rollout(self.client, self.events, d, rss, self._pods_by_rs(d, rss), self.clock())
        await sync_deployment(rollout)
        return rollout.requeue

    async def _selecting_everything(self, d: Obj) -> None:
        message = "This deployment is selecting all pods. A non-empty selector is required."
        self.events.record(d, "Warning", "SelectingAll", message)
        generation = int(dig(d, "metadata", "generation") or 0)
        if int(dig(d, "status", "observedGeneration") or 0) < generation:
            d.setdefault("status", {})["observedGeneration"] = generation
            await self.client.update(DEPLOYMENTS, namespace_of(d), d, subresource="status")

    async def _claim(self, d: Obj) -> list[Obj]:
        """getReplicaSetsForDeployment: adopt matching orphan sets, release strays."""
        candidates = in_namespace(self.replicasets.objects.values(), namespace_of(d))
        claimer = Claimer(self.client, REPLICASETS, DEPLOYMENTS, d, self.selector(d))
        return [deep_copy(rs) for rs in await claimer.claim(candidates)]

    def _pods_by_rs(self, d: Obj, rss: list[Obj]) -> dict[str, list[Obj]]:
        """getPodMapForDeployment: the Deployment's pods grouped by owning set's uid."""
        selector = self.selector(d)
        grouped: dict[str, list[Obj]] = {uid_of(rs): [] for rs in rss}
        for pod in in_namespace(self.pods.objects.values(), namespace_of(d)):
            ref = controller_of(pod)
            if ref is not None and ref.get("uid") in grouped and selector.matches(labels_of(pod)):
                grouped[str(ref.get("uid"))].append(pod)
        return grouped
