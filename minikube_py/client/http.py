"""``HttpClient``: the Client seam over REST, for components on another machine.

It reads the server address from a kubeconfig like the seed's ``kubelet.conf`` (one
cluster, ``server: http://127.0.0.1:8080``, no user). API errors come back as the same
exception classes the in-process client raises, rebuilt from the Status body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from minikube_py import errors
from minikube_py.client.interface import EVERYTHING, ObjectList, Selection, WatchEvent
from minikube_py.meta.objects import Obj, metadata
from minikube_py.registry.resource import ResourceInfo

PATCH_TYPES = {
    "json": "application/json-patch+json",
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}


def server_from_kubeconfig(path: Path) -> str:
    """The current context's cluster server URL."""
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read kubeconfig {path}: {exc}") from exc
    contexts = {c["name"]: c.get("context", {}) for c in config.get("contexts") or []}
    clusters = {c["name"]: c.get("cluster", {}) for c in config.get("clusters") or []}
    context = contexts.get(config.get("current-context", ""), {})
    cluster = clusters.get(context.get("cluster", ""))
    if cluster is None and len(clusters) == 1:
        cluster = next(iter(clusters.values()))
    if not cluster or not cluster.get("server"):
        raise ValueError(f"kubeconfig {path} names no cluster server")
    return str(cluster["server"]).rstrip("/")


def _query(selection: Selection, **extra: Any) -> dict[str, str]:
    params = {k: str(v) for k, v in extra.items() if v not in (None, "", 0, False)}
    if selection.label_selector:
        params["labelSelector"] = selection.label_selector
    if selection.field_selector:
        params["fieldSelector"] = selection.field_selector
    return {k: ("true" if v == "True" else v) for k, v in params.items()}


class HttpClient:
    def __init__(self, server: str, *, timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._timeout = timeout

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                json_serialize=lambda o: orjson.dumps(o).decode(),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout),
            )
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Obj:
        data = orjson.dumps(body) if body is not None else None
        headers = {"Accept": "application/json", "Content-Type": content_type}
        async with self.session().request(
            method,
            self.server + path,
            params=params,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
        ) as answer:
            raw = await answer.read()
            decoded: Obj = orjson.loads(raw) if raw else {}
            if answer.status >= 400:
                raise errors.from_status(decoded, answer.status)
            return decoded

    async def get(self, info: ResourceInfo, namespace: str, name: str) -> Obj:
        return await self._request("GET", info.path(namespace, name))

    async def list(
        self,
        info: ResourceInfo,
        selection: Selection = EVERYTHING,
        *,
        limit: int = 0,
        continue_token: str = "",
        resource_version: str = "",
    ) -> ObjectList:
        params = _query(
            selection, limit=limit, resourceVersion=resource_version, **{"continue": continue_token}
        )
        answer = await self._request("GET", info.path(selection.namespace), params=params)
        meta = answer.get("metadata") or {}
        return ObjectList(
            list(answer.get("items") or []),
            str(meta.get("resourceVersion", "")),
            str(meta.get("continue", "")),
        )

    async def watch(
        self,
        info: ResourceInfo,
        selection: Selection = EVERYTHING,
        *,
        resource_version: str,
        timeout_seconds: int | None = None,
        bookmarks: bool = False,
    ) -> AsyncIterator[WatchEvent]:
        params = _query(
            selection,
            watch="true",
            resourceVersion=resource_version,
            timeoutSeconds=timeout_seconds,
            allowWatchBookmarks=bookmarks,
        )
        async with self.session().get(
            self.server + info.path(selection.namespace),
            params=params,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout),
        ) as answer:
            if answer.status >= 400:
                raise errors.from_status(orjson.loads(await answer.read() or b"{}"), answer.status)
            async for line in answer.content:
                if not line.strip():
                    continue
                frame = orjson.loads(line)
                if frame.get("type") == "ERROR":
                    status = frame.get("object") or {}
                    raise errors.from_status(status, int(status.get("code") or 500))
                yield WatchEvent(frame["type"], frame["object"])

    async def create(self, info: ResourceInfo, namespace: str, obj: Obj) -> Obj:
        return await self._request("POST", info.path(namespace), body=obj)

    async def update(
        self, info: ResourceInfo, namespace: str, obj: Obj, *, subresource: str = ""
    ) -> Obj:
        path = info.path(namespace, str(metadata(obj).get("name", "")))
        return await self._request(
            "PUT", path + (f"/{subresource}" if subresource else ""), body=obj
        )

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
        path = info.path(namespace, name) + (f"/{subresource}" if subresource else "")
        return await self._request("PATCH", path, body=patch, content_type=PATCH_TYPES[flavour])

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
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        if propagation is not None:
            options["propagationPolicy"] = propagation
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        return await self._request("DELETE", info.path(namespace, name), body=options)

    async def bind(self, namespace: str, name: str, node: str) -> None:
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        await self._request(
            "POST", f"/api/v1/namespaces/{namespace}/pods/{name}/binding", body=binding
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
