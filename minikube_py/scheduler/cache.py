"""The scheduler's view of the cluster: nodes with what is already placed on them.

Assume-then-bind: a decision counts the pod on its node at once (``assume``), so the next
decision, microseconds later, already sees the node fuller, while the binding write runs in
the background. The informer's report of the bound pod confirms the assumption
(``add_pod``); a failed binding takes it back (``forget``). Pods whose node is not (or no
longer) known are kept on a node-less ``NodeInfo``, so resources are right whichever of
the node and its pods the watches deliver first.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from minikube_py.meta.objects import Obj
from minikube_py.scheduler import resources
from minikube_py.scheduler.placement import (
    NO_EXECUTE,
    NO_SCHEDULE,
    NOT_READY,
    PREFER_NO_SCHEDULE,
    UNREACHABLE,
    Taint,
)
from minikube_py.scheduler.podinfo import HostPort, PodInfo
from minikube_py.scheduler.resources import CPU, EPHEMERAL, MEMORY, PODS

_versions = itertools.count(1)
"""Versions are unique across nodes, so a (name, version) pair never repeats."""


def _ready_taint(conditions: Any) -> Taint | None:
    """The taint the node lifecycle controller puts on a node that is not Ready."""
    for condition in conditions or ():
        if condition.get("type") == "Ready":
            status = condition.get("status")
            if status == "True":
                return None
            return Taint(UNREACHABLE if status == "Unknown" else NOT_READY, "", NO_SCHEDULE)
    return Taint(NOT_READY, "", NO_SCHEDULE)


def effective_taints(node: Obj) -> tuple[Taint, ...]:
    """The node's taints plus the not-ready/unreachable one its Ready condition implies.

    kube-scheduler has no readiness filter of its own: the node lifecycle controller
    taints a node that is not Ready and the taint filter keeps pods off it. Deriving the
    same taint here gives the same decision and the same message whether or not a
    lifecycle controller runs, and adds nothing when it already put the taint there.
    """
    taints = [Taint.of(t) for t in (node.get("spec") or {}).get("taints") or ()]
    implied = _ready_taint((node.get("status") or {}).get("conditions"))
    if implied is not None and not any(
        t.key == implied.key and t.effect == implied.effect for t in taints
    ):
        taints.append(implied)
    return tuple(taints)


def _allocatable(node: Obj) -> dict[str, int]:
    status = node.get("status") or {}
    return resources.amounts(status.get("allocatable") or status.get("capacity"))


class NodeInfo:
    """One node and the pods counted on it (assumed or confirmed)."""

    __slots__ = (
        "alloc_cpu",
        "alloc_ephemeral",
        "alloc_memory",
        "alloc_pods",
        "alloc_scalar",
        "free_cpu",
        "free_memory",
        "free_pods",
        "hard_taints",
        "labels",
        "name",
        "non_zero_cpu",
        "non_zero_memory",
        "obj",
        "owners",
        "pods",
        "ports",
        "req_cpu",
        "req_ephemeral",
        "req_memory",
        "req_scalar",
        "soft_taints",
        "taints",
        "unschedulable",
        "version",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.obj: Obj | None = None
        self.labels: dict[str, str] = {}
        self.taints: tuple[Taint, ...] = ()
        self.hard_taints: tuple[Taint, ...] = ()
        """NoSchedule and NoExecute: these keep pods off (filter)."""
        self.soft_taints: tuple[Taint, ...] = ()
        """PreferNoSchedule: these only lower the node's score."""
        self.unschedulable = False
        self.alloc_cpu = self.alloc_memory = self.alloc_ephemeral = self.alloc_pods = 0
        self.alloc_scalar: dict[str, int] = {}
        self.req_cpu = self.req_memory = self.req_ephemeral = 0
        self.req_scalar: dict[str, int] = {}
        self.non_zero_cpu = self.non_zero_memory = 0
        self.free_cpu = self.free_memory = self.free_pods = 0
        """Allocatable minus requested: what the resource filter's fast path compares."""
        self.pods: dict[str, PodInfo] = {}
        self.ports: dict[HostPort, int] = {}
        self.owners: dict[str, int] = {}
        self.version = next(_versions)
        """Changes whenever the node or what is counted on it changes (score memo key)."""

    def set_node(self, node: Obj) -> None:
        self.version = next(_versions)
        self.obj = node
        self.labels = dict((node.get("metadata") or {}).get("labels") or {})
        self.taints = effective_taints(node)
        self.hard_taints = tuple(t for t in self.taints if t.effect in (NO_SCHEDULE, NO_EXECUTE))
        self.soft_taints = tuple(t for t in self.taints if t.effect == PREFER_NO_SCHEDULE)
        self.unschedulable = bool((node.get("spec") or {}).get("unschedulable"))
        alloc = _allocatable(node)
        self.alloc_cpu = alloc.pop(CPU, 0)
        self.alloc_memory = alloc.pop(MEMORY, 0)
        self.alloc_ephemeral = alloc.pop(EPHEMERAL, 0)
        self.alloc_pods = alloc.pop(PODS, 0)
        self.alloc_scalar = alloc
        self._free()

    def _free(self) -> None:
        self.free_cpu = self.alloc_cpu - self.req_cpu
        self.free_memory = self.alloc_memory - self.req_memory
        self.free_pods = self.alloc_pods - len(self.pods)

    def placement_view(self) -> tuple[Any, ...]:
        """What decides whether pods fit: a change here may help pods that did not."""
        return (
            self.labels,
            self.taints,
            self.unschedulable,
            self.alloc_cpu,
            self.alloc_memory,
            self.alloc_ephemeral,
            self.alloc_pods,
            self.alloc_scalar,
        )

    def add(self, pod: PodInfo) -> None:
        self.pods[pod.key] = pod
        self._account(pod, 1)

    def remove(self, key: str) -> PodInfo | None:
        pod = self.pods.pop(key, None)
        if pod is not None:
            self._account(pod, -1)
        return pod

    def _account(self, pod: PodInfo, sign: int) -> None:
        self.version = next(_versions)
        requests = pod.requests
        self.req_cpu += sign * requests.cpu
        self.req_memory += sign * requests.memory
        self.req_ephemeral += sign * requests.ephemeral
        for name, value in requests.scalar:
            self.req_scalar[name] = self.req_scalar.get(name, 0) + sign * value
        self.non_zero_cpu += sign * pod.non_zero.cpu
        self.non_zero_memory += sign * pod.non_zero.memory
        _count(self.ports, pod.host_ports, sign)
        if pod.owner:
            _count(self.owners, (pod.owner,), sign)
        self._free()


