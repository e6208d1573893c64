"""Composition root: store → registries → API server → in-process client → components.

Every long-lived part is an ``async def run()`` owned by one TaskGroup here; when one
fails, the group cancels the others and the failure surfaces with its cause (no
half-alive cluster). Components get the in-process client, one shared Docker
connection when they need one, and nothing else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from minikube_py.apiserver import server as apiserver
from minikube_py.apiserver.app import APIServer
from minikube_py.apiserver.bootstrap import ensure_system_objects
from minikube_py.client.events import EventRecorder
from minikube_py.client.informers import SharedInformers
from minikube_py.client.local import LocalClient
from minikube_py.config import APIServerConfig
from minikube_py.kubelet.kubelet import Kubelet, KubeletConfig
from minikube_py.kubelet.node import NodeConfig
from minikube_py.kubelet.portforward import PortForwardService
from minikube_py.kubelet.runtime.interface import ContainerRuntime
from minikube_py.kubelet.runtime.simulated import SimulatedRuntime
from minikube_py.storage.interface import Store

log = structlog.get_logger(__name__)

Component = Callable[["Cluster"], Coroutine[Any, Any, None]]
"""A component's run function, given the assembled cluster."""

COMPONENTS: dict[str, Component] = {}
"""Scheduler and controller managers register here (by name) when their modules load."""


@dataclass
class ClusterConfig:
    apiserver: APIServerConfig
    node_name: str = ""
    runtime_factory: Callable[[str], ContainerRuntime] | None = None
    simulated_nodes: int = 0
    kubelet_root: Path = Path("/tmp/minikube-py/kubelet")
    components: tuple[str, ...] = ()
    status_interval: float = 10.0
    relist_interval: float = 1.0
    crash_backoff: float = 10.0
    resync_interval: float = 60.0
    pod_manifest_path: Path | None = None
    """Static pods of the Docker node (simulated nodes have none)."""
    file_check_frequency: float = 20.0
    extra: dict[str, object] = field(default_factory=dict)


class Cluster:
    def __init__(self, store: Store, config: ClusterConfig) -> None:
        self.store = store
        self.config = config
        self.server: APIServer = apiserver.build(store, config.apiserver)
        self.client = LocalClient(self.server.api)
        self.informers = SharedInformers(self.client)
        self.events = EventRecorder(self.client, "minikube-py")
        self.kubelets: list[Kubelet] = []
        self.serving = asyncio.Event()
        self.ready = asyncio.Event()

    def _kubelet(self, name: str, runtime: ContainerRuntime, *, simulated: bool = False) -> Kubelet:
        node = NodeConfig(
            name=name,
            root_dir=self.config.kubelet_root / name,
            status_interval=self.config.status_interval,
        )
        config = KubeletConfig(
            node=node,
            relist_interval=self.config.relist_interval,
            crash_backoff=self.config.crash_backoff,
            resync_interval=self.config.resync_interval,
            probes=not simulated,
            pod_manifest_path=None if simulated else self.config.pod_manifest_path,
            file_check_frequency=self.config.file_check_frequency,
        )
        return Kubelet(self.client, runtime, config)

    async def run(self) -> None:
        api = self.config.apiserver
        async with asyncio.TaskGroup() as group:
            group.create_task(
                self.server.serve(api.bind_address, api.port, self.serving), name="apiserver"
            )
            await self.server.registries.cache.ready.wait()
            await ensure_system_objects(self.server.registries, api.port)
            await self.serving.wait()
            group.create_task(self.events.run(), name="events")
            if self.config.node_name and self.config.runtime_factory is not None:
                runtime = self.config.runtime_factory(self.config.node_name)
                self.kubelets.append(self._kubelet(self.config.node_name, runtime))
            for index in range(self.config.simulated_nodes):
                name = f"sim-{index}"
                runtime = SimulatedRuntime(name, subnet=index)
                self.kubelets.append(self._kubelet(name, runtime, simulated=True))
            for kubelet in self.kubelets:
                name = kubelet.config.node.name
                self.server.connections.register_local(name, kubelet.logs)
                self.server.streams.register_local(name, kubelet.streams)
                forwarder = PortForwardService(kubelet.runtime, kubelet.logs.pods)
                self.server.resources.portforward.register_local(name, forwarder)
                group.create_task(kubelet.run(), name=f"kubelet-{kubelet.config.node.name}")
            for name in self.config.components:
                group.create_task(COMPONENTS[name](self), name=name)
            group.create_task(self.informers.run(), name="informers")
            self.ready.set()
            log.info(
                "cluster running",
                kubelets=len(self.kubelets),
                components=list(self.config.components),
            )


__all__ = ["COMPONENTS", "Cluster", "ClusterConfig", "time"]
