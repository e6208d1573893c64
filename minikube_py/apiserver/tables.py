"""Server-side printing: the meta.k8s.io Table kubectl asks for with ``as=Table``."""

from __future__ import annotations

from typing import Any

from minikube_py.meta.objects import Obj
from minikube_py.registry.strategy import Strategy


def row_object(obj: Obj, include: str, version: str) -> Obj | None:
    """What a row carries: metadata only (default), the whole object, or nothing."""
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": obj.get("metadata", {}),
    }


def table(
    strategy: Strategy,
    objects: list[Obj],
    *,
    now: float,
    include: str = "Metadata",
    version: str = "v1",
    with_columns: bool = True,
    list_meta: dict[str, Any] | None = None,
) -> Obj:
    rows = []
    for obj in objects:
        row: Obj = {"cells": strategy.row(obj, now)}
        carried = row_object(obj, include, version)
        if carried is not None:
            row["object"] = carried
        rows.append(row)
    result: Obj = {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": list_meta or {},
    }
    if with_columns:
        result["columnDefinitions"] = [c.definition() for c in strategy.columns]
    result["rows"] = rows
    return result
