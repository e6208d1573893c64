"""Node lifecycle: unreachable nodes are marked, tainted, and their pods evicted.

As kube-controller-manager's node-lifecycle and taint-eviction controllers:

- Health is the *observed* time a node last showed life (its Lease's renewTime or its
  Ready heartbeat changed), taken from this process's clock, never the timestamps
  themselves: a kubelet with a skewed clock is still judged fairly. After the grace
  period (``node-monitor-grace-period``, 50 s; ``node-startup-grace-period`` for a node
  that never reported Ready) its conditions become Unknown ("Kubelet stopped posting
  node status.") and its pods are marked not Ready, so Services stop sending them traffic.
- Taints follow conditions: Ready Unknown → ``node.kubernetes.io/unreachable``, Ready
  False → ``node.kubernetes.io/not-ready`` (NoExecute with timeAdded, and NoSchedule);
  pressure conditions, NetworkUnavailable and ``spec.unschedulable`` add their NoSchedule
  taints. Taints of other keys are never touched.
- A pod on a node with NoExecute taints is deleted at once if it does not tolerate one
  of them, else after the shortest ``tolerationSeconds`` of the tolerations that matched
  (300 s by the API server's defaulting), counted from when this controller first saw it
  so; a toleration without seconds keeps the pod forever. Evicted pods get a
  DisruptionTarget condition and a ``TaintManagerEviction`` event.

Recovery is the kubelet's: once it posts Ready=True, the taints go.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import structlog

from minikube_py import errors
from minikube_py.client.events import EventRecorder
from minikube_py.client.informers import SharedInformers
from minikube_py.client.interface import Client
from minikube_py.controllers.base import Controller, KeysFor, own_key, resource
from minikube_py.controllers.podgc import mark_pod
from minikube_py.meta.objects import Clock, Obj, deep_copy, dig, format_time, metadata, name_of
from minikube_py.registry.resource import ResourceInfo

log = structlog.get_logger(__name__)

NODES = resource("", "Node")
PODS = resource("", "Pod")
LEASES = resource("coordination.k8s.io", "Lease")
LEASE_NAMESPACE = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
CONDITION_TAINTS = {
    "MemoryPressure": "node.kubernetes.io/memory-pressure",
    "DiskPressure": "node.kubernetes.io/disk-pressure",
    "PIDPressure": "node.kubernetes.io/pid-pressure",
    "NetworkUnavailable": "node.kubernetes.io/network-unavailable",
}
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
MANAGED = {UNREACHABLE, NOT_READY, UNSCHEDULABLE, *CONDITION_TAINTS.values()}
KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
SLACK = 0.05
"""Seconds added to a wake-up so it lands after the moment it waits for."""


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """v1.Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    key = toleration.get("key") or ""
    if not key:
        return operator == "Exists"
    if key != taint.get("key"):
        return False
    return operator == "Exists" or (toleration.get("value") or "") == (taint.get("value") or "")


def eviction_delay(tolerations: list[Obj], taints: list[Obj]) -> float | None:
    """Seconds a pod may stay under ``taints`` (NoExecute): 0 if one is not tolerated,
    None if it may stay forever, else the shortest matching tolerationSeconds."""
    shortest: float | None = None
    for taint in taints:
        matched = [t for t in tolerations if tolerates(t, taint)]
        if not matched:
            return 0.0
        for toleration in matched:
            seconds = toleration.get("tolerationSeconds")
            if isinstance(seconds, int | float):
                shortest = max(float(seconds), 0.0) if shortest is None else min(shortest, seconds)
    return None if shortest is None else max(shortest, 0.0)


def _conditions(node: Obj) -> dict[str, Obj]:
    return {str(c.get("type")): c for c in dig(node, "status", "conditions") or []}


def wanted_taints(node: Obj, now: str) -> list[Obj]:
    """The managed taints ``node``'s conditions and spec call for."""
    conditions = _conditions(node)
    ready = (conditions.get("Ready") or {}).get("status")
    found: list[Obj] = []
    family = {"Unknown": UNREACHABLE, "False": NOT_READY}.get(str(ready))
    if family is not None:
        found.append({"key": family, "effect": "NoExecute", "timeAdded": now})
        found.append({"key": family, "effect": "NoSchedule"})
    for condition, key in CONDITION_TAINTS.items():
        if (conditions.get(condition) or {}).get("status") == "True":
            found.append({"key": key, "effect": "NoSchedule"})
    if dig(node, "spec", "unschedulable"):
        found.append({"key": UNSCHEDULABLE, "effect": "NoSchedule"})
    return found


