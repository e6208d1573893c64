"""``LocalClient``: the Client seam served in-process by the API operations (no HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from minikube_py.client.interface import EVERYTHING, ObjectList, Selection, WatchEvent
from minikube_py.meta.objects import Obj, deep_copy, metadata
from minikube_py.registry.api import API
from minikube_py.registry.options import DeleteOptions, ListOptions, Preconditions
from minikube_py.registry.resource import ResourceInfo


def _options(
    selection: Selection,
    *,
    limit: int = 0,
    continue_token: str = "",
    resource_version: str = "",
    timeout_seconds: int | None = None,
    bookmarks: bool = False,
) -> ListOptions:
    return ListOptions(
        label_selector=selection.label_selector,
        field_selector=selection.field_selector,
        limit=limit,
        continue_token=continue_token,
        resource_version=resource_version,
        timeout_seconds=timeout_seconds,
        allow_bookmarks=bookmarks,
    )


class LocalClient:
    """Same semantics as HTTP; objects handed out are copies the caller may change."""

    def __init__(self, api: API) -> None:
        self.api = api

    async def get(self, info: ResourceInfo, namespace: str, name: str) -> Obj:
        return deep_copy(await self.api.get(info, namespace, name))

    async def list(
        self,
        info: ResourceInfo,
        selection: Selection = EVERYTHING,
        *,
        limit: int = 0,
        continue_token: str = "",
        resource_version: str = "",
    ) -> ObjectList:
        options = _options(
            selection,
            limit=limit,
            continue_token=continue_token,
            resource_version=resource_version,
        )
        page = await self.api.list(info, selection.namespace, options)
        items = [deep_copy(obj) for obj in page.items]
        return ObjectList(items, str(page.revision), page.continue_token)

    async def watch(
        self,
        info: ResourceInfo,
        selection: Selection = EVERYTHING,
        *,
        resource_version: str,
        timeout_seconds: int | None = None,
        bookmarks: bool = False,
    ) -> AsyncIterator[WatchEvent]:
        options = _options(
            selection,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            bookmarks=bookmarks,
        )
        async for event in self.api.watch(info, selection.namespace, options):
            yield WatchEvent(event.type, deep_copy(event.obj))

    async def create(self, info: ResourceInfo, namespace: str, obj: Obj) -> Obj:
        return await self.api.create(info, namespace, deep_copy(obj))

    async def update(
        self, info: ResourceInfo, namespace: str, obj: Obj, *, subresource: str = ""
    ) -> Obj:
        name = str(metadata(obj).get("name", ""))
        written = await self.api.update(
            info, namespace, name, deep_copy(obj), subresource=subresource
        )
        return written.obj

    async def patch(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        patch: Any,
        *,
        flavour: str = "merge",
        subresource: str = "",
    ) -> Obj:
        return await self.api.patch(info, namespace, name, flavour, patch, subresource=subresource)

    async def delete(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        *,
        grace_period: int | None = None,
        propagation: str | None = None,
        uid: str | None = None,
    ) -> Obj:
        options = DeleteOptions(
            grace_period_seconds=grace_period,
            propagation_policy=propagation,
            preconditions=Preconditions(uid=uid),
        )
        return await self.api.delete(info, namespace, name, options)

    async def bind(self, namespace: str, name: str, node: str) -> None:
        pods = self.api.registries.by_kind("", "Pod").info
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        await self.api.bind(pods, namespace, name, binding)

    async def close(self) -> None:
        return None
