"""``minikube-py apiserver``: open the store, build the registries, serve until stopped."""

from __future__ import annotations

import asyncio
import time

import structlog

from minikube_py.apiserver.app import APIServer
from minikube_py.apiserver.bootstrap import ensure_system_objects
from minikube_py.config import APIServerConfig
from minikube_py.registry import admission
from minikube_py.registry.kinds import catalog
from minikube_py.registry.registries import Registries
from minikube_py.storage.factory import open_store
from minikube_py.storage.interface import Store

log = structlog.get_logger(__name__)


def build(store: Store, config: APIServerConfig) -> APIServer:
    lifecycle = admission.NamespaceLifecycle(store)
    admit = admission.chain(
        [
            lifecycle,
            admission.ServiceAllocator(
                store, config.service_cluster_ip_range, config.service_node_port_range
            ),
        ]
    )
    registries = Registries(catalog(), store, clock=time.time, admit=admit)
    namespaces = registries.cache.cache_for(registries.by_kind("", "Namespace").info)
    lifecycle.known = lambda name: namespaces.objects.get(f"/registry/namespaces/{name}")
    return APIServer(registries, clock=time.time, address=f"{config.bind_address}:{config.port}")


async def run(config: APIServerConfig, started: asyncio.Event | None = None) -> None:
    store = await open_store(
        data_dir=config.store.data_dir, etcd_servers=config.store.etcd_servers or None
    )
    log.info("store opened", store=store.name)
    try:
        server = build(store, config)
        async with asyncio.TaskGroup() as group:
            group.create_task(server.serve(config.bind_address, config.port, started))
            await server.registries.cache.ready.wait()
            await ensure_system_objects(server.registries, config.port)
    finally:
        await store.close()
