"""What the kubelet does with pod updates: its own status writes coming back through the
informer start no sync, and a sync working from a pod that does not show its last write
yet does not write the same status again (which the API would refuse as a conflict)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from minikube_py.apiserver import server as apiserver
from minikube_py.apiserver.bootstrap import ensure_system_objects
from minikube_py.client.interface import Client
from minikube_py.client.local import LocalClient
from minikube_py.config import APIServerConfig, StoreConfig
from minikube_py.kubelet.kubelet import Kubelet, KubeletConfig, status_only
from minikube_py.kubelet.node import NodeConfig
from minikube_py.kubelet.runtime.simulated import SimulatedRuntime
from minikube_py.kubelet.sync import PODS, PodSyncer
from minikube_py.storage.sqlite import SQLiteStore
from tests.support.etcd import free_port


def pod(**metadata: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "default", "uid": "u1", **metadata},
        "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": "Pending"},
    }


def test_status_only() -> None:
    before = pod(resourceVersion="1")
    written = copy.deepcopy(before)
    written["status"] = {"phase": "Running"}
    written["metadata"]["resourceVersion"] = "2"
    written["metadata"]["managedFields"] = [{"manager": "kubelet"}]
    assert status_only(before, written)
    labelled = copy.deepcopy(written)
    labelled["metadata"]["labels"] = {"a": "b"}
    assert not status_only(written, labelled)
    deleting = copy.deepcopy(written)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not status_only(written, deleting)
    changed = copy.deepcopy(written)
    changed["spec"]["containers"][0]["image"] = "busybox:1.35"
    assert not status_only(written, changed)


async def test_status_writes_coming_back_start_no_sync(tmp_path: Path) -> None:
    config = KubeletConfig(node=NodeConfig(name="n", root_dir=tmp_path))
    kubelet = Kubelet(cast(Client, None), SimulatedRuntime("n"), config)
    first = pod(resourceVersion="1")
    kubelet._pod_changed("ADDED", first, None)
    assert len(kubelet.queue) == 1
    assert await kubelet.queue.get() == "u1"
    kubelet.queue.done("u1")
    written = {**first, "status": {"phase": "Running"}}
    written["metadata"] = {**first["metadata"], "resourceVersion": "2"}
    kubelet._pod_changed("MODIFIED", written, first)
    assert len(kubelet.queue) == 0
    assert kubelet.by_uid["u1"] is written  # kept up to date all the same
    deleting = {**written, "metadata": {**written["metadata"], "deletionTimestamp": "x"}}
    kubelet._pod_changed("MODIFIED", deleting, written)
    assert len(kubelet.queue) == 1


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[LocalClient]:
    store = await SQLiteStore.open(tmp_path / "state.db")
    port = free_port()
    server = apiserver.build(store, APIServerConfig(store=StoreConfig(tmp_path), port=port))
    started = asyncio.Event()
    task = asyncio.create_task(server.serve("127.0.0.1", port, started))
    try:
        await started.wait()
        await server.registries.cache.ready.wait()
        await ensure_system_objects(server.registries, port)
        yield LocalClient(server.api)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()


async def test_a_status_is_not_written_twice_from_a_stale_pod(
    client: LocalClient, tmp_path: Path
) -> None:
    body = {
        "metadata": {"name": "web"},
        "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "busybox"}]},
    }
    created = await client.create(PODS, "default", body)
    uid = created["metadata"]["uid"]
    syncer = PodSyncer(SimulatedRuntime("n"), client, root_dir=tmp_path / "kubelet", host_ip="")
    await syncer.sync(uid, created)
    written = await client.get(PODS, "default", "web")
    assert written["status"]["phase"] == "Running"
    # the informer has not brought the write back yet: the sync still has ``created``
    await syncer.sync(uid, created)  # would be a Conflict if it wrote again
    assert await client.get(PODS, "default", "web") == written
    await syncer.sync(uid, written)  # up to date: nothing new to say either
    assert await client.get(PODS, "default", "web") == written
