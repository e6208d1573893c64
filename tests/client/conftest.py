"""An in-process API server (SQLite) and both clients over it: one suite for both."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from minikube_py.apiserver import server as apiserver
from minikube_py.apiserver.bootstrap import ensure_system_objects
from minikube_py.client.http import HttpClient
from minikube_py.client.interface import Client
from minikube_py.client.local import LocalClient
from minikube_py.config import APIServerConfig, StoreConfig
from minikube_py.storage.sqlite import SQLiteStore
from tests.support.etcd import free_port


@pytest.fixture(params=["local", "http"])
async def client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Client]:
    store = await SQLiteStore.open(tmp_path / "state.db")
    port = free_port()
    config = APIServerConfig(store=StoreConfig(tmp_path), port=port)
    server = apiserver.build(store, config)
    started = asyncio.Event()
    task = asyncio.create_task(server.serve("127.0.0.1", port, started))
    await started.wait()
    await server.registries.cache.ready.wait()
    await ensure_system_objects(server.registries, port)
    chosen: Client = (
        LocalClient(server.api)
        if request.param == "local"
        else HttpClient(f"http://127.0.0.1:{port}")
    )
    try:
        yield chosen
    finally:
        await chosen.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()
