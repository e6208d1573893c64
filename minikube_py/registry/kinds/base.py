"""Strategy bases that add ObjectMeta validation and the usual columns."""

from __future__ import annotations

from typing import Any, ClassVar

from minikube_py.errors import FieldError
from minikube_py.meta.objects import Obj
from minikube_py.registry import validation
from minikube_py.registry.resource import ResourceInfo, Subresource
from minikube_py.registry.strategy import Strategy

STATUS_VERBS = ("get", "patch", "update")


def status_of(kind: str, group: str = "", version: str = "v1") -> Subresource:
    return Subresource("status", kind, STATUS_VERBS, group, version)


class ObjectStrategy(Strategy):
    """A kind whose only generic rule is a valid ObjectMeta."""

    name_rule: ClassVar[validation.NameRule] = validation.SUBDOMAIN

    def validate(self, obj: Obj) -> list[FieldError]:
        problems = validation.object_meta(
            obj, namespaced=self.info.namespaced, name_rule=type(self).name_rule
        )
        return problems + self.validate_spec(obj)

    def validate_spec(self, obj: Obj) -> list[FieldError]:
        return []


def info(
    kind: str,
    plural: str,
    *,
    group: str = "",
    version: str = "v1",
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    subresources: tuple[Subresource, ...] = (),
    storage_name: str = "",
    **extra: Any,
) -> ResourceInfo:
    return ResourceInfo(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        namespaced=namespaced,
        short_names=short,
        categories=categories,
        subresources=subresources,
        storage_name=storage_name,
        **extra,
    )