def merge_taints(current: list[Obj], wanted: list[Obj]) -> list[Obj]:
    """Other keys' taints as they are; managed ones as wanted, keeping their timeAdded."""
    same = {(t.get("key"), t.get("effect")): t for t in current}
    kept = [t for t in current if t.get("key") not in MANAGED]
    return kept + [same.get((t["key"], t["effect"]), t) for t in wanted]


@dataclass
class Health:
    probe: float
    """Local time the node last showed life."""
    renewed: str
    heartbeat: str


class NodeLifecycleController(Controller):
    name = "node-lifecycle"

    def __init__(
        self,
        client: Client,
        informers: SharedInformers,
        events: EventRecorder,
        *,
        grace: float = 50.0,
        startup_grace: float = 60.0,
        clock: Clock = time.time,
    ) -> None:
        self.pods_on: dict[str, set[str]] = {}
        self.due: dict[str, float] = {}
        super().__init__(client, informers, events)
        self.grace = grace
        self.startup_grace = startup_grace
        self.clock = clock
        self.health: dict[str, Health] = {}
        self.mark_pods: set[str] = set()
        self.nodes = informers.get(NODES)
        self.leases = informers.get(LEASES)
        self.pods = informers.get(PODS)

    def watches(self) -> list[tuple[ResourceInfo, KeysFor]]:
        return [(NODES, own_key), (LEASES, _lease_node), (PODS, self._pod_changed)]

    def _pod_changed(self, kind: str, obj: Obj, previous: Obj | None) -> Iterable[str]:
        """Keep pods indexed by node; a pod new to a node, or with new tolerations, is
        looked at by that node's next pass."""
        meta = metadata(obj)
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        node = str(dig(obj, "spec", "nodeName") or "")
        before = str(dig(previous, "spec", "nodeName") or "") if previous else ""
        if before and before != node:
            self.pods_on.get(before, set()).discard(key)
        if kind == "DELETED":
            self.pods_on.get(node, set()).discard(key)
            self.due.pop(str(meta.get("uid")), None)
            return []
        if not node:
            return []
        self.pods_on.setdefault(node, set()).add(key)
        fresh = previous is None or before != node
        if fresh or dig(obj, "spec", "tolerations") != dig(previous, "spec", "tolerations"):
            return [node]
        return []

    async def reconcile(self, key: str) -> float | None:
        node = self.nodes.get(key)
        if node is None:
            self.health.pop(key, None)
            self.mark_pods.discard(key)
            return None
        waits = []
        stale_in = self._observe(node)
        if stale_in <= 0:
            node = await self._mark_unknown(node)
        else:
            waits.append(stale_in + SLACK)
        if key in self.mark_pods:
            await self._mark_pods_not_ready(key)
        node = await self._sync_taints(node)
        evict_in = await self._evict(node)
        if evict_in is not None:
            waits.append(evict_in + SLACK)
        return min(waits) if waits else None

    # -- health --

    def _observe(self, node: Obj) -> float:
        """Seconds until ``node`` counts as unreachable (<= 0: it does now)."""
        name = name_of(node)
        lease = self.leases.get(f"{LEASE_NAMESPACE}/{name}")
        renewed = str(dig(lease, "spec", "renewTime") or "")
        ready = _conditions(node).get("Ready") or {}
        heartbeat = str(ready.get("lastHeartbeatTime") or "")
        now = self.clock()
        seen = self.health.get(name)
        if seen is None or seen.renewed != renewed or seen.heartbeat != heartbeat:
            seen = self.health[name] = Health(now, renewed, heartbeat)
        never = not ready or ready.get("reason") == "NodeStatusNeverUpdated"
        return seen.probe + (self.startup_grace if never else self.grace) - now

    async def _mark_unknown(self, node: Obj) -> Obj:
        conditions = _conditions(node)
        if (conditions.get("Ready") or {}).get("status") == "Unknown":
            return node
        now = format_time(self.clock())
        updated = deep_copy(node)
        status = updated.setdefault("status", {})
        never = "Ready" not in conditions
        fresh = []
        for kind in KUBELET_CONDITIONS:
            old = conditions.get(kind) or {"type": kind}
            if never and kind != "Ready" and kind not in conditions:
                continue
            fresh.append(
                {
                    **old,
                    "status": "Unknown",
                    "reason": "NodeStatusNeverUpdated" if never else "NodeStatusUnknown",
                    "message": "Kubelet never posted node status."
                    if never
                    else "Kubelet stopped posting node status.",
                    "lastTransitionTime": now,
                }
            )
        others = status.get("conditions") or []
        status["conditions"] = [c for c in others if c.get("type") not in KUBELET_CONDITIONS]
        status["conditions"] += fresh
        written = await self.client.update(NODES, "", updated, subresource="status")
        log.info("node unreachable", node=name_of(node))
        self.events.record(
            node, "Normal", "NodeNotReady", f"Node {name_of(node)} status is now: NodeNotReady"
        )
        self.mark_pods.add(name_of(node))
        return written

    async def _mark_pods_not_ready(self, node: str) -> None:
        now = format_time(self.clock())
        condition = {
            "type": "Ready",
            "status": "False",
            "lastProbeTime": None,
            "lastTransitionTime": now,
        }
        for pod in self._pods_of(node):
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in dig(pod, "status", "conditions") or []
            ):
                await mark_pod(self.client, pod, condition)
        self.mark_pods.discard(node)

    def _pods_of(self, node: str) -> list[Obj]:
        found = (self.pods.get(key) for key in list(self.pods_on.get(node, ())))
        return [pod for pod in found if pod is not None]

    # -- taints --

    async def _sync_taints(self, node: Obj) -> Obj:
        current = list(dig(node, "spec", "taints") or [])
        wanted = merge_taints(current, wanted_taints(node, format_time(self.clock())))
        if wanted == current:
            return node
        updated = deep_copy(node)
        if wanted:
            updated.setdefault("spec", {})["taints"] = wanted
        else:
            updated.setdefault("spec", {}).pop("taints", None)
        written = await self.client.update(NODES, "", updated)
        log.info("node taints", node=name_of(node), taints=[t.get("key") for t in wanted])
        return written

    # -- eviction --

    async def _evict(self, node: Obj) -> float | None:
        """Evict what is due; seconds until the next eviction, if one is pending."""
        taints = [t for t in dig(node, "spec", "taints") or [] if t.get("effect") == "NoExecute"]
        now = self.clock()
        waits = []
        for pod in self._pods_of(name_of(node)):
            uid = str(metadata(pod).get("uid"))
            tolerations = list(dig(pod, "spec", "tolerations") or [])
            delay = eviction_delay(tolerations, taints) if taints else None
            if delay is None or metadata(pod).get("deletionTimestamp"):
                self.due.pop(uid, None)
                continue
            due = self.due.setdefault(uid, now + delay)
            if due > now:
                waits.append(due - now)
                continue
            await self._evict_pod(pod)
            self.due.pop(uid, None)
        return min(waits) if waits else None

    async def _evict_pod(self, pod: Obj) -> None:
        meta = metadata(pod)
        condition = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": format_time(self.clock()),
        }
        await mark_pod(self.client, pod, condition)
        try:
            await self.client.delete(
                PODS, str(meta.get("namespace")), str(meta.get("name")), uid=str(meta.get("uid"))
            )
        except (errors.NotFound, errors.Conflict):
            return
        log.info("pod evicted", pod=f"{meta.get('namespace')}/{meta.get('name')}")
        self.events.record(
            pod,
            "Normal",
            "TaintManagerEviction",
            f"Marking for deletion Pod {meta.get('namespace')}/{meta.get('name')}",
        )


def _lease_node(kind: str, obj: Obj, previous: Obj | None) -> Iterable[str]:
    if metadata(obj).get("namespace") != LEASE_NAMESPACE or kind == "DELETED":
        return []
    return [name_of(obj)]
