"""``pods/exec`` and ``pods/attach``: check what the API server can see, then relay to a kubelet.

As kube-apiserver (``ExecLocation``/``AttachLocation`` in ``pkg/registry/core/pod``), the
API server checks only the pod: that it exists (404), the container (``container x is not
valid for pod p``, or the only one when none is named), and that it has a node (400 ``pod
p does not have a host assigned``). These come back before any upgrade, as a Status that
kubectl prints as ``Error from server (BadRequest): ...``. Only then must the request be
an upgrade: a WebSocket, or the SPDY/3.1 upgrade of kubectl before 1.31 (and of 1.30 when
its WebSocket is refused or turned off), else 400 ``Upgrade request required``.

What the kubelet says is passed on as kube-apiserver 1.32 does, which depends on the
subprotocol:

- v5 (kubectl): kube-apiserver's stream translator accepts the WebSocket first and is
  itself a client of the kubelet; a kubelet refusal arrives on the error channel as
  ``Internal error occurred: unable to upgrade connection: container not found ("c")``, and
  the final Status is reworded (:func:`channels.translated_for_v5`);
- v4 and older (the Python client), and SPDY (:mod:`spdyexec`): the request is proxied to
  the kubelet, so a refusal is the kubelet's own HTTP status and text, and its Status
  reaches the client unchanged.

The kubelet is reached in-process when it runs in this process (a registered
``StreamService``), else as a WebSocket (v5, so that the end of stdin travels) to
``http://<node address>:<kubelet port>/exec/{ns}/{pod}/{container}?...``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import quote, unquote, urlencode

import aiohttp
import structlog
from aiohttp import hdrs, web

from minikube_py import errors
from minikube_py.apiserver import channels, spdyexec, spdyupgrade
from minikube_py.apiserver.channels import V5, ChannelConnection, Refused, StreamOptions
from minikube_py.apiserver.nodeproxy import (
    UnknownError,
    kubelet_address,
    pod_and_node_getters,
    resolve_container,
)
from minikube_py.meta.objects import Obj, dig
from minikube_py.registry.api import API

log = structlog.get_logger(__name__)

NOT_ALLOWED = "the server does not allow this method on the requested resource"


class LocalStreams(Protocol):
    """An in-process kubelet's stream service (``kubelet.streams.StreamService`` fits)."""

    async def open(
        self, kind: str, namespace: str, pod: str, container: str, options: StreamOptions
    ) -> channels.Session: ...


class OpenConnection(Protocol):
    """A client connection in use (a channel WebSocket or a SPDY session)."""

    async def going_away(self) -> None:
        """Close it now: the server is shutting down."""
        ...


class KubeletUnreachable(Exception):
    """No connection to the node's kubelet (the message is Go's dial error)."""


class RemoteSession:
    """A session run by a kubelet on another machine, over its WebSocket (v5)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._status = bytearray()

    async def read(self) -> tuple[int, bytes] | None:
        while True:
            message = await self._ws.receive()
            if message.type is not aiohttp.WSMsgType.BINARY:
                return None  # the kubelet closes after the Status
            data = bytes(message.data)
            channel, payload = (data[0], data[1:]) if data else (-1, b"")
            if channel == channels.ERROR:
                self._status += payload
            elif channel in (channels.STDOUT, channels.STDERR) and payload:
                return channel, payload

    async def _send(self, data: bytes) -> None:
        with contextlib.suppress(ConnectionError):
            await self._ws.send_bytes(data)

    async def write(self, data: bytes) -> None:
        await self._send(bytes((channels.STDIN,)) + data)

    async def close_stdin(self) -> None:
        await self._send(bytes((channels.CLOSE, channels.STDIN)))

    async def resize(self, width: int, height: int) -> None:
        size = json.dumps({"Width": width, "Height": height}).encode()
        await self._send(bytes((channels.RESIZE,)) + size)

    async def status(self) -> Obj:
        try:
            status = json.loads(self._status)
        except ValueError:
            status = None
        if not isinstance(status, dict):
            return channels.internal_error("the kubelet closed the stream without a status")
        return status

    async def close(self) -> None:
        await self._ws.close()


def _dial_error(exc: BaseException) -> str:
    """Go's wording for a failed dial (``dial tcp 10.0.0.2:10250: connect: connection refused``)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        number = exc.os_error.errno
        reason = os.strerror(number) if number else str(exc.os_error)
        return f"dial tcp {exc.host}:{exc.port}: connect: {reason[:1].lower()}{reason[1:]}"
    return str(exc) or type(exc).__name__


