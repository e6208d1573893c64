"""The kubelet's own HTTP endpoint: ``/containerLogs`` and ``/healthz``, as on port 10250.

The API server reaches a node's kubelet for ``pods/log`` (later exec, attach,
port-forward). Kube serves that over HTTPS with client certificates; here it is plain
HTTP on the node's address, and an in-process API server skips HTTP altogether by
calling :meth:`LogService.container_logs` directly (see ``apiserver/nodeproxy.py``).
Both paths get the same HTTP-shaped :class:`Reply`, so their answers cannot drift.

A refused request is answered before any byte of log: its status and the kubelet's
text, which kube-apiserver turns into the Status users see (400 → BadRequest with the
text). Once streaming, a runtime failure can no longer change the status; as the
kubelet does, its message is written into the stream and the stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import structlog
from aiohttp import web

from minikube_py.httprelay import DISCONNECT_POLL, relay
from minikube_py.kubelet import logs
from minikube_py.kubelet.runtime.interface import ContainerRuntime
from minikube_py.kubelet.streams import StreamService
from minikube_py.meta.objects import Obj

log = structlog.get_logger(__name__)

DEFAULT_PORT = 10250

PodLookup = Callable[[str, str], Obj | None]
"""(namespace, name) → the pod as this kubelet knows it (spec and reported status), or None."""


@dataclass(frozen=True)
class Reply:
    """An HTTP-shaped answer: 200 and the log, or an error code and the kubelet's text."""

    status: int
    body: AsyncIterator[bytes]


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def aclose(chunks: AsyncIterator[bytes]) -> None:
    """Close an async generator early (its ``finally`` releases the runtime's stream)."""
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


class LogService:
    """Container logs of this node's pods: which container from the pod, bytes from the runtime."""

    def __init__(
        self,
        runtime: ContainerRuntime,
        pods: PodLookup,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runtime = runtime
        self.pods = pods
        self.clock = clock

    async def container_logs(
        self, namespace: str, pod: str, container: str, query: logs.Query
    ) -> Reply:
        """Validate as the kubelet does, then a lazy stream; nothing is read before the caller."""
        try:
            options = logs.parse_options(query)
            found = self.pods(namespace, pod)
            if found is None:
                raise logs.LogsError(404, f'pod "{pod}" does not exist')
            if logs.container_spec(found, container) is None:
                raise logs.LogsError(404, f'container "{container}" not found in pod "{pod}"')
            container_id = logs.pick_container_id(found, container, previous=options.previous)
        except logs.LogsError as exc:
            return Reply(exc.code, _once(exc.message.encode()))
        return Reply(200, self._stream(container_id, options))

    async def _stream(self, container_id: str, options: logs.LogOptions) -> AsyncIterator[bytes]:
        chunks = self.runtime.logs(
            logs.runtime_id(container_id),
            follow=options.follow,
            tail=options.tail_lines,
            since=options.since(self.clock()),
            timestamps=options.timestamps,
        )
        try:
            async for chunk in logs.limit_bytes(chunks, options.limit_bytes):
                yield chunk
        except Exception as exc:  # the status is sent: the kubelet's way is to say it inline
            log.warning("container logs failed", container=container_id, error=repr(exc))
            yield f"unable to retrieve container logs for {container_id}".encode()
        finally:
            await aclose(chunks)


def kubelet_app(
    service: LogService,
    *,
    poll: float = DISCONNECT_POLL,
    streams: StreamService | None = None,
) -> web.Application:
    """The kubelet's HTTP API (the part minikube-py needs): logs, health, exec and attach."""

    async def container_logs(request: web.Request) -> web.StreamResponse:
        match = request.match_info
        reply = await service.container_logs(
            match["namespace"], match["pod"], match["container"], request.query
        )
        if reply.status != 200:
            text = b"".join([chunk async for chunk in reply.body])
            return web.Response(status=reply.status, body=text, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        try:
            await response.prepare(request)
            await relay(request, response, reply.body, poll=poll)
            await response.write_eof()
        except ConnectionError:  # the client left; nothing to answer
            pass
        finally:
            await aclose(reply.body)
        return response

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", container_logs)
    app.router.add_get("/healthz", healthz)
    if streams is not None:
        streams.add_routes(app)
    return app


async def serve(
    app: web.Application, host: str, port: int, started: asyncio.Event | None = None
) -> None:
    """Serve ``app`` until cancelled (the kubelet runs this beside its other loops)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        log.info("kubelet server serving", address=f"http://{host}:{port}")
        if started is not None:
            started.set()
        await asyncio.Event().wait()
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()
