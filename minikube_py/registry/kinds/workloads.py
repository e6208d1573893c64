"""apps/v1 Deployments and ReplicaSets, batch/v1 Jobs: defaults, immutable selectors, printing."""

from __future__ import annotations

from typing import Any, ClassVar

from minikube_py import errors
from minikube_py.errors import FieldError
from minikube_py.meta import labels
from minikube_py.meta.objects import Obj, dig
from minikube_py.registry.kinds.base import ObjectStrategy, info, status_of
from minikube_py.registry.kinds.pods import Pods
from minikube_py.registry.resource import Subresource
from minikube_py.registry.strategy import AGE, NAME, Column

SCALE = Subresource("scale", "Scale", ("get", "patch", "update"), "autoscaling", "v1")
_pods = Pods()


def _containers_cells(obj: Obj) -> list[str]:
    containers = dig(obj, "spec", "template", "spec", "containers") or []
    names_ = ",".join(str(c.get("name", "")) for c in containers)
    images = ",".join(str(c.get("image", "")) for c in containers)
    return [names_, images]


def _selector_text(obj: Obj) -> str:
    selector = dig(obj, "spec", "selector")
    if not selector:
        return "<none>"
    return str(labels.from_label_selector(selector)) or "<none>"


class WorkloadStrategy(ObjectStrategy):
    """A controller kind with a pod template, a label selector, a status and a generation."""

    has_status = True
    tracks_generation = True
    selector_required: ClassVar[bool] = True

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        template = spec.setdefault("template", {})
        if isinstance(template, dict):
            template_spec = template.setdefault("spec", {})
            if isinstance(template_spec, dict):
                _pods.default_spec(template_spec)
            template.setdefault("metadata", {})
        self.default_spec(spec)

    def default_spec(self, spec: Obj) -> None:
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {}

    def validate_spec(self, obj: Obj) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [errors.required("spec")]
        problems: list[FieldError] = []
        selector = spec.get("selector")
        template_labels = dig(spec, "template", "metadata", "labels") or {}
        if self.selector_required and not selector:
            problems.append(errors.required("spec.selector"))
        elif selector:
            try:
                parsed = labels.from_label_selector(selector)
            except labels.SelectorError as exc:
                problems.append(errors.invalid("spec.selector", selector, str(exc)))
            else:
                if parsed.is_empty():
                    problems.append(
                        errors.invalid(
                            "spec.selector", selector, "empty selector is invalid for deployment"
                        )
                    )
                elif not parsed.matches(template_labels):
                    problems.append(
                        errors.invalid(
                            "spec.template.metadata.labels",
                            template_labels,
                            "`selector` does not match template `labels`",
                        )
                    )
        replicas = spec.get("replicas")
        if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
            problems.append(
                errors.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
            )
        template_spec = dig(spec, "template", "spec")
        pod_problems = (
            _pods.validate_spec({"spec": template_spec})
            if isinstance(template_spec, dict)
            else [errors.required("spec.template.spec")]
        )
        problems += [
            FieldError(
                p.type,
                p.field.replace("spec.", "spec.template.spec.", 1),
                p.detail,
                p.value,
                p.has_value,
            )
            for p in pod_problems
        ]
        return problems

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = self.validate(new)
        if dig(new, "spec", "selector") != dig(old, "spec", "selector"):
            problems.append(
                errors.invalid("spec.selector", dig(new, "spec", "selector"), "field is immutable")
            )
        return problems


class Deployments(WorkloadStrategy):
    info = info(
        "Deployment",
        "deployments",
        group="apps",
        short=("deploy",),
        categories=("all",),
        subresources=(SCALE, status_of("Deployment", "apps")),
    )
    columns = (
        NAME,
        Column("Ready", description="Number of the pod with ready state"),
        Column(
            "Up-to-date",
            "integer",
            description="Pods of this deployment that have the desired template spec.",
        ),
        Column(
            "Available",
            "integer",
            description="Pods of this deployment ready for at least minReadySeconds.",
        ),
        AGE,
        Column("Containers", priority=1, description="Names of each container in the template."),
        Column(
            "Images", priority=1, description="Images referenced by each container in the template."
        ),
        Column("Selector", priority=1, description="Label selector for pods."),
    )

    def default_spec(self, spec: Obj) -> None:
        super().default_spec(spec)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")

    def row(self, obj: Obj, now: float) -> list[Any]:
        status = obj.get("status") or {}
        return [
            obj["metadata"]["name"],
            f"{status.get('readyReplicas', 0)}/{dig(obj, 'spec', 'replicas') or 0}",
            status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0),
            self.age(obj, now),
            *_containers_cells(obj),
            _selector_text(obj),
        ]


