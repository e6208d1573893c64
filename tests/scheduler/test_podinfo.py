"""Which pods are the scheduler's, and what it reads from them."""

from __future__ import annotations

from typing import Any

import pytest

from minikube_py.scheduler.podinfo import HostPort, pod_info, wants_scheduling
from minikube_py.scheduler.writer import unschedulable_patch
from tests.scheduler.builders import pod


@pytest.mark.parametrize(
    ("change", "wanted"),
    [
        ({}, True),
        ({"spec": {"nodeName": "n1"}}, False),
        ({"spec": {"schedulerName": "other-scheduler"}}, False),
        ({"spec": {"schedulerName": "default-scheduler"}}, True),
        ({"spec": {"schedulingGates": [{"name": "wait"}]}}, False),
        ({"status": {"phase": "Failed"}}, False),
        ({"metadata": {"deletionTimestamp": "2025-01-01T00:00:00Z"}}, False),
    ],
)
def test_wants_scheduling(change: dict[str, Any], wanted: bool) -> None:
    subject = pod()
    for part, fields in change.items():
        subject.setdefault(part, {}).update(fields)
    assert wants_scheduling(subject) is wanted


def test_what_is_read_from_a_pod() -> None:
    subject = pod(
        cpu="250m",
        priority=7,
        owner="rs-1",
        host_ports=[{"containerPort": 80, "hostPort": 8080}, {"containerPort": 9}],
        preemptionPolicy="Never",
    )
    subject["metadata"]["ownerReferences"].insert(
        0, {"kind": "ConfigMap", "name": "not-a-controller", "uid": "cm"}
    )
    got = pod_info(subject)
    assert (got.key, got.priority, got.requests.cpu, got.owner) == ("default/p", 7, 250, "rs-1")
    assert got.host_ports == (HostPort("0.0.0.0", "TCP", 8080),)
    assert got.preemption_never
    assert got.non_zero.memory == 200 * 1024**2


def test_unschedulable_patch_writes_only_changes() -> None:
    subject = pod()
    first = unschedulable_patch(subject, "0/1 nodes are available: x.", "T1")
    assert first == {
        "status": {
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "lastTransitionTime": "T1",
                    "reason": "Unschedulable",
                    "message": "0/1 nodes are available: x.",
                }
            ]
        }
    }
    subject["status"] = first["status"]
    assert unschedulable_patch(subject, "0/1 nodes are available: x.", "T2") is None
    second = unschedulable_patch(subject, "0/2 nodes are available: y.", "T2")
    assert second is not None
    assert second["status"]["conditions"][0]["lastTransitionTime"] == "T1"  # still False
