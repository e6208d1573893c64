"""``PodInfo``: everything scheduling needs from a pod, parsed once.

A pending pod is tried many times (and an assigned pod is counted on its node for its whole
life), so its requests, tolerations, affinity and ports are computed when the pod arrives
and never again; the hot loops only read these fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from minikube_py.meta.objects import Obj
from minikube_py.scheduler import placement, resources
from minikube_py.scheduler.placement import NodeSelection, Preference, Toleration
from minikube_py.scheduler.resources import Requests

DEFAULT_SCHEDULER = "default-scheduler"
TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass(frozen=True, slots=True)
class HostPort:
    ip: str
    protocol: str
    port: int

    def conflicts(self, other: HostPort) -> bool:
        """Same protocol and port, and the addresses overlap (0.0.0.0 overlaps all)."""
        if self.port != other.port or self.protocol != other.protocol:
            return False
        return self.ip == other.ip or "0.0.0.0" in (self.ip, other.ip)


@dataclass(frozen=True, slots=True)
class PodInfo:
    key: str
    namespace: str
    name: str
    uid: str
    obj: Obj
    priority: int
    created: str
    requests: Requests
    non_zero: Requests
    """Requests with kube's defaults for containers that state none (for scoring)."""
    tolerations: tuple[Toleration, ...]
    selection: NodeSelection
    preferences: tuple[Preference, ...]
    host_ports: tuple[HostPort, ...]
    owner: str
    """The controller owner's uid ("" without one): the pods to spread apart."""
    preemption_never: bool


def _host_ports(spec: Mapping[str, Any]) -> tuple[HostPort, ...]:
    found = []
    for container in spec.get("containers") or ():
        for port in container.get("ports") or ():
            number = int(port.get("hostPort") or 0)
            if number > 0:
                ip = str(port.get("hostIP") or "0.0.0.0")
                found.append(HostPort(ip, str(port.get("protocol") or "TCP"), number))
    return tuple(found)


def _controller(meta: Mapping[str, Any]) -> str:
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("uid") or ref.get("name") or "")
    return ""


def pod_key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def pod_info(obj: Obj) -> PodInfo:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    return PodInfo(
        key=pod_key(obj),
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        obj=obj,
        priority=int(spec.get("priority") or 0),
        created=str(meta.get("creationTimestamp") or ""),
        requests=resources.pod_requests(spec),
        non_zero=resources.pod_requests(spec, resources.NON_ZERO_DEFAULTS),
        tolerations=tuple(Toleration.of(t) for t in spec.get("tolerations") or ()),
        selection=placement.selection(spec),
        preferences=placement.preferences(spec),
        host_ports=_host_ports(spec),
        owner=_controller(meta),
        preemption_never=spec.get("preemptionPolicy") == "Never",
    )


def node_name(obj: Obj) -> str:
    return str((obj.get("spec") or {}).get("nodeName") or "")


def is_terminal(obj: Obj) -> bool:
    return (obj.get("status") or {}).get("phase") in TERMINAL_PHASES


def wants_scheduling(obj: Obj, scheduler_name: str = DEFAULT_SCHEDULER) -> bool:
    """Pending, ours, alive, and not held back by scheduling gates."""
    spec = obj.get("spec") or {}
    if spec.get("nodeName") or is_terminal(obj):
        return False
    if (spec.get("schedulerName") or DEFAULT_SCHEDULER) != scheduler_name:
        return False
    return not spec.get("schedulingGates") and not (obj.get("metadata") or {}).get(
        "deletionTimestamp"
    )


def scheduling_relevant(obj: Obj) -> tuple[Any, ...]:
    """What an update must change for a failed pod to deserve another try (not status)."""
    meta = obj.get("metadata") or {}
    return (obj.get("spec"), meta.get("labels"), meta.get("annotations"))
