"""DockerRuntime: the ContainerRuntime over one shared aiodocker connection.

The only module that imports aiodocker. Its errors are translated here, once: a daemon
that does not answer becomes RuntimeUnavailable (the node turns NotReady), a missing
object DockerNotFound (a LookupError, so callers need not import this module), anything
else the daemon refuses DockerCallError. Stop and remove of a missing object succeed: the
kubelet retries them and must converge, not fail.

Everything is created with labels (``docker_config``), so the state is read back from
Docker after a restart: nothing is kept in memory that Docker does not also know.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import re
import time
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import aiodocker
import aiohttp
import structlog

from minikube_py.kubelet.runtime.docker_config import (
    DEFAULT_PAUSE_IMAGE,
    TYPE_CONTAINER,
    TYPE_SANDBOX,
    Body,
    container_body,
    container_name,
    is_sandbox,
    label_filters,
    parse_container,
    parse_listed,
    parse_sandbox,
    sandbox_body,
    sandbox_name,
)
from minikube_py.kubelet.runtime.interface import (
    MANAGED_BY,
    NODE_NAME,
    ContainerConfig,
    ContainerStatus,
    ExecResult,
    ExecSession,
    ImagePullError,
    ImageResult,
    ItemState,
    PodSnapshot,
    PullStarting,
    RuntimeUnavailable,
    SandboxConfig,
    SandboxStatus,
)

__all__ = ["DockerCallError", "DockerNotFound", "DockerRuntime"]

log = structlog.get_logger(__name__)

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_SCHEMES = re.compile(r"^(unix|tcp|http|https|ssh)://")
_CONNECTION_LOST = 900  # aiodocker's status for "could not connect"
# Bounded connect and reads for calls; aiodocker lifts the read bound itself for the long
# ones (stop with grace, pull, exec streams). A followed log may stay silent for days.
_CALLS = aiohttp.ClientTimeout(sock_connect=10, sock_read=120)
_FOLLOWING = aiohttp.ClientTimeout(sock_connect=10)


class DockerCallError(RuntimeError):
    """The daemon answered but refused the call (bad config, conflict, its own failure)."""

    def __init__(self, what: str, detail: str, status: int = 0) -> None:
        super().__init__(f"{what}: {detail}")
        self.detail = detail  # the daemon's own words
        self.status = status  # its HTTP status; 0 when there was none


class DockerNotFound(DockerCallError, LookupError):
    """No such container, image or exec (HTTP 404): removed, or never on this daemon."""


class DockerRuntime:
    """Pods as Docker containers: a pause sandbox per pod, app containers joining it.

    ``docker`` is a connection shared with its owner (who closes it); without it one is
    opened to ``docker_host`` (default ``$DOCKER_HOST``, else the local socket) on first
    use and closed by ``close()``. ``node_name`` is put on, and filtered by, every
    listing, so several kubelets can share one daemon without seeing each other's pods.
    """

    def __init__(
        self,
        *,
        node_name: str,
        docker: aiodocker.Docker | None = None,
        docker_host: str | None = None,
        pause_image: str = DEFAULT_PAUSE_IMAGE,
        pull_timeout: float = 300.0,
        ping_timeout: float = 5.0,
    ) -> None:
        self.node_name = node_name
        self.pause_image = pause_image
        self.pull_timeout = pull_timeout
        self.ping_timeout = ping_timeout
        # (with a shared ``docker`` this only names the daemon in error messages)
        self.docker_host = docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
        if docker is None and not _SCHEMES.match(self.docker_host):
            raise ValueError(f"unsupported Docker host {self.docker_host!r} (unix:// or tcp://)")
        self._docker = docker
        self._owned = docker is None
        self._pause_present = False
        """The pause image was found (or pulled) once: not looked up again for every pod.
        Should it be removed later, the sandbox's create says so and it is made again."""

    # -- the connection and its errors --

    def _client(self) -> aiodocker.Docker:
        """Opened lazily: aiohttp needs the running event loop, a constructor may not have it."""
        if self._docker is None:
            self._docker = aiodocker.Docker(url=self.docker_host, timeout=_CALLS)
        return self._docker

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Translate aiodocker/aiohttp errors raised by the block into the runtime's own."""
        try:
            yield
        except aiodocker.DockerError as exc:
            if exc.status == _CONNECTION_LOST:
                raise RuntimeUnavailable(self._unavailable(what, exc.message)) from exc
            if exc.status == 404:
                raise DockerNotFound(what, f"not found ({exc.message})", 404) from exc
            raise DockerCallError(what, exc.message, exc.status) from exc
        except (aiohttp.ClientError, OSError) as exc:  # OSError: TimeoutError too
            raise RuntimeUnavailable(self._unavailable(what, repr(exc))) from exc

    def _unavailable(self, what: str, detail: str) -> str:
        return f"Docker at {self.docker_host} does not answer ({what}): {detail}"

    async def close(self) -> None:
        if self._docker is not None and self._owned:
            await self._docker.close()
            self._docker = None

    # -- daemon --

    async def version(self) -> str:
        with self._errors("version"):
            info = await self._client().version()
        return f"docker://{info['Version']}"

    async def ping(self) -> None:
        """A version call bounded by ``ping_timeout``: a hung daemon must not hang the node."""
        try:
            async with asyncio.timeout(self.ping_timeout):
                await self.version()
        except TimeoutError as exc:
            detail = f"no answer within {self.ping_timeout}s"
            raise RuntimeUnavailable(self._unavailable("ping", detail)) from exc

    # -- images --

    async def _image(self, image: str) -> ImageResult | None:
        """The local image (ID and size), None when Docker does not have it."""
        try:
            with self._errors(f"inspect image {image}"):
                info = await self._client().images.inspect(image)
        except DockerNotFound:
            return None
        return ImageResult(id=str(info["Id"]), size=int(info.get("Size") or 0))

    async def _pull(self, image: str) -> float:
        """Pull ``image``; the seconds it took."""
        began = time.monotonic()
        try:
            async with asyncio.timeout(self.pull_timeout):
                with self._errors(f"pull {image}"):
                    await self._client().images.pull(image)
        except TimeoutError as exc:
            raise _pull_error(image, f"not done within {self.pull_timeout}s") from exc
        except DockerCallError as exc:
            raise _pull_error(image, exc.detail) from exc
        return time.monotonic() - began

    async def ensure_image(
        self, image: str, policy: str, *, on_pull: PullStarting | None = None
    ) -> ImageResult:
        """The image present per ``policy`` (Always/IfNotPresent/Never), and whether it pulled.

        Always falls back to a local copy when the pull fails: this cluster often runs
        without any registry (images built or loaded locally), where a strict Always would
        make every such pod ErrImagePull. Real kubelets fail instead; we log a warning and
        say so in ``pull_error``.
        """
        if policy not in PULL_POLICIES:
            raise ValueError(f"unknown image pull policy {policy!r}")
        local = await self._image(image)
        if policy == "Never" or (policy == "IfNotPresent" and local is not None):
            if local is None:
                raise ImagePullError(
                    f'Container image "{image}" is not present with pull policy of Never'
                )
            return local
        if on_pull is not None:
            on_pull()
        try:
            seconds = await self._pull(image)
        except ImagePullError as exc:
            if local is None:
                raise
            log.warning("pull failed, using the local image", image=image, error=str(exc))
            return dataclasses.replace(local, pull_error=exc.detail)
        pulled = await self._image(image)
        if pulled is None:
            raise _pull_error(image, "not present after the pull")
        return dataclasses.replace(pulled, pulled=True, pull_seconds=seconds)

    # -- create, start, stop, remove --

    async def _create(self, name: str, body: Body) -> str:
        """Create ``name``; its ID.

        A name conflict means an earlier call (timed out, or before a crash) got this far:
        our own container still created or running is that call's result and is returned;
        an exited one is removed and created anew. Someone else's is an error.
        """
        containers = self._client().containers
        try:
            with self._errors(f"create {name}"):
                return (await containers.create(body, name=name)).id
        except DockerCallError as exc:
            if exc.status != 409:
                raise
        with self._errors(f"inspect {name}"):
            info = await containers.container(name).show()
        labels = (info.get("Config") or {}).get("Labels") or {}
        if labels.get(MANAGED_BY) != "true" or labels.get(NODE_NAME) != self.node_name:
            raise DockerCallError(f"create {name}", "the name is taken by a foreign container", 409)
        if (info.get("State") or {}).get("Status") in ("created", "running"):
            return str(info["Id"])
        await self.remove_container(str(info["Id"]))
        with self._errors(f"create {name}"):
            return (await containers.create(body, name=name)).id

    async def run_sandbox(self, config: SandboxConfig) -> SandboxStatus:
        """Create and start the pause container, then inspect it once for its IP."""
        body = sandbox_body(config, image=self.pause_image, node_name=self.node_name)
        name = sandbox_name(config.pod, config.attempt)
        if not self._pause_present:
            await self.ensure_image(self.pause_image, "IfNotPresent")
            self._pause_present = True
        try:
            sandbox_id = await self._create(name, body)
        except DockerNotFound:  # the pause image went away since it was found
            self._pause_present = False
            await self.ensure_image(self.pause_image, "IfNotPresent")
            self._pause_present = True
            sandbox_id = await self._create(name, body)
        await self.start_container(sandbox_id)
        with self._errors(f"inspect {name}"):
            info = await self._client().containers.container(sandbox_id).show()
        return parse_sandbox(info)

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        body = container_body(config, sandbox_id=sandbox_id, node_name=self.node_name)
        return await self._create(container_name(config), body)

    async def start_container(self, container_id: str) -> None:
        """Starting a running container is a no-op (Docker answers 304)."""
        with self._errors(f"start {container_id}"):
            await self._client().containers.container(container_id).start()

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        """Docker's stop: SIGTERM (or the image's STOPSIGNAL), SIGKILL after whole seconds."""
        grace = max(0, math.ceil(grace_seconds))
        with contextlib.suppress(DockerNotFound), self._errors(f"stop {container_id}"):
            await self._client().containers.container(container_id).stop(t=grace)

    async def remove_container(self, container_id: str) -> None:
        """Forced (a running container is killed) and with its anonymous volumes."""
        try:
            with self._errors(f"remove {container_id}"):
                await self._client().containers.container(container_id).delete(force=True, v=True)
        except DockerNotFound:
            pass
        except DockerCallError as exc:
            if exc.status != 409 or "in progress" not in str(exc):  # another remover: fine
                raise

    async def stop_sandbox(self, sandbox_id: str, grace_seconds: float) -> None:
        """Stops the sandbox's containers too, as the CRI requires, then the pause process."""
        members = await self._ids(TYPE_CONTAINER, sandbox_id=sandbox_id)
        await asyncio.gather(*(self.stop_container(c, grace_seconds) for c in members))
        await self.stop_container(sandbox_id, grace_seconds)

    async def remove_sandbox(self, sandbox_id: str) -> None:
        """Removes the sandbox's containers (running or not) too, as the CRI requires."""
        members = await self._ids(TYPE_CONTAINER, sandbox_id=sandbox_id)
        await asyncio.gather(*(self.remove_container(c) for c in members))
        await self.remove_container(sandbox_id)

    # -- listing --

    async def _list(self, kind: str | None, **match: str | None) -> list[dict[str, Any]]:
        """One ``GET /containers/json``: per container its id, labels, state and networks."""
        filters = label_filters(self.node_name, kind, **match)
        with self._errors(f"list {kind or 'sandboxes and containers'}"):
            found = await self._client().containers.list(all=True, filters=filters)
        keys = ("Id", "Labels", "State", "NetworkSettings")
        return [{key: item[key] for key in keys if key in item} for item in found]

    async def _ids(self, kind: str, **match: str | None) -> list[str]:
        return [str(entry["Id"]) for entry in await self._list(kind, **match)]

    async def _inspect_all(self, ids: list[str]) -> list[dict[str, Any]]:
        """Inspect concurrently; a container removed meanwhile is simply left out."""

        async def one(container_id: str) -> dict[str, Any] | None:
            try:
                with self._errors(f"inspect {container_id}"):
                    return await self._client().containers.container(container_id).show()
            except DockerNotFound:
                return None

        return [info for info in await asyncio.gather(*map(one, ids)) if info is not None]

    async def sandboxes(self, pod_uid: str | None = None) -> list[SandboxStatus]:
        infos = await self._inspect_all(await self._ids(TYPE_SANDBOX, pod_uid=pod_uid))
        return sorted(map(parse_sandbox, infos), key=lambda s: (s.created_at, s.id))

    async def containers(self, pod_uid: str | None = None) -> list[ContainerStatus]:
        infos = await self._inspect_all(await self._ids(TYPE_CONTAINER, pod_uid=pod_uid))
        return sorted(map(parse_container, infos), key=lambda c: (c.created_at, c.id))

    async def container_status(self, container_id: str) -> ContainerStatus | None:
        found = await self._inspect_all([container_id])
        return parse_container(found[0]) if found else None

    async def snapshot(self, pod_uid: str) -> PodSnapshot:
        """One listing of both kinds for the pod, then an inspect of each (concurrently)."""
        ids = [str(entry["Id"]) for entry in await self._list(None, pod_uid=pod_uid)]
        infos = await self._inspect_all(ids)
        sandboxes = [parse_sandbox(i) for i in infos if is_sandbox(_labels_of(i))]
        containers = [parse_container(i) for i in infos if not is_sandbox(_labels_of(i))]
        return PodSnapshot(
            sandboxes=sorted(sandboxes, key=lambda s: (s.created_at, s.id)),
            containers=sorted(containers, key=lambda c: (c.created_at, c.id)),
        )

    async def states(self) -> list[ItemState]:
        """One ``GET /containers/json`` of this node's sandboxes and containers, no inspect."""
        return [parse_listed(entry) for entry in await self._list(None)]

    # -- logs and exec --

    async def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
    ) -> AsyncGenerator[bytes, None]:
        """stdout and stderr in the order written, as chunks (usually one line each).

        With ``follow`` it ends when the container stops; a reader that leaves earlier
        should ``aclose()`` it (``contextlib.aclosing``) to release the connection at once.

        Read through aiodocker's request layer rather than ``DockerContainer.log``: that one
        leaves its connection open when a follower leaves early (a leak until garbage
        collection), and decodes frames as UTF-8 although the interface wants bytes. Here
        the response is always closed and the bytes are passed on as the daemon sent them.
        """
        params: dict[str, Any] = {
            "stdout": True,
            "stderr": True,
            "follow": follow,
            "timestamps": timestamps,
            "tail": "all" if tail is None else tail,
        }
        if since is not None:
            params["since"] = f"{since:.9f}"  # Docker takes fractional epoch seconds
        what = f"logs of {container_id}"
        docker = self._client()
        with self._errors(what):
            info = await docker.containers.container(container_id).show()
            response = await docker._do_query(
                f"containers/{container_id}/logs",
                "GET",
                params=params,
                timeout=_FOLLOWING if follow else _CALLS,
            )
        tty = bool((info.get("Config") or {}).get("Tty"))
        try:
            while True:
                with self._errors(what):
                    chunk = await _next_chunk(response.content, tty=tty)
                if chunk is None:
                    return
                yield chunk
        finally:
            response.close()

    async def exec(self, container_id: str, command: list[str], limit_seconds: float) -> ExecResult:
        """Run ``command`` to completion; TimeoutError after ``limit_seconds``.

        Docker cannot kill an exec'd process: after a timeout it may run on in the container,
        as with the Docker shim.
        """
        what = f"exec {command!r} in {container_id}"
        output = bytearray()
        try:
            async with asyncio.timeout(limit_seconds):
                with self._errors(what):
                    container = self._client().containers.container(container_id)
                    execution = await container.exec(command, stdout=True, stderr=True)
                    async with execution.start(detach=False) as stream:
                        while (message := await stream.read_out()) is not None:
                            output += message.data
                    exit_code = await self._exit_code(execution)
        except TimeoutError as exc:  # only asyncio.timeout's: _errors maps the others
            raise TimeoutError(f"{what} timed out after {limit_seconds}s") from exc
        return ExecResult(exit_code=exit_code, output=bytes(output))

    async def exec_stream(
        self,
        container_id: str,
        command: list[str],
        *,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        tty: bool,
    ) -> ExecSession:
        """``command`` started with the streams asked for, over a hijacked connection.

        The stream is opened here, not on first use, so that a resize sent at once (kubectl
        sends the terminal's size first thing) finds the process started.
        """
        what = f"exec {command!r} in {container_id}"
        with self._errors(what):
            container = self._client().containers.container(container_id)
            execution = await container.exec(
                command, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty
            )
            stream = execution.start(detach=False)
            await stream.__aenter__()  # the upgrade; DockerStreams.close is its __aexit__
        return DockerStreams(self, stream, what, execution=execution)

    async def attach(
        self, container_id: str, *, stdin: bool, stdout: bool, stderr: bool
    ) -> ExecSession:
        """The container's streams from now on (no old logs); it ends when the container does.

        The end of the client's stdin reaches the container only if it has ``stdinOnce`` (and
        no TTY), as with containerd: otherwise its stdin stays open for the next attach. Docker
        itself would end the whole attach there, output included.
        """
        what = f"attach to {container_id}"
        with self._errors(what):
            container = self._client().containers.container(container_id)
            config = (await container.show()).get("Config") or {}
            stream = container.attach(stdin=stdin, stdout=stdout, stderr=stderr)
            await stream.__aenter__()
        eof = bool(config.get("StdinOnce")) and not config.get("Tty")
        return DockerStreams(self, stream, what, container=container, stdin_eof=eof)

    @staticmethod
    async def _exit_code(execution: aiodocker.execs.Exec) -> int:
        """The stream can end a moment before Docker records the exit: poll until it has."""
        while True:
            info = await execution.inspect()
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            await asyncio.sleep(0.01)


