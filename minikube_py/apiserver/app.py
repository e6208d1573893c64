"""The API server: an aiohttp application over the registries, and its lifetime.

Every request goes through one error middleware, the single place where exceptions
become a v1 Status: API errors with their own code, anything unexpected as a 500 whose
message names no internals (the traceback goes to the log, not to the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import platform
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from minikube_py import __version__, errors
from minikube_py.apiserver import discovery, negotiation
from minikube_py.apiserver.handlers import ResourceHandlers
from minikube_py.apiserver.nodeproxy import NodeConnections
from minikube_py.apiserver.openapi import OpenAPI
from minikube_py.apiserver.paths import DiscoveryPath, parse
from minikube_py.apiserver.streaming import StreamConnections
from minikube_py.meta.objects import Clock, Obj
from minikube_py.registry.api import API
from minikube_py.registry.registries import Registries

log = structlog.get_logger(__name__)

KUBE_VERSION = "v1.32.0"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def status_response(error: errors.APIError) -> web.Response:
    data, _ = negotiation.encode(error.status(), "json")
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return web.Response(
        body=data, status=error.code, content_type="application/json", headers=headers
    )


@web.middleware
async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.APIError as exc:
        return status_response(exc)
    except web.HTTPRequestEntityTooLarge:
        limit = negotiation.MAX_BODY
        return status_response(
            errors.RequestEntityTooLarge(f"Request entity too large: limit is {limit}")
        )
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:
        log.exception("request failed", method=request.method, path=request.path)
        return status_response(
            errors.InternalError(f"Internal error occurred: {type(exc).__name__}")
        )


def version_info() -> Obj:
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "major": "1",
        "minor": "32",
        "gitVersion": f"{KUBE_VERSION}+minikube-py-{__version__}",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": f"python{platform.python_version()}",
        "compiler": "cpython",
        "platform": f"linux/{machine}",
    }


class APIServer:
    """Routes requests to discovery or the resource handlers; owns the watch cache task."""

    def __init__(self, registries: Registries, *, clock: Clock, address: str) -> None:
        self.registries = registries
        self.catalog = registries.catalog
        self.clock = clock
        self.address = address
        self.api = API(registries, clock)
        self.connections = NodeConnections()
        self.streams = StreamConnections()
        self.resources = ResourceHandlers(self.api, clock, self.connections, self.streams)
        # What a path addresses depends only on the (fixed) catalog, and clients send the
        # same collection and object paths over and over: parse each once. Unknown paths
        # raise, and are not cached.
        self._target = functools.lru_cache(maxsize=1024)(
            functools.partial(parse, lookup=self.catalog.lookup)
        )
        self.app = web.Application(
            middlewares=[status_errors], client_max_size=negotiation.MAX_BODY
        )
        self.openapi = OpenAPI(self.catalog)
        self.app.router.add_get("/version", self._version)
        self.app.router.add_get("/openapi/v3", self._openapi_root)
        self.app.router.add_get("/openapi/v2", self._openapi_v2)
        self.app.router.add_get("/openapi/v3/{path:.+}", self._openapi_document)
        for probe in ("/healthz", "/livez", "/readyz"):
            self.app.router.add_get(probe, self._health)
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.app.on_shutdown.append(self._end_watches)
        self.app.on_shutdown.append(self._end_streams)
        self.app.on_cleanup.append(self._close_connections)

    async def _end_watches(self, app: web.Application) -> None:
        """Watches would otherwise hold shutdown until their clients hang up."""
        self.registries.cache.end_watches()

    async def _end_streams(self, app: web.Application) -> None:
        """Open exec/attach sessions would otherwise hold shutdown until they end."""
        await self.resources.streams.shutdown()

    async def _close_connections(self, app: web.Application) -> None:
        """HTTP connections to kubelets on other machines."""
        await self.connections.close()
        await self.streams.close()

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response(version_info())

    async def _openapi_v2(self, request: web.Request) -> web.Response:
        accept = request.headers.get("Accept", "")
        if "json" not in accept and "*/*" not in accept and accept:
            # Only JSON is offered; a protobuf-only client is told so (and falls back).
            raise errors.NotAcceptable("only application/json is served for /openapi/v2")
        return web.Response(body=self.openapi.v2(), content_type="application/json")

    async def _openapi_root(self, request: web.Request) -> web.Response:
        return web.json_response(self.openapi.root())

    async def _openapi_document(self, request: web.Request) -> web.Response:
        body = self.openapi.documents.get(request.match_info["path"])
        if body is None:
            raise errors.NotFound("the server could not find the requested resource")
        return web.Response(
            body=body,
            content_type="application/json",
            headers={"Cache-Control": "public, immutable"} if request.query.get("hash") else {},
        )

    async def _health(self, request: web.Request) -> web.Response:
        if request.path == "/readyz" and not self.registries.cache.ready.is_set():
            return web.Response(status=500, text="[-]watch-cache not synced\nreadyz check failed")
        try:
            await asyncio.wait_for(self.registries.store.current_revision(), 5)
        except Exception as exc:  # any storage failure makes us unhealthy, never a 500 page
            return web.Response(status=500, text=f"[-]etcd failed: {type(exc).__name__}\n")
        return web.Response(text="ok")

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        target = self._target(request.path)
        if isinstance(target, DiscoveryPath):
            if request.method != "GET":
                raise errors.MethodNotAllowed(
                    "the server does not allow this method on the requested resource"
                )
            return self._discovery(request, target)
        return await self.resources.handle(request, target)

    def _discovery(self, request: web.Request, target: DiscoveryPath) -> web.Response:
        accept = request.headers.get("Accept", "")
        if not target.group and not target.version:
            version = discovery.aggregated_version(accept)
            if version is not None:
                body = discovery.aggregated(
                    self.catalog, core=target.prefix == "api", version=version
                )
                data, _ = negotiation.encode(body, "json")
                return web.Response(
                    body=data, headers={"Content-Type": discovery.aggregated_content_type(version)}
                )
            if target.prefix == "api":
                return web.json_response(discovery.api_versions(self.address))
            return web.json_response(discovery.api_group_list(self.catalog))
        document: Obj | None
        if target.version:
            document = discovery.api_resource_list(self.catalog, target.group, target.version)
        else:
            document = discovery.api_group(self.catalog, target.group)
        if document is None:
            raise errors.NotFound("the server could not find the requested resource")
        return web.json_response(document)

    async def serve(self, host: str, port: int, started: asyncio.Event | None = None) -> None:
        """Serve until cancelled, with the watch cache running beside the listener."""
        runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=5.0
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, reuse_address=True)
            async with asyncio.TaskGroup() as group:
                group.create_task(self.registries.cache.run(), name="watch-cache")
                await site.start()
                log.info("API server serving", address=f"http://{host}:{port}")
                if started is not None:
                    started.set()
                await asyncio.Event().wait()
        finally:
            with contextlib.suppress(Exception):
                await runner.cleanup()
