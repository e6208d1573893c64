"""Verb handlers: HTTP in, HTTP out. The work itself is in ``registry.api.API``.

What stays here is what only HTTP has: query parameters, body decoding, content
negotiation (JSON, YAML, Table, PartialObjectMetadata) and status codes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from minikube_py import errors
from minikube_py.apiserver import fieldcheck, negotiation, query, tables, watch
from minikube_py.apiserver.negotiation import Output
from minikube_py.apiserver.nodeproxy import NodeConnections, PodLogs
from minikube_py.apiserver.paths import ResourcePath
from minikube_py.apiserver.portforward import PortForward
from minikube_py.apiserver.streaming import PodStreams, StreamConnections
from minikube_py.apiserver.watch import WatchStreamer
from minikube_py.meta.objects import Clock, Obj, metadata
from minikube_py.registry import patching
from minikube_py.registry.api import API
from minikube_py.registry.cache import BOOKMARK, CacheEvent
from minikube_py.registry.listing import Page
from minikube_py.registry.options import ListOptions

NOT_ALLOWED = "the server does not allow this method on the requested resource"
Handler = Callable[[web.Request, ResourcePath], Awaitable[web.StreamResponse]]


class ResourceHandlers:
    """GET/POST/PUT/PATCH/DELETE on collections, objects and their subresources."""

    def __init__(
        self, api: API, clock: Clock, connections: NodeConnections, streams: StreamConnections
    ) -> None:
        self.api = api
        self.clock = clock
        self.logs = PodLogs.for_api(api, connections)
        self.portforward = PortForward.for_api(api)
        self.streams = PodStreams.for_api(api, streams)
        # Built once, not per request: which handler serves a subresource, or a verb on a
        # collection or on one object.
        self._special: dict[str, Handler] = {
            "scale": self._scale,
            "binding": self._binding,
            "log": self._log,
            "portforward": self.portforward.handle,
            "exec": self._stream,
            "attach": self._stream,
        }
        self._on_collection: dict[str, Handler] = {
            "GET": self._list,
            "POST": self._create,
            "DELETE": self._delete_collection,
        }
        self._on_object: dict[str, Handler] = {
            "GET": self._get,
            "PUT": self._update,
            "PATCH": self._patch,
            "DELETE": self._delete,
        }

    async def handle(self, request: web.Request, path: ResourcePath) -> web.StreamResponse:
        method = request.method
        if path.legacy_watch or (method == "GET" and query.is_watch(request.query)):
            return await self._watch(request, path)
        special = self._special.get(path.subresource)
        if special is not None:
            return await special(request, path)
        if path.subresource not in ("", "status", "finalize"):
            raise errors.ServiceUnavailable(
                f"{path.info.plural}/{path.subresource} is served by the kubelet, which this"
                " server cannot reach yet"
            )
        chosen = (self._on_object if path.name else self._on_collection).get(method)
        if chosen is None:
            raise errors.MethodNotAllowed(NOT_ALLOWED)
        return await chosen(request, path)

    # -- answering --

    def _respond(
        self,
        request: web.Request,
        path: ResourcePath,
        obj: Obj,
        status: int = 200,
        warnings: list[str] | None = None,
    ) -> web.Response:
        output = negotiation.choose_output(request.headers.get("Accept", ""))
        body = self._render_one(request, path, obj, output)
        data, content_type = negotiation.encode(body, output.format)
        response = web.Response(body=data, status=status, content_type=content_type)
        for text in dict.fromkeys(warnings or []):
            response.headers.add("Warning", fieldcheck.warning_header(text))
        return response

    def _render_one(
        self, request: web.Request, path: ResourcePath, obj: Obj, output: Output
    ) -> Obj:
        if obj.get("kind") == "Status" or not output.as_kind:
            return obj
        if output.as_kind == "Table":
            return tables.table(
                self.api.resource(path.info).strategy,
                [obj],
                now=self.clock(),
                include=request.query.get("includeObject", "Metadata"),
                version=output.as_version,
                list_meta={"resourceVersion": metadata(obj).get("resourceVersion", "")},
            )
        return _partial(obj, output.as_version)

    @staticmethod
    def _plain(request: web.Request, body: Obj, status: int = 200) -> web.Response:
        output = negotiation.choose_output(request.headers.get("Accept", ""), allow_table=False)
        data, content_type = negotiation.encode(body, output.format)
        return web.Response(body=data, status=status, content_type=content_type)

    # -- reads --

    async def _get(self, request: web.Request, path: ResourcePath) -> web.Response:
        obj = await self.api.get(path.info, path.namespace, path.name)
        return self._respond(request, path, obj)

    async def _list(self, request: web.Request, path: ResourcePath) -> web.StreamResponse:
        output = negotiation.choose_output(request.headers.get("Accept", ""))
        info = path.info
        watch.check_list_query(request.query)
        options = query.list_options(request.query)
        page = await self.api.list(info, path.namespace, options, stamped=not output.as_kind)
        list_meta = _list_meta(page)
        body: Obj
        if output.as_kind == "Table":
            body = tables.table(
                self.api.resource(info).strategy,
                page.items,
                now=self.clock(),
                include=request.query.get("includeObject", "Metadata"),
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
            body = {
                "kind": info.list_kind,
                "apiVersion": info.api_version,
                "metadata": list_meta,
                "items": page.items,
            }
        data, content_type = negotiation.encode(body, output.format)
        # Streamed: aiohttp keeps a plain Response (and its body) alive on an idle
        # keep-alive connection until the next request; a big LIST would pin megabytes.
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data)
        await response.write_eof()
        return response

    async def _watch(self, request: web.Request, path: ResourcePath) -> web.StreamResponse:
        output = negotiation.choose_output(request.headers.get("Accept", ""))
        cache = self.api.registries.cache
        options = watch.watch_options(
            request.query, query.list_options(request.query), lambda: cache.revision
        )
        if path.name:
            options = _with_name(options, path.name)
        events = self.api.watch(path.info, path.namespace, options)
        include = request.query.get("includeObject", "Metadata")
        strategy = self.api.resource(path.info).strategy

        def render(event: CacheEvent, first: bool) -> Obj:
            if event.type == BOOKMARK:
                return _bookmark(path, event, output)
            if output.as_kind == "Table":
                return tables.table(
                    strategy,
                    [event.obj],
                    now=self.clock(),
                    include=include,
                    version=output.as_version,
                    with_columns=first,
                    list_meta={"resourceVersion": str(event.revision)},
                )
            return _partial(event.obj, output.as_version) if output.as_kind else event.obj

        assert options.timeout_seconds is not None  # watch_options always sets one
        streamer = WatchStreamer(request, events, render, timeout=options.timeout_seconds)
        return await streamer.stream()

    # -- writes --

    async def _body(self, request: web.Request) -> Any:
        body, _ = await self._raw_body(request)
        return body

    async def _raw_body(self, request: web.Request) -> tuple[Any, bytes | None]:
        """The decoded body, and its raw bytes when JSON (duplicate fields are found there)."""
        negotiation.check_size(request.content_length)
        raw = await request.read()
        media = negotiation.content_type(request.headers.get("Content-Type", ""))
        body = negotiation.decode_body(raw, media)
        is_json = not media or media == negotiation.JSON_TYPE or media.endswith("+json")
        return body, raw if is_json else None

    async def _checked_body(
        self, request: web.Request, path: ResourcePath, options_kind: str
    ) -> tuple[Any, list[str]]:
        """The body with unknown fields dropped (kube never stores them), and warnings."""
        mode = fieldcheck.parse_mode(request.query.get("fieldValidation"), options_kind)
        body, raw = await self._raw_body(request)
        if not isinstance(body, dict):
            return body, []
        info = path.info
        return fieldcheck.check_fields(body, info.api_version, info.kind, raw=raw, mode=mode)

    async def _create(self, request: web.Request, path: ResourcePath) -> web.Response:
        body, warnings = await self._checked_body(request, path, "CreateOptions")
        created = await self.api.create(
            path.info, path.namespace, body, dry_run=query.dry_run(request.query)
        )
        return self._respond(request, path, created, 201, warnings)

    async def _update(self, request: web.Request, path: ResourcePath) -> web.Response:
        body, warnings = await self._checked_body(request, path, "UpdateOptions")
        written = await self.api.update(
            path.info,
            path.namespace,
            path.name,
            body,
            subresource=path.subresource,
            dry_run=query.dry_run(request.query),
        )
        status = 201 if written.created else 200
        return self._respond(request, path, written.obj, status, warnings)

    async def _patch(self, request: web.Request, path: ResourcePath) -> web.Response:
        flavour = _patch_flavour(request)
        mode = fieldcheck.parse_mode(request.query.get("fieldValidation"), "PatchOptions")
        negotiation.check_size(request.content_length)
        raw = await request.read()
        media = negotiation.content_type(request.headers.get("Content-Type", ""))
        patch = negotiation.decode_body(raw, media)
        info = path.info
        warnings: list[str] = []

        def validate(patched: Obj) -> Obj:
            checked, problems = fieldcheck.check_fields(
                patched,
                info.api_version,
                info.kind,
                raw=None,
                mode=mode,
                patch=raw,
                patch_type=flavour,
            )
            warnings[:] = problems  # the patch may be re-applied after a conflict
            return checked

        patched = await self.api.patch(
            info,
            path.namespace,
            path.name,
            flavour,
            patch,
            subresource=path.subresource,
            dry_run=query.dry_run(request.query),
            validate=validate,
        )
        return self._respond(request, path, patched, warnings=warnings)

    async def _delete(self, request: web.Request, path: ResourcePath) -> web.Response:
        body = await self._body(request) if request.can_read_body else None
        options = query.delete_options(request.query, body)
        answer = await self.api.delete(path.info, path.namespace, path.name, options)
        return self._respond(request, path, answer)

    async def _delete_collection(self, request: web.Request, path: ResourcePath) -> web.Response:
        body = await self._body(request) if request.can_read_body else None
        options = query.delete_options(request.query, body)
        selection = query.list_options(request.query)
        answer = await self.api.delete_collection(path.info, path.namespace, options, selection)
        return self._respond(request, path, answer)

    # -- subresources with a kind of their own --

    async def _scale(self, request: web.Request, path: ResourcePath) -> web.Response:
        info, ns, name = path.info, path.namespace, path.name
        if request.method == "GET":
            scale = await self.api.get_scale(info, ns, name)
        elif request.method == "PUT":
            scale = await self.api.update_scale(info, ns, name, await self._body(request))
        elif request.method == "PATCH":
            flavour = _patch_flavour(request)
            scale = await self.api.patch_scale(info, ns, name, flavour, await self._body(request))
        else:
            raise errors.MethodNotAllowed(NOT_ALLOWED)
        return self._plain(request, scale)

    async def _log(self, request: web.Request, path: ResourcePath) -> web.StreamResponse:
        if request.method != "GET":
            raise errors.MethodNotAllowed(NOT_ALLOWED)
        return await self.logs.handle(request, path.namespace, path.name)

    async def _stream(self, request: web.Request, path: ResourcePath) -> web.StreamResponse:
        """pods/exec and pods/attach: checked here, run by the pod's kubelet."""
        return await self.streams.handle(request, path.subresource, path.namespace, path.name)

    async def _binding(self, request: web.Request, path: ResourcePath) -> web.Response:
        if request.method != "POST":
            raise errors.MethodNotAllowed(NOT_ALLOWED)
        status = await self.api.bind(
            path.info, path.namespace, path.name, await self._body(request)
        )
        return self._plain(request, status, 201)


