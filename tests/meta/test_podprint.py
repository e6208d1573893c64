"""kubectl's READY / STATUS / RESTARTS for pods in the states `kubectl get pods` shows."""

from __future__ import annotations

import pytest

from minikube_py.meta.objects import Obj, format_time
from minikube_py.registry.kinds.podprint import pod_columns, wide_cells

NOW = 1_800_000_000.0


def pod(status: Obj, *, init: int = 0, containers: int = 1, **meta: str) -> Obj:
    spec: Obj = {"containers": [{"name": f"c{i}"} for i in range(containers)]}
    if init:
        spec["initContainers"] = [{"name": f"i{i}"} for i in range(init)]
    return {"metadata": {"name": "p", **meta}, "spec": spec, "status": status}


def running(ready: bool = True, restarts: int = 0, **extra: Obj) -> Obj:
    return {"state": {"running": {}}, "ready": ready, "restartCount": restarts, **extra}


CASES = [
    ("pending", pod({"phase": "Pending"}), ("0/1", "Pending", "0")),
    (
        "creating",
        pod({"phase": "Pending", "containerStatuses": [
            {"state": {"waiting": {"reason": "ContainerCreating"}}, "restartCount": 0}
        ]}),
        ("0/1", "ContainerCreating", "0"),
    ),
    (
        "running, one of two ready",
        pod({"phase": "Running", "containerStatuses": [running(), running(False)]}, containers=2),
        ("1/2", "Running", "0"),
    ),
    (
        "crash loop with the last restart's age",
        pod({"phase": "Running", "containerStatuses": [{
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "restartCount": 3,
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": format_time(NOW - 75)}},
        }]}),
        ("0/1", "CrashLoopBackOff", "3 (75s ago)"),
    ),
    (
        "completed",
        pod({"phase": "Succeeded", "containerStatuses": [
            {"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}, "restartCount": 0}
        ]}),
        ("0/1", "Completed", "0"),
    ),
    (
        "signal without a reason",
        pod({"phase": "Failed", "containerStatuses": [
            {"state": {"terminated": {"exitCode": 137, "signal": 9}}, "restartCount": 0}
        ]}),
        ("0/1", "Signal:9", "0"),
    ),
    (
        "init container running",
        pod({"phase": "Pending", "initContainerStatuses": [
            {"state": {"terminated": {"exitCode": 0}}, "restartCount": 0},
            {"state": {"running": {}}, "restartCount": 2},
        ]}, init=2),
        ("0/1", "Init:1/2", "2"),
    ),
    (
        "init container failed",
        pod({"phase": "Pending", "initContainerStatuses": [
            {"state": {"terminated": {"exitCode": 2, "reason": "Error"}}, "restartCount": 0}
        ]}, init=1),
        ("0/1", "Init:Error", "0"),
    ),
    (
        "terminating",
        pod({"phase": "Running", "containerStatuses": [running()]},
            deletionTimestamp=format_time(NOW)),
        ("1/1", "Terminating", "0"),
    ),
    (
        "evicted pod keeps its reason",
        pod({"phase": "Failed", "reason": "Evicted"}),
        ("0/1", "Evicted", "0"),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_pod_columns(obj: Obj, expected: tuple[str, str, str]) -> None:
    assert pod_columns(obj, NOW) == expected


def test_wide_cells() -> None:
    obj = pod({"phase": "Running", "podIP": "10.1.2.3"})
    obj["spec"]["nodeName"] = "n1"
    assert wide_cells(obj) == ["10.1.2.3", "n1", "<none>", "<none>"]
    obj["spec"]["readinessGates"] = [{"conditionType": "x/ok"}, {"conditionType": "x/db"}]
    obj["status"]["conditions"] = [{"type": "x/ok", "status": "True"}]
    assert wide_cells(obj)[3] == "1/2"
    assert wide_cells({"metadata": {"name": "bare"}}) == ["<none>", "<none>", "<none>", "<none>"]
