"""One scheduling decision: filter nodes, score a sample of the feasible ones, pick the best.

As kube-scheduler's ``schedulePod``: nodes are searched round-robin from where the last
search stopped, and the search ends once enough feasible nodes are found
(``percentageOfNodesToScore``), so a big cluster costs a bounded sample per pod while
successive pods still see every node over time. Ties go to a random winner, so equal
nodes share the load. Synchronous by design: nothing changes under a decision.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from minikube_py.scheduler import filters, scores
from minikube_py.scheduler.cache import Cache, NodeInfo
from minikube_py.scheduler.filters import Filter, Rejections
from minikube_py.scheduler.fiterror import Diagnosis
from minikube_py.scheduler.podinfo import PodInfo
from minikube_py.scheduler.scores import ScoreMemo, Scorer

MIN_FEASIBLE_NODES = 100
MIN_FEASIBLE_PERCENTAGE = 5
MIN_WINDOW = 32


def nodes_to_find(total: int, percentage: int = 0) -> int:
    """kube's numFeasibleNodesToFind; ``percentage`` 0 is its adaptive default
    (50% minus 1% per 125 nodes, at least 5%), and never fewer than 100 nodes."""
    if total < MIN_FEASIBLE_NODES:
        return total
    if percentage <= 0:
        percentage = max(50 - total // 125, MIN_FEASIBLE_PERCENTAGE)
    return max(total * min(percentage, 100) // 100, MIN_FEASIBLE_NODES)


@dataclass(frozen=True, slots=True)
class Search:
    feasible: list[NodeInfo]
    rejections: Rejections
    processed: int


def _window(nodes: Sequence[NodeInfo], start: int, size: int) -> list[NodeInfo]:
    """``size`` nodes from ``start``, wrapping around the end."""
    end = start + size
    if end <= len(nodes):
        return list(nodes[start:end])
    return list(nodes[start:]) + list(nodes[: end - len(nodes)])


def find_feasible(
    pod: PodInfo, nodes: Sequence[NodeInfo], start: int, want: int, plugins: Sequence[Filter]
) -> Search:
    """Look at nodes from ``start`` (wrapping) until ``want`` fit or all were seen.

    Nodes are filtered in windows of what is still wanted (at least ``MIN_WINDOW``), so
    the last window may find a few more than ``want``; they are dropped, as kube drops
    what its parallel workers found beyond the count.
    """
    feasible: list[NodeInfo] = []
    rejections: Rejections = {}
    total = len(nodes)
    processed = 0
    while processed < total and len(feasible) < want:
        size = min(max(want - len(feasible), MIN_WINDOW), total - processed)
        window = _window(nodes, (start + processed) % total, size)
        processed += size
        feasible.extend(filters.run_batch(plugins, pod, window, rejections))
    return Search(feasible[:want], rejections, processed)


def select(nodes: Sequence[NodeInfo], totals: Sequence[int], rng: random.Random) -> NodeInfo:
    """The highest total; among equals each has the same chance."""
    best = max(totals)
    tied = [index for index, total in enumerate(totals) if total == best]
    return nodes[tied[rng.randrange(len(tied))] if len(tied) > 1 else tied[0]]


@dataclass(frozen=True, slots=True)
class Decision:
    node: str | None
    diagnosis: Diagnosis | None
    filters: tuple[Filter, ...]
    """The filters that applied to the pod (the preemption dry run reuses them)."""
    evaluated: int = 0
    feasible: int = 0


class Algorithm:
    """The decision procedure over a cache, remembering where the last search ended."""

    def __init__(
        self,
        cache: Cache,
        *,
        percentage: int = 0,
        rng: random.Random | None = None,
        filter_plugins: Sequence[Filter] = filters.FILTERS,
        scorers: Sequence[Scorer] = scores.SCORERS,
    ) -> None:
        self.cache = cache
        self.percentage = percentage
        self.rng = rng or random.Random()
        self.filter_plugins = tuple(filter_plugins)
        self.scorers = tuple(scorers)
        self.next_start = 0
        self.memo = ScoreMemo()

    def schedule(self, pod: PodInfo) -> Decision:
        nodes = self.cache.nodes
        plugins = filters.applicable(pod, self.filter_plugins)
        if not nodes:
            return Decision(None, Diagnosis(0, {}), plugins)
        start = self.next_start % len(nodes)
        want = nodes_to_find(len(nodes), self.percentage)
        search = find_feasible(pod, nodes, start, want, plugins)
        self.next_start = (start + search.processed) % len(nodes)
        if not search.feasible:
            diagnosis = Diagnosis(len(nodes), search.rejections)
            return Decision(None, diagnosis, plugins, search.processed)
        if len(search.feasible) == 1:
            chosen = search.feasible[0]
        else:
            totals = scores.score(pod, search.feasible, self.scorers, self.memo)
            chosen = select(search.feasible, totals, self.rng)
        return Decision(chosen.name, None, plugins, search.processed, len(search.feasible))
