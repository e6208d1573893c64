"""``minikube-py up`` as a subprocess, and pods on its node seen through a watch.

Shared by ``bench.kubelet_bench`` and ``bench.up_bench``: both start ``up`` on a fresh data
dir in the scratch dir (a free port, a node name of their own, no kubeconfig touched), wait
for the API and the node, and create busybox pods placed on that node.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.common import (
    BUSYBOX,
    JSON_HEADERS,
    PAUSE,
    Report,
    ServerProcess,
    docker_daemon,
    docker_version,
    ensure_images,
    etcd_binary,
    etcd_member,
    remove_node_containers,
    start_minikube_py,
)

NAMESPACE = "default"
STOP_TIMEOUT = 15.0
READY_TIMEOUT = 60.0
RUNNING_TIMEOUT = 120.0


# -- the store: SQLite in the data dir, or a single etcd member started here --


def up_etcd(args: argparse.Namespace, bench: str) -> str:
    """The etcd binary when ``--backend etcd`` asks for one as up's store; empty for SQLite.

    ``all`` is SQLite, up's default: these benches measure the node, not the store.
    """
    return etcd_binary(args, bench) if args.backend == "etcd" else ""


@contextmanager
def store_servers(etcd: str, work: Path) -> Iterator[str]:
    """``--etcd-servers`` for ``up``: empty for SQLite (no ``etcd``), else a fresh member's URL."""
    if not etcd:
        yield ""
        return
    with etcd_member(etcd, work) as cluster:
        yield cluster.endpoints


@contextmanager
def up_environment(work: Path, report: Report, etcd: str) -> Iterator[str]:
    """What ``up`` needs around it; yields its ``--etcd-servers`` (see ``store_servers``).

    Docker (the daemon that answers, or one started here and stopped at the end), the pause
    and busybox images, and the store. However the block ends, every container of the nodes
    recorded in ``<work>/docker-nodes`` is removed, after the store (and so ``up``) is gone.
    """
    with docker_daemon(work, report):
        try:
            ensure_images(report)
            with store_servers(etcd, work) as servers:
                store = f"etcd {servers}" if servers else "SQLite"
                report.line(
                    f"Docker {docker_version()}; store {store}; pods {BUSYBOX} `sleep 3600`,"
                    f" sandbox {PAUSE}"
                )
                yield servers
        finally:
            recorded = work / "docker-nodes"
            nodes = recorded.read_text().split() if recorded.exists() else []
            removed = remove_node_containers(*nodes)
            report.note(f"removed {removed} containers of nodes {', '.join(nodes)}")


# -- the `minikube-py up` process --


@dataclass
class Up(ServerProcess):
    """``minikube-py up`` running as a subprocess on a free loopback port."""

    node: str
    data_dir: Path

    def stop(self, timeout: float = STOP_TIMEOUT) -> str:
        return super().stop(timeout)


def start_up(
    work: Path,
    node: str,
    etcd_servers: str = "",
    name: str = "up",
    env: Mapping[str, str | None] | None = None,
) -> Up:
    """Start ``minikube-py up``; its pid goes to ``<work>/minikube-py-up.pid``.

    ``--data-dir`` is under ``work``, so the command line names run-bench.sh's scratch dir,
    which is how it recognises a process it may stop. The log level is the default one (what
    users get). ``KUBECONFIG`` points into ``work`` as well, in case the flag were ignored.
    ``env`` changes this process's environment for it (None removes a variable).
    """
    data_dir = work / name
    served = start_minikube_py(
        "minikube-py up",
        ["up", "--node-name", node, "--no-update-kubeconfig"],
        data_dir,
        etcd_servers,
        work / f"{name}.log",
        work / "minikube-py-up.pid",
        child_env({"KUBECONFIG": str(work / "kubeconfig"), **(env or {})}),
    )
    return Up(served.name, served.process, served.url, served.log, served.started, node, data_dir)


def child_env(changes: Mapping[str, str | None]) -> dict[str, str]:
    """This process's environment with ``changes`` (a None value removes the variable)."""
    environ = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return environ


async def wait_api(
    session: aiohttp.ClientSession, up: Up, within: float = READY_TIMEOUT, interval: float = 0.005
) -> float:
    """Poll ``/readyz`` until 200; the ``perf_counter`` time it first answered so."""
    return await up.answering(session, within, interval)


