"""Pod garbage collector: removes pods nobody else will.

As kube-controller-manager's podgc, on a period:

- terminated pods (Succeeded or Failed) beyond a threshold go, oldest first, so finished
  pods cannot grow without bound (``terminated-pod-gc-threshold``; 0 disables);
- pods bound to a node that no longer exists are marked Failed with a DisruptionTarget
  condition and force-deleted: no kubelet will ever finish them. A node must be missing
  for a quarantine period and once more on a live read, so a node that is re-registering
  or an informer that lags never costs a pod;
- terminating pods that were never scheduled, and terminating pods on a not-ready node
  tainted ``node.kubernetes.io/out-of-service``, are force-deleted.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import structlog

from minikube_py import errors
from minikube_py.client.events import EventRecorder
from minikube_py.client.informers import SharedInformers
from minikube_py.client.interface import Client
from minikube_py.controllers.base import Controller, KeysFor, resource
from minikube_py.meta.objects import Clock, Obj, dig, format_time, metadata
from minikube_py.registry.resource import ResourceInfo

log = structlog.get_logger(__name__)

PODS = resource("", "Pod")
NODES = resource("", "Node")
KEY = "podgc"
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"


def is_terminated(pod: Obj) -> bool:
    return dig(pod, "status", "phase") in ("Succeeded", "Failed")


def set_condition(status: Obj, condition: Obj) -> None:
    """Put ``condition`` in ``status.conditions`` in place of one of the same type."""
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != condition["type"]]
    status["conditions"] = [*conditions, condition]


async def mark_pod(client: Client, pod: Obj, condition: Obj, *, phase: str = "") -> None:
    """Best effort: add ``condition`` (and ``phase``) to a pod's status before acting on it.

    Reasons on a pod tell its owner why it went (a Job counts a disrupted pod differently
    from a crashed one); a race with the kubelet is not worth failing the action for.
    """
    meta = metadata(pod)
    try:
        fresh = await client.get(PODS, str(meta.get("namespace", "")), str(meta.get("name", "")))
        if metadata(fresh).get("uid") != meta.get("uid"):
            return
        status = fresh.setdefault("status", {})
        set_condition(status, condition)
        if phase and not is_terminated(fresh):
            status["phase"] = phase
        await client.update(PODS, str(meta.get("namespace", "")), fresh, subresource="status")
    except (errors.NotFound, errors.Conflict):
        return


def _node_event(kind: str, obj: Obj, previous: Obj | None) -> Iterable[str]:
    return [KEY] if kind == "DELETED" else []


class PodGCController(Controller):
    name = "podgc"
    workers = 1

    def __init__(
        self,
        client: Client,
        informers: SharedInformers,
        events: EventRecorder,
        *,
        threshold: int = 12500,
        period: float = 20.0,
        quarantine: float = 40.0,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(client, informers, events)
        self.threshold = threshold
        self.period = period
        self.quarantine = quarantine
        self.clock = clock
        self.pods = informers.get(PODS)
        self.nodes = informers.get(NODES)
        self.missing_since: dict[str, float] = {}
        self.queue.add(KEY)

    def watches(self) -> list[tuple[ResourceInfo, KeysFor]]:
        return [(NODES, _node_event), (PODS, lambda kind, obj, previous: [])]

    async def reconcile(self, key: str) -> float | None:
        pods = list(self.pods.objects.values())
        await self._terminated(pods)
        await self._orphaned(pods)
        await self._stuck_terminating(pods)
        return self.period

    async def _force_delete(self, pod: Obj) -> None:
        meta = metadata(pod)
        try:
            await self.client.delete(
                PODS,
                str(meta.get("namespace", "")),
                str(meta.get("name", "")),
                grace_period=0,
                uid=str(meta.get("uid", "")) or None,
            )
            log.info("pod garbage-collected", pod=f"{meta.get('namespace')}/{meta.get('name')}")
        except (errors.NotFound, errors.Conflict):
            return

    async def _terminated(self, pods: list[Obj]) -> None:
        if self.threshold <= 0:
            return
        done = [p for p in pods if is_terminated(p) and not metadata(p).get("deletionTimestamp")]
        excess = len(done) - self.threshold
        if excess <= 0:
            return
        done.sort(key=lambda p: (metadata(p).get("creationTimestamp") or "", metadata(p)["name"]))
        for pod in done[:excess]:
            await self._force_delete(pod)

    async def _orphaned(self, pods: list[Obj]) -> None:
        now = self.clock()
        bound = {str(dig(p, "spec", "nodeName")) for p in pods if dig(p, "spec", "nodeName")}
        missing = {name for name in bound if self.nodes.get(name) is None}
        self.missing_since = {n: self.missing_since.get(n, now) for n in missing}
        gone = set()
        for name, since in self.missing_since.items():
            if now - since >= self.quarantine and await self._really_gone(name):
                gone.add(name)
        condition = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists",
            "lastTransitionTime": format_time(now),
        }
        for pod in pods:
            if dig(pod, "spec", "nodeName") in gone:
                await mark_pod(self.client, pod, condition, phase="Failed")
                await self._force_delete(pod)

    async def _really_gone(self, node: str) -> bool:
        try:
            await self.client.get(NODES, "", node)
        except errors.NotFound:
            return True
        return False

    async def _stuck_terminating(self, pods: list[Obj]) -> None:
        for pod in pods:
            meta = metadata(pod)
            if not meta.get("deletionTimestamp") or meta.get("finalizers"):
                continue  # not deleting, or waiting for its finalizers' owners, not a kubelet
            node_name = dig(pod, "spec", "nodeName")
            if not node_name:
                await self._force_delete(pod)
                continue
            node = self.nodes.get(str(node_name))
            if node is not None and _out_of_service(node):
                await self._force_delete(pod)


def _out_of_service(node: Obj) -> bool:
    tainted = any(t.get("key") == OUT_OF_SERVICE for t in dig(node, "spec", "taints") or [])
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in dig(node, "status", "conditions") or []
    )
    return tainted and not ready