def _count(counter: dict[Any, int], keys: Any, sign: int) -> None:
    for key in keys:
        left = counter.get(key, 0) + sign
        if left > 0:
            counter[key] = left
        else:
            counter.pop(key, None)


class Cache:
    """Nodes by name (in arrival order, for round-robin sampling) and where each pod is."""

    def __init__(self) -> None:
        self.infos: dict[str, NodeInfo] = {}
        self.nodes: list[NodeInfo] = []
        """Nodes that exist, in a stable order; pods on unknown nodes are not in it."""
        self.pod_nodes: dict[str, str] = {}
        self.assumed: set[str] = set()

    def _info(self, name: str) -> NodeInfo:
        info = self.infos.get(name)
        if info is None:
            info = self.infos[name] = NodeInfo(name)
        return info

    # -- nodes --

    def set_node(self, node: Obj) -> bool:
        """Add or update a node; True when pods that did not fit before might now."""
        name = str((node.get("metadata") or {}).get("name") or "")
        info = self._info(name)
        known = info.obj is not None
        before = info.placement_view() if known else None
        info.set_node(node)
        if not known:
            self.nodes.append(info)
        return before != info.placement_view()

    def remove_node(self, name: str) -> None:
        info = self.infos.get(name)
        if info is None or info.obj is None:
            return
        info.obj = None
        self.nodes = [n for n in self.nodes if n.name != name]
        if not info.pods:
            del self.infos[name]

    # -- pods --

    def assume(self, pod: PodInfo, node: str) -> None:
        self._place(pod, node)
        self.assumed.add(pod.key)

    def forget(self, key: str) -> bool:
        """Take back an assumption whose binding failed; False if it was confirmed meanwhile."""
        if key not in self.assumed:
            return False
        self.remove_pod(key)
        return True

    def add_pod(self, pod: PodInfo, node: str) -> None:
        """A pod the API says is bound to ``node``: confirms an assumption or adds it."""
        self.assumed.discard(pod.key)
        if self.pod_nodes.get(pod.key) == node:
            return
        self._place(pod, node)

    def confirm(self, key: str, node: str) -> bool:
        """The API reports ``key`` bound to ``node``: True if it is already counted there."""
        if self.pod_nodes.get(key) != node:
            return False
        self.assumed.discard(key)
        return True

    def remove_pod(self, key: str) -> bool:
        self.assumed.discard(key)
        name = self.pod_nodes.pop(key, None)
        if name is None:
            return False
        info = self.infos[name]
        info.remove(key)
        if info.obj is None and not info.pods:
            del self.infos[name]
        return True

    def _place(self, pod: PodInfo, node: str) -> None:
        self.remove_pod(pod.key)
        self._info(node).add(pod)
        self.pod_nodes[pod.key] = node

    def has_pod(self, key: str) -> bool:
        return key in self.pod_nodes

    def node_of(self, key: str) -> str | None:
        return self.pod_nodes.get(key)

    def requested(self) -> Mapping[str, int]:
        """Totals over all nodes (for tests and logs)."""
        return {
            CPU: sum(i.req_cpu for i in self.infos.values()),
            MEMORY: sum(i.req_memory for i in self.infos.values()),
            PODS: len(self.pod_nodes),
        }
