"""Namespace controller: a Terminating namespace is emptied, then released.

Deleting a namespace only marks it (deletionTimestamp, phase Terminating); the API server
keeps it while ``spec.finalizers`` holds "kubernetes" and refuses new objects in it. This
controller deletes every namespaced object in it, waits until nothing is left (pods take
their grace period, other objects their finalizers), says why it waits in the namespace's
conditions as kube-controller-manager does (``kubectl describe ns``), then clears the
finalizer through ``namespaces/<name>/finalize`` so the API server removes the namespace.

Content is listed live, never from an informer: releasing the namespace on a stale cache
would leave objects behind in a namespace that no longer exists.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from minikube_py import errors
from minikube_py.client.events import EventRecorder
from minikube_py.client.informers import SharedInformers
from minikube_py.client.interface import Client, Selection
from minikube_py.controllers.base import (
    CATALOG,
    Controller,
    KeysFor,
    own_key,
    resource,
)
from minikube_py.meta.objects import Clock, Obj, dig, format_time, metadata, namespace_of
from minikube_py.registry.resource import ResourceInfo

NAMESPACES = resource("", "Namespace")
FINALIZER = "kubernetes"
RECHECK_SECONDS = 5.0
"""How soon to look again while content remains, should no deletion event arrive."""
UNWATCHED = {("", "Event")}
"""Deleted with the rest, but not watched: events are many and never hold a namespace."""


def content_kinds() -> list[ResourceInfo]:
    """Every namespaced resource that can be listed and deleted."""
    return [
        info
        for info in CATALOG.infos()
        if info.namespaced and "list" in info.verbs and "delete" in info.verbs
    ]


@dataclass
class Remaining:
    """What is still in a namespace after a deletion pass."""

    objects: dict[str, int] = field(default_factory=dict)
    """Qualified resource (``pods``, ``replicasets.apps``) → objects left."""
    finalizers: dict[str, int] = field(default_factory=dict)
    """Finalizer → objects it still holds."""

    def add(self, info: ResourceInfo, obj: Obj) -> None:
        self.objects[info.qualified] = self.objects.get(info.qualified, 0) + 1
        for name in metadata(obj).get("finalizers") or []:
            self.finalizers[name] = self.finalizers.get(name, 0) + 1


def _condition(kind: str, status: bool, reason: str, message: str) -> Obj:
    return {
        "type": kind,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
    }


def deletion_conditions(remaining: Remaining) -> list[Obj]:
    """The five conditions kube-controller-manager keeps on a Terminating namespace."""
    objects = ", ".join(
        f"{name} has {count} resource instances"
        for name, count in sorted(remaining.objects.items())
    )
    finalizers = ", ".join(
        f"{name} in {count} resource instances"
        for name, count in sorted(remaining.finalizers.items())
    )
    return [
        _condition(
            "NamespaceDeletionDiscoveryFailure",
            False,
            "ResourcesDiscovered",
            "All resources successfully discovered",
        ),
        _condition(
            "NamespaceDeletionGroupVersionParsingFailure",
            False,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
        ),
        _condition(
            "NamespaceDeletionContentFailure",
            False,
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization",
        ),
        _condition(
            "NamespaceContentRemaining",
            bool(objects),
            "SomeResourcesRemain" if objects else "ContentRemoved",
            f"Some resources are remaining: {objects}"
            if objects
            else "All content successfully removed",
        ),
        _condition(
            "NamespaceFinalizersRemaining",
            bool(finalizers),
            "SomeFinalizersRemain" if finalizers else "ContentHasNoFinalizers",
            f"Some content in the namespace has finalizers remaining: {finalizers}"
            if finalizers
            else "All content-preserving finalizers finished",
        ),
    ]


def _terminating(namespace: Obj | None) -> bool:
    return namespace is not None and bool(dig(namespace, "metadata", "deletionTimestamp"))


class NamespaceController(Controller):
    name = "namespace"

    def __init__(
        self,
        client: Client,
        informers: SharedInformers,
        events: EventRecorder,
        *,
        clock: Clock = time.time,
    ) -> None:
        self.clock = clock
        super().__init__(client, informers, events)
        self.namespaces = informers.get(NAMESPACES)

    def watches(self) -> list[tuple[ResourceInfo, KeysFor]]:
        found: list[tuple[ResourceInfo, KeysFor]] = [(NAMESPACES, own_key)]
        for info in content_kinds():
            if (info.group, info.kind) not in UNWATCHED:
                found.append((info, self._content_gone))
        return found

    def _content_gone(self, kind: str, obj: Obj, previous: Obj | None) -> Iterable[str]:
        """A deletion in a Terminating namespace may be the last thing it waited for."""
        if kind != "DELETED":
            return []
        namespace = namespace_of(obj)
        return [namespace] if _terminating(self.namespaces.get(namespace)) else []

    async def reconcile(self, key: str) -> float | None:
        namespace = self.namespaces.get(key)
        if not _terminating(namespace) or FINALIZER not in (
            dig(namespace, "spec", "finalizers") or []
        ):
            return None
        remaining = await self._delete_content(key)
        await self._report(key, remaining)
        if remaining.objects:
            return RECHECK_SECONDS
        await self._finalize(key)
        return None

    async def _delete_content(self, namespace: str) -> Remaining:
        remaining = Remaining()
        for info in content_kinds():
            listed = await self.client.list(info, Selection(namespace=namespace))
            for obj in listed.items:
                left = await self._delete(info, namespace, obj)
                if left is not None:
                    remaining.add(info, left)
        return remaining

    async def _delete(self, info: ResourceInfo, namespace: str, obj: Obj) -> Obj | None:
        """Delete ``obj``; the object if it is still there (graceful, or finalizers)."""
        meta = metadata(obj)
        if meta.get("deletionTimestamp"):
            return obj
        try:
            answer = await self.client.delete(
                info,
                namespace,
                str(meta.get("name", "")),
                propagation="Background",
                uid=str(meta.get("uid", "")) or None,
            )
        except (errors.NotFound, errors.Conflict):
            return None
        held = answer.get("kind") != "Status" and dig(answer, "metadata", "deletionTimestamp")
        return answer if held else None

    async def _report(self, name: str, remaining: Remaining) -> None:
        """Write the deletion conditions when they changed (kubectl describe shows them)."""
        wanted = deletion_conditions(remaining)
        try:
            current = await self.client.get(NAMESPACES, "", name)
        except errors.NotFound:
            return
        status = current.setdefault("status", {})
        before = {c.get("type"): c for c in status.get("conditions") or []}
        same = all(
            {k: v for k, v in before.get(c["type"], {}).items() if k != "lastTransitionTime"} == c
            for c in wanted
        )
        if same:
            return
        now = format_time(self.clock())
        for condition in wanted:
            old = before.get(condition["type"]) or {}
            unchanged = old.get("status") == condition["status"]
            kept = old.get("lastTransitionTime") if unchanged else None
            condition["lastTransitionTime"] = kept or now
        status["conditions"] = wanted
        await self.client.update(NAMESPACES, "", current, subresource="status")

    async def _finalize(self, name: str) -> None:
        try:
            current = await self.client.get(NAMESPACES, "", name)
        except errors.NotFound:
            return
        spec = current.setdefault("spec", {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
        try:
            await self.client.update(NAMESPACES, "", current, subresource="finalize")
        except errors.NotFound:
            return
