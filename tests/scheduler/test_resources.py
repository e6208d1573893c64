"""Quantities and pod requests as kube-scheduler computes them."""

from __future__ import annotations

from typing import Any

import pytest

from minikube_py.meta.objects import Obj
from minikube_py.scheduler.resources import (
    NON_ZERO_DEFAULTS,
    Requests,
    amount,
    pod_requests,
)

GI = 1024**3


@pytest.mark.parametrize(
    ("resource", "value", "expected"),
    [
        ("cpu", "1", 1000),
        ("cpu", "100m", 100),
        ("cpu", "0.5", 500),
        ("cpu", "0.5m", 1),  # MilliValue rounds up
        ("cpu", "1.5", 1500),
        ("cpu", 2, 2000),
        ("cpu", "2e3", 2_000_000),
        ("memory", "128Mi", 128 * 1024**2),
        ("memory", "1Gi", GI),
        ("memory", "1G", 10**9),
        ("memory", "1.5Ki", 1536),
        ("memory", "100", 100),
        ("memory", "1k", 1000),
        ("memory", "0.1", 1),  # Value rounds up
        ("pods", "110", 110),
        ("nvidia.com/gpu", "2", 2),
        ("cpu", "lots", 0),  # unparsable: counted as nothing, never a crash
        ("cpu", True, 0),
    ],
)
def test_amounts(resource: str, value: Any, expected: int) -> None:
    assert amount(resource, value) == expected


def _spec(containers: list[Obj], init: list[Obj] | None = None, **extra: Any) -> Obj:
    def container(requests: Obj | None, limits: Obj | None = None, **more: Any) -> Obj:
        resources: Obj = {}
        if requests is not None:
            resources["requests"] = requests
        if limits is not None:
            resources["limits"] = limits
        return {"name": "c", "resources": resources, **more}

    return {
        "containers": [container(**c) for c in containers],
        "initContainers": [container(**c) for c in init or []],
        **extra,
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (_spec([{"requests": None}]), Requests()),
        (
            _spec([{"requests": {"cpu": "100m", "memory": "1Gi"}}, {"requests": {"cpu": "1"}}]),
            Requests(cpu=1100, memory=GI),
        ),
        # limits stand in for missing requests (the API server's defaulting)
        (_spec([{"requests": None, "limits": {"cpu": "2"}}]), Requests(cpu=2000)),
        (
            _spec([{"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}]),
            Requests(cpu=1000),
        ),
        # an init container needing more than the app containers sets the floor
        (
            _spec([{"requests": {"cpu": "1"}}], init=[{"requests": {"cpu": "3", "memory": "1"}}]),
            Requests(cpu=3000, memory=1),
        ),
        # a restartable (sidecar) init container keeps running: it adds to the sum
        (
            _spec(
                [{"requests": {"cpu": "1"}}],
                init=[{"requests": {"cpu": "500m"}, "restartPolicy": "Always"}],
            ),
            Requests(cpu=1500),
        ),
        # a later init container runs beside the sidecars started before it
        (
            _spec(
                [{"requests": {"cpu": "100m"}}],
                init=[
                    {"requests": {"cpu": "1"}, "restartPolicy": "Always"},
                    {"requests": {"cpu": "2"}},
                ],
            ),
            Requests(cpu=3000),
        ),
        (
            _spec([{"requests": {"cpu": "1"}}], overhead={"cpu": "250m", "memory": "10"}),
            Requests(cpu=1250, memory=10),
        ),
        (
            _spec([{"requests": {"nvidia.com/gpu": "1", "ephemeral-storage": "1Gi"}}]),
            Requests(ephemeral=GI, scalar=(("nvidia.com/gpu", 1),)),
        ),
    ],
)
def test_pod_requests(spec: Obj, expected: Requests) -> None:
    assert pod_requests(spec) == expected


def test_non_zero_requests_fill_in_kubes_defaults_per_container() -> None:
    spec = _spec([{"requests": None}, {"requests": {"cpu": "1"}}, {"requests": {"cpu": "0"}}])
    got = pod_requests(spec, NON_ZERO_DEFAULTS)
    # 100m for the first (no request), 1 core, and an explicit 0 stays 0
    assert got.cpu == 1100
    assert got.memory == 3 * 200 * 1024**2


def test_zero_requests() -> None:
    assert Requests().is_zero()
    assert not Requests(scalar=(("x/y", 1),)).is_zero()
