"""Scores as pure functions over nodes; normalization; weighted totals; the memo."""

from __future__ import annotations

from typing import Any

import pytest

from minikube_py.meta.objects import Obj
from minikube_py.scheduler import scores
from minikube_py.scheduler.cache import NodeInfo
from minikube_py.scheduler.scores import SCORERS, ScoreMemo
from tests.scheduler.builders import info, node_info, preferred

GI = 1024**3


@pytest.mark.parametrize(
    ("node", "placed", "pod", "expected"),
    [
        # (4000-1000)/4000 = 75 for cpu, (8-2)/8 = 75 for memory
        ({}, [], {"cpu": "1", "memory": "2Gi"}, 75),
        ({}, [{"cpu": "2", "memory": "4Gi"}], {"cpu": "1", "memory": "2Gi"}, 25),
        # no requests: kube's non-zero defaults (100m, 200Mi) still count
        ({}, [], {}, ((3900 * 100 // 4000) + ((8 * GI - 200 * 1024**2) * 100 // (8 * GI))) // 2),
        ({}, [], {"cpu": "5", "memory": "2Gi"}, (0 + 75) // 2),  # over capacity: 0
        ({"cpu": "0"}, [], {"cpu": "1", "memory": "2Gi"}, 75),  # only memory counts
    ],
)
def test_least_allocated(
    node: dict[str, Any], placed: list[dict[str, Any]], pod: dict[str, Any], expected: int
) -> None:
    target = node_info(placed=[info(name=f"o{i}", **p) for i, p in enumerate(placed)], **node)
    assert scores.least_allocated(info(**pod), [target]) == [expected]


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        ({"cpu": "2", "memory": "4Gi"}, 100),  # 50% and 50%
        ({"cpu": "4", "memory": "0"}, 50),  # 100% and 0%: |1-0|/2 = 0.5 off
        ({"cpu": "1", "memory": "4Gi"}, int((1 - 0.25 / 2) * 100)),
        ({"cpu": "8", "memory": "4Gi"}, 75),  # shares are capped at 1
    ],
)
def test_balanced_allocation(pod: dict[str, Any], expected: int) -> None:
    assert scores.balanced_allocation(info(**pod), [node_info()]) == [expected]


def test_taint_toleration_counts_untolerated_prefer_no_schedule_taints() -> None:
    soft = [
        {"key": "a", "effect": "PreferNoSchedule"},
        {"key": "b", "effect": "PreferNoSchedule"},
        {"key": "c", "effect": "NoSchedule"},
    ]
    nodes = [node_info("clean"), node_info("soft", taints=soft)]
    assert scores.taint_toleration(info(), nodes) == [0, 2]
    tolerant = info(tolerations=[{"key": "a", "operator": "Exists", "effect": "PreferNoSchedule"}])
    assert scores.taint_toleration(tolerant, nodes) == [0, 1]
    # a NoSchedule toleration does not count for PreferNoSchedule taints
    hard_only = info(tolerations=[{"key": "b", "operator": "Exists", "effect": "NoSchedule"}])
    assert scores.taint_toleration(hard_only, nodes) == [0, 2]


def test_node_affinity_sums_the_weights_of_matching_preferences() -> None:
    pod = info(
        affinity=preferred(
            (10, [{"key": "zone", "operator": "In", "values": ["a"]}]),
            (5, [{"key": "disk", "operator": "Exists"}]),
        )
    )
    nodes = [
        node_info("a-ssd", labels={"zone": "a", "disk": "ssd"}),
        node_info("a", labels={"zone": "a"}),
        node_info("b-ssd", labels={"zone": "b", "disk": "ssd"}),
        node_info("none"),
    ]
    assert scores.node_affinity(pod, nodes) == [15, 10, 5, 0]


def test_spreading_counts_pods_of_the_same_controller() -> None:
    mine = [info(name=f"m{i}", owner="rs-1") for i in range(3)]
    other = info(name="x", owner="rs-2")
    nodes = [
        node_info("two", placed=mine[:2]),
        node_info("one", placed=[mine[2], other]),
        node_info("none"),
    ]
    assert scores.spreading(info(owner="rs-1"), nodes) == [2, 1, 0]
    assert scores.spreading(info(), nodes) == [0, 0, 0]


@pytest.mark.parametrize(
    ("raw", "reverse", "expected"),
    [
        ([0, 5, 10], False, [0, 50, 100]),
        ([0, 5, 10], True, [100, 50, 0]),
        ([0, 0], False, [0, 0]),
        ([0, 0], True, [100, 100]),
        ([3, 7], False, [42, 100]),  # integer division, as kube
    ],
)
def test_default_normalize(raw: list[int], reverse: bool, expected: list[int]) -> None:
    assert scores.default_normalize(raw, reverse=reverse) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([2, 1, 0], [0, 50, 100]),
        ([3, 3, 1], [33, 33, 100]),
        ([0, 0], [100, 100]),
    ],
)
def test_spread_normalize(raw: list[int], expected: list[int]) -> None:
    assert scores.spread_normalize(raw) == expected


