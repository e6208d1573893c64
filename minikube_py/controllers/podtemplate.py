"""What workload controllers share: template hashes, pods from templates, claiming dependents.

Kubernetes keeps these in ``pkg/controller/controller_utils.go`` and
``controller_ref_manager.go``; the ReplicaSet controller stamps pods from a template and
the Deployment controller stamps ReplicaSets from one, and both adopt matching orphans
and release dependents whose labels stopped matching, through the same rules. Any
controller that creates pods (Jobs too) needs expectations and slow-start batches.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from minikube_py import errors
from minikube_py.client.events import EventRecorder
from minikube_py.client.interface import Client
from minikube_py.meta.labels import LabelSelector
from minikube_py.meta.names import name_is_dns_subdomain
from minikube_py.meta.objects import (
    Obj,
    deep_copy,
    dig,
    metadata,
    name_of,
    namespace_of,
    parse_time,
)
from minikube_py.registry.resource import ResourceInfo

POD_TEMPLATE_HASH = "pod-template-hash"
"""apps.DefaultDeploymentUniqueLabelKey: tells a Deployment's ReplicaSets' pods apart."""

EXPECTATIONS_TTL = 300.0
"""Expectations older than this are ignored: a lost watch event must not wedge a sync."""
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
_FNV_OFFSET, _FNV_PRIME = 2166136261, 16777619


# --- template hash -----------------------------------------------------------------------


def fnv32a(data: bytes, value: int = _FNV_OFFSET) -> int:
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: digits become letters that never spell words or look alike."""
    return "".join(_ALPHANUMS[ord(char) % len(_ALPHANUMS)] for char in text)


def compute_hash(template: Obj, collision_count: int | None = None) -> str:
    """controller.ComputeHash with JSON instead of Go's spew dump of the struct.

    Kubernetes feeds fnv32a with ``spew``'s rendering of the Go PodTemplateSpec, which
    cannot be reproduced from JSON; hashing the key-sorted JSON of the template instead
    keeps every property that matters: stable across restarts and processes, different
    for different templates, salted by ``status.collisionCount`` exactly as upstream
    (its little-endian uint32 in an 8-byte buffer), encoded with the same alphabet.
    """
    value = fnv32a(orjson.dumps(template, option=orjson.OPT_SORT_KEYS))
    if collision_count is not None:
        value = fnv32a(struct.pack("<Q", collision_count & 0xFFFFFFFF), value)
    return safe_encode(str(value))


