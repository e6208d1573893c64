"""Why a pod fits nowhere, worded as kube-scheduler 1.32 words it.

``0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient
cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No
preemption victims found for incoming pod.``

The first part is kube's ``FitError``: each node's rejection reasons counted, the
"<count> <reason>" strings sorted as Go's ``sort.Strings`` does. The second is what the
DefaultPreemption plugin's dry run reports: nodes whose rejection no eviction can cure are
"not helpful"; on the others it looks for lower-priority pods whose removal would make
room. minikube-py does not evict (no preemption), so a node where eviction *would* help is
reported with ``PREEMPTION_NOT_IMPLEMENTED`` rather than acted on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from minikube_py.scheduler import filters
from minikube_py.scheduler.cache import NodeInfo
from minikube_py.scheduler.filters import Filter, Rejection
from minikube_py.scheduler.podinfo import PodInfo

NO_NODES = "no nodes available to schedule pods"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_ELIGIBLE = "not eligible due to preemptionPolicy=Never."
PREEMPTION_NOT_IMPLEMENTED = "Preemption of lower-priority pods is not implemented"
NOTE_LENGTH_LIMIT = 1024
"""An Event's message is cut to this many bytes (kube's validation.NoteLengthLimit)."""


@dataclass(frozen=True)
class Diagnosis:
    """Every node looked at (all of them: a pod is unschedulable only after that)."""

    total_nodes: int
    rejections: Mapping[str, Rejection]


def histogram(total: int, rejections: Sequence[Rejection]) -> str:
    """``0/N nodes are available: <count> <reason>, ...`` (no final period)."""
    counts: dict[str, int] = {}
    for rejection in rejections:
        for reason in rejection.reasons:
            counts[reason] = counts.get(reason, 0) + 1
    parts = sorted(f"{count} {reason}" for reason, count in counts.items())
    return f"0/{total} nodes are available: " + ", ".join(parts)


def _dry_run(pod: PodInfo, node: NodeInfo, plugins: Sequence[Filter]) -> Rejection:
    """Would evicting every lower-priority pod make room? (kube's SelectVictimsOnNode)."""
    victims = [p for p in node.pods.values() if p.priority < pod.priority]
    if not victims:
        return Rejection((NO_VICTIMS,), resolvable=False)
    for victim in victims:
        node.remove(victim.key)
    try:
        rejection = filters.run(plugins, pod, node)
    finally:
        for victim in victims:
            node.add(victim)
    return rejection or Rejection((PREEMPTION_NOT_IMPLEMENTED,), resolvable=False)


def preemption(
    pod: PodInfo, diagnosis: Diagnosis, nodes: Mapping[str, NodeInfo], plugins: Sequence[Filter]
) -> str:
    """The DefaultPreemption PostFilter's message (without the "preemption: " prefix)."""
    if pod.preemption_never:
        return NOT_ELIGIBLE
    outcomes = []
    for name, rejection in diagnosis.rejections.items():
        node = nodes.get(name)
        if not rejection.resolvable or node is None:
            outcomes.append(Rejection((NOT_HELPFUL,), resolvable=False))
        else:
            outcomes.append(_dry_run(pod, node, plugins))
    return histogram(diagnosis.total_nodes, outcomes) + "."


def message(
    pod: PodInfo, diagnosis: Diagnosis, nodes: Mapping[str, NodeInfo], plugins: Sequence[Filter]
) -> str:
    """The PodScheduled=False message; kube 1.28+ never doubles the final period."""
    if diagnosis.total_nodes == 0:
        return NO_NODES
    fit = histogram(diagnosis.total_nodes, list(diagnosis.rejections.values())) + "."
    post = preemption(pod, diagnosis, nodes, plugins)
    return f"{fit} preemption: {post.rstrip('.')}."


def truncate(text: str, limit: int = NOTE_LENGTH_LIMIT) -> str:
    """kube's truncateMessage for event notes."""
    if len(text) <= limit:
        return text
    suffix = " ..."
    return text[: limit - len(suffix)] + suffix
