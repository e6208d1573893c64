"""The Unschedulable message, word for word as kube-scheduler 1.32 writes it."""

from __future__ import annotations

from typing import Any

from minikube_py.scheduler import filters, fiterror
from minikube_py.scheduler.algorithm import Algorithm
from minikube_py.scheduler.cache import Cache, NodeInfo
from minikube_py.scheduler.fiterror import Diagnosis
from minikube_py.scheduler.podinfo import PodInfo
from tests.scheduler.builders import info, node


def _message(pod: PodInfo, cache: Cache) -> str:
    decision = Algorithm(cache).schedule(pod)
    assert decision.node is None
    assert decision.diagnosis is not None
    return fiterror.message(pod, decision.diagnosis, cache.infos, decision.filters)


def _cache(*nodes: dict[str, Any]) -> Cache:
    cache = Cache()
    for index, spec in enumerate(nodes):
        cache.set_node(node(f"n{index}", **spec))
    return cache


def test_the_issues_example() -> None:
    cache = _cache(
        {"taints": [{"key": "key", "value": "value", "effect": "NoSchedule"}]},
        {"cpu": "1"},
        {"cpu": "1"},
    )
    assert _message(info(cpu="2"), cache) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {key: value}, 2 Insufficient"
        " cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for"
        " scheduling, 2 No preemption victims found for incoming pod."
    )


def test_all_nodes_rejected_for_an_unresolvable_reason() -> None:
    cache = _cache({"labels": {"zone": "a"}}, {"labels": {"zone": "b"}})
    assert _message(info(node_selector={"zone": "c"}), cache) == (
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
        " preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )


def test_a_node_short_of_several_resources_counts_each() -> None:
    cache = _cache({"cpu": "1", "memory": "1Gi", "pods": "0"})
    assert _message(info(cpu="2", memory="2Gi"), cache) == (
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 Too many pods."
        " preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    )


def test_counts_sort_as_strings_like_go() -> None:
    cache = _cache(*([{"cpu": "1"}] * 10), *([{"unschedulable": True}] * 2))
    message = _message(info(cpu="2"), cache)
    assert message.startswith(
        "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) were unschedulable."
    )


def test_preemption_policy_never() -> None:
    cache = _cache({"cpu": "1"})
    assert _message(info(cpu="2", preemptionPolicy="Never"), cache) == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to"
        " preemptionPolicy=Never."
    )


def test_dry_run_with_lower_priority_pods() -> None:
    cache = _cache({"cpu": "2"}, {"cpu": "2"})
    cache.assume(info(name="low", cpu="1500m", priority=0), "n0")
    cache.assume(info(name="low2", cpu="500m", priority=0), "n1")
    cache.assume(info(name="high", cpu="1500m", priority=100), "n1")
    message = _message(info(cpu="1", priority=10), cache)
    # n0: evicting "low" would make room (minikube-py does not evict); n1: evicting "low2"
    # still leaves "high" there, and the victims stay put afterwards
    assert message.endswith(
        "preemption: 0/2 nodes are available: 1 Insufficient cpu, 1 Preemption of"
        " lower-priority pods is not implemented."
    )
    assert {p.key for i in cache.nodes for p in i.pods.values()} == {
        "default/low",
        "default/low2",
        "default/high",
    }


def test_no_nodes() -> None:
    assert _message(info(), Cache()) == "no nodes available to schedule pods"


def test_histogram_of_nothing() -> None:
    assert fiterror.histogram(0, []) == "0/0 nodes are available: "


def test_diagnosis_message_for_a_node_that_went_away() -> None:
    pod = info(cpu="2")
    rejection = filters.Rejection(("Insufficient cpu",), resolvable=True)
    diagnosis = Diagnosis(1, {"gone": rejection})
    nodes: dict[str, NodeInfo] = {}
    assert fiterror.message(pod, diagnosis, nodes, filters.FILTERS).endswith(
        "1 Preemption is not helpful for scheduling."
    )


def test_truncate() -> None:
    assert fiterror.truncate("x" * 1024) == "x" * 1024
    assert fiterror.truncate("x" * 2000) == "x" * 1020 + " ..."
