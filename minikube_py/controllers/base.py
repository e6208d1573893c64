"""The controller pattern: informers feed keys into a work queue; ``reconcile`` handles one.

A controller declares what it watches and how a change maps to keys of the objects it
manages (``watches``); the base wires informers to the queue and runs the workers, so a
controller module holds only its reconcile logic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import ClassVar

import structlog

from minikube_py import errors
from minikube_py.client.events import EventRecorder
from minikube_py.client.informer import key_of
from minikube_py.client.informers import SharedInformers
from minikube_py.client.interface import Client
from minikube_py.client.workqueue import WorkQueue, work
from minikube_py.meta.objects import Obj
from minikube_py.registry.kinds import catalog
from minikube_py.registry.resource import ResourceInfo

log = structlog.get_logger(__name__)
CATALOG = catalog()


def resource(group: str, kind: str) -> ResourceInfo:
    found = CATALOG.by_kind(group, kind)
    assert found is not None, kind
    return found.info


KeysFor = Callable[[str, Obj, Obj | None], Iterable[str]]


def own_key(kind: str, obj: Obj, previous: Obj | None) -> Iterable[str]:
    return [key_of(obj)]


def owner_keys(owner_kind: str) -> KeysFor:
    """Map a dependent's change to its controller owner's key (same namespace)."""

    def keys(kind: str, obj: Obj, previous: Obj | None) -> Iterable[str]:
        found = []
        for candidate in (obj, previous):
            for ref in (candidate or {}).get("metadata", {}).get("ownerReferences") or []:
                if ref.get("kind") == owner_kind and ref.get("controller"):
                    namespace = candidate["metadata"].get("namespace")  # type: ignore[index]
                    found.append(f"{namespace}/{ref['name']}" if namespace else str(ref["name"]))
        return found

    return keys


class Controller:
    name: ClassVar[str] = "controller"
    workers: ClassVar[int] = 2

    def __init__(self, client: Client, informers: SharedInformers, events: EventRecorder) -> None:
        self.client = client
        self.informers = informers
        self.events = events
        self.queue = WorkQueue()
        for info, keys in self.watches():
            informers.get(info).on_change(self._enqueuer(keys))

    def watches(self) -> list[tuple[ResourceInfo, KeysFor]]:
        return []

    def _enqueuer(self, keys: KeysFor) -> Callable[[str, Obj, Obj | None], None]:
        def handler(kind: str, obj: Obj, previous: Obj | None) -> None:
            for key in keys(kind, obj, previous):
                self.queue.add(key)

        return handler

    async def reconcile(self, key: str) -> float | None:
        raise NotImplementedError

    def _failed(self, key: str, exc: Exception) -> None:
        if isinstance(exc, errors.Conflict):  # decided on a stale cache: routine, retried
            log.debug("reconcile conflict", controller=self.name, key=key)
            return
        log.warning(
            "reconcile failed", controller=self.name, key=key, error=f"{type(exc).__name__}: {exc}"
        )

    async def run(self) -> None:
        await self.informers.wait_synced()
        async with asyncio.TaskGroup() as group:
            for index in range(self.workers):
                group.create_task(
                    work(self.queue, self.reconcile, on_error=self._failed),
                    name=f"{self.name}-{index}",
                )


def split_key(key: str) -> tuple[str, str]:
    namespace, _, name = key.rpartition("/")
    return namespace, name
