"""Filters: may this pod go on this node? Pure functions of (pod, node), as kube's plugins.

Each returns None (fits) or a ``Rejection`` carrying kube-scheduler 1.32's reason strings,
which end up counted in the pod's "0/N nodes are available: ..." message, and whether
evicting lower-priority pods could ever help (kube's Unschedulable versus
UnschedulableAndUnresolvable), which decides the message's preemption part.
They run in kube's default order and the first rejection wins, as in kube.

A decision may look at hundreds of nodes, so a filter can also come with a ``batch`` form
that answers for many nodes at once and only falls back to the per-node function for the
nodes it rejects (to word the reason): an untainted node passes the taint filter without a
call per node. Both forms must agree; the tests check them against each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from minikube_py.scheduler.cache import NodeInfo
from minikube_py.scheduler.placement import (
    NO_EXECUTE,
    NO_SCHEDULE,
    UNSCHEDULABLE,
    Taint,
    first_untolerated,
    tolerated,
)
from minikube_py.scheduler.podinfo import PodInfo

UNSCHEDULABLE_REASON = "node(s) were unschedulable"
AFFINITY_REASON = "node(s) didn't match Pod's node affinity/selector"
PORTS_REASON = "node(s) didn't have free ports for the requested pod ports"
TOO_MANY_PODS = "Too many pods"


@dataclass(frozen=True, slots=True)
class Rejection:
    reasons: tuple[str, ...]
    resolvable: bool
    """True when removing pods from the node could make room (kube: Unschedulable)."""


Check = Callable[[PodInfo, NodeInfo], Rejection | None]
Rejections = dict[str, Rejection]
Batch = Callable[[PodInfo, list[NodeInfo], Rejections], list[NodeInfo]]
"""(pod, nodes, rejections out) -> the nodes that pass, in order."""

_UNSCHEDULABLE = Rejection((UNSCHEDULABLE_REASON,), resolvable=False)
_AFFINITY = Rejection((AFFINITY_REASON,), resolvable=False)
_PORTS = Rejection((PORTS_REASON,), resolvable=True)
_UNSCHEDULABLE_TAINT = Taint(UNSCHEDULABLE, "", NO_SCHEDULE)
_HARD_EFFECTS = frozenset((NO_SCHEDULE, NO_EXECUTE))


# -- the filters, one node at a time --


def node_unschedulable(pod: PodInfo, node: NodeInfo) -> Rejection | None:
    if node.unschedulable and not tolerated(_UNSCHEDULABLE_TAINT, pod.tolerations):
        return _UNSCHEDULABLE
    return None


def taint_toleration(pod: PodInfo, node: NodeInfo) -> Rejection | None:
    taint = first_untolerated(node.hard_taints, pod.tolerations, _HARD_EFFECTS)
    if taint is None:
        return None
    reason = f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}"
    return Rejection((reason,), resolvable=False)


def node_affinity(pod: PodInfo, node: NodeInfo) -> Rejection | None:
    if pod.selection.matches(node.labels, node.name):
        return None
    return _AFFINITY


def node_ports(pod: PodInfo, node: NodeInfo) -> Rejection | None:
    for wanted in pod.host_ports:
        if any(wanted.conflicts(used) for used in node.ports):
            return _PORTS
    return None


def resources_fit(pod: PodInfo, node: NodeInfo) -> Rejection | None:
    """Requests against allocatable minus what is already placed; every shortage counts."""
    reasons: list[str] = []
    if len(node.pods) + 1 > node.alloc_pods:
        reasons.append(TOO_MANY_PODS)
    wanted = pod.requests
    if wanted.cpu > 0 and wanted.cpu > node.alloc_cpu - node.req_cpu:
        reasons.append("Insufficient cpu")
    if wanted.memory > 0 and wanted.memory > node.alloc_memory - node.req_memory:
        reasons.append("Insufficient memory")
    if wanted.ephemeral > 0 and wanted.ephemeral > node.alloc_ephemeral - node.req_ephemeral:
        reasons.append("Insufficient ephemeral-storage")
    for name, value in wanted.scalar:
        if value > 0 and value > node.alloc_scalar.get(name, 0) - node.req_scalar.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return Rejection(tuple(reasons), resolvable=True) if reasons else None


# -- the same, many nodes at a time --


def each(check: Check) -> Batch:
    """The batch form of any check: call it for every node."""

    def batch(pod: PodInfo, nodes: list[NodeInfo], rejections: Rejections) -> list[NodeInfo]:
        kept = []
        for node in nodes:
            rejection = check(pod, node)
            if rejection is None:
                kept.append(node)
            else:
                rejections[node.name] = rejection
        return kept

    return batch


def _unless(attribute: str, check: Check) -> Batch:
    """If no node has ``attribute`` set (a taint, the unschedulable flag), all pass at
    once; otherwise every node is checked."""
    suspect = attrgetter(attribute)
    slow = each(check)

    def batch(pod: PodInfo, nodes: list[NodeInfo], rejections: Rejections) -> list[NodeInfo]:
        if not any(map(suspect, nodes)):
            return nodes
        return slow(pod, nodes, rejections)

    return batch


def resources_fit_batch(
    pod: PodInfo, nodes: list[NodeInfo], rejections: Rejections
) -> list[NodeInfo]:
    """An inline test of the common case (cpu and memory); the rest per node."""
    wanted = pod.requests
    if wanted.ephemeral or wanted.scalar:
        return each(resources_fit)(pod, nodes, rejections)
    cpu, memory = wanted.cpu, wanted.memory
    roomy = [
        node
        for node in nodes
        if node.free_pods > 0 and cpu <= node.free_cpu and memory <= node.free_memory
    ]
    if len(roomy) == len(nodes):
        return roomy
    kept = []
    for node in nodes:
        rejection = resources_fit(pod, node)
        if rejection is None:
            kept.append(node)
        else:
            rejections[node.name] = rejection
    return kept


# -- the table --


def _always(pod: PodInfo) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Filter:
    name: str
    check: Check
    applies: Callable[[PodInfo], bool]
    """A filter that cannot reject this pod (no host ports, no selector) is skipped."""
    batch: Batch


FILTERS: tuple[Filter, ...] = (
    Filter(
        "NodeUnschedulable",
        node_unschedulable,
        _always,
        _unless("unschedulable", node_unschedulable),
    ),
    Filter(
        "TaintToleration",
        taint_toleration,
        _always,
        _unless("hard_taints", taint_toleration),
    ),
    Filter(
        "NodeAffinity",
        node_affinity,
        lambda pod: not pod.selection.is_empty(),
        each(node_affinity),
    ),
    Filter("NodePorts", node_ports, lambda pod: bool(pod.host_ports), each(node_ports)),
    Filter("NodeResourcesFit", resources_fit, _always, resources_fit_batch),
)
"""kube-scheduler's default filter plugins that apply here, in its order."""


def applicable(pod: PodInfo, filters: Sequence[Filter] = FILTERS) -> tuple[Filter, ...]:
    return tuple(f for f in filters if f.applies(pod))


def run(filters: Sequence[Filter], pod: PodInfo, node: NodeInfo) -> Rejection | None:
    """The first rejection for one node, or None when the pod fits."""
    for plugin in filters:
        rejection = plugin.check(pod, node)
        if rejection is not None:
            return rejection
    return None


def run_batch(
    filters: Sequence[Filter], pod: PodInfo, nodes: list[NodeInfo], rejections: Rejections
) -> list[NodeInfo]:
    """The nodes that pass every filter; each other node's first rejection recorded."""
    for plugin in filters:
        if not nodes:
            break
        nodes = plugin.batch(pod, nodes, rejections)
    return nodes