class ReplicaSets(WorkloadStrategy):
    info = info(
        "ReplicaSet",
        "replicasets",
        group="apps",
        short=("rs",),
        categories=("all",),
        subresources=(SCALE, status_of("ReplicaSet", "apps")),
    )
    columns = (
        NAME,
        Column("Desired", "integer", description="Number of desired pods."),
        Column("Current", "integer", description="Number of actual replicas."),
        Column(
            "Ready", "integer", description="The number of ready replicas for this replica set."
        ),
        AGE,
        Column("Containers", priority=1, description="Names of each container in the template."),
        Column(
            "Images", priority=1, description="Images referenced by each container in the template."
        ),
        Column("Selector", priority=1, description="Label selector for pods."),
    )

    def default_spec(self, spec: Obj) -> None:
        spec.setdefault("replicas", 1)

    def row(self, obj: Obj, now: float) -> list[Any]:
        status = obj.get("status") or {}
        return [
            obj["metadata"]["name"],
            dig(obj, "spec", "replicas") or 0,
            status.get("replicas", 0),
            status.get("readyReplicas", 0),
            self.age(obj, now),
            *_containers_cells(obj),
            _selector_text(obj),
        ]


class Jobs(WorkloadStrategy):
    info = info(
        "Job", "jobs", group="batch", categories=("all",), subresources=(status_of("Job", "batch"),)
    )
    selector_required = False
    columns = (
        NAME,
        Column("Status", description="Status of the job."),
        Column("Completions", description="The completion status of the job."),
        Column("Duration", description="Time required to complete the job."),
        AGE,
        Column("Containers", priority=1, description="Names of each container in the template."),
        Column(
            "Images", priority=1, description="Images referenced by each container in the template."
        ),
        Column("Selector", priority=1, description="Label selector for pods."),
    )

    def default(self, obj: Obj) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict) and isinstance(spec.get("template"), dict):
            template_spec = spec["template"].setdefault("spec", {})
            if isinstance(template_spec, dict) and "restartPolicy" not in template_spec:
                template_spec["restartPolicy"] = "Never"
        super().default(obj)
        self._select_own_pods(obj)

    def default_spec(self, spec: Obj) -> None:
        spec.setdefault(
            "completions", 1 if spec.get("completionMode") != "Indexed" else spec.get("completions")
        )
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
        spec.setdefault("manualSelector", False) if "manualSelector" in spec else None

    @staticmethod
    def _select_own_pods(obj: Obj) -> None:
        """Jobs select their pods by the controller uid label the API server adds."""
        spec = obj.get("spec")
        if not isinstance(spec, dict) or spec.get("manualSelector") or spec.get("selector"):
            return
        uid = dig(obj, "metadata", "uid")
        if not uid:
            return
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        template_meta = spec["template"].setdefault("metadata", {})
        template_labels = template_meta.setdefault("labels", {})
        template_labels.setdefault("batch.kubernetes.io/controller-uid", uid)
        template_labels.setdefault("batch.kubernetes.io/job-name", obj["metadata"].get("name", ""))
        template_labels.setdefault("controller-uid", uid)
        template_labels.setdefault("job-name", obj["metadata"].get("name", ""))

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        problems = super().validate_update(new, old)
        if dig(new, "spec", "template") != dig(old, "spec", "template"):
            problems.append(
                errors.invalid("spec.template", dig(new, "spec", "template"), "field is immutable")
            )
        return problems

    def row(self, obj: Obj, now: float) -> list[Any]:
        from minikube_py.meta.objects import parse_time
        from minikube_py.registry.strategy import human_age

        status = obj.get("status") or {}
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        state = "Running"
        if conditions.get("Complete") == "True":
            state = "Complete"
        elif conditions.get("Failed") == "True":
            state = "Failed"
        elif conditions.get("Suspended") == "True":
            state = "Suspended"
        completions = dig(obj, "spec", "completions")
        done = status.get("succeeded", 0)
        shown = (
            f"{done}/{completions}"
            if completions is not None
            else f"{done}/1 of {dig(obj, 'spec', 'parallelism') or 1}"
        )
        duration = ""
        if status.get("startTime"):
            end = parse_time(status["completionTime"]) if status.get("completionTime") else now
            duration = human_age(status["startTime"], end)
        return [
            obj["metadata"]["name"],
            state,
            shown,
            duration,
            self.age(obj, now),
            *_containers_cells(obj),
            _selector_text(obj),
        ]


class EndpointSlices(ObjectStrategy):
    info = info("EndpointSlice", "endpointslices", group="discovery.k8s.io")
    columns = (
        NAME,
        Column("AddressType", description="The IP protocol for this slice"),
        Column("Ports", description="The ports of the endpoints"),
        Column("Endpoints", description="The endpoints of this slice"),
        AGE,
    )

    def validate_spec(self, obj: Obj) -> list[FieldError]:
        if obj.get("addressType") not in ("IPv4", "IPv6", "FQDN"):
            return [
                errors.not_supported(
                    "addressType", obj.get("addressType"), ["FQDN", "IPv4", "IPv6"]
                )
            ]
        return []

    def row(self, obj: Obj, now: float) -> list[Any]:
        ports = ",".join(str(p.get("port")) for p in obj.get("ports") or []) or "<unset>"
        addresses = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
        shown = ",".join(addresses[:3]) + (
            f" + {len(addresses) - 3} more..." if len(addresses) > 3 else ""
        )
        return [
            obj["metadata"]["name"],
            obj.get("addressType", ""),
            ports,
            shown or "<unset>",
            self.age(obj, now),
        ]
