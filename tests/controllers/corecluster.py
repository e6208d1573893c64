"""Helpers for the core controller tests (namespace, GC, Job, endpoints, node lifecycle...).

``core_cluster`` runs the core controllers with chosen timings (shortened, so tests
wait for what they check rather than for upstream's defaults). It registers a component
of its own for that, beside the real ``core-controllers``, so it needs nothing from the
cluster fixture but a component name.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from minikube_py.cluster import COMPONENTS, Cluster
from minikube_py.controllers.core_component import CoreSettings, core_controllers, run_controllers
from minikube_py.meta.objects import Obj
from tests.support.cluster import running_cluster


@contextlib.asynccontextmanager
async def core_cluster(
    tmp_path: Path, *, simulated_nodes: int = 0, also: tuple[str, ...] = (), **settings: Any
) -> AsyncIterator[Cluster]:
    """A cluster running the core controllers with ``settings`` (CoreSettings fields),
    and the components named in ``also`` (``scheduler``...)."""
    chosen = CoreSettings(**settings)
    name = f"core-controllers-{uuid.uuid4().hex[:8]}"

    async def run(cluster: Cluster) -> None:
        api = cluster.config.apiserver
        factories = core_controllers(chosen, (api.bind_address, api.port))
        await run_controllers(cluster.client, cluster.informers, factories)

    COMPONENTS[name] = run
    try:
        async with running_cluster(
            tmp_path, simulated_nodes=simulated_nodes, components=(*also, name)
        ) as cluster:
            yield cluster
    finally:
        del COMPONENTS[name]


def condition(obj: Obj, kind: str) -> Obj:
    """The condition of type ``kind`` in ``obj``'s status, or {}."""
    for found in (obj.get("status") or {}).get("conditions") or []:
        if found.get("type") == kind:
            return dict(found)
    return {}


def pod(name: str, labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    """A minimal pod with one busybox container."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "main", "image": "busybox"}], **spec},
    }
