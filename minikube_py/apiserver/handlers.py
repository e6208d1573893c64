"""Verb handlers: turn one HTTP request on a resource into registry calls and an answer."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from minikube_py import errors
from minikube_py.apiserver import negotiation, patching, query, subresources, tables
from minikube_py.apiserver.negotiation import Output
from minikube_py.apiserver.paths import ResourcePath
from minikube_py.apiserver.watch import WatchStreamer
from minikube_py.meta.objects import Clock, Obj, format_time, metadata
from minikube_py.registry.cache import CacheEvent
from minikube_py.registry.listing import Page
from minikube_py.registry.options import ListOptions
from minikube_py.registry.registries import Registries, Resource


class ResourceHandlers:
    """GET/POST/PUT/PATCH/DELETE on collections, objects and their subresources."""

    def __init__(self, registries: Registries, clock: Clock) -> None:
        self.registries = registries
        self.clock = clock

    async def handle(self, request: web.Request, path: ResourcePath) -> web.StreamResponse:
        resource = self.registries[path.info]
        method = request.method
        if path.legacy_watch or (method == "GET" and query.is_watch(request.query)):
            return await self._watch(request, resource, path)
        special = {"scale": self._scale, "binding": self._binding}.get(path.subresource)
        if special is not None:
            return await special(request, resource, path)
        if path.subresource not in ("", "status", "finalize"):
            raise errors.ServiceUnavailable(
                f"{path.info.plural}/{path.subresource} is served by the kubelet, which this"
                " server cannot reach yet"
            )
        if not path.name:
            handler = {"GET": self._list, "POST": self._create, "DELETE": self._delete_collection}
        else:
            handler = {
                "GET": self._get,
                "PUT": self._update,
                "PATCH": self._patch,
                "DELETE": self._delete,
            }
        chosen = handler.get(method)
        if chosen is None:
            raise errors.MethodNotAllowed(
                "the server does not allow this method on the requested resource"
            )
        return await chosen(request, resource, path)

    # -- answering --

    def _respond(
        self, request: web.Request, resource: Resource, obj: Obj, status: int = 200
    ) -> web.Response:
        output = negotiation.choose_output(request.headers.get("Accept", ""))
        body = self._render_one(request, resource, obj, output)
        data, content_type = negotiation.encode(body, output.format)
        return web.Response(body=data, status=status, content_type=content_type)

    def _render_one(
        self, request: web.Request, resource: Resource, obj: Obj, output: Output
    ) -> Obj:
        if obj.get("kind") == "Status" or not output.as_kind:
            return obj
        if output.as_kind == "Table":
            include = request.query.get("includeObject", "Metadata")
            return tables.table(
                resource.strategy,
                [obj],
                now=self.clock(),
                include=include,
                version=output.as_version,
                list_meta={"resourceVersion": metadata(obj).get("resourceVersion", "")},
            )
        return _partial(obj, output.as_version)

    def _stamp(self, resource: Resource, obj: Obj) -> Obj:
        """A copy ready to send: kind, apiVersion and selfLink set (the seed shows it).

        Objects may come straight from the watch cache, so nothing nested is mutated.
        """
        info = resource.info
        meta = dict(obj.get("metadata") or {})
        meta["selfLink"] = info.path(str(meta.get("namespace", "")), str(meta.get("name", "")))
        return {"kind": info.kind, "apiVersion": info.api_version, **obj, "metadata": meta}

    # -- reads --

    async def _get(
        self, request: web.Request, resource: Resource, path: ResourcePath
    ) -> web.Response:
        obj = await resource.registry.get(path.namespace, path.name)
        return self._respond(request, resource, self._stamp(resource, obj))

    async def _list(
        self, request: web.Request, resource: Resource, path: ResourcePath
    ) -> web.Response:
        output = negotiation.choose_output(request.headers.get("Accept", ""))
        options = query.list_options(request.query)
        page = await resource.lister.list(path.namespace, options)
        list_meta = _list_meta(page)
        body: Obj
        if output.as_kind == "Table":
            include = request.query.get("includeObject", "Metadata")
            body = tables.table(
                resource.strategy,
                page.items,
                now=self.clock(),
                include=include,
                version=output.as_version,
                list_meta=list_meta,
            )
        elif output.as_kind:
            body = {
                "kind": "PartialObjectMetadataList",
                "apiVersion": f"meta.k8s.io/{output.as_version}",
                "metadata": list_meta,
                "items": [_partial(o, output.as_version) for o in page.items],
            }
        else:
            info = resource.info
            body = {
                "kind": info.list_kind,
                "apiVersion": info.api_version,
                "metadata": list_meta,
                "items": [self._stamp(resource, o) for o in page.items],
            }
        data, content_type = negotiation.encode(body, output.format)
        return web.Response(body=data, content_type=content_type)

    async def _watch(
        self, request: web.Request, resource: Resource, path: ResourcePath
    ) -> web.StreamResponse:
        output = negotiation.choose_output(request.headers.get("Accept", ""))
        options = query.list_options(request.query)
        if path.name:
            options = _with_name(options, path.name)
        events = resource.lister.watch(path.namespace, options)
        include = request.query.get("includeObject", "Metadata")

        def render(event: CacheEvent, first: bool) -> Obj:
            obj = self._stamp(resource, event.obj)
            if output.as_kind == "Table":
                return tables.table(
                    resource.strategy,
                    [obj],
                    now=self.clock(),
                    include=include,
                    version=output.as_version,
                    with_columns=first,
                    list_meta={"resourceVersion": str(event.revision)},
                )
            return _partial(obj, output.as_version) if output.as_kind else obj

        def bookmark() -> Obj:
            revision = self.registries.cache.revision
            return {
                "kind": resource.info.kind,
                "apiVersion": resource.info.api_version,
                "metadata": {"resourceVersion": str(revision)},
            }

        streamer = WatchStreamer(
            request,
            events,
            render,
            timeout=options.timeout_seconds,
            bookmark=bookmark if options.allow_bookmarks else None,
        )
        return await streamer.stream()

    # -- writes --

    async def _body(self, request: web.Request) -> Any:
        negotiation.check_size(request.content_length)
        raw = await request.read()
        return negotiation.decode_body(
            raw, negotiation.content_type(request.headers.get("Content-Type", ""))
        )

    async def _object_body(self, request: web.Request, resource: Resource) -> Obj:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise errors.BadRequest(
                f"the object provided is unrecognized (must be of type {resource.info.kind})"
            )
        _check_type(body, resource)
        return body

    async def _create(
        self, request: web.Request, resource: Resource, path: ResourcePath
    ) -> web.Response:
        obj = await self._object_body(request, resource)
        created = await resource.registry.create(
            path.namespace, obj, dry_run=query.dry_run(request.query)
        )
        return self._respond(request, resource, self._stamp(resource, created), 201)

    async def _update(
        self, request: web.Request, resource: Resource, path: ResourcePath
    ) -> web.Response:
        obj = await self._object_body(request, resource)
        written = await resource.registry.update(
            path.namespace,
            path.name,
            lambda _current: obj,
            subresource=path.subresource,
            dry_run=query.dry_run(request.query),
            create_if_missing=obj,
        )
        status = 201 if written.created else 200
        return self._respond(request, resource, self._stamp(resource, written.obj), status)

    async def _scale(
        self, request: web.Request, resource: Resource, path: ResourcePath
    ) -> web.Response:
        registry, name = resource.registry, path.name
        if request.method == "GET":
            obj = await registry.get(path.namespace, name)
        elif request.method == "PUT":
            body = await self._body(request)
            obj = (
                await registry.update(
                    path.namespace,
                    name,
                    lambda current: subresources.apply_scale(current, body, name),
                )
            ).obj
        elif request.method == "PATCH":
            flavour = self._patch_flavour(request)
            patch = await self._body(request)

            def mutate(current: Obj) -> Obj:
                scale = subresources.scale_of(current)
                scale["metadata"].pop("resourceVersion", None)
                patched = patching.apply(flavour, scale, patch, "autoscaling/v1", "Scale")
                return subresources.apply_scale(current, patched, name)

            obj = (await registry.update(path.namespace, name, mutate)).obj
        else:
            raise errors.MethodNotAllowed(
                "the server does not allow this method on the requested resource"
            )
        output = negotiation.choose_output(request.headers.get("Accept", ""), allow_table=False)
        data, content_type = negotiation.encode(subresources.scale_of(obj), output.format)
        return web.Response(body=data, content_type=content_type)

    async def _binding(
        self, request: web.Request, resource: Resource, path: ResourcePath
    ) -> web.Response:
        if request.method != "POST":
            raise errors.MethodNotAllowed(
                "the server does not allow this method on the requested resource"
            )
        body = await self._body(request)
        now = format_time(self.clock())

        def mutate(pod: Obj) -> Obj:
            subresources.bind(pod, body, resource, path.name)
            subresources.scheduled_condition(pod, now)
            return pod

        await resource.registry.update_direct(path.namespace, path.name, mutate)
        data, content_type = negotiation.encode(errors.success_status(), "json")
        return web.Response(body=data, status=201, content_type=content_type)

    @staticmethod
    def _patch_flavour(request: web.Request) -> str:
        media = negotiation.content_type(request.headers.get("Content-Type", ""))
        flavour = negotiation.PATCH_TYPES.get(media)
        if flavour is None or flavour == "apply":
            raise errors.UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types"
                f" include: {', '.join(patching.SUPPORTED)}"
            )
        return flavour

    async def _patch(
        self, request: web.Request, resource: Resource, path: ResourcePath
    ) -> web.Response:
        flavour = self._patch_flavour(request)
        patch = await self._body(request)

        def mutate(current: Obj) -> Obj:
            current["metadata"].pop("resourceVersion", None)
            patched = patching.apply(
                flavour, current, patch, resource.info.api_version, resource.info.kind
            )
            _check_type(patched, resource)
            return patched

        written = await resource.registry.update(
            path.namespace,
            path.name,
            mutate,
            subresource=path.subresource,
            dry_run=query.dry_run(request.query),
        )
        return self._respond(request, resource, self._stamp(resource, written.obj))

    async def _delete(
        self, request: web.Request, resource: Resource, path: ResourcePath
    ) -> web.Response:
        body = await self._body(request) if request.can_read_body else None
        options = query.delete_options(request.query, body)
        obj, gone = await resource.registry.delete(path.namespace, path.name, options)
        if gone and not resource.strategy.returns_deleted_object:
            details = errors.Target(resource.info.plural, resource.info.group, path.name)
            status = errors.success_status(details, str(metadata(obj).get("uid", "")))
            return self._respond(request, resource, status)
        return self._respond(request, resource, self._stamp(resource, obj))

    async def _delete_collection(
        self, request: web.Request, resource: Resource, path: ResourcePath
    ) -> web.Response:
        body = await self._body(request) if request.can_read_body else None
        options = query.delete_options(request.query, body)
        page = await resource.lister.list(path.namespace, query.list_options(request.query))
        deleted = []
        for obj in page.items:
            meta = metadata(obj)
            try:
                done, _ = await resource.registry.delete(
                    str(meta.get("namespace", "")), str(meta["name"]), options
                )
            except errors.NotFound:
                continue
            deleted.append(self._stamp(resource, done))
        body_out = {
            "kind": resource.info.list_kind,
            "apiVersion": resource.info.api_version,
            "metadata": {"resourceVersion": str(self.registries.cache.revision)},
            "items": deleted,
        }
        return self._respond(request, resource, body_out)


def _check_type(body: Obj, resource: Resource) -> None:
    """The body must be the URL's kind (missing kind and apiVersion default to it)."""
    info = resource.info
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if not kind and not api_version:
        body["kind"], body["apiVersion"] = info.kind, info.api_version
        return
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


def _summary(body: Obj) -> str:
    import orjson

    text = orjson.dumps(body).decode()
    return text if len(text) <= 80 else text[:77] + "..."


def _partial(obj: Obj, version: str) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{version or 'v1'}",
        "metadata": obj.get("metadata", {}),
    }


def _list_meta(page: Page) -> Obj:
    meta: Obj = {"resourceVersion": str(page.revision)}
    if page.continue_token:
        meta["continue"] = page.continue_token
    if page.remaining is not None:
        meta["remainingItemCount"] = page.remaining
    return meta


def _with_name(options: ListOptions, name: str) -> ListOptions:
    selector = f"metadata.name={name}"
    if options.field_selector:
        selector = f"{options.field_selector},{selector}"
    return ListOptions(
        label_selector=options.label_selector,
        field_selector=selector,
        resource_version=options.resource_version,
        timeout_seconds=options.timeout_seconds,
        allow_bookmarks=options.allow_bookmarks,
    )
