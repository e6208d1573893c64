"""Subresources that are not a slice of the object: ``/scale`` and ``pods/binding``.

``/status`` and ``/finalize`` go through the generic update path with a subresource
strategy; these two translate between the parent and another kind (Scale, Binding).
"""

from __future__ import annotations

from typing import Any

from minikube_py import errors
from minikube_py.meta import labels
from minikube_py.meta.objects import Obj, dig, metadata


def scale_of(obj: Obj) -> Obj:
    """The autoscaling/v1 Scale view of a Deployment or ReplicaSet."""
    meta = metadata(obj)
    selector = dig(obj, "spec", "selector")
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            key: meta[key]
            for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if key in meta
        },
        "spec": {"replicas": int(dig(obj, "spec", "replicas") or 0)},
        "status": {
            "replicas": int(dig(obj, "status", "replicas") or 0),
            "selector": str(labels.from_label_selector(selector)) if selector else "",
        },
    }


def apply_scale(obj: Obj, scale: Any, name: str) -> Obj:
    """Write a Scale's replicas into its parent, honouring a resourceVersion it carries."""
    if not isinstance(scale, dict):
        raise errors.BadRequest("the object provided is unrecognized (must be of type Scale)")
    replicas = dig(scale, "spec", "replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise errors.Invalid(
            errors.Target("", "autoscaling", name, "Scale"),
            [errors.invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
        )
    pinned = dig(scale, "metadata", "resourceVersion")
    if pinned:
        metadata(obj)["resourceVersion"] = pinned
    obj.setdefault("spec", {})["replicas"] = replicas
    return obj


def bind(pod: Obj, binding: Any, name: str) -> Obj:
    """Set nodeName once, from a Binding, and mark the pod scheduled."""
    if not isinstance(binding, dict):
        raise errors.BadRequest("the object provided is unrecognized (must be of type Binding)")
    node = dig(binding, "target", "name")
    if not node:
        raise errors.Invalid(
            errors.Target("", "", name, "Binding"), [errors.required("target.name")]
        )
    current = dig(pod, "spec", "nodeName")
    if current:
        raise errors.Conflict(
            f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} is already'
            f' assigned to node "{current}"',
            target=errors.Target("pods/binding", "", name),
        )
    if dig(pod, "metadata", "deletionTimestamp"):
        raise errors.Conflict(
            f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} is being deleted,'
            " cannot be assigned to a host",
            target=errors.Target("pods/binding", "", name),
        )
    pod.setdefault("spec", {})["nodeName"] = node
    return pod


def scheduled_condition(pod: Obj, now: str) -> None:
    conditions = pod.setdefault("status", {}).setdefault("conditions", [])
    conditions[:] = [c for c in conditions if c.get("type") != "PodScheduled"]
    conditions.append(
        {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
    )