class DockerStreams:
    """An exec'd command's or an attached container's streams over Docker's hijacked socket.

    aiodocker reads the socket into a bounded queue (64 KiB, the socket is paused when it is
    full) and waits for the socket to drain on writes, so nothing is gathered whole either
    way. Its stream can only close the socket entirely; ``close_stdin`` half-closes it, as
    the docker CLI does when its stdin ends, so the process gets EOF while its output is
    still read to the end (unless ``stdin_eof`` is False: then the end is not passed on).
    """

    RESIZE_TRIES = 10

    def __init__(
        self,
        runtime: DockerRuntime,
        stream: aiodocker.stream.Stream,
        what: str,
        *,
        execution: aiodocker.execs.Exec | None = None,
        container: aiodocker.containers.DockerContainer | None = None,
        stdin_eof: bool = True,
    ) -> None:
        self._runtime = runtime
        self._stream = stream
        self._what = what
        self._execution = execution
        self._container = container
        self._stdin_eof = stdin_eof
        self._closed = False

    async def read(self) -> tuple[int, bytes] | None:
        if self._closed:
            return None
        try:
            with self._runtime._errors(self._what):
                message = await self._stream.read_out()
        except RuntimeUnavailable:
            if self._closed:  # our own close() broke the read: that is the end, not an outage
                return None
            raise
        return None if message is None else (int(message.stream), bytes(message.data))

    async def write(self, data: bytes) -> None:
        with self._runtime._errors(self._what):
            await self._stream.write_in(data)

    async def close_stdin(self) -> None:
        if not self._stdin_eof:
            return
        response = getattr(self._stream, "_resp", None)  # aiodocker keeps the upgrade here
        connection = getattr(response, "connection", None)
        transport = getattr(connection, "transport", None)
        if isinstance(transport, asyncio.WriteTransport) and transport.can_write_eof():
            transport.write_eof()

    async def resize(self, width: int, height: int) -> None:
        """Retried a few times, as the docker CLI does: the TTY may not exist quite yet."""
        for attempt in range(self.RESIZE_TRIES):
            try:
                with self._runtime._errors(f"resize of {self._what}"):
                    if self._execution is not None:
                        await self._execution.resize(h=height, w=width)
                    elif self._container is not None:
                        await self._container.resize(h=height, w=width)
                return
            except DockerCallError as exc:
                if attempt == self.RESIZE_TRIES - 1:
                    log.info("resize failed", what=self._what, error=exc.detail)
                    return
                await asyncio.sleep(0.01 * (attempt + 1))

    async def exit_code(self) -> int | None:
        """Docker may record the exit a moment after the stream ends: polled, 1 ms first."""
        if self._execution is None:
            return None
        delay = 0.001
        with self._runtime._errors(f"inspect {self._what}"):
            async with asyncio.timeout(10):
                while True:
                    info = await self._execution.inspect()
                    if not info.get("Running") and info.get("ExitCode") is not None:
                        return int(info["ExitCode"])
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.05)

    async def close(self) -> None:
        self._closed = True
        await self._stream.close()


def _labels_of(info: dict[str, Any]) -> dict[str, str]:
    return dict((info.get("Config") or {}).get("Labels") or {})


def _pull_error(image: str, detail: str) -> ImagePullError:
    return ImagePullError(f'Failed to pull image "{image}": {detail}', detail)


async def _next_chunk(content: aiohttp.StreamReader, *, tty: bool) -> bytes | None:
    """The next piece of a log stream, None at its end.

    With a TTY the stream is the raw terminal output. Without, it is Docker's multiplexed
    format: frames of an 8-byte header (stream number, 3 zero bytes, big-endian payload
    size) and the payload; stdout and stderr are both wanted, so the stream number is
    dropped. A frame cut short (the daemon went away) ends the stream.
    """
    if tty:
        return await content.readany() or None
    try:
        while True:
            header = await content.readexactly(8)
            size = int.from_bytes(header[4:], "big")
            if size:
                return await content.readexactly(size)
    except asyncio.IncompleteReadError:
        return None
