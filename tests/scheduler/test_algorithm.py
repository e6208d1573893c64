"""One decision: sampling like percentageOfNodesToScore, round robin, scores, ties."""

from __future__ import annotations

import collections
import random

import pytest

from minikube_py.scheduler import filters
from minikube_py.scheduler.algorithm import Algorithm, find_feasible, nodes_to_find, select
from minikube_py.scheduler.cache import Cache
from tests.scheduler.builders import info, node, node_info, preferred


@pytest.mark.parametrize(
    ("total", "percentage", "expected"),
    [
        (3, 0, 3),
        (99, 0, 99),
        (100, 0, 100),  # 50% of 100 is below the floor of 100
        (1000, 0, 420),  # 50 - 1000/125 = 42%
        (5000, 0, 500),  # 10%
        (6000, 0, 300),  # 50 - 48 = 2% -> at least 5%
        (1000, 10, 100),
        (1000, 5, 100),  # never fewer than 100
        (1000, 100, 1000),
        (1000, 150, 1000),
    ],
)
def test_nodes_to_find(total: int, percentage: int, expected: int) -> None:
    assert nodes_to_find(total, percentage) == expected


def test_the_search_stops_once_enough_nodes_fit_and_wraps_around() -> None:
    nodes = [node_info(f"n{i}", cpu="1" if i % 2 else "4") for i in range(10)]
    pod = info(cpu="2")
    plugins = filters.applicable(pod)
    search = find_feasible(pod, nodes, 7, 3, plugins)
    assert [n.name for n in search.feasible] == ["n8", "n0", "n2"]
    assert set(search.rejections) <= {"n7", "n9", "n1", "n3", "n5"}
    everything = find_feasible(pod, nodes, 0, 100, plugins)
    assert everything.processed == 10
    assert len(everything.feasible) == 5


def test_successive_decisions_start_where_the_last_search_stopped() -> None:
    cache = Cache()
    for index in range(300):
        cache.set_node(node(f"n{index:03d}"))
    algorithm = Algorithm(cache, percentage=10, rng=random.Random(0))
    decision = algorithm.schedule(info(name="a"))
    assert decision.evaluated >= 100
    assert algorithm.next_start == decision.evaluated % 300
    second = algorithm.schedule(info(name="b"))
    assert algorithm.next_start == (decision.evaluated + second.evaluated) % 300


def test_ties_are_broken_evenly() -> None:
    nodes = [node_info(f"n{i}") for i in range(4)]
    rng = random.Random(7)
    picks = collections.Counter(select(nodes, [5, 9, 9, 9], rng).name for _ in range(3000))
    assert set(picks) == {"n1", "n2", "n3"}
    assert min(picks.values()) > 800
    assert select(nodes, [1, 2, 3, 0], rng).name == "n2"


def test_the_least_allocated_node_wins() -> None:
    cache = Cache()
    for name in ("busy", "idle", "half"):
        cache.set_node(node(name))
    cache.assume(info(name="x", cpu="3", memory="6Gi"), "busy")
    cache.assume(info(name="y", cpu="2", memory="4Gi"), "half")
    decision = Algorithm(cache).schedule(info(cpu="1", memory="1Gi"))
    assert decision.node == "idle"


def test_a_controllers_pods_spread_over_nodes() -> None:
    cache = Cache()
    for name in ("a", "b", "c"):
        cache.set_node(node(name, cpu="100", memory="100Gi"))
    algorithm = Algorithm(cache, rng=random.Random(1))
    placed: collections.Counter[str] = collections.Counter()
    for index in range(9):
        pod = info(name=f"p{index}", owner="rs", cpu="10m", memory="1Mi")
        decision = algorithm.schedule(pod)
        assert decision.node is not None
        cache.assume(pod, decision.node)
        placed[decision.node] += 1
    assert placed == {"a": 3, "b": 3, "c": 3}


def test_preferred_affinity_outweighs_a_little_load() -> None:
    cache = Cache()
    cache.set_node(node("plain"))
    cache.set_node(node("ssd", labels={"disk": "ssd"}))
    cache.assume(info(name="x", cpu="500m"), "ssd")
    pod = info(cpu="100m", affinity=preferred((50, [{"key": "disk", "operator": "Exists"}])))
    assert Algorithm(cache).schedule(pod).node == "ssd"


def test_a_pod_that_fits_nowhere_gets_a_diagnosis_of_every_node() -> None:
    cache = Cache()
    for index in range(150):
        cache.set_node(node(f"n{index}", cpu="1"))
    decision = Algorithm(cache).schedule(info(cpu="2"))
    assert decision.node is None
    assert decision.diagnosis is not None
    assert decision.diagnosis.total_nodes == 150
    assert len(decision.diagnosis.rejections) == 150