def node_ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def wait_node_ready(
    session: aiohttp.ClientSession, up: Up, within: float = READY_TIMEOUT, interval: float = 0.01
) -> float:
    """Poll the Node until its Ready condition is True; the ``perf_counter`` time it was."""

    async def ready() -> bool:
        async with session.get(f"{up.url}/api/v1/nodes/{up.node}") as answer:
            return answer.status == 200 and node_ready(await answer.json())

    return await up.until(ready, f"node {up.node} Ready", within, interval)


# -- pods through the API, seen through a watch --


def busybox_pod(name: str, node: str) -> dict[str, Any]:
    """The pod of the SLI: one busybox container sleeping, already placed on ``node``.

    A grace period of 0 lets the bench delete the pods between its phases without waiting
    for ``sleep``, which ignores SIGTERM as PID 1.
    """
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "kubelet-bench"}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "busybox",
                    "image": BUSYBOX,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"],
                }
            ],
        },
    }


def pods_url(up: Up) -> str:
    return f"{up.url}/api/v1/namespaces/{NAMESPACE}/pods"


async def create_pod(session: aiohttp.ClientSession, up: Up, name: str) -> None:
    body = busybox_pod(name, up.node)
    async with session.post(pods_url(up), json=body, headers=JSON_HEADERS) as answer:
        if answer.status != 201:
            raise RuntimeError(f"POST pod {name}: {answer.status} {await answer.text()}")


async def delete_pod(session: aiohttp.ClientSession, up: Up, name: str) -> None:
    url = f"{pods_url(up)}/{name}"
    async with session.delete(url, params={"gracePeriodSeconds": "0"}) as answer:
        if answer.status not in (200, 202, 404):
            raise RuntimeError(f"DELETE pod {name}: {answer.status} {await answer.text()}")


class PodWatch:
    """A watch on the namespace's pods: when each was first seen Running, and which are gone.

    One long ``?watch=true`` request from the resourceVersion of a LIST (resumed from the
    last version seen should the server end it); the arrival time of each event is taken
    as soon as its line is read.
    """

    def __init__(self, session: aiohttp.ClientSession, up: Up) -> None:
        self.session = session
        self.up = up
        self.running: dict[str, float] = {}
        """Pod name → ``perf_counter`` when the watch first showed it Running."""
        self.running_wall: dict[str, float] = {}
        self.gone: set[str] = set()
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._failure: Exception | None = None

    async def start(self) -> None:
        async with self.session.get(pods_url(self.up)) as answer:
            listed = await answer.json()
        version = str(listed["metadata"]["resourceVersion"])
        self._task = asyncio.create_task(self._run(version), name="pod-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, version: str) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        try:
            while True:
                params = {"watch": "true", "resourceVersion": version}
                url = pods_url(self.up)
                async with self.session.get(url, params=params, timeout=timeout) as answer:
                    if answer.status != 200:
                        raise RuntimeError(f"watch: {answer.status} {await answer.text()}")
                    async for line in answer.content:
                        if line.strip():
                            version = await self._event(line) or version
        except Exception as exc:  # (not SystemExit from SIGTERM: that must end the bench)
            self._failure = exc
            async with self._changed:
                self._changed.notify_all()

    async def _event(self, line: bytes) -> str | None:
        now, wall = time.perf_counter(), time.time()
        event = orjson.loads(line)
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            raise RuntimeError(f"watch error: {obj}")
        meta = obj.get("metadata") or {}
        name = str(meta.get("name", ""))
        if kind == "DELETED":
            self.gone.add(name)
        elif (obj.get("status") or {}).get("phase") == "Running" and name not in self.running:
            self.running[name] = now
            self.running_wall[name] = wall
        async with self._changed:
            self._changed.notify_all()
        return str(meta.get("resourceVersion") or "") or None

    async def until(self, condition: Callable[[], bool], what: str, within: float) -> None:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: condition() or self._failure is not None)

        try:
            await asyncio.wait_for(wait(), within)
        except TimeoutError:
            raise RuntimeError(f"timed out after {within:g} s waiting for {what}") from None
        if self._failure is not None:
            raise RuntimeError(f"the pod watch failed: {self._failure!r}") from self._failure
