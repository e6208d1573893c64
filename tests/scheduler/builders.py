"""Pods and nodes for the scheduler's tests: only the fields a case is about."""

from __future__ import annotations

from typing import Any

from minikube_py.meta.objects import Obj
from minikube_py.scheduler.cache import NodeInfo
from minikube_py.scheduler.podinfo import PodInfo, pod_info

READY = [{"type": "Ready", "status": "True"}]


def node(
    name: str = "n1",
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
    unschedulable: bool = False,
    conditions: list[Obj] | None = None,
    extra: dict[str, str] | None = None,
) -> Obj:
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    spec: Obj = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {
            "capacity": dict(allocatable),
            "allocatable": allocatable,
            "conditions": READY if conditions is None else conditions,
        },
    }


def pod(
    name: str = "p",
    *,
    cpu: str | None = None,
    memory: str | None = None,
    priority: int = 0,
    created: str = "2025-01-01T00:00:00Z",
    owner: str = "",
    tolerations: list[Obj] | None = None,
    node_selector: dict[str, str] | None = None,
    affinity: Obj | None = None,
    host_ports: list[Obj] | None = None,
    extra_requests: dict[str, str] | None = None,
    **spec: Any,
) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    requests.update(extra_requests or {})
    container: Obj = {"name": "c", "image": "busybox", "resources": {"requests": requests}}
    if host_ports:
        container["ports"] = host_ports
    meta: Obj = {
        "name": name,
        "namespace": "default",
        "uid": f"uid-{name}",
        "creationTimestamp": created,
    }
    if owner:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": owner,
                "uid": owner,
                "controller": True,
            }
        ]
    body: Obj = {"containers": [container], "priority": priority, **spec}
    if tolerations is not None:
        body["tolerations"] = tolerations
    if node_selector is not None:
        body["nodeSelector"] = node_selector
    if affinity is not None:
        body["affinity"] = affinity
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body}


def info(**kwargs: Any) -> PodInfo:
    return pod_info(pod(**kwargs))


def node_info(name: str = "n1", *, placed: list[PodInfo] | None = None, **kwargs: Any) -> NodeInfo:
    found = NodeInfo(name)
    found.set_node(node(name, **kwargs))
    for placed_pod in placed or ():
        found.add(placed_pod)
    return found


def required(*terms: list[Obj], fields: list[Obj] | None = None) -> Obj:
    """A pod affinity requiring any of ``terms`` (each a list of matchExpressions)."""
    selector_terms: list[Obj] = [{"matchExpressions": t} for t in terms]
    if fields is not None:
        selector_terms.append({"matchFields": fields})
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": selector_terms}
        }
    }


def preferred(*weighted: tuple[int, list[Obj]]) -> Obj:
    return {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": weight, "preference": {"matchExpressions": expressions}}
                for weight, expressions in weighted
            ]
        }
    }
