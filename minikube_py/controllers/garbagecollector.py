"""Garbage collector: ownerReferences honoured, as kube-controller-manager's GC does.

Every deletable kind is watched and kept in one graph of owners and dependents, keyed by
uid. An object's uid is the work-queue key; processing it means one of:

- it has owners and none of them is alive (gone, or replaced by a namesake with another
  uid): delete it (Background), or Foreground if an owner waits for it and it has
  dependents of its own. Absence is confirmed by a live GET, never by the graph alone:
  informers of different kinds lag independently, and a dependent must not die because
  its owner's ADDED event is late. If some owner is alive, references to the dead or
  waiting ones are dropped instead;
- it is being deleted with the ``orphan`` finalizer: its dependents lose their reference
  to it, then the finalizer goes (``kubectl delete --cascade=orphan``);
- it is being deleted with ``foregroundDeletion``: its dependents are deleted, and the
  finalizer goes once none with ``blockOwnerDeletion`` is left.

References to kinds the API does not serve are never taken as dangling: the GC cannot
look them up, and deleting on a guess loses data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

from minikube_py import errors
from minikube_py.client.events import EventRecorder
from minikube_py.client.informers import SharedInformers
from minikube_py.client.interface import Client
from minikube_py.controllers.base import CATALOG, Controller, KeysFor
from minikube_py.meta.objects import Obj, metadata
from minikube_py.registry.resource import ResourceInfo

log = structlog.get_logger(__name__)

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
IGNORED = {("", "Event")}
"""Events never own anything and are the busiest kind; kube's GC skips them too in effect."""


def collected_kinds() -> list[ResourceInfo]:
    return [
        info
        for info in CATALOG.infos()
        if "watch" in info.verbs
        and "delete" in info.verbs
        and (info.group, info.kind) not in IGNORED
    ]


def owner_info(ref: Obj) -> ResourceInfo | None:
    group = str(ref.get("apiVersion") or "").rpartition("/")[0]
    found = CATALOG.by_kind(group, str(ref.get("kind") or ""))
    return found.info if found is not None else None


@dataclass(frozen=True)
class Node:
    """What the GC knows of one object."""

    info: ResourceInfo
    namespace: str
    name: str
    uid: str
    owners: tuple[Obj, ...]
    finalizers: tuple[str, ...]
    deleting: bool

    @classmethod
    def of(cls, info: ResourceInfo, obj: Obj) -> Node:
        meta = metadata(obj)
        return cls(
            info=info,
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            uid=str(meta.get("uid") or ""),
            owners=tuple(r for r in meta.get("ownerReferences") or [] if r.get("uid")),
            finalizers=tuple(meta.get("finalizers") or ()),
            deleting=bool(meta.get("deletionTimestamp")),
        )

    @property
    def owner_uids(self) -> set[str]:
        return {str(ref["uid"]) for ref in self.owners}

    @property
    def waits_for_dependents(self) -> bool:
        return self.deleting and FOREGROUND in self.finalizers

    def blocks(self, owner_uid: str) -> bool:
        return any(r["uid"] == owner_uid and r.get("blockOwnerDeletion") for r in self.owners)


