"""The ReplicaSet controller: keep ``spec.replicas`` pods that match the selector.

As kube-controller-manager's (``pkg/controller/replicaset``): pods are claimed (matching
orphans adopted, owned pods whose labels moved away released), missing pods are created
in slow-start batches, surplus pods are deleted least-valuable first, and the status
counts what exists. Expectations (see ``podtemplate``) remember the creations and
deletions in flight, so a sync that runs before the informer has seen them does not
create or delete twice.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from functools import cmp_to_key

import structlog

from minikube_py import errors
from minikube_py.client.events import EventRecorder
from minikube_py.client.informer import key_of
from minikube_py.client.informers import SharedInformers
from minikube_py.client.interface import Client
from minikube_py.controllers.base import Controller, KeysFor, own_key, resource
from minikube_py.controllers.podtemplate import (
    Claimer,
    Expectations,
    PodControl,
    available_at,
    controller_of,
    in_namespace,
    is_deleting,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    namespace_terminating,
    ready_since,
    slow_start_batch,
    uid_of,
)
from minikube_py.meta import labels
from minikube_py.meta.objects import (
    Clock,
    Obj,
    annotations_of,
    deep_copy,
    dig,
    format_time,
    labels_of,
    namespace_of,
    parse_time,
    system_clock,
)
from minikube_py.registry.resource import ResourceInfo

log = structlog.get_logger(__name__)
PODS = resource("", "Pod")
REPLICASETS = resource("apps", "ReplicaSet")
BURST_REPLICAS = 500
"""At most this many creations or deletions per sync (kube's --replicaset burst)."""
SLOW_START_INITIAL_BATCH = 1
AVAILABILITY_SLACK = 0.05


# --- which pods to delete first ------------------------------------------------------------

_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


def _log_rank(moment: float, now: float) -> int:
    """log2 of the age in nanoseconds, as logarithmicRankDiff buckets ages."""
    age = (now - moment) * 1e9
    return int(math.log2(age)) if age > 0 else -1


def _compare_times(
    one: float | None, other: float | None, now: float, uids: tuple[str, str]
) -> int:
    """Newer first, by powers of two of age (LogarithmicScaleDown); zero times first."""
    if one is None or other is None:
        return -1 if one is None else 1
    difference = _log_rank(one, now) - _log_rank(other, now)
    if difference == 0:
        return -1 if uids[0] < uids[1] else (1 if uids[0] > uids[1] else 0)
    return -1 if difference < 0 else 1


def _max_restarts(pod: Obj) -> int:
    statuses = dig(pod, "status", "containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def _deletion_cost(pod: Obj) -> int:
    value = str(annotations_of(pod).get("controller.kubernetes.io/pod-deletion-cost", "0"))
    return int(value) if value.lstrip("-").isdigit() else 0


def _created(pod: Obj) -> float | None:
    stamp = dig(pod, "metadata", "creationTimestamp")
    return parse_time(stamp) if stamp else None


def _compare_pods(a: tuple[Obj, int], b: tuple[Obj, int], now: float) -> int:
    """ActivePodsWithRanks.Less as a three-way comparison (smaller is deleted first)."""
    (pod_a, rank_a), (pod_b, rank_b) = a, b
    node_a, node_b = dig(pod_a, "spec", "nodeName") or "", dig(pod_b, "spec", "nodeName") or ""
    if node_a != node_b and not (node_a and node_b):
        return -1 if not node_a else 1
    phase_a = _PHASE_ORDER.get(dig(pod_a, "status", "phase") or "", 0)
    phase_b = _PHASE_ORDER.get(dig(pod_b, "status", "phase") or "", 0)
    if phase_a != phase_b:
        return -1 if phase_a < phase_b else 1
    ready_a, ready_b = is_pod_ready(pod_a), is_pod_ready(pod_b)
    if ready_a != ready_b:
        return -1 if not ready_a else 1
    if (cost_a := _deletion_cost(pod_a)) != (cost_b := _deletion_cost(pod_b)):
        return -1 if cost_a < cost_b else 1
    if rank_a != rank_b:
        return -1 if rank_a > rank_b else 1
    uids = (uid_of(pod_a), uid_of(pod_b))
    if ready_a and ready_b and (since_a := ready_since(pod_a)) != (since_b := ready_since(pod_b)):
        return _compare_times(since_a, since_b, now, uids)
    if (restarts_a := _max_restarts(pod_a)) != (restarts_b := _max_restarts(pod_b)):
        return -1 if restarts_a > restarts_b else 1
    if (created_a := _created(pod_a)) != (created_b := _created(pod_b)):
        return _compare_times(created_a, created_b, now, uids)
    return 0


def pods_to_delete(pods: list[Obj], related: list[Obj], count: int, now: float) -> list[Obj]:
    """getPodsToDelete: unscheduled, pending, not ready, doubled-up and newest pods go first.

    A pod's rank is how many active pods of the same workload share its node, so scale
    down also spreads the survivors.
    """
    if count >= len(pods):
        return pods[:count]
    on_node: dict[str, int] = {}
    for pod in related:
        if is_pod_active(pod):
            node = dig(pod, "spec", "nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    ranked = [(pod, on_node.get(dig(pod, "spec", "nodeName") or "", 0)) for pod in pods]

    def compare(a: tuple[Obj, int], b: tuple[Obj, int]) -> int:
        return _compare_pods(a, b, now)

    ranked.sort(key=cmp_to_key(compare))
    return [pod for pod, _ in ranked[:count]]


# --- status --------------------------------------------------------------------------------

_COUNTS = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas")


def _failure_condition(status: Obj, diff: int, failure: errors.APIError | None, now: float) -> None:
    """ReplicaFailure comes with the first failed create or delete, goes with a clean sync."""
    conditions = status.pop("conditions", None) or []
    kept = [c for c in conditions if c.get("type") != "ReplicaFailure"]
    if failure is not None:
        reason = "FailedCreate" if diff < 0 else ("FailedDelete" if diff > 0 else "")
        stamp = format_time(now)
        new = {"type": "ReplicaFailure", "status": "True", "lastTransitionTime": stamp}
        new |= {"reason": reason, "message": str(failure)}
        kept += [c for c in conditions if c.get("type") == "ReplicaFailure"] or [new]
    if kept:
        status["conditions"] = kept


def replica_set_status(
    rs: Obj, pods: list[Obj], failure: errors.APIError | None, now: float
) -> Obj:
    """calculateStatus: counts of the claimed active pods, plus a ReplicaFailure condition."""
    status = deep_copy(rs.get("status") or {})
    template_labels = dig(rs, "spec", "template", "metadata", "labels") or {}
    min_ready = int(dig(rs, "spec", "minReadySeconds") or 0)
    counts = {
        "replicas": len(pods),
        "fullyLabeledReplicas": sum(
            1 for pod in pods if template_labels.items() <= labels_of(pod).items()
        ),
        "readyReplicas": sum(1 for pod in pods if is_pod_ready(pod)),
        "availableReplicas": sum(1 for pod in pods if is_pod_available(pod, min_ready, now)),
    }
    for name, value in counts.items():
        if value or name == "replicas":
            status[name] = value
        else:
            status.pop(name, None)
    _failure_condition(status, len(pods) - replicas_of(rs), failure, now)
    return status


def replicas_of(obj: Obj) -> int:
    return int(dig(obj, "spec", "replicas") or 0)


def _same_status(old: Obj, new: Obj) -> bool:
    same_counts = all(int(old.get(n) or 0) == int(new.get(n) or 0) for n in _COUNTS)
    return same_counts and (old.get("conditions") or []) == (new.get("conditions") or [])


# --- the controller ------------------------------------------------------------------------


class ReplicaSetController(Controller):
    name = "replicaset-controller"
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
        self.expectations = Expectations()
        self._selectors: dict[str, labels.LabelSelector] = {}
        self.replicasets = informers.get(REPLICASETS)
        self.pods = informers.get(PODS)
        self.pod_control = PodControl(client, events, PODS, REPLICASETS)
        super().__init__(client, informers, events)
        self.pods.on_change(self._observe_pod)

    def watches(self) -> list[tuple[ResourceInfo, KeysFor]]:
        return [(REPLICASETS, own_key), (PODS, self._pod_keys)]

    def _failed(self, key: str, exc: Exception) -> None:
        """A conflict means the cache was behind a write; the retry is routine, not news."""
        if isinstance(exc, errors.Conflict):
            log.debug("reconcile conflict", controller=self.name, key=key)
            return
        super()._failed(key, exc)

    # --- informer plumbing

    def selector(self, rs: Obj) -> labels.LabelSelector:
        """The parsed selector, cached by uid (a ReplicaSet's selector is immutable)."""
        uid = uid_of(rs)
        found = self._selectors.get(uid)
        if found is None:
            try:
                found = labels.from_label_selector(dig(rs, "spec", "selector"))
            except labels.SelectorError:
                found = labels.LabelSelector.nothing()
            self._selectors[uid] = found
        return found

    def _selecting(self, pod: Obj) -> list[str]:
        """Keys of the ReplicaSets whose selector matches an orphan pod."""
        namespace, pod_labels = namespace_of(pod), labels_of(pod)
        return [
            key_of(rs)
            for rs in in_namespace(self.replicasets.objects.values(), namespace)
            if self.selector(rs).matches(pod_labels)
        ]

    def _pod_keys(self, kind: str, pod: Obj, previous: Obj | None) -> Iterable[str]:
        """A pod change wakes its controller, or, for an orphan, every set that could adopt it."""
        keys: set[str] = set()
        for candidate in (pod, previous):
            if candidate is None:
                continue
            ref = controller_of(candidate)
            if ref is None:
                keys.update(self._selecting(candidate))
            elif ref.get("kind") == "ReplicaSet":
                keys.add(f"{namespace_of(candidate)}/{ref.get('name')}")
        return keys

    def _observe_pod(self, kind: str, pod: Obj, previous: Obj | None) -> None:
        """Lower the expectations of the pod's ReplicaSet as creations and deletions land."""
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        key = f"{namespace_of(pod)}/{ref.get('name')}"
        if kind == "ADDED" and not is_deleting(pod):
            self.expectations.creation_observed(key)
        elif kind == "DELETED" or (is_deleting(pod) and not is_deleting(previous)):
            self.expectations.deletion_observed(key, key_of(pod))

    # --- reconcile

    async def reconcile(self, key: str) -> float | None:
        rs = self.replicasets.get(key)
        if rs is None:
            self.expectations.forget(key)
            return None
        needs_sync = self.expectations.satisfied(key)
        pods = await self._claim(rs)
        failure: errors.APIError | None = None
        if needs_sync and not is_deleting(rs):
            try:
                await self._manage(key, rs, pods)
            except errors.APIError as exc:
                failure = exc
        now = self.clock()
        await self._write_status(rs, replica_set_status(rs, pods, failure, now))
        if failure is not None:
            raise failure
        return self._next_availability_check(rs, pods, now)

    async def _claim(self, rs: Obj) -> list[Obj]:
        pods = in_namespace(self.pods.objects.values(), namespace_of(rs))
        claimer = Claimer(self.client, PODS, REPLICASETS, rs, self.selector(rs))
        return await claimer.claim(p for p in pods if is_pod_active(p))

    async def _manage(self, key: str, rs: Obj, pods: list[Obj]) -> None:
        diff = len(pods) - replicas_of(rs)
        if diff < 0:
            await self._create(key, rs, min(-diff, BURST_REPLICAS))
        elif diff > 0:
            await self._delete(key, rs, pods, min(diff, BURST_REPLICAS))

    async def _create(self, key: str, rs: Obj, count: int) -> None:
        self.expectations.expect_creations(key, count)
        template = dig(rs, "spec", "template") or {}

        async def create() -> None:
            try:
                await self.pod_control.create(template, rs)
            except errors.APIError as exc:
                if not namespace_terminating(exc):
                    raise

        created, failure = await slow_start_batch(count, SLOW_START_INITIAL_BATCH, create)
        for _ in range(count - created):
            self.expectations.creation_observed(key)
        if failure is not None:
            raise failure

    async def _delete(self, key: str, rs: Obj, pods: list[Obj], count: int) -> None:
        victims = pods_to_delete(pods, self._related_pods(rs), count, self.clock())
        self.expectations.expect_deletions(key, [key_of(pod) for pod in victims])
        results = await asyncio.gather(
            *(self._delete_one(key, rs, pod) for pod in victims), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _delete_one(self, key: str, rs: Obj, pod: Obj) -> None:
        try:
            await self.pod_control.delete(pod, rs)
        except errors.APIError as exc:
            self.expectations.deletion_observed(key, key_of(pod))
            if not isinstance(exc, errors.NotFound):
                raise

    def _related_pods(self, rs: Obj) -> list[Obj]:
        """getIndirectlyRelatedPods: pods of every ReplicaSet with the same controller."""
        namespace = namespace_of(rs)
        owner = controller_of(rs)
        siblings = {uid_of(rs)}
        if owner is not None:
            for other in in_namespace(self.replicasets.objects.values(), namespace):
                other_owner = controller_of(other)
                if other_owner is not None and other_owner.get("uid") == owner.get("uid"):
                    siblings.add(uid_of(other))
        return [
            pod
            for pod in in_namespace(self.pods.objects.values(), namespace)
            if (ref := controller_of(pod)) is not None and ref.get("uid") in siblings
        ]

    async def _write_status(self, rs: Obj, status: Obj) -> None:
        """Write only real changes; ``observedGeneration`` records the spec acted on.

        A conflict is left to the work queue's retry: the informer then holds the newer
        object and the next sync recounts against it.
        """
        generation = int(dig(rs, "metadata", "generation") or 0)
        current = rs.get("status") or {}
        if _same_status(current, status) and current.get("observedGeneration") == generation:
            return
        status["observedGeneration"] = generation
        updated = deep_copy(rs)
        updated["status"] = status
        await self.client.update(REPLICASETS, namespace_of(rs), updated, subresource="status")

    def _next_availability_check(self, rs: Obj, pods: list[Obj], now: float) -> float | None:
        """Seconds until the next ready pod outlives minReadySeconds (then it is available)."""
        min_ready = int(dig(rs, "spec", "minReadySeconds") or 0)
        if min_ready <= 0:
            return None
        moments = [
            m for pod in pods if (m := available_at(pod, min_ready)) is not None and m >= now
        ]
        return min(moments) - now + AVAILABILITY_SLACK if moments else None
