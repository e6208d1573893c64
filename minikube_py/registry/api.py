"""The API's operations with no HTTP in them: what both the REST handlers and the
in-process client call, so a component gets the same semantics either way.

Objects leave here ready to send: ``kind``, ``apiVersion`` and ``selfLink`` set, and never
a reference into the watch cache.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from minikube_py import errors
from minikube_py.meta.objects import Clock, Obj, format_time, metadata
from minikube_py.registry import patching, subresources
from minikube_py.registry.cache import CacheEvent
from minikube_py.registry.generic import Written
from minikube_py.registry.listing import Page
from minikube_py.registry.options import DeleteOptions, ListOptions
from minikube_py.registry.registries import Registries, Resource
from minikube_py.registry.resource import ResourceInfo


def stamp(info: ResourceInfo, obj: Obj) -> Obj:
    """A copy ready to send; nothing nested is mutated (it may be the cache's)."""
    meta = dict(obj.get("metadata") or {})
    meta["selfLink"] = info.path(str(meta.get("namespace", "")), str(meta.get("name", "")))
    return {"kind": info.kind, "apiVersion": info.api_version, **obj, "metadata": meta}


def check_type(body: Any, info: ResourceInfo) -> Obj:
    """The body must be the URL's kind (missing kind and apiVersion default to it)."""
    if not isinstance(body, dict):
        raise errors.BadRequest(
            f"the object provided is unrecognized (must be of type {info.kind})"
        )
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if not kind and not api_version:
        body["kind"], body["apiVersion"] = info.kind, info.api_version
        return body
    if not kind:
        raise errors.BadRequest(f"Object 'Kind' is missing in '{_summary(body)}'")
    if not api_version:
        raise errors.BadRequest(f"Object 'apiVersion' is missing in '{_summary(body)}'")
    if api_version != info.api_version:
        raise errors.BadRequest(
            f"the API version in the data ({api_version}) does not match the expected API"
            f" version ({info.api_version})"
        )
    if kind != info.kind:
        raise errors.BadRequest(
            f"the object provided is unrecognized (must be of type {info.kind}): couldn't"
            f" decode {kind} as {info.kind}"
        )
    return body


def _summary(body: Obj) -> str:
    import orjson

    text = orjson.dumps(body).decode()
    return text if len(text) <= 80 else text[:77] + "..."


class API:
    """Every verb on every resource, over the registries."""

    def __init__(self, registries: Registries, clock: Clock) -> None:
        self.registries = registries
        self.clock = clock

    def resource(self, info: ResourceInfo) -> Resource:
        return self.registries[info]

    # -- reads --

    async def get(self, info: ResourceInfo, namespace: str, name: str) -> Obj:
        return stamp(info, await self.resource(info).registry.get(namespace, name))

    async def list(
        self, info: ResourceInfo, namespace: str, options: ListOptions, *, stamped: bool = True
    ) -> Page:
        """A page of objects; ``stamped=False`` hands out the cache's own objects, read-only
        (for Tables, which only print them: stamping 10,000 pods costs more than printing)."""
        page = await self.resource(info).lister.list(namespace, options)
        if stamped:
            page.items = [stamp(info, obj) for obj in page.items]
        return page

    async def watch(
        self, info: ResourceInfo, namespace: str, options: ListOptions
    ) -> AsyncIterator[CacheEvent]:
        async for event in self.resource(info).lister.watch(namespace, options):
            yield CacheEvent(event.type, stamp(info, event.obj), event.prev, event.revision)

    # -- writes --

    async def create(
        self, info: ResourceInfo, namespace: str, body: Any, *, dry_run: bool = False
    ) -> Obj:
        obj = check_type(body, info)
        return stamp(
            info, await self.resource(info).registry.create(namespace, obj, dry_run=dry_run)
        )

    async def update(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        body: Any,
        *,
        subresource: str = "",
        dry_run: bool = False,
    ) -> Written:
        obj = check_type(body, info)
        written = await self.resource(info).registry.update(
            namespace,
            name,
            lambda _current: obj,
            subresource=subresource,
            dry_run=dry_run,
            create_if_missing=obj,
        )
        return Written(stamp(info, written.obj), written.created)

    async def patch(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        flavour: str,
        patch: Any,
        *,
        subresource: str = "",
        dry_run: bool = False,
        validate: Callable[[Obj], Obj] | None = None,
    ) -> Obj:
        """``validate`` sees the patched object first (the API server's field check)."""

        def mutate(current: Obj) -> Obj:
            current["metadata"].pop("resourceVersion", None)
            patched = patching.apply(flavour, current, patch, info.api_version, info.kind)
            if validate is not None:
                patched = validate(patched)
            return check_type(patched, info)

        written = await self.resource(info).registry.update(
            namespace, name, mutate, subresource=subresource, dry_run=dry_run
        )
        return stamp(info, written.obj)

    async def delete(
        self, info: ResourceInfo, namespace: str, name: str, options: DeleteOptions
    ) -> Obj:
        """The object (still being deleted, or as it was) or a Success Status."""
        resource = self.resource(info)
        obj, gone = await resource.registry.delete(namespace, name, options)
        if gone and not resource.strategy.returns_deleted_object:
            target = errors.Target(info.plural, info.group, name)
            return errors.success_status(target, str(metadata(obj).get("uid", "")))
        return stamp(info, obj)

    async def delete_collection(
        self, info: ResourceInfo, namespace: str, options: DeleteOptions, selection: ListOptions
    ) -> Obj:
        resource = self.resource(info)
        page = await resource.lister.list(namespace, selection)
        deleted = []
        for obj in page.items:
            meta = metadata(obj)
            try:
                done, _ = await resource.registry.delete(
                    str(meta.get("namespace", "")), str(meta["name"]), options
                )
            except errors.NotFound:
                continue
            deleted.append(stamp(info, done))
        return {
            "kind": info.list_kind,
            "apiVersion": info.api_version,
            "metadata": {"resourceVersion": str(self.registries.cache.revision)},
            "items": deleted,
        }

    # -- subresources with a kind of their own --

    async def get_scale(self, info: ResourceInfo, namespace: str, name: str) -> Obj:
        return subresources.scale_of(await self.resource(info).registry.get(namespace, name))

    async def update_scale(self, info: ResourceInfo, namespace: str, name: str, scale: Any) -> Obj:
        return await self._rescale(
            info, namespace, name, lambda current: subresources.apply_scale(current, scale, name)
        )

    async def patch_scale(
        self, info: ResourceInfo, namespace: str, name: str, flavour: str, patch: Any
    ) -> Obj:
        def mutate(current: Obj) -> Obj:
            scale = subresources.scale_of(current)
            scale["metadata"].pop("resourceVersion", None)
            patched = patching.apply(flavour, scale, patch, "autoscaling/v1", "Scale")
            return subresources.apply_scale(current, patched, name)

        return await self._rescale(info, namespace, name, mutate)

    async def _rescale(
        self, info: ResourceInfo, namespace: str, name: str, mutate: Callable[[Obj], Obj]
    ) -> Obj:
        written = await self.resource(info).registry.update(namespace, name, mutate)
        return subresources.scale_of(written.obj)

    async def bind(self, info: ResourceInfo, namespace: str, name: str, binding: Any) -> Obj:
        """``pods/binding``: set nodeName and PodScheduled in one write."""
        now = format_time(self.clock())

        def mutate(pod: Obj) -> Obj:
            subresources.bind(pod, binding, name)
            subresources.scheduled_condition(pod, now)
            return pod

        await self.resource(info).registry.update_direct(namespace, name, mutate)
        return errors.success_status()