def _semantic(value: Any) -> Any:
    """Drop nulls and empty maps/lists: Semantic.DeepEqual treats nil and empty as equal."""
    if isinstance(value, dict):
        cleaned = {k: _semantic(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_semantic(item) for item in value]
    return value


def without_hash(template: Obj) -> Any:
    copied = deep_copy(template)
    labels = dig(copied, "metadata", "labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    return _semantic(copied)


def equal_ignore_hash(one: Obj, other: Obj) -> bool:
    """deploymentutil.EqualIgnoreHash: same template once the hash label is set aside."""
    return bool(without_hash(one) == without_hash(other))


# --- ownership ---------------------------------------------------------------------------


def controller_ref(owner: Obj, info: ResourceInfo) -> Obj:
    """metav1.NewControllerRef: the reference a controller puts on what it creates."""
    meta = metadata(owner)
    return {
        "apiVersion": info.api_version,
        "kind": info.kind,
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_of(obj: Obj) -> Obj | None:
    for ref in dig(obj, "metadata", "ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def uid_of(obj: Obj) -> str:
    return str(dig(obj, "metadata", "uid") or "")


def is_deleting(obj: Obj | None) -> bool:
    return bool(obj and dig(obj, "metadata", "deletionTimestamp"))


def in_namespace(objects: Iterable[Obj], namespace: str) -> list[Obj]:
    return [obj for obj in objects if namespace_of(obj) == namespace]


@dataclass
class Claimer:
    """ControllerRefManager.ClaimObject for one owner: adopt matching orphans, release strays.

    Before its first adoption it re-reads the owner from the API (RecheckDeletionTimestamp),
    so nothing is adopted for an owner just deleted or replaced by a namesake.
    """

    client: Client
    info: ResourceInfo
    owner_info: ResourceInfo
    owner: Obj
    selector: LabelSelector
    _checked: bool = False

    async def claim(self, objects: Iterable[Obj]) -> list[Obj]:
        claimed: list[Obj] = []
        for obj in objects:
            kept = await self._claim_one(obj)
            if kept is not None:
                claimed.append(kept)
        return claimed

    def _matches(self, obj: Obj) -> bool:
        return self.selector.matches(dig(obj, "metadata", "labels") or {})

    async def _claim_one(self, obj: Obj) -> Obj | None:
        ref = controller_of(obj)
        if ref is not None:
            if ref.get("uid") != uid_of(self.owner):
                return None
            if self._matches(obj):
                return obj
            if not is_deleting(self.owner):
                await self._ignoring_gone(self._release(obj))
            return None
        if is_deleting(self.owner) or not self._matches(obj) or is_deleting(obj):
            return None
        if namespace_of(obj) != namespace_of(self.owner):
            return None
        return await self._ignoring_gone(self._adopt(obj))

    @staticmethod
    async def _ignoring_gone(write: Awaitable[Obj]) -> Obj | None:
        try:
            return await write
        except errors.NotFound:
            return None

    async def _can_adopt(self) -> None:
        owner, kind = self.owner, self.owner_info.kind
        fresh = await self.client.get(self.owner_info, namespace_of(owner), name_of(owner))
        where = f"{kind} {namespace_of(owner)}/{name_of(owner)}"
        if uid_of(fresh) != uid_of(owner):
            raise errors.Conflict(
                f"original {where} is gone: got uid {uid_of(fresh)}, wanted {uid_of(owner)}"
            )
        if is_deleting(fresh):
            raise errors.Conflict(f"{where} has just been deleted")
        self._checked = True

    async def _adopt(self, obj: Obj) -> Obj:
        if not self._checked:
            await self._can_adopt()
        ref = controller_ref(self.owner, self.owner_info)
        patch = {"metadata": {"ownerReferences": [ref], "uid": uid_of(obj)}}
        return await self._patch(obj, patch)

    async def _release(self, obj: Obj) -> Obj:
        delete = {"$patch": "delete", "uid": uid_of(self.owner)}
        return await self._patch(
            obj, {"metadata": {"ownerReferences": [delete], "uid": uid_of(obj)}}
        )

    async def _patch(self, obj: Obj, patch: Obj) -> Obj:
        """Strategic merge on ownerReferences (keyed by uid), as kube's adopt and release."""
        return await self.client.patch(
            self.info, namespace_of(obj), name_of(obj), patch, flavour="strategic"
        )


# --- pods from templates -----------------------------------------------------------------


def pod_name_prefix(owner_name: str) -> str:
    """getPodsPrefix: ``<owner>-`` for generateName, unless that is not a valid name start."""
    prefix = f"{owner_name}-"
    return owner_name if name_is_dns_subdomain(prefix, True) else prefix


def pod_from_template(template: Obj, owner: Obj, owner_info: ResourceInfo) -> Obj:
    """GetPodFromTemplate: labels, annotations, finalizers and spec, owned by ``owner``."""
    template_meta = template.get("metadata") or {}
    meta: Obj = {
        "generateName": pod_name_prefix(name_of(owner)),
        "ownerReferences": [controller_ref(owner, owner_info)],
    }
    for part in ("labels", "annotations", "finalizers"):
        if template_meta.get(part):
            meta[part] = deep_copy({"v": template_meta[part]})["v"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": deep_copy(template.get("spec") or {}),
    }


@dataclass(frozen=True)
class PodControl:
    """RealPodControl: pods made from templates and deleted, with events on their owner."""

    client: Client
    events: EventRecorder
    pods: ResourceInfo
    owner_info: ResourceInfo

    async def create(self, template: Obj, owner: Obj) -> None:
        """One pod; SuccessfulCreate, or FailedCreate unless the namespace is going away."""
        pod = pod_from_template(template, owner, self.owner_info)
        if not dig(pod, "metadata", "labels"):
            raise errors.Invalid(
                errors.Target("", "", name_of(owner), "Pod"),
                [errors.required("metadata.labels", "unable to create pods, no labels")],
            )
        try:
            created = await self.client.create(self.pods, namespace_of(owner), pod)
        except errors.APIError as exc:
            if not namespace_terminating(exc):
                self.events.record(owner, "Warning", "FailedCreate", f"Error creating: {exc}")
            raise
        message = f"Created pod: {name_of(created)}"
        self.events.record(owner, "Normal", "SuccessfulCreate", message)

    async def delete(self, pod: Obj, owner: Obj) -> None:
        """Delete with the pod's own grace period; a pod already gone is not worth an event."""
        try:
            await self.client.delete(self.pods, namespace_of(pod), name_of(pod))
        except errors.NotFound:
            raise
        except errors.APIError as exc:
            self.events.record(owner, "Warning", "FailedDelete", f"Error deleting: {exc}")
            raise
        self.events.record(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {name_of(pod)}")


def namespace_terminating(exc: errors.APIError) -> bool:
    """errors.HasStatusCause(err, NamespaceTerminatingCause): every create will fail."""
    return any(cause.get("reason") == "NamespaceTerminating" for cause in exc.causes)


# --- pod state ---------------------------------------------------------------------------


def is_pod_active(pod: Obj) -> bool:
    """controller.IsPodActive: not finished and not being deleted."""
    phase = dig(pod, "status", "phase")
    return phase not in ("Succeeded", "Failed") and not is_deleting(pod)


def _ready_condition(pod: Obj) -> Obj | None:
    for condition in dig(pod, "status", "conditions") or []:
        if condition.get("type") == "Ready":
            return condition  # type: ignore[no-any-return]
    return None


def is_pod_ready(pod: Obj) -> bool:
    condition = _ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def ready_since(pod: Obj) -> float | None:
    """When the pod last turned Ready (None if it is not ready or the time is unknown)."""
    condition = _ready_condition(pod)
    if condition is None or condition.get("status") != "True":
        return None
    stamp = condition.get("lastTransitionTime")
    return parse_time(stamp) if stamp else None


def available_at(pod: Obj, min_ready_seconds: int) -> float | None:
    """The moment a ready pod counts as available; None while it is not ready.

    podutil.IsPodAvailable: ready, and (minReadySeconds == 0 or ready for longer than it).
    """
    if not is_pod_ready(pod):
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = ready_since(pod)
    return None if since is None else since + min_ready_seconds


def is_pod_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    moment = available_at(pod, min_ready_seconds)
    if moment is None:
        return False
    return min_ready_seconds <= 0 or moment < now


# --- expectations --------------------------------------------------------------------------


@dataclass
class _Expected:
    adds: int
    deletes: set[str] = field(default_factory=set)
    since: float = field(default_factory=time.monotonic)


class Expectations:
    """UIDTrackingControllerExpectations: creations counted, deletions tracked by pod key."""

    def __init__(self) -> None:
        self._by_key: dict[str, _Expected] = {}

    def satisfied(self, key: str) -> bool:
        found = self._by_key.get(key)
        if found is None:
            return True
        fulfilled = found.adds <= 0 and not found.deletes
        return fulfilled or time.monotonic() - found.since > EXPECTATIONS_TTL

    def expect_creations(self, key: str, count: int) -> None:
        self._by_key[key] = _Expected(count)

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        self._by_key[key] = _Expected(0, set(pod_keys))

    def creation_observed(self, key: str) -> None:
        found = self._by_key.get(key)
        if found is not None:
            found.adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        found = self._by_key.get(key)
        if found is not None:
            found.deletes.discard(pod_key)

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)


async def slow_start_batch(
    count: int, initial: int, create: Callable[[], Awaitable[None]]
) -> tuple[int, errors.APIError | None]:
    """Run ``create`` ``count`` times in batches of 1, 2, 4...; stop at the first failing batch.

    A quota or admission problem then costs one failed request, not hundreds, and
    produces one event instead of a storm. Returns (successes, first error).
    """
    remaining, successes = count, 0
    batch = min(remaining, initial)
    while batch > 0:
        results = await asyncio.gather(*(create() for _ in range(batch)), return_exceptions=True)
        failures = [result for result in results if isinstance(result, BaseException)]
        for failure in failures:
            if not isinstance(failure, errors.APIError):
                raise failure
        successes += batch - len(failures)
        if failures:
            first = failures[0]
            assert isinstance(first, errors.APIError)
            return successes, first
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None
