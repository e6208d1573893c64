"""An informer: a local cache of one resource kept current by list-then-watch.

It lists, then watches from the list's resourceVersion; a watch that ends resumes from
the last version seen; a 410 (history gone) relists and reports the differences, so
handlers see every object's latest state even across gaps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from minikube_py import errors
from minikube_py.client.interface import EVERYTHING, Client, Selection
from minikube_py.meta.objects import Obj, metadata, resource_version
from minikube_py.registry.resource import ResourceInfo

log = structlog.get_logger(__name__)

Handler = Callable[[str, Obj, Obj | None], None]
"""(ADDED|MODIFIED|DELETED, object, previous object)."""


def key_of(obj: Obj) -> str:
    meta = metadata(obj)
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


class Informer:
    def __init__(
        self,
        client: Client,
        info: ResourceInfo,
        selection: Selection = EVERYTHING,
        *,
        watch_timeout: int = 300,
    ) -> None:
        self.client = client
        self.info = info
        self.selection = selection
        self.objects: dict[str, Obj] = {}
        self.handlers: list[Handler] = []
        self.synced = asyncio.Event()
        self.revision = ""
        self.watch_timeout = watch_timeout

    def on_change(self, handler: Handler) -> None:
        self.handlers.append(handler)

    def get(self, key: str) -> Obj | None:
        return self.objects.get(key)

    def _emit(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        for handler in self.handlers:
            handler(kind, obj, prev)

    async def _relist(self) -> None:
        listed = await self.client.list(self.info, self.selection)
        fresh = {key_of(obj): obj for obj in listed.items}
        for key, old in list(self.objects.items()):
            if key not in fresh:
                del self.objects[key]
                self._emit("DELETED", old, old)
        for key, obj in fresh.items():
            previous = self.objects.get(key)
            self.objects[key] = obj
            if previous is None:
                self._emit("ADDED", obj, None)
            elif resource_version(previous) != resource_version(obj):
                self._emit("MODIFIED", obj, previous)
        self.revision = listed.resource_version
        self.synced.set()

    async def run(self) -> None:
        """List and watch until cancelled."""
        delay = 0.1
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                await self._watch()
                delay = 0.1
            except (errors.Expired, errors.Gone):
                need_list = True
            except (errors.APIError, OSError) as exc:
                log.warning("informer watch failed", resource=self.info.plural, error=str(exc))
                need_list = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _watch(self) -> None:
        stream = self.client.watch(
            self.info,
            self.selection,
            resource_version=self.revision,
            timeout_seconds=self.watch_timeout,
            bookmarks=True,
        )
        async for event in stream:
            obj = event.object
            self.revision = resource_version(obj) or self.revision
            if event.type == "BOOKMARK":
                continue
            key = key_of(obj)
            old = self.objects.get(key)
            if event.type == "DELETED":
                self.objects.pop(key, None)
            else:
                self.objects[key] = obj
            self._emit(event.type, obj, old)
