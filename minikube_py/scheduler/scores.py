"""Scores: how good is this node for this pod? Pure functions, kube's default weights.

Each plugin gives a node 0..100 (raw, then normalized over the feasible nodes where kube
normalizes) and the totals are weighted sums, as in kube-scheduler 1.32:

===========================  ======  ===================================================
plugin                       weight  prefers
===========================  ======  ===================================================
TaintToleration              3       fewer untolerated PreferNoSchedule taints
NodeAffinity                 2       more weight of matching preferred terms
PodTopologySpread (default)  2       fewer pods of the same controller (owner)
NodeResourcesFit             1       least allocated (requests with non-zero defaults)
BalancedAllocation           1       cpu and memory equally used after placing the pod
===========================  ======  ===================================================

Each scorer takes the pod and all the nodes being scored and returns one raw score per
node: one call per plugin rather than per node, as a decision scores up to hundreds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from minikube_py.scheduler.cache import NodeInfo
from minikube_py.scheduler.placement import PREFER_NO_SCHEDULE, tolerated
from minikube_py.scheduler.podinfo import PodInfo

MAX_SCORE = 100
_SOFT_TAINTS = attrgetter("soft_taints")

Raw = Callable[[PodInfo, Sequence[NodeInfo]], list[int]]
Normalize = Callable[[list[int]], list[int]]


def _least(requested: int, capacity: int) -> int:
    if requested > capacity:
        return 0
    return (capacity - requested) * MAX_SCORE // capacity


def least_allocated(pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
    """Free share of cpu and memory after placing the pod, equally weighted; requests
    counted with kube's non-zero defaults, so best-effort pods still spread."""
    cpu, memory = pod.non_zero.cpu, pod.non_zero.memory
    found = []
    for node in nodes:
        total = weights = 0
        if node.alloc_cpu:
            total += _least(node.non_zero_cpu + cpu, node.alloc_cpu)
            weights += 1
        if node.alloc_memory:
            total += _least(node.non_zero_memory + memory, node.alloc_memory)
            weights += 1
        found.append(total // weights if weights else 0)
    return found


def balanced_allocation(pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
    """100 when cpu and memory would be used in the same proportion, less the more apart."""
    cpu, memory = pod.requests.cpu, pod.requests.memory
    found = []
    for node in nodes:
        if node.alloc_cpu and node.alloc_memory:
            cpu_share = min((node.req_cpu + cpu) / node.alloc_cpu, 1.0)
            memory_share = min((node.req_memory + memory) / node.alloc_memory, 1.0)
            found.append(int((1 - abs(cpu_share - memory_share) / 2) * MAX_SCORE))
        else:
            found.append(MAX_SCORE)  # one resource (or none): no deviation
    return found


def taint_toleration(pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
    """How many PreferNoSchedule taints the pod does not tolerate (fewer is better)."""
    if not any(map(_SOFT_TAINTS, nodes)):
        return [0] * len(nodes)
    soft = [t for t in pod.tolerations if t.effect in ("", PREFER_NO_SCHEDULE)]
    return [sum(1 for t in node.soft_taints if not tolerated(t, soft)) for node in nodes]


def node_affinity(pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
    """The summed weights of the preferred terms each node matches."""
    return [
        sum(p.weight for p in pod.preferences if p.term.matches(node.labels, node.name))
        for node in nodes
    ]


def spreading(pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
    """Pods of the pod's own controller already on each node (fewer is better)."""
    owner = pod.owner
    return [node.owners.get(owner, 0) for node in nodes] if owner else [0] * len(nodes)


def default_normalize(scores: list[int], *, reverse: bool = False) -> list[int]:
    """kube's DefaultNormalizeScore: scale to 0..100 by the highest, optionally inverted."""
    highest = max(scores, default=0)
    if highest == 0:
        return [MAX_SCORE if reverse else 0 for _ in scores]
    scaled = [MAX_SCORE * s // highest for s in scores]
    return [MAX_SCORE - s for s in scaled] if reverse else scaled


def reverse_normalize(scores: list[int]) -> list[int]:
    return default_normalize(scores, reverse=True)


def spread_normalize(scores: list[int]) -> list[int]:
    """PodTopologySpread's: the emptiest node gets 100, the fullest min/max of it."""
    highest, lowest = max(scores, default=0), min(scores, default=0)
    if highest == 0:
        return [MAX_SCORE for _ in scores]
    return [MAX_SCORE * (highest + lowest - s) // highest for s in scores]


@dataclass(frozen=True, slots=True)
class Scorer:
    name: str
    weight: int
    raw: Raw
    normalize: Normalize | None
    applies: Callable[[PodInfo], bool]
    """A scorer that gives every node the same score for this pod is skipped: a constant
    added to every total never changes which node wins."""
    memoizable: bool = False
    """The raw score depends only on the node (its version) and the pod's requests."""


class ScoreMemo:
    """Raw scores of memoizable scorers, per pod request shape and node version.

    Consecutive pods usually ask for the same resources (a controller's replicas) and
    between two decisions only the chosen node changes, so nearly every node's resource
    scores can be reused; a lookup costs a fraction of recomputing them.
    """

    def __init__(self, shapes: int = 16) -> None:
        self.shapes = shapes
        self._tables: dict[object, dict[str, tuple[int, tuple[int, ...]]]] = {}

    def _table(self, pod: PodInfo) -> dict[str, tuple[int, tuple[int, ...]]]:
        shape = (pod.requests, pod.non_zero)
        table = self._tables.pop(shape, None)
        if table is None:
            table = {}
            if len(self._tables) >= self.shapes:
                del self._tables[next(iter(self._tables))]  # least recently used
        self._tables[shape] = table
        return table

    def raws(
        self, pod: PodInfo, nodes: Sequence[NodeInfo], scorers: Sequence[Scorer]
    ) -> list[list[int]]:
        """One list of raw scores per scorer, as ``scorer.raw(pod, nodes)`` would give."""
        table = self._table(pod)
        get = table.get
        rows = [
            hit[1] if (hit := get(node.name)) is not None and hit[0] == node.version else ()
            for node in nodes
        ]
        missing = [index for index, row in enumerate(rows) if not row]
        if missing:
            subset = [nodes[i] for i in missing]
            columns = [scorer.raw(pod, subset) for scorer in scorers]
            for position, index in enumerate(missing):
                row = tuple(column[position] for column in columns)
                rows[index] = row
                table[nodes[index].name] = (nodes[index].version, row)
        return [list(column) for column in zip(*rows, strict=True)]


def _always(pod: PodInfo) -> bool:
    return True


SCORERS: tuple[Scorer, ...] = (
    Scorer("TaintToleration", 3, taint_toleration, reverse_normalize, _always),
    Scorer("NodeAffinity", 2, node_affinity, default_normalize, lambda p: bool(p.preferences)),
    Scorer("PodTopologySpread", 2, spreading, spread_normalize, lambda p: bool(p.owner)),
    Scorer("NodeResourcesFit", 1, least_allocated, None, _always, memoizable=True),
    Scorer(
        "NodeResourcesBalancedAllocation", 1, balanced_allocation, None, _always, memoizable=True
    ),
)


def score(
    pod: PodInfo,
    nodes: Sequence[NodeInfo],
    scorers: Sequence[Scorer] = SCORERS,
    memo: ScoreMemo | None = None,
) -> list[int]:
    """Weighted totals, one per node, in the order of ``nodes``."""
    active = [scorer for scorer in scorers if scorer.applies(pod)]
    remembered: dict[str, list[int]] = {}
    if memo is not None:
        memoized = [scorer for scorer in active if scorer.memoizable]
        if memoized:
            columns = memo.raws(pod, nodes, memoized)
            remembered = {s.name: c for s, c in zip(memoized, columns, strict=True)}
    totals = [0] * len(nodes)
    for scorer in active:
        raw = remembered.get(scorer.name) or scorer.raw(pod, nodes)
        if min(raw) == max(raw):
            continue  # the same for every node: cannot change the winner
        if scorer.normalize is not None:
            raw = scorer.normalize(raw)
        weight = scorer.weight
        totals = [total + weight * value for total, value in zip(totals, raw, strict=True)]
    return totals
