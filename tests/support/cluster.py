"""An in-process cluster for tests: API server, simulated nodes, chosen components."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from minikube_py.cluster import Cluster, ClusterConfig
from minikube_py.config import APIServerConfig, StoreConfig
from minikube_py.kubelet.runtime.interface import ContainerRuntime
from minikube_py.storage.sqlite import SQLiteStore
from tests.support.etcd import free_port


def _docker(node: str) -> ContainerRuntime:
    from minikube_py.kubelet.runtime.docker import DockerRuntime

    return DockerRuntime(node_name=node)


@contextlib.asynccontextmanager
async def running_cluster(
    tmp_path: Path,
    *,
    simulated_nodes: int = 1,
    components: tuple[str, ...] = (),
    docker_node: str = "",
    crash_backoff: float = 10.0,
) -> AsyncIterator[Cluster]:
    """Start a cluster on SQLite with ``simulated_nodes`` kwok-like nodes; stop it after.

    ``docker_node`` adds a real Docker kubelet under that node name.
    """
    store = await SQLiteStore.open(tmp_path / "state.db")
    port = free_port()
    config = ClusterConfig(
        apiserver=APIServerConfig(store=StoreConfig(tmp_path), port=port),
        simulated_nodes=simulated_nodes,
        kubelet_root=tmp_path / "kubelet",
        components=components,
        status_interval=0.5,
        relist_interval=0.1,
        crash_backoff=crash_backoff,
        resync_interval=1.0,
        node_name=docker_node,
        runtime_factory=_docker if docker_node else None,
    )
    cluster = Cluster(store, config)
    task = asyncio.create_task(cluster.run())
    try:
        ready = asyncio.ensure_future(cluster.ready.wait())
        done, _ = await asyncio.wait({ready, task}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        assert ready in done, "cluster did not start in 30 s"
        yield cluster
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for kubelet in cluster.kubelets:
            await kubelet.runtime.close()
        await store.close()
