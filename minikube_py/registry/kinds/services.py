"""Services: defaults, validation and printing. IPs and node ports come from allocators."""

from __future__ import annotations

from typing import Any

from minikube_py import errors
from minikube_py.errors import FieldError
from minikube_py.meta.objects import Obj, dig
from minikube_py.registry import validation
from minikube_py.registry.kinds.base import ObjectStrategy, info, status_of
from minikube_py.registry.resource import Subresource
from minikube_py.registry.strategy import AGE, NAME, Column

TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]


def _port_text(spec: Obj) -> str:
    shown = []
    for port in spec.get("ports") or []:
        text = f"{port.get('port')}"
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        shown.append(f"{text}/{port.get('protocol', 'TCP')}")
    return ",".join(shown) or "<none>"


def _selector_text(spec: Obj) -> str:
    selector = spec.get("selector") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>"


class Services(ObjectStrategy):
    info = info(
        "Service",
        "services",
        short=("svc",),
        categories=("all",),
        storage_name="services/specs",
        subresources=(
            Subresource(
                "proxy", "ServiceProxyOptions", ("create", "delete", "get", "patch", "update")
            ),
            status_of("Service"),
        ),
    )
    has_status = True
    returns_deleted_object = True
    name_rule = validation.DNS1035
    columns = (
        NAME,
        Column("Type", description="The type of service."),
        Column("Cluster-IP", description="The cluster IP of the service."),
        Column("External-IP", description="The external IP of the service."),
        Column("Port(s)", description="The ports of the service."),
        AGE,
        Column("Selector", priority=1, description="The selector of the service."),
    )

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """Allocated values survive an update that leaves them out (as kube patches them in)."""
        super().prepare_for_update(new, old)
        spec, before = new.get("spec"), old.get("spec") or {}
        if not isinstance(spec, dict) or spec.get("type") == "ExternalName":
            return
        if not spec.get("clusterIP") and before.get("clusterIP"):
            spec["clusterIP"] = before["clusterIP"]
            spec["clusterIPs"] = before.get("clusterIPs", [before["clusterIP"]])
        old_ports = {(p.get("port"), p.get("protocol")): p for p in before.get("ports") or []}
        for port in spec.get("ports") or []:
            previous = old_ports.get((port.get("port"), port.get("protocol")))
            keeps = spec.get("type") in ("NodePort", "LoadBalancer")
            if keeps and previous and not port.get("nodePort") and previous.get("nodePort"):
                port["nodePort"] = previous["nodePort"]

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {"loadBalancer": {}}

    def validate_spec(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [errors.required("spec")]
        problems: list[FieldError] = []
        if spec.get("type") not in TYPES:
            problems.append(errors.not_supported("spec.type", spec.get("type"), TYPES))
        ports = spec.get("ports") or []
        if not ports and spec.get("type") != "ExternalName":
            problems.append(errors.required("spec.ports"))
        seen: set[Any] = set()
        for index, port in enumerate(ports):
            path = f"spec.ports[{index}]"
            number = port.get("port") if isinstance(port, dict) else None
            if not isinstance(number, int) or not 1 <= number <= 65535:
                problems.append(
                    errors.invalid(f"{path}.port", number, "must be between 1 and 65535, inclusive")
                )
            if isinstance(port, dict) and port.get("protocol") not in PROTOCOLS:
                problems.append(
                    errors.not_supported(f"{path}.protocol", port.get("protocol"), PROTOCOLS)
                )
            if len(ports) > 1 and isinstance(port, dict) and not port.get("name"):
                problems.append(errors.required(f"{path}.name"))
            key = (number, port.get("protocol") if isinstance(port, dict) else None)
            if key in seen:
                problems.append(errors.duplicate(path, {"port": number, "protocol": key[1]}))
            seen.add(key)
        return problems

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = self.validate(new)
        old_ip = dig(old, "spec", "clusterIP")
        new_ip = dig(new, "spec", "clusterIP")
        if old_ip and new_ip != old_ip and dig(new, "spec", "type") != "ExternalName":
            problems.append(errors.invalid("spec.clusterIPs[0]", new_ip, "may not change once set"))
        return problems

    def row(self, obj: Obj, now: float) -> list[Any]:
        spec = obj.get("spec") or {}
        external = ",".join(
            i.get("ip") or i.get("hostname") or ""
            for i in dig(obj, "status", "loadBalancer", "ingress") or []
        )
        if not external:
            external = {
                "LoadBalancer": "<pending>",
                "ExternalName": spec.get("externalName", ""),
            }.get(spec.get("type", ""), "<none>")
        return [
            obj["metadata"]["name"],
            spec.get("type", ""),
            spec.get("clusterIP") or "<none>",
            external,
            _port_text(spec),
            self.age(obj, now),
            _selector_text(spec),
        ]
