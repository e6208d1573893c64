"""Cluster-scoped core kinds: namespaces and nodes."""

from __future__ import annotations

from typing import Any

from minikube_py.errors import FieldError
from minikube_py.meta.objects import Obj, dig, labels_of
from minikube_py.registry import validation
from minikube_py.registry.kinds.base import ObjectStrategy, info, status_of
from minikube_py.registry.resource import Subresource
from minikube_py.registry.strategy import AGE, NAME, Column

PROXY = ("create", "delete", "get", "patch", "update")


class Namespaces(ObjectStrategy):
    info = info(
        "Namespace",
        "namespaces",
        namespaced=False,
        short=("ns",),
        subresources=(
            Subresource("finalize", "Namespace", ("update",)),
            status_of("Namespace"),
        ),
    )
    has_status = True
    name_rule = validation.DNS_LABEL
    columns = (NAME, Column("Status", description="The status of the namespace"), AGE)

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("finalizers", ["kubernetes"])
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Active"}

    def pending_finalizers(self, obj: Obj) -> list[str]:
        """The namespace controller empties ``spec.finalizers`` once the content is gone."""
        return list(dig(obj, "spec", "finalizers") or [])

    def mark_deleting(self, obj: Obj) -> None:
        obj.setdefault("status", {})["phase"] = "Terminating"

    def row(self, obj: Obj, now: float) -> list[Any]:
        return [obj["metadata"]["name"], dig(obj, "status", "phase") or "", self.age(obj, now)]


def _node_status(obj: Obj) -> str:
    states = []
    for condition in dig(obj, "status", "conditions") or []:
        if condition.get("type") == "Ready":
            states.append("Ready" if condition.get("status") == "True" else "NotReady")
            if condition.get("status") not in ("True", "False"):
                states[-1] = "Unknown"
    status = ",".join(states) or "Unknown"
    if dig(obj, "spec", "unschedulable"):
        status += ",SchedulingDisabled"
    return status


def _node_roles(obj: Obj) -> str:
    roles = set()
    for key, value in labels_of(obj).items():
        if key.startswith("node-role.kubernetes.io/"):
            roles.add(key.split("/", 1)[1])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(r for r in roles if r)) or "<none>"


def _address(obj: Obj, kind: str) -> str:
    for address in dig(obj, "status", "addresses") or []:
        if address.get("type") == kind:
            return str(address.get("address", ""))
    return "<none>"


class Nodes(ObjectStrategy):
    info = info(
        "Node",
        "nodes",
        namespaced=False,
        short=("no",),
        storage_name="minions",
        subresources=(status_of("Node"), Subresource("proxy", "NodeProxyOptions", PROXY)),
    )
    has_status = True
    status_on_create = True
    columns = (
        NAME,
        Column("Status", description="The status of the node"),
        Column("Roles", description="The roles of the node"),
        AGE,
        Column("Version", description="Kubelet Version reported by the node."),
        Column("Internal-IP", priority=1, description="List of addresses reachable to the node."),
        Column("External-IP", priority=1, description="List of addresses reachable to the node."),
        Column("OS-Image", priority=1, description="OS Image reported by the node."),
        Column("Kernel-Version", priority=1, description="Kernel Version reported by the node."),
        Column("Container-Runtime", priority=1, description="Container Runtime Version."),
    )

    def row(self, obj: Obj, now: float) -> list[Any]:
        node_info = dig(obj, "status", "nodeInfo") or {}
        return [
            obj["metadata"]["name"],
            _node_status(obj),
            _node_roles(obj),
            self.age(obj, now),
            node_info.get("kubeletVersion", ""),
            _address(obj, "InternalIP"),
            _address(obj, "ExternalIP"),
            node_info.get("osImage", "") or "<unknown>",
            node_info.get("kernelVersion", "") or "<unknown>",
            node_info.get("containerRuntimeVersion", "") or "<unknown>",
        ]

    def validate_spec(self, obj: Obj) -> list[FieldError]:
        return []
