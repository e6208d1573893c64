"""Pods: defaults and validation as kube-apiserver applies them, graceful deletion, printing."""

from __future__ import annotations

from typing import Any

from minikube_py import errors
from minikube_py.errors import FieldError
from minikube_py.meta import names
from minikube_py.meta.objects import Obj, dig
from minikube_py.registry.kinds import podprint
from minikube_py.registry.kinds.base import ObjectStrategy, info, status_of
from minikube_py.registry.resource import Subresource
from minikube_py.registry.strategy import AGE, NAME, Column

STREAM_VERBS = ("create", "get")
RESTART_POLICIES = ["Always", "OnFailure", "Never"]
DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
DEFAULT_TOLERATIONS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
MUTABLE_HINT = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only"
    " additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be"
    " set to 1 if it was previously negative)"
)


def default_pull_policy(image: str) -> str:
    """Always for ``:latest`` or no tag, IfNotPresent for any other tag or a digest."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _default_container(container: Obj) -> None:
    container.setdefault("imagePullPolicy", default_pull_policy(str(container.get("image", ""))))
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    resources = container.setdefault("resources", {})
    if isinstance(resources, dict) and isinstance(resources.get("limits"), dict):
        requests = resources.setdefault("requests", {})  # a limit alone is also the request
        for name, value in resources["limits"].items():
            requests.setdefault(name, value)
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for env in container.get("env") or []:
        field_ref = dig(env, "valueFrom", "fieldRef")
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")


def _default_volume(volume: Obj) -> None:
    for source in ("configMap", "secret", "downwardAPI", "projected"):
        if isinstance(volume.get(source), dict):
            volume[source].setdefault("defaultMode", 420)


def qos_class(spec: Obj) -> str:
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    requests_set = limits_set = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        requests_set |= bool(requests)
        limits_set |= bool(limits)
        for resource in ("cpu", "memory"):
            if (
                resource not in limits
                or requests.get(resource, limits[resource]) != limits[resource]
            ):
                guaranteed = False
    if not requests_set and not limits_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class Pods(ObjectStrategy):
    info = info(
        "Pod",
        "pods",
        short=("po",),
        categories=("all",),
        subresources=(
            Subresource("attach", "PodAttachOptions", STREAM_VERBS),
            Subresource("binding", "Binding", ("create",)),
            Subresource("ephemeralcontainers", "Pod", ("get", "patch", "update")),
            Subresource("eviction", "Eviction", ("create",), "policy", "v1"),
            Subresource("exec", "PodExecOptions", STREAM_VERBS),
            Subresource("log", "Pod", ("get",)),
            Subresource("portforward", "PodPortForwardOptions", STREAM_VERBS),
            Subresource("proxy", "PodProxyOptions", ("create", "delete", "get", "patch", "update")),
            status_of("Pod"),
        ),
    )
    has_status = True
    returns_deleted_object = True
    columns = (
        NAME,
        Column(
            "Ready", description="The aggregate readiness state of this pod for accepting traffic."
        ),
        Column("Status", description="The aggregate status of the containers in this pod."),
        Column(
            "Restarts",
            description="The number of times the containers in this pod have been restarted.",
        ),
        AGE,
        Column("IP", priority=1, description="IP address allocated to the pod."),
        Column("Node", priority=1, description="Name of the node where the pod is running."),
        Column("Nominated Node", priority=1, description="Node where the pod is nominated to run."),
        Column("Readiness Gates", priority=1, description="Readiness gates of the pod."),
    )

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        self.default_spec(spec)
        # What admission adds to pods only (service account, priority, default
        # tolerations), never to the pod templates of workloads.
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        self._default_tolerations(spec)

    @staticmethod
    def default_spec(spec: Obj) -> None:
        """PodSpec defaulting, shared with the templates of Deployments, ReplicaSets, Jobs."""
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("securityContext", {})
        spec.setdefault("schedulerName", "default-scheduler")
        for key in ("containers", "initContainers"):
            for container in spec.get(key) or []:
                if isinstance(container, dict):
                    _default_container(container)
        for volume in spec.get("volumes") or []:
            if isinstance(volume, dict):
                _default_volume(volume)

    @staticmethod
    def _default_tolerations(spec: Obj) -> None:
        """The DefaultTolerationSeconds admission: tolerate not-ready/unreachable for 300 s."""
        tolerations = spec.setdefault("tolerations", [])
        if not isinstance(tolerations, list):
            return
        present = {t.get("key") for t in tolerations if isinstance(t, dict)}
        for key in DEFAULT_TOLERATIONS:
            if key not in present:
                tolerations.append(
                    {
                        "key": key,
                        "operator": "Exists",
                        "effect": "NoExecute",
                        "tolerationSeconds": 300,
                    }
                )

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}

    def validate_spec(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [errors.required("spec")]
        problems: list[FieldError] = []
        volumes = self._volumes(spec, problems)
        containers = spec.get("containers")
        if not containers:
            problems.append(errors.required("spec.containers"))
        seen: set[str] = set()
        for key in ("initContainers", "containers"):
            for index, container in enumerate(spec.get(key) or []):
                problems += _container(container, f"spec.{key}[{index}]", seen, volumes)
        policy = spec.get("restartPolicy")
        if policy not in RESTART_POLICIES:
            problems.append(errors.not_supported("spec.restartPolicy", policy, RESTART_POLICIES))
        if spec.get("dnsPolicy") not in DNS_POLICIES:
            problems.append(
                errors.not_supported("spec.dnsPolicy", spec.get("dnsPolicy"), DNS_POLICIES)
            )
        grace = spec.get("terminationGracePeriodSeconds")
        if not isinstance(grace, int) or grace < 0:
            problems.append(
                errors.invalid(
                    "spec.terminationGracePeriodSeconds",
                    grace,
                    "must be greater than or equal to 0",
                )
            )
        node = spec.get("nodeName")
        if node:
            problems += [
                errors.invalid("spec.nodeName", node, m)
                for m in names.is_dns1123_subdomain(str(node))
            ]
        return problems

    @staticmethod
    def _volumes(spec: Obj, problems: list[FieldError]) -> set[str]:
        found: set[str] = set()
        for index, volume in enumerate(spec.get("volumes") or []):
            path = f"spec.volumes[{index}]"
            name = volume.get("name") if isinstance(volume, dict) else None
            if not name:
                problems.append(errors.required(f"{path}.name"))
                continue
            problems += [
                errors.invalid(f"{path}.name", name, m) for m in names.is_dns1123_label(str(name))
            ]
            if name in found:
                problems.append(errors.duplicate(f"{path}.name", name))
            found.add(str(name))
        return found

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = self.validate(new)
        if _mutable_view(new.get("spec") or {}, old.get("spec") or {}) != (old.get("spec") or {}):
            problems.append(errors.forbidden("spec", MUTABLE_HINT))
        return problems

    def row(self, obj: Obj, now: float) -> list[Any]:
        ready, status, restarts = podprint.pod_columns(obj, now)
        return [
            obj["metadata"]["name"],
            ready,
            status,
            restarts,
            self.age(obj, now),
            *podprint.wide_cells(obj),
        ]

    def grace_period(self, obj: Obj, requested: int | None) -> int:
        """Scheduled, unfinished pods wait for the kubelet; others go at once."""
        if not dig(obj, "spec", "nodeName"):
            return 0
        if dig(obj, "status", "phase") in ("Succeeded", "Failed"):
            return 0
        if requested is not None:
            return max(requested, 0)
        return int(dig(obj, "spec", "terminationGracePeriodSeconds") or 0)


def _mutable_view(new: Obj, old: Obj) -> Obj:
    """``new`` with the fields an update may change taken from ``old`` undone."""
    view = dict(new)
    for key in ("containers", "initContainers"):
        if key not in new and key not in old:
            continue
        new_list, old_list = new.get(key) or [], old.get(key) or []
        if len(new_list) == len(old_list):
            view[key] = [
                {**n, "image": o.get("image")} if isinstance(n, dict) else n
                for n, o in zip(new_list, old_list, strict=True)
            ]
    for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
        if key in old:
            view[key] = old[key]
        else:
            view.pop(key, None)
    return view


def _container(container: Any, path: str, seen: set[str], volumes: set[str]) -> list[FieldError]:
    if not isinstance(container, dict):
        return [errors.invalid(path, container, "must be an object")]
    problems: list[FieldError] = []
    name = container.get("name")
    if not name:
        problems.append(errors.required(f"{path}.name"))
    else:
        problems += [
            errors.invalid(f"{path}.name", name, m) for m in names.is_dns1123_label(str(name))
        ]
        if name in seen:
            problems.append(errors.duplicate(f"{path}.name", name))
        seen.add(str(name))
    if not container.get("image"):
        problems.append(errors.required(f"{path}.image"))
    policy = container.get("imagePullPolicy")
    if policy not in PULL_POLICIES:
        problems.append(errors.not_supported(f"{path}.imagePullPolicy", policy, PULL_POLICIES))
    for index, port in enumerate(container.get("ports") or []):
        problems += _port(port, f"{path}.ports[{index}]")
    for index, mount in enumerate(container.get("volumeMounts") or []):
        mount_name = mount.get("name") if isinstance(mount, dict) else None
        if not mount_name:
            problems.append(errors.required(f"{path}.volumeMounts[{index}].name"))
        elif mount_name not in volumes:
            problems.append(
                FieldError(
                    "FieldValueNotFound", f"{path}.volumeMounts[{index}].name", "", mount_name, True
                )
            )
        if isinstance(mount, dict) and not mount.get("mountPath"):
            problems.append(errors.required(f"{path}.volumeMounts[{index}].mountPath"))
    return problems


def _port(port: Any, path: str) -> list[FieldError]:
    if not isinstance(port, dict):
        return [errors.invalid(path, port, "must be an object")]
    problems = []
    number = port.get("containerPort")
    if not isinstance(number, int) or not 1 <= number <= 65535:
        problems.append(
            errors.invalid(
                f"{path}.containerPort", number, "must be between 1 and 65535, inclusive"
            )
        )
    host = port.get("hostPort")
    if host is not None and (not isinstance(host, int) or not 0 <= host <= 65535):
        problems.append(
            errors.invalid(f"{path}.hostPort", host, "must be between 1 and 65535, inclusive")
        )
    if port.get("protocol") not in PROTOCOLS:
        problems.append(errors.not_supported(f"{path}.protocol", port.get("protocol"), PROTOCOLS))
    return problems
