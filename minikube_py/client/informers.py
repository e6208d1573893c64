"""Shared informers: one list-watch per resource for all the controllers of a process."""

from __future__ import annotations

import asyncio

from minikube_py.client.informer import Informer
from minikube_py.client.interface import Client
from minikube_py.registry.resource import ResourceInfo


class SharedInformers:
    def __init__(self, client: Client) -> None:
        self.client = client
        self._informers: dict[str, Informer] = {}
        self._started: set[str] = set()
        self._group: asyncio.TaskGroup | None = None

    def get(self, info: ResourceInfo) -> Informer:
        key = f"{info.group}/{info.plural}"
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(self.client, info)
            self._informers[key] = informer
            if self._group is not None:
                self._start(key)
        return informer

    def _start(self, key: str) -> None:
        assert self._group is not None
        if key not in self._started:
            self._started.add(key)
            self._group.create_task(self._informers[key].run(), name=f"informer-{key}")

    async def run(self) -> None:
        """Run every informer asked for (now or later) until cancelled."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            for key in list(self._informers):
                self._start(key)
            await asyncio.Event().wait()

    async def wait_synced(self) -> None:
        await asyncio.gather(*(i.synced.wait() for i in self._informers.values()))