def _patch_flavour(request: web.Request) -> str:
    media = negotiation.content_type(request.headers.get("Content-Type", ""))
    flavour = negotiation.PATCH_TYPES.get(media)
    if flavour is None or flavour == "apply":
        raise errors.UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types"
            f" include: {', '.join(patching.SUPPORTED)}"
        )
    return flavour


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
    return dataclasses.replace(options, field_selector=selector)


def _bookmark(path: ResourcePath, event: CacheEvent, output: Output) -> Obj:
    """A BOOKMARK's object: the kind with only resourceVersion (and the end-of-initial-
    events annotation); as metadata-only or Table output, a row-less list of that kind."""
    meta = {
        key: value
        for key, value in (event.obj.get("metadata") or {}).items()
        if key in ("resourceVersion", "annotations")
    }
    if output.as_kind == "Table":
        return {
            "kind": "Table",
            "apiVersion": f"meta.k8s.io/{output.as_version or 'v1'}",
            "metadata": {"resourceVersion": meta["resourceVersion"]},
            "columnDefinitions": None,
            "rows": None,
        }
    if output.as_kind:
        return {
            "kind": "PartialObjectMetadata",
            "apiVersion": f"meta.k8s.io/{output.as_version or 'v1'}",
            "metadata": meta,
        }
    return {"kind": path.info.kind, "apiVersion": path.info.api_version, "metadata": meta}
