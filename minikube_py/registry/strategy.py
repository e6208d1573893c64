"""Per-kind behaviour as small strategy objects (kube-apiserver's RESTCreateStrategy & co).

The generic registry runs one fixed pipeline for every kind; a strategy fills in what
differs: defaults, validation, what an update may change, how the kind prints in a
table, which field selectors it supports, and whether deletion is graceful.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from minikube_py.errors import FieldError
from minikube_py.meta.objects import Obj, deep_copy, dig, format_time, metadata, parse_time
from minikube_py.registry.resource import ResourceInfo


@dataclass(frozen=True)
class Column:
    """A Table column as kubectl prints it; priority > 0 only shows with ``-o wide``."""

    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


NAME = Column("Name", format="name", description="Name must be unique within a namespace.")
AGE = Column("Age", description="CreationTimestamp is a timestamp representing the server time.")


def human_age(created: str | None, now: float) -> str:
    """kubectl's short duration (``5s``, ``3m12s``, ``2d3h``, ``400d``) since ``created``."""
    if not created:
        return "<unknown>"
    seconds = int(now - parse_time(created))
    if seconds < 0:
        return "0s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        years = days // 365
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{days // 365}y"


class Strategy:
    """Defaults for a plain kind with no spec/status split; subclasses override pieces."""

    info: ClassVar[ResourceInfo]
    columns: ClassVar[tuple[Column, ...]] = (NAME, AGE)
    has_status: ClassVar[bool] = False
    """Whether ``status`` is owned by the ``/status`` subresource (reset on create/update)."""
    status_on_create: ClassVar[bool] = False
    """Accept ``status`` in a create (nodes: the kubelet registers with its status)."""
    allow_create_on_update: ClassVar[bool] = False
    returns_deleted_object: ClassVar[bool] = False
    """DELETE answers with the object (pods, services) rather than a Success Status."""
    tracks_generation: ClassVar[bool] = False
    """Bump ``metadata.generation`` when the spec changes (kinds with spec and status)."""

    def default(self, obj: Obj) -> None:
        """Fill defaulted fields in place, as the API server's defaulting does."""

    def prepare_for_create(self, obj: Obj) -> None:
        if self.has_status and not self.status_on_create:
            obj.pop("status", None)
        if self.has_status:
            self.initial_status(obj)
        if self.tracks_generation:
            metadata(obj)["generation"] = 1

    def initial_status(self, obj: Obj) -> None:
        """The status a new object starts with (pods: phase Pending)."""

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        if self.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        if self.tracks_generation:
            generation = int(metadata(old).get("generation") or 1)
            if self.spec_of(new) != self.spec_of(old):
                generation += 1
            metadata(new)["generation"] = generation

    @staticmethod
    def spec_of(obj: Obj) -> Any:
        return obj.get("spec")

    def validate(self, obj: Obj) -> list[FieldError]:
        return []

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        return self.validate(new)

    def validate_subresource(self, part: str, new: Obj, old: Obj) -> list[FieldError]:
        """Checks on a write through ``/status`` (``part`` "status") or ``/finalize``."""
        return []

    def pending_finalizers(self, obj: Obj) -> list[str]:
        """Finalizers outside metadata that also hold deletion (namespaces' spec.finalizers)."""
        return []

    def mark_deleting(self, obj: Obj) -> None:
        """Changes made when deletion starts (namespaces turn Terminating)."""

    def row(self, obj: Obj, now: float) -> list[Any]:
        """Cells matching ``columns``; the default prints name and age."""
        return [metadata(obj).get("name", ""), self.age(obj, now)]

    @staticmethod
    def age(obj: Obj, now: float) -> str:
        return human_age(dig(obj, "metadata", "creationTimestamp"), now)

    def grace_period(self, obj: Obj, requested: int | None) -> int:
        """Seconds a delete waits for the owner to clean up; 0 removes at once."""
        return 0


class SubresourceStrategy:
    """A write through a subresource changes one part of the object, nothing else.

    ``/status`` takes only ``status`` from the request; a namespace's ``/finalize`` only
    ``spec.finalizers``. Everything else comes from the stored object, metadata included.
    """

    def __init__(self, main: Strategy, *path: str) -> None:
        self.main = main
        self.path = path

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        wanted = dig(new, *self.path)
        result = deep_copy(old)
        parent = result
        for step in self.path[:-1]:
            parent = parent.setdefault(step, {})
        if wanted is None:
            parent.pop(self.path[-1], None)
        else:
            parent[self.path[-1]] = wanted
        new.clear()
        new.update(result)

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        return self.main.validate_subresource(self.path[0], new, old)


__all__ = ["AGE", "NAME", "Column", "Strategy", "SubresourceStrategy", "format_time", "human_age"]
