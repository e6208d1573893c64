"""Helpers for the workload controller tests: a cluster running them, manifests, kubectl.

``workload_cluster`` is the in-process cluster (``running_cluster``) with simulated
nodes, the real scheduler and the ReplicaSet and Deployment controllers, so pods are
placed and run as they would be, only instantly. (The core controllers' tests have
their own helpers in ``corecluster``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import minikube_py.controllers.workloads_component  # (registers "workload-controllers")
import minikube_py.scheduler.component  # noqa: F401  (registers "scheduler")
from minikube_py.client.interface import Selection
from minikube_py.cluster import Cluster
from minikube_py.controllers.base import resource
from minikube_py.controllers.podtemplate import is_pod_active, is_pod_ready
from minikube_py.meta.objects import Obj, dig
from tests.support.cluster import running_cluster
from tests.support.requirements import require_binary

PODS = resource("", "Pod")
EVENTS = resource("", "Event")
REPLICASETS = resource("apps", "ReplicaSet")
DEPLOYMENTS = resource("apps", "Deployment")
COMPONENTS = ("scheduler", "workload-controllers")
IMAGE = "busybox:1.35"


def condition(obj: Obj, kind: str) -> Obj:
    """The status condition of type ``kind``, or an empty map."""
    for found in dig(obj, "status", "conditions") or []:
        if found.get("type") == kind:
            return dict(found)
    return {}


@contextlib.asynccontextmanager
async def workload_cluster(tmp_path: Path, *, nodes: int = 2) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path, simulated_nodes=nodes, components=COMPONENTS) as cluster:
        yield cluster


def template(labels: dict[str, str], image: str = IMAGE, **pod_spec: Any) -> Obj:
    container = {"name": "app", "image": image, "command": ["sleep", "3600"]}
    return {"metadata": {"labels": labels}, "spec": {"containers": [container], **pod_spec}}


def replica_set(name: str, replicas: int, labels: dict[str, str], **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": template(labels),
            **spec,
        },
    }


def deployment(name: str, replicas: int = 3, image: str = IMAGE, **spec: Any) -> Obj:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": template(labels, image),
            **spec,
        },
    }


def pod(name: str, labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    meta: Obj = {"name": name, **({"labels": labels} if labels else {})}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template({}, **spec)["spec"],
    }


async def live_pods(cluster: Cluster, selector: str, namespace: str = "default") -> list[Obj]:
    """Pods that count for a controller: matching, not finished, not being deleted."""
    listed = await cluster.client.list(PODS, Selection(namespace, label_selector=selector))
    return [p for p in listed.items if is_pod_active(p)]


async def ready_pods(cluster: Cluster, selector: str) -> list[Obj]:
    return [p for p in await live_pods(cluster, selector) if is_pod_ready(p)]


def owner_uid(obj: Obj) -> str | None:
    for ref in dig(obj, "metadata", "ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


async def events_about(cluster: Cluster, name: str) -> list[Obj]:
    listed = await cluster.client.list(
        EVENTS, Selection("default", field_selector=f"involvedObject.name={name}")
    )
    return listed.items


def watch_pods(cluster: Cluster, check: Callable[[dict[str, Obj]], None]) -> None:
    """Call ``check`` with the pod cache after every pod event the cluster's informer applies."""
    informer = cluster.informers.get(PODS)
    informer.on_change(lambda kind, obj, previous: check(informer.objects))


@dataclass
class Kubectl:
    """The real kubectl against the in-process API server, run without blocking the loop."""

    cluster: Cluster
    cache_dir: Path

    async def __call__(self, *args: str, check: bool = True, within: float = 90) -> str:
        binary = require_binary("kubectl")
        url = f"http://127.0.0.1:{self.cluster.config.apiserver.port}"
        env = {**os.environ, "KUBECONFIG": "/dev/null", "KUBECACHEDIR": str(self.cache_dir)}
        process = await asyncio.create_subprocess_exec(
            binary,
            "-s",
            url,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(process.communicate(), within)
        text = out.decode() + err.decode()
        if check and process.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({process.returncode}):\n{text}")
        return text
