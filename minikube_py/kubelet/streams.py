"""The kubelet's side of ``kubectl exec`` and ``kubectl attach``: which container, the
runtime's process, and the Status that ends the session.

As in the kubelet (``pkg/kubelet/server/server.go``, ``getExec``/``getAttach``), a request
is refused before anything runs, with an HTTP status and a line of text that
kube-apiserver passes on: no stream asked for (400 ``you must specify at least 1 of stdin,
stdout, stderr``), a pod this kubelet does not have (404 ``pod does not exist``), a
container not running (500 ``container not found ("c")``; attach words it ``container c
not found in pod p_ns``). Which container runs is read from the pod status this kubelet
reported, the same view ``kubectl get pod`` and ``kubectl logs`` have.

Once running, a failure can only be told on the error channel: the runtime's refusal
(``error executing command in container: ...``), a non-zero exit code with the CRI's
wording (``error executing command [sh -c exit 3], exit code 3``). A command that does not
exist is no refusal on Docker: Docker itself writes ``OCI runtime exec failed: ...`` and
exit code 126, which is what users of Docker nodes know.

The service is reached in-process by an API server in the same process (``open``), or
over the kubelet's HTTP port as a WebSocket (``add_routes``), the protocol both ways
being :mod:`minikube_py.apiserver.channels`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import hdrs, web

from minikube_py.apiserver import channels
from minikube_py.apiserver.channels import Refused, StreamOptions
from minikube_py.kubelet import logs
from minikube_py.kubelet.runtime.interface import ContainerRuntime, ExecSession, RuntimeUnavailable
from minikube_py.meta.objects import Obj, dig

log = structlog.get_logger(__name__)

PodLookup = Callable[[str, str], Obj | None]
"""(namespace, name) → the pod as this kubelet knows it (spec and reported status), or None."""

RuntimeFailure = (RuntimeUnavailable, RuntimeError, LookupError, OSError)
"""What a runtime raises when it cannot do a thing (DockerCallError is a RuntimeError,
DockerNotFound a LookupError): reported to the user, never a crash of the handler."""


def _describe(exc: BaseException) -> str:
    """The runtime's own words when it has them (Docker's ``detail``), else the error."""
    return str(getattr(exc, "detail", "") or exc)


class RuntimeSession:
    """A runtime process as a channel :class:`~minikube_py.apiserver.channels.Session`.

    ``command`` is the exec'd command (None for an attach, which always ends in Success).
    A runtime failure ends the output and becomes an InternalError Status, prefixed as the
    kubelet words it for exec or attach.
    """

    def __init__(self, process: ExecSession | None, *, command: tuple[str, ...] | None) -> None:
        self._process = process
        self._command = command
        self._failure = ""
        self._stdin_open = True

    @property
    def _prefix(self) -> str:
        if self._command is None:
            return "error attaching to container"
        return "error executing command in container"

    @classmethod
    def failed(cls, command: tuple[str, ...] | None, exc: BaseException) -> RuntimeSession:
        """A process that could not start: no output, an InternalError Status."""
        session = cls(None, command=command)
        session._failure = f"{session._prefix}: {_describe(exc)}"
        return session

    async def read(self) -> tuple[int, bytes] | None:
        if self._process is None or self._failure:
            return None
        try:
            return await self._process.read()
        except RuntimeFailure as exc:
            self._failure = f"{self._prefix}: {_describe(exc)}"
            return None

    async def write(self, data: bytes) -> None:
        """Input for a process that is gone (or never read stdin) is dropped, as kube does."""
        if self._process is None or not self._stdin_open:
            return
        try:
            await self._process.write(data)
        except RuntimeFailure:
            self._stdin_open = False

    async def close_stdin(self) -> None:
        if self._process is not None and self._stdin_open:
            self._stdin_open = False
            with contextlib.suppress(*RuntimeFailure):
                await self._process.close_stdin()

    async def resize(self, width: int, height: int) -> None:
        if self._process is not None:
            with contextlib.suppress(*RuntimeFailure):
                await self._process.resize(width, height)

    async def status(self) -> Obj:
        if self._failure:
            return channels.internal_error(self._failure)
        if self._process is None or self._command is None:
            return channels.success()
        try:
            code = await self._process.exit_code()
        except RuntimeFailure as exc:
            return channels.internal_error(f"{self._prefix}: {_describe(exc)}")
        if not code:
            return channels.success()
        argv = " ".join(self._command)  # Go's %v of a []string
        return channels.exit_failure(code, f"error executing command [{argv}], exit code {code}")

    async def close(self) -> None:
        if self._process is not None:
            process, self._process = self._process, None
            with contextlib.suppress(*RuntimeFailure):
                await process.close()


def _running_container_id(pod: Obj, container: str) -> str:
    """The runtime ID of ``container`` if the pod status says it runs, else ``""``."""
    status = logs.container_status(pod, container)
    if status is None or dig(status, "state", "running") is None:
        return ""
    return logs.runtime_id(str(status.get("containerID") or ""))


class StreamService:
    """Exec and attach in this node's containers."""

    def __init__(self, runtime: ContainerRuntime, pods: PodLookup) -> None:
        self.runtime = runtime
        self.pods = pods

    async def open(
        self, kind: str, namespace: str, pod: str, container: str, options: StreamOptions
    ) -> channels.Session:
        """A started session, or :class:`Refused` with the kubelet's status and text."""
        if not (options.stdin or options.stdout or options.stderr):
            raise Refused(400, "you must specify at least 1 of stdin, stdout, stderr")
        found = self.pods(namespace, pod)
        if found is None:
            raise Refused(404, "pod does not exist")
        container_id = _running_container_id(found, container)
        if kind == "exec":
            if not container_id:
                raise Refused(500, f'container not found ("{container}")')
            return await self._exec(container_id, options)
        if not container_id or logs.container_spec(found, container) is None:
            raise Refused(500, f"container {container} not found in pod {pod}_{namespace}")
        return await self._attach(container_id, options)

    async def _exec(self, container_id: str, options: StreamOptions) -> RuntimeSession:
        try:
            process = await self.runtime.exec_stream(
                container_id,
                list(options.command),
                stdin=options.stdin,
                stdout=options.stdout,
                stderr=options.stderr,
                tty=options.tty,
            )
        except RuntimeFailure as exc:
            log.info("exec failed to start", container=container_id, error=_describe(exc))
            return RuntimeSession.failed(options.command, exc)
        return RuntimeSession(process, command=options.command)

    async def _attach(self, container_id: str, options: StreamOptions) -> RuntimeSession:
        """The TTY is the container's own (from its spec), whatever the request says."""
        try:
            process = await self.runtime.attach(
                container_id, stdin=options.stdin, stdout=options.stdout, stderr=options.stderr
            )
        except RuntimeFailure as exc:
            log.info("attach failed", container=container_id, error=_describe(exc))
            return RuntimeSession.failed(None, exc)
        return RuntimeSession(process, command=None)

    # -- over HTTP: the kubelet's WebSocket endpoints --

    def add_routes(self, app: web.Application) -> None:
        """``/exec/{ns}/{pod}/{container}`` and ``/attach/...``, GET or POST, as the kubelet."""
        for kind in ("exec", "attach"):
            path = f"/{kind}/{{namespace}}/{{pod}}/{{container}}"
            app.router.add_route("*", path, self._endpoint(kind))

    def _endpoint(self, kind: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            return await self.serve(request, kind)

        return serve

    async def serve(self, request: web.Request, kind: str) -> web.StreamResponse:
        """Refusals as plain HTTP errors (text, plus the text in a header); else the session."""
        if request.method not in ("GET", "POST"):
            return web.Response(status=405, text="405: Method Not Allowed")
        if not channels.is_websocket(request):
            return web.Response(status=400, text="Upgrade request required")
        try:
            protocol = channels.negotiate(request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL, ""))
        except channels.UnsupportedProtocol as exc:
            return web.Response(status=400, text=str(exc))
        match = request.match_info
        options = channels.kubelet_options(request.query)
        try:
            session = await self.open(
                kind, match["namespace"], match["pod"], match["container"], options
            )
        except Refused as refusal:
            return channels.refusal_response(refusal)
        try:
            connection = await channels.ChannelConnection.accept(request, protocol, options)
            await channels.relay(connection, session)
        finally:
            await session.close()
        return connection.ws
