"""Filters as pure functions: one table per plugin, kube 1.32's reasons, batch = per node."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from minikube_py.meta.objects import Obj
from minikube_py.scheduler import filters
from minikube_py.scheduler.cache import NodeInfo
from minikube_py.scheduler.filters import (
    AFFINITY_REASON,
    FILTERS,
    PORTS_REASON,
    UNSCHEDULABLE_REASON,
    Rejection,
)
from tests.scheduler.builders import info, node_info, required

UNREACHABLE = {"type": "Ready", "status": "Unknown"}
NOT_READY = {"type": "Ready", "status": "False"}


def _reasons(rejection: Rejection | None) -> tuple[str, ...]:
    return rejection.reasons if rejection is not None else ()


def _taint(key: str, value: str = "", effect: str = "NoSchedule") -> Obj:
    found: Obj = {"key": key, "effect": effect}
    if value:
        found["value"] = value
    return found


@pytest.mark.parametrize(
    ("node", "tolerations", "reasons"),
    [
        ({}, None, ()),
        ({"unschedulable": True}, None, (UNSCHEDULABLE_REASON,)),
        (
            {"unschedulable": True},
            [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}],
            (),
        ),
        ({"unschedulable": True}, [{"operator": "Exists"}], ()),
    ],
)
def test_node_unschedulable(
    node: Obj, tolerations: list[Obj] | None, reasons: tuple[str, ...]
) -> None:
    got = filters.node_unschedulable(info(tolerations=tolerations), node_info(**node))
    assert _reasons(got) == reasons
    assert got is None or not got.resolvable


@pytest.mark.parametrize(
    ("taints", "conditions", "tolerations", "reason"),
    [
        ([], None, None, None),
        ([_taint("dedicated", "gpu")], None, None, "{dedicated: gpu}"),
        ([_taint("dedicated", "gpu", "NoExecute")], None, None, "{dedicated: gpu}"),
        ([_taint("dedicated", "gpu", "PreferNoSchedule")], None, None, None),
        ([_taint("a", "1"), _taint("b", "2")], None, None, "{a: 1}"),  # the first, in order
        (
            [_taint("a", "1"), _taint("b", "2")],
            None,
            [{"key": "a", "operator": "Equal", "value": "1"}],
            "{b: 2}",
        ),
        ([_taint("a", "1")], None, [{"key": "a", "value": "2"}], "{a: 1}"),  # wrong value
        ([_taint("a", "1")], None, [{"key": "a", "operator": "Exists"}], None),
        ([_taint("a", "1")], None, [{"operator": "Exists"}], None),  # tolerates everything
        (
            [_taint("a", "1", "NoSchedule")],
            None,
            [{"key": "a", "operator": "Exists", "effect": "NoExecute"}],
            "{a: 1}",  # wrong effect
        ),
        ([_taint("a")], None, [{"key": "a", "operator": "Equal"}], None),  # empty value
        # readiness: the lifecycle controller's taints, derived from the Ready condition
        ([], [NOT_READY], None, "{node.kubernetes.io/not-ready: }"),
        ([], [UNREACHABLE], None, "{node.kubernetes.io/unreachable: }"),
        ([], [], None, "{node.kubernetes.io/not-ready: }"),  # no status yet
        # pods' default NoExecute tolerations do not cover the NoSchedule taint
        (
            [],
            [NOT_READY],
            [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}],
            "{node.kubernetes.io/not-ready: }",
        ),
        ([], [NOT_READY], [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}], None),
        # a lifecycle controller's real taint is not doubled
        (
            [_taint("node.kubernetes.io/not-ready")],
            [NOT_READY],
            None,
            "{node.kubernetes.io/not-ready: }",
        ),
        ([_taint("x", "y")], [NOT_READY], None, "{x: y}"),  # the node's own taints first
    ],
)
def test_taint_toleration(
    taints: list[Obj],
    conditions: list[Obj] | None,
    tolerations: list[Obj] | None,
    reason: str | None,
) -> None:
    node = node_info(taints=taints, conditions=conditions)
    got = filters.taint_toleration(info(tolerations=tolerations), node)
    expected = () if reason is None else (f"node(s) had untolerated taint {reason}",)
    assert _reasons(got) == expected
    assert got is None or not got.resolvable


def test_ready_taint_is_added_once() -> None:
    node = node_info(taints=[_taint("node.kubernetes.io/not-ready")], conditions=[NOT_READY])
    assert len(node.hard_taints) == 1


def _expr(key: str, operator: str, *values: str) -> Obj:
    found: Obj = {"key": key, "operator": operator}
    if values:
        found["values"] = list(values)
    return found


LABELS = {"zone": "a", "disk": "ssd", "cores": "16"}


@pytest.mark.parametrize(
    ("pod", "fits"),
    [
        ({}, True),
        ({"node_selector": {"zone": "a"}}, True),
        ({"node_selector": {"zone": "b"}}, False),
        ({"node_selector": {"zone": "a", "disk": "hdd"}}, False),
        ({"node_selector": {"missing": ""}}, False),
        ({"affinity": required([_expr("zone", "In", "a", "b")])}, True),
        ({"affinity": required([_expr("zone", "In", "b", "c")])}, False),
        ({"affinity": required([_expr("zone", "NotIn", "b")])}, True),
        ({"affinity": required([_expr("zone", "NotIn", "a")])}, False),
        ({"affinity": required([_expr("gpu", "NotIn", "x")])}, True),  # absent key
        ({"affinity": required([_expr("disk", "Exists")])}, True),
        ({"affinity": required([_expr("gpu", "Exists")])}, False),
        ({"affinity": required([_expr("gpu", "DoesNotExist")])}, True),
        ({"affinity": required([_expr("disk", "DoesNotExist")])}, False),
        ({"affinity": required([_expr("cores", "Gt", "8")])}, True),
        ({"affinity": required([_expr("cores", "Gt", "16")])}, False),
        ({"affinity": required([_expr("cores", "Lt", "32")])}, True),
        ({"affinity": required([_expr("cores", "Lt", "16")])}, False),
        ({"affinity": required([_expr("zone", "Gt", "1")])}, False),  # not a number
        ({"affinity": required([_expr("cores", "Gt", "x")])}, False),  # invalid term
        # expressions in a term are ANDed, terms are ORed
        ({"affinity": required([_expr("zone", "In", "a"), _expr("disk", "In", "hdd")])}, False),
        (
            {"affinity": required([_expr("zone", "In", "b")], [_expr("disk", "In", "ssd")])},
            True,
        ),
        ({"affinity": required([])}, False),  # an empty term matches nothing
        ({"affinity": required(fields=[_expr("metadata.name", "In", "n1")])}, True),
        ({"affinity": required(fields=[_expr("metadata.name", "NotIn", "n1")])}, False),
        # nodeSelector and affinity must both hold
        ({"node_selector": {"zone": "b"}, "affinity": required([_expr("disk", "Exists")])}, False),
    ],
)
def test_node_affinity(pod: dict[str, Any], fits: bool) -> None:
    got = filters.node_affinity(info(**pod), node_info(labels=LABELS))
    assert _reasons(got) == (() if fits else (AFFINITY_REASON,))


def _port(port: int, ip: str = "", protocol: str = "TCP") -> Obj:
    found: Obj = {"containerPort": 80, "hostPort": port, "protocol": protocol}
    if ip:
        found["hostIP"] = ip
    return found


@pytest.mark.parametrize(
    ("used", "wanted", "fits"),
    [
        ([], [_port(80)], True),
        ([_port(80)], [_port(80)], False),
        ([_port(80)], [_port(81)], True),
        ([_port(80, protocol="UDP")], [_port(80)], True),
        ([_port(80, "10.0.0.1")], [_port(80, "10.0.0.2")], True),
        ([_port(80, "10.0.0.1")], [_port(80, "10.0.0.1")], False),
        ([_port(80, "10.0.0.1")], [_port(80)], False),  # 0.0.0.0 overlaps every address
        ([_port(80)], [_port(80, "10.0.0.1")], False),
        ([{"containerPort": 80}], [{"containerPort": 80}], True),  # no hostPort: no claim
    ],
)
def test_node_ports(used: list[Obj], wanted: list[Obj], fits: bool) -> None:
    node = node_info(placed=[info(name="old", host_ports=used)])
    got = filters.node_ports(info(host_ports=wanted), node)
    assert _reasons(got) == (() if fits else (PORTS_REASON,))
    assert got is None or got.resolvable


@pytest.mark.parametrize(
    ("node", "placed", "pod", "reasons"),
    [
        ({}, [], {"cpu": "1"}, ()),
        ({}, [], {"cpu": "5"}, ("Insufficient cpu",)),
        ({}, [{"cpu": "3"}], {"cpu": "1"}, ()),
        ({}, [{"cpu": "3"}], {"cpu": "1001m"}, ("Insufficient cpu",)),
        ({}, [], {"memory": "9Gi"}, ("Insufficient memory",)),
        ({}, [], {"cpu": "5", "memory": "9Gi"}, ("Insufficient cpu", "Insufficient memory")),
        ({"pods": "1"}, [{}], {}, ("Too many pods",)),
        ({"pods": "1"}, [{}], {"cpu": "5"}, ("Too many pods", "Insufficient cpu")),
        # an overcommitted node still takes a pod that asks for nothing
        ({}, [{"cpu": "5"}], {}, ()),
        (
            {},
            [],
            {"extra_requests": {"ephemeral-storage": "1Gi"}},
            ("Insufficient ephemeral-storage",),
        ),
        ({}, [], {"extra_requests": {"nvidia.com/gpu": "1"}}, ("Insufficient nvidia.com/gpu",)),
        (
            {"extra": {"nvidia.com/gpu": "2"}},
            [{"extra_requests": {"nvidia.com/gpu": "1"}}],
            {"extra_requests": {"nvidia.com/gpu": "1"}},
            (),
        ),
    ],
)
def test_resources_fit(
    node: dict[str, Any],
    placed: list[dict[str, Any]],
    pod: dict[str, Any],
    reasons: tuple[str, ...],
) -> None:
    target = node_info(placed=[info(name=f"old{i}", **p) for i, p in enumerate(placed)], **node)
    got = filters.resources_fit(info(**pod), target)
    assert _reasons(got) == reasons
    assert got is None or got.resolvable


def test_filters_run_in_kubes_order_and_the_first_rejection_wins() -> None:
    assert [f.name for f in FILTERS] == [
        "NodeUnschedulable",
        "TaintToleration",
        "NodeAffinity",
        "NodePorts",
        "NodeResourcesFit",
    ]
    node = node_info(unschedulable=True, taints=[_taint("a")], cpu="1")
    pod = info(cpu="2")
    assert _reasons(filters.run(filters.applicable(pod), pod, node)) == (UNSCHEDULABLE_REASON,)


def test_filters_that_cannot_reject_a_pod_are_skipped() -> None:
    names = [f.name for f in filters.applicable(info())]
    assert names == ["NodeUnschedulable", "TaintToleration", "NodeResourcesFit"]
    full = info(node_selector={"a": "b"}, host_ports=[_port(80)])
    assert len(filters.applicable(full)) == 5


def _nodes() -> list[NodeInfo]:
    """A mixed bag: each filter's fast and slow paths are exercised."""
    variants = itertools.product(
        [False, True],  # unschedulable
        [[], [_taint("a", "1")], [_taint("soft", "", "PreferNoSchedule")]],
        [None, [NOT_READY]],
        [{"zone": "a"}, {"zone": "b"}],
        ["1", "4"],
        ["0", "110"],
    )
    return [
        node_info(
            f"n{i}",
            unschedulable=u,
            taints=t,
            conditions=c,
            labels=lab,
            cpu=cpu,
            pods=pods,
            placed=[info(name=f"old{i}", cpu="500m", host_ports=[_port(80)])] if i % 3 else [],
        )
        for i, (u, t, c, lab, cpu, pods) in enumerate(variants)
    ]


@pytest.mark.parametrize(
    "pod",
    [
        {},
        {"cpu": "2"},
        {"cpu": "100m", "memory": "1Gi"},
        {"tolerations": [{"operator": "Exists"}]},
        {"node_selector": {"zone": "a"}},
        {"host_ports": [_port(80)]},
        {"extra_requests": {"ephemeral-storage": "1"}},
    ],
)
def test_batches_agree_with_one_node_at_a_time(pod: dict[str, Any]) -> None:
    subject = info(**pod)
    nodes = _nodes()
    plugins = filters.applicable(subject)
    one_by_one = {n.name: filters.run(plugins, subject, n) for n in nodes}
    rejections: dict[str, Rejection] = {}
    passed = filters.run_batch(plugins, subject, list(nodes), rejections)
    assert [n.name for n in passed] == [n for n, r in one_by_one.items() if r is None]
    assert rejections == {n: r for n, r in one_by_one.items() if r is not None}
