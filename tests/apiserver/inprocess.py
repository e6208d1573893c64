"""An API server inside the test's event loop, on a store the test can also reach.

Tests that must act on the store behind the server's back (compaction) or tune the
server (the bookmark interval) use this instead of the subprocess in ``conftest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from minikube_py.apiserver import server as apiserver
from minikube_py.apiserver.app import APIServer
from minikube_py.apiserver.bootstrap import ensure_system_objects
from minikube_py.config import APIServerConfig, StoreConfig
from minikube_py.storage.interface import Store
from tests.support.etcd import free_port


@dataclass
class Served:
    server: APIServer
    store: Store
    url: str
    http: aiohttp.ClientSession

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.url + path, json=body) as answer:
            return answer.status, await answer.json(content_type=None)

    async def namespace(self) -> str:
        name = f"t-{uuid.uuid4().hex[:10]}"
        status, body = await self.request(
            "POST", "/api/v1/namespaces", {"metadata": {"name": name}}
        )
        assert status == 201, body
        return name


@contextlib.asynccontextmanager
async def serving(store: Store, tmp_path: Path) -> AsyncIterator[Served]:
    port = free_port()
    server = apiserver.build(store, APIServerConfig(store=StoreConfig(tmp_path), port=port))
    started = asyncio.Event()
    task = asyncio.create_task(server.serve("127.0.0.1", port, started))
    try:
        await asyncio.wait_for(started.wait(), 30)
        await asyncio.wait_for(server.registries.cache.ready.wait(), 30)
        await ensure_system_objects(server.registries, port)
        async with aiohttp.ClientSession() as http:
            yield Served(server, store, f"http://127.0.0.1:{port}", http)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Watch:
    """One open watch stream, read frame by frame with a deadline per frame."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.frames: list[dict[str, Any]] = []

    async def next(self, within: float = 10.0) -> dict[str, Any] | None:
        """The next frame, or None once the server ended the stream."""
        line = await asyncio.wait_for(self.response.content.readline(), within)
        if not line:
            return None
        frame: dict[str, Any] = json.loads(line)
        self.frames.append(frame)
        return frame

    async def until(self, wanted: str, *, within: float = 10.0) -> dict[str, Any]:
        """Read until a frame of type ``wanted``; fail if the stream ends first."""
        while True:
            frame = await self.next(within)
            assert frame is not None, f"stream ended before a {wanted}: {self.frames}"
            if frame["type"] == wanted:
                return frame


@contextlib.asynccontextmanager
async def watching(served: Served, path: str) -> AsyncIterator[Watch]:
    async with served.http.get(served.url + path) as response:
        assert response.status == 200, await response.text()
        yield Watch(response)