class StreamConnections:
    """The way to each node's kubelet for streams: registered in-process services, else HTTP."""

    def __init__(
        self,
        *,
        connect_timeout: float = 30.0,
        address: Callable[[Obj], tuple[str, int]] = kubelet_address,
    ) -> None:
        self._local: dict[str, LocalStreams] = {}
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout)
        self.address = address
        """Where a node's kubelet listens (the node's preferred address and reported port)."""

    def register_local(self, node_name: str, service: LocalStreams) -> None:
        self._local[node_name] = service

    def unregister_local(self, node_name: str) -> None:
        self._local.pop(node_name, None)

    async def open(
        self,
        node: Obj,
        kind: str,
        namespace: str,
        pod: str,
        container: str,
        options: StreamOptions,
    ) -> channels.Session:
        """A running session; :class:`Refused` (the kubelet said no) or KubeletUnreachable."""
        local = self._local.get(str(dig(node, "metadata", "name") or ""))
        if local is not None:
            return await local.open(kind, namespace, pod, container, options)
        host, port = self.address(node)
        host = f"[{host}]" if ":" in host else host
        path = "/".join(quote(part, safe="") for part in (kind, namespace, pod, container))
        url = f"http://{host}:{port}/{path}?{urlencode(options.kubelet_query())}"
        try:
            ws = await self._client().ws_connect(
                url, protocols=(V5,), compress=0, max_msg_size=channels.MAX_MESSAGE
            )
        except aiohttp.WSServerHandshakeError as exc:
            headers = exc.headers if exc.headers is not None else {}
            text = unquote(headers.get(channels.REFUSAL_HEADER, ""))
            raise Refused(exc.status, text or f"{exc.status} {exc.message}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise KubeletUnreachable(_dial_error(exc)) from exc
        return RemoteSession(ws)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        """Close the HTTP connections to kubelets (API server shutdown)."""
        if self._session is not None:
            await self._session.close()
            self._session = None


Getter = Callable[[str, str], Awaitable[Obj]]


class PodStreams:
    """``/api/v1/namespaces/{ns}/pods/{name}/exec`` and ``.../attach``."""

    def __init__(
        self,
        get_pod: Getter,
        get_node: Callable[[str], Awaitable[Obj]],
        connections: StreamConnections,
    ) -> None:
        self.get_pod = get_pod
        self.get_node = get_node
        self.connections = connections
        self._open: set[OpenConnection] = set()

    @classmethod
    def for_api(cls, api: API, connections: StreamConnections) -> PodStreams:
        """Pods and nodes read through the API's registries (the watch cache)."""
        return cls(*pod_and_node_getters(api), connections)

    async def handle(
        self, request: web.Request, kind: str, namespace: str, name: str
    ) -> web.StreamResponse:
        """``kind`` is ``exec`` or ``attach``: kube-apiserver's checks in its order, then relay."""
        if request.method not in ("GET", "POST"):
            raise errors.MethodNotAllowed(NOT_ALLOWED)
        options = channels.api_options(request.query)
        if kind == "attach":  # PodAttachOptions has no command
            options = dataclasses.replace(options, command=())
        pod = await self.get_pod(namespace, name)
        container = resolve_container(pod, options.container)
        node_name = str(dig(pod, "spec", "nodeName") or "")
        if not node_name:
            raise errors.BadRequest(f"pod {name} does not have a host assigned")
        node = await self.get_node(node_name)
        spdy_protocol = _spdy_protocol(request)  # never v5: refusals as for a proxied v4
        protocol = spdy_protocol or _protocol(request)
        try:
            session = await self.connections.open(node, kind, namespace, name, container, options)
        except Refused as refusal:
            if protocol != V5:
                return channels.refusal_response(refusal)
            message = f"unable to upgrade connection: {refusal.text.strip()}"
            return await self._fail(request, protocol, options, message)
        except KubeletUnreachable as exc:
            message = f"error dialing backend: {exc}"
            if protocol != V5:
                raise UnknownError(message) from exc
            return await self._fail(request, protocol, options, message)
        try:
            if spdy_protocol:
                return await self._serve_spdy(request, spdy_protocol, options, session)
            return await self._serve(request, protocol, options, session)
        finally:
            await session.close()

    async def _serve_spdy(
        self,
        request: web.Request,
        protocol: str,
        options: StreamOptions,
        session: channels.Session,
    ) -> web.StreamResponse:
        upgraded = await spdyupgrade.Upgraded.accept(request, protocol)
        streams = spdyexec.SpdyExec(protocol, options, upgraded.write, upgraded.abort)
        self._open.add(streams)
        try:
            await streams.serve(upgraded.chunks(), session)
        except Exception:  # the upgrade is done: a Status can no longer be answered
            log.exception("SPDY stream relay failed", path=request.path)
        finally:
            self._open.discard(streams)
        return upgraded.response

    async def _serve(
        self,
        request: web.Request,
        protocol: str,
        options: StreamOptions,
        session: channels.Session,
    ) -> web.StreamResponse:
        connection = await ChannelConnection.accept(request, protocol, options)
        self._open.add(connection)
        final = channels.translated_for_v5 if protocol == V5 else _unchanged
        try:
            await channels.relay(connection, session, final=final)
        except Exception:  # the upgrade is done: a Status can no longer be answered
            log.exception("stream relay failed", path=request.path)
        finally:
            self._open.discard(connection)
        return connection.ws

    async def _fail(
        self, request: web.Request, protocol: str, options: StreamOptions, message: str
    ) -> web.StreamResponse:
        """The v5 way to fail after the checks: upgrade, then say it on the error channel."""
        connection = await ChannelConnection.accept(request, protocol, options)
        with contextlib.suppress(ConnectionError):
            await connection.send_status(channels.internal_error(message))
            await connection.close()
        return connection.ws

    async def shutdown(self) -> None:
        """Close every open session's WebSocket (API server shutdown): none holds it up."""
        for connection in list(self._open):
            with contextlib.suppress(ConnectionError):
                await connection.going_away()


def _unchanged(status: Obj) -> Obj:
    return status


def _spdy_protocol(request: web.Request) -> str:
    """The protocol of a SPDY upgrade (or its refusal as a Status); "" for anything else.

    Checked before the kubelet is asked, so that a request that cannot be switched never
    starts a process.
    """
    if not spdyupgrade.requested(request):
        return ""
    return spdyupgrade.negotiate(request, spdyexec.PROTOCOLS)


def _protocol(request: web.Request) -> str:
    """The subprotocol to speak, or the 400 kube-apiserver answers to a non-upgrade."""
    if not channels.is_websocket(request):
        raise errors.BadRequest("Upgrade request required")
    try:
        return channels.negotiate(request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL, ""))
    except channels.UnsupportedProtocol as exc:
        raise errors.BadRequest(str(exc)) from exc