class Graph:
    """Objects by uid and, for each owner uid, the uids of its dependents."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.dependents: dict[str, set[str]] = {}

    def put(self, node: Node) -> Node | None:
        old = self.nodes.get(node.uid)
        self.nodes[node.uid] = node
        before = old.owner_uids if old else set()
        for owner in before - node.owner_uids:
            self._unlink(owner, node.uid)
        for owner in node.owner_uids - before:
            self.dependents.setdefault(owner, set()).add(node.uid)
        return old

    def remove(self, uid: str) -> Node | None:
        old = self.nodes.pop(uid, None)
        for owner in old.owner_uids if old else ():
            self._unlink(owner, uid)
        return old

    def _unlink(self, owner: str, dependent: str) -> None:
        found = self.dependents.get(owner)
        if found is not None:
            found.discard(dependent)
            if not found:
                del self.dependents[owner]

    def dependents_of(self, uid: str) -> list[Node]:
        return [self.nodes[d] for d in self.dependents.get(uid, ()) if d in self.nodes]


class GarbageCollector(Controller):
    name = "garbage-collector"
    workers = 4

    def __init__(self, client: Client, informers: SharedInformers, events: EventRecorder) -> None:
        self.graph = Graph()
        super().__init__(client, informers, events)

    def watches(self) -> list[tuple[ResourceInfo, KeysFor]]:
        return [(info, self._observer(info)) for info in collected_kinds()]

    def _observer(self, info: ResourceInfo) -> Callable[[str, Obj, Obj | None], Iterable[str]]:
        def observe(kind: str, obj: Obj, previous: Obj | None) -> Iterable[str]:
            uid = str(metadata(obj).get("uid") or "")
            if not uid:
                return []
            if kind == "DELETED":
                return self._deleted(uid)
            return self._changed(Node.of(info, obj))

        return observe

    def _deleted(self, uid: str) -> list[str]:
        """Its dependents may now be dangling; an owner waiting for it may be free."""
        old = self.graph.remove(uid)
        keys = list(self.graph.dependents.get(uid, ()))
        if old is not None:
            keys += [o for o in old.owner_uids if self._waiting(o)]
        return keys

    def _changed(self, node: Node) -> list[str]:
        old = self.graph.put(node)
        keys = []
        if node.owners and (old is None or old.owners != node.owners):
            keys.append(node.uid)
        if node.deleting and (ORPHAN in node.finalizers or FOREGROUND in node.finalizers):
            keys.append(node.uid)
            if node.waits_for_dependents and not (old and old.waits_for_dependents):
                keys += [d.uid for d in self.graph.dependents_of(node.uid)]
        if old is None or old.deleting != node.deleting:
            keys += [o for o in node.owner_uids if self._waiting(o)]
        return keys

    def _waiting(self, uid: str) -> bool:
        owner = self.graph.nodes.get(uid)
        return owner is not None and owner.waits_for_dependents

    async def reconcile(self, key: str) -> float | None:
        node = self.graph.nodes.get(key)
        if node is None:
            return None
        if node.deleting:
            if ORPHAN in node.finalizers:
                await self._orphan_dependents(node)
            elif FOREGROUND in node.finalizers:
                await self._delete_dependents(node)
            return None
        if node.owners:
            await self._attempt_delete(node)
        return None

    # -- a dependent whose owners may be gone --

    async def _attempt_delete(self, node: Node) -> None:
        states = {str(ref["uid"]): await self._owner_state(node, ref) for ref in node.owners}
        if "solid" in states.values():
            await self._drop_references(node, {u for u, s in states.items() if s != "solid"})
            return
        if "waiting" in states.values() and self.graph.dependents.get(node.uid):
            await self._delete(node, "Foreground")
        else:
            await self._delete(node, _own_policy(node))

    async def _owner_state(self, node: Node, ref: Obj) -> str:
        """solid (alive), waiting (foreground-deleting) or dangling (gone)."""
        uid = str(ref["uid"])
        owner = self.graph.nodes.get(uid)
        if owner is not None:
            return "waiting" if owner.waits_for_dependents else "solid"
        info = owner_info(ref)
        if info is None:
            log.debug("owner of unknown kind kept", ref=ref, dependent=node.name)
            return "solid"
        if info.namespaced and not node.namespace:
            return "dangling"  # a cluster-scoped object cannot have a namespaced owner
        try:
            live = await self.client.get(
                info, node.namespace if info.namespaced else "", str(ref.get("name") or "")
            )
        except errors.NotFound:
            return "dangling"
        meta = metadata(live)
        if meta.get("uid") != uid:
            return "dangling"
        waiting = meta.get("deletionTimestamp") and FOREGROUND in (meta.get("finalizers") or [])
        return "waiting" if waiting else "solid"

    async def _delete(self, node: Node, policy: str) -> None:
        try:
            await self.client.delete(
                node.info, node.namespace, node.name, propagation=policy, uid=node.uid
            )
            log.info(
                "garbage-collected",
                kind=node.info.kind,
                object=f"{node.namespace}/{node.name}" if node.namespace else node.name,
                propagation=policy,
            )
        except (errors.NotFound, errors.Conflict):
            return

    # -- owners being deleted --

    async def _orphan_dependents(self, owner: Node) -> None:
        for dependent in self.graph.dependents_of(owner.uid):
            await self._drop_references(dependent, {owner.uid})
        await self._remove_finalizer(owner, ORPHAN)

    async def _delete_dependents(self, owner: Node) -> None:
        dependents = self.graph.dependents_of(owner.uid)
        if not any(d.blocks(owner.uid) for d in dependents):
            await self._remove_finalizer(owner, FOREGROUND)
            return
        for dependent in sorted(dependents, key=lambda d: not d.blocks(owner.uid)):
            if not dependent.deleting:
                self.queue.add(dependent.uid)

    # -- writes, each pinned to the version read so a racing writer is never overwritten --

    async def _fresh(self, node: Node) -> Obj | None:
        try:
            live = await self.client.get(node.info, node.namespace, node.name)
        except errors.NotFound:
            return None
        return live if metadata(live).get("uid") == node.uid else None

    async def _drop_references(self, node: Node, uids: set[str]) -> None:
        if not uids:
            return
        live = await self._fresh(node)
        if live is None:
            return
        meta = metadata(live)
        kept = [r for r in meta.get("ownerReferences") or [] if r.get("uid") not in uids]
        if len(kept) == len(meta.get("ownerReferences") or []):
            return
        patch = {
            "metadata": {
                "ownerReferences": kept or None,
                "resourceVersion": meta.get("resourceVersion"),
            }
        }
        await self.client.patch(node.info, node.namespace, node.name, patch)

    async def _remove_finalizer(self, node: Node, finalizer: str) -> None:
        live = await self._fresh(node)
        if live is None:
            return
        meta = metadata(live)
        finalizers = list(meta.get("finalizers") or [])
        if finalizer not in finalizers:
            return
        kept = [f for f in finalizers if f != finalizer]
        patch = {"metadata": {"finalizers": kept, "resourceVersion": meta.get("resourceVersion")}}
        try:
            await self.client.patch(node.info, node.namespace, node.name, patch)
        except errors.NotFound:
            return


def _own_policy(node: Node) -> str:
    if ORPHAN in node.finalizers:
        return "Orphan"
    if FOREGROUND in node.finalizers:
        return "Foreground"
    return "Background"