def test_weights_follow_kubes_default_profile() -> None:
    assert {s.name: s.weight for s in SCORERS} == {
        "TaintToleration": 3,
        "NodeAffinity": 2,
        "PodTopologySpread": 2,
        "NodeResourcesFit": 1,
        "NodeResourcesBalancedAllocation": 1,
    }


def test_totals_are_weighted_sums_and_constant_scores_are_skipped() -> None:
    pod = info(owner="rs", cpu="1", memory="2Gi")
    nodes = [node_info("busy", placed=[info(name="o", owner="rs", cpu="1")]), node_info("idle")]
    parts = [
        (1, scores.least_allocated(pod, nodes)),
        (1, scores.balanced_allocation(pod, nodes)),
        (2, scores.spread_normalize(scores.spreading(pod, nodes))),
        (3, scores.reverse_normalize(scores.taint_toleration(pod, nodes))),  # constant: 100
    ]
    expected = [0, 0]
    for weight, raw in parts:
        if raw[0] != raw[1]:
            expected = [e + weight * r for e, r in zip(expected, raw, strict=True)]
    assert parts[2][1] == [0, 100]
    assert scores.score(pod, nodes) == expected
    assert expected[1] > expected[0]


def _layout() -> list[NodeInfo]:
    return [
        node_info(f"n{i}", placed=[info(name=f"o{i}-{j}", cpu="100m") for j in range(i)])
        for i in range(5)
    ]


def _with_memo(pod: Obj, nodes: list[NodeInfo], memo: ScoreMemo) -> list[int]:
    from minikube_py.scheduler.podinfo import pod_info

    return scores.score(pod_info(pod), nodes, SCORERS, memo)


def test_memo_gives_the_same_totals_and_notices_node_changes() -> None:
    from tests.scheduler.builders import pod

    nodes = _layout()
    memo = ScoreMemo()
    subject = pod(cpu="200m", memory="1Gi")
    assert _with_memo(subject, nodes, memo) == scores.score(info(cpu="200m", memory="1Gi"), nodes)
    nodes[0].add(info(name="new", cpu="3"))  # the memo must not hide this
    again = _with_memo(subject, nodes, memo)
    assert again == scores.score(info(cpu="200m", memory="1Gi"), nodes)
    other = pod(cpu="1")
    assert _with_memo(other, nodes, memo) == scores.score(info(cpu="1"), nodes)


def test_memo_keeps_a_bounded_number_of_shapes() -> None:
    memo = ScoreMemo(shapes=2)
    nodes = _layout()
    for cpu in ("1", "2", "3"):
        memo.raws(info(cpu=cpu), nodes, SCORERS[3:])
    assert len(memo._tables) == 2
