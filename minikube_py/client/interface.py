"""The ``Client`` seam: how the scheduler, controllers and kubelet talk to the API.

Two implementations with the same semantics: ``LocalClient`` calls the API operations
in-process (one process, no HTTP), ``HttpClient`` speaks REST to an API server elsewhere.
Errors are the API's own exception classes (``errors.NotFound``, ``errors.Conflict``...)
in both, so callers handle them once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from minikube_py.meta.objects import Obj
from minikube_py.registry.resource import ResourceInfo


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: Obj


@dataclass
class ObjectList:
    items: list[Obj]
    resource_version: str
    continue_token: str = ""


@dataclass(frozen=True)
class Selection:
    """Which objects a list or watch covers."""

    namespace: str = ""
    label_selector: str = ""
    field_selector: str = ""


EVERYTHING = Selection()


class Client(Protocol):
    async def get(self, info: ResourceInfo, namespace: str, name: str) -> Obj: ...

    async def list(
        self,
        info: ResourceInfo,
        selection: Selection = EVERYTHING,
        *,
        limit: int = 0,
        continue_token: str = "",
        resource_version: str = "",
    ) -> ObjectList: ...

    def watch(
        self,
        info: ResourceInfo,
        selection: Selection = EVERYTHING,
        *,
        resource_version: str,
        timeout_seconds: int | None = None,
        bookmarks: bool = False,
    ) -> AsyncIterator[WatchEvent]: ...

    async def create(self, info: ResourceInfo, namespace: str, obj: Obj) -> Obj: ...

    async def update(
        self, info: ResourceInfo, namespace: str, obj: Obj, *, subresource: str = ""
    ) -> Obj: ...

    async def patch(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        patch: Any,
        *,
        flavour: str = "merge",
        subresource: str = "",
    ) -> Obj: ...

    async def delete(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        *,
        grace_period: int | None = None,
        propagation: str | None = None,
        uid: str | None = None,
    ) -> Obj: ...

    async def bind(self, namespace: str, name: str, node: str) -> None: ...

    async def close(self) -> None: ...
