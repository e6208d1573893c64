"""``pods/portforward``: kubectl's SPDY sessions and the Python client's channels, ending in
TCP connections to the pod.

Three ways in, as kube-apiserver and the kubelet accept them:

- kubectl >= 1.31: a WebSocket GET with subprotocol ``SPDY/3.1+portforward.k8s.io``; the
  SPDY byte stream travels in binary messages, cut anywhere (kubectl writes each frame
  field as its own message);
- kubectl < 1.31 (and 1.31+ after a refused WebSocket): POST with ``Upgrade: SPDY/3.1`` and
  ``X-Stream-Protocol-Version: portforward.k8s.io``, then SPDY on the raw connection;
- the Python client: a WebSocket with ``v4.channel.k8s.io`` (or its base64 twin, or no
  subprotocol) and ``?ports=80,443``; port i has data channel 2i and error channel 2i+1,
  and the server's first message on each carries the port, 2 bytes little-endian.

In a SPDY session each local connection brings an ``error`` and a ``data`` stream
(headers ``streamType``, ``port``, ``requestID``); the pair is forwarded as the kubelet
does it (``kubelet/pkg/cri/streaming/portforward/httpstream.go``): connect to the pod,
copy both ways, FIN both streams at the end, a failure written as text on the error
stream. kubectl 1.32 prints that text and, on any error, closes its whole session
(``lost connection to pod``); this server keeps a session serving for as long as the
client keeps it.

The pod's side is a :class:`PodConnector` from the node's kubelet (in-process, registered
with :meth:`PortForward.register_local`), else :class:`DirectConnector` to the pod IP.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import os
import re
import struct
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from aiohttp import WSMsgType, web

from minikube_py import errors
from minikube_py.apiserver import spdy, spdyupgrade
from minikube_py.apiserver.paths import ResourcePath
from minikube_py.meta.objects import Obj, dig
from minikube_py.registry.api import API

log = structlog.get_logger(__name__)

PORT_FORWARD_PROTOCOL = "portforward.k8s.io"
SPDY_TUNNEL_PROTOCOL = "SPDY/3.1+" + PORT_FORWARD_PROTOCOL
V4_BINARY = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
STREAM_CREATION_TIMEOUT = 30.0  # kube's DefaultStreamCreationTimeout
CONNECT_TIMEOUT = 10.0
READ_SIZE = 256 * 1024  # one pod read, one DATA frame, one WebSocket message
INBOUND_LIMIT = 1024 * 1024  # client bytes buffered per connection before reading stops
MAX_MESSAGE = 32 * 1024 * 1024
_PORT = re.compile(r"[0-9]+")

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Send = Callable[[bytes], Awaitable[None]]


class PodConnector(Protocol):
    """One pod's network for a session (``kubelet.portforward.SandboxConnector`` fits)."""

    @property
    def name(self) -> str:
        """How error texts name the pod (under CRI: the sandbox id)."""

    @property
    def uid(self) -> str: ...

    async def connect(self, port: int) -> Connection:
        """A TCP connection to ``port``; any exception's text is what the client is told."""


class NodeForwarder(Protocol):
    """A node's kubelet (``kubelet.portforward.PortForwardService`` fits)."""

    async def connector(self, namespace: str, name: str, uid: str) -> PodConnector:
        """The pod's connector, or an APIError when the kubelet refuses."""


@dataclass(frozen=True)
class DirectConnector:
    """For pods of nodes without an in-process kubelet: the pod IP, dialled from here.

    Errors name the pod ``<name>_<namespace>`` with its uid, as the kubelet did before CRI.
    """

    name: str
    uid: str
    address: str

    async def connect(self, port: int) -> Connection:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                return await asyncio.open_connection(self.address, port, limit=READ_SIZE * 4)
        except (OSError, TimeoutError) as exc:
            number = getattr(exc, "errno", None) or (
                errno.ETIMEDOUT if isinstance(exc, TimeoutError) else 0
            )
            reason = os.strerror(number).lower() if number else str(exc)
            raise ConnectionError(f"dial tcp {self.address}:{port}: connect: {reason}") from exc


# -- the subresource --


class PortForward:
    """Checks as kube-apiserver's ``PortForwardLocation``, then the upgrade, then forwarding."""

    def __init__(self, get_pod: Callable[[str, str], Awaitable[Obj]]) -> None:
        self.get_pod = get_pod
        self._local: dict[str, NodeForwarder] = {}

    @classmethod
    def for_api(cls, api: API) -> PortForward:
        pods = api.registries.catalog.by_kind("", "Pod")
        if pods is None:
            raise LookupError("the catalog has no pods")
        info = pods.info
        return cls(lambda namespace, name: api.get(info, namespace, name))

    def register_local(self, node_name: str, forwarder: NodeForwarder) -> None:
        """An in-process kubelet for ``node_name``: its pods are reached through it."""
        self._local[node_name] = forwarder

    def unregister_local(self, node_name: str) -> None:
        self._local.pop(node_name, None)

    async def handle(self, request: web.Request, path: ResourcePath) -> web.StreamResponse:
        if request.method not in ("GET", "POST"):
            raise errors.MethodNotAllowed(
                "the server does not allow this method on the requested resource"
            )
        pod = await self.get_pod(path.namespace, path.name)
        node = str(dig(pod, "spec", "nodeName") or "")
        if not node:
            raise errors.BadRequest(f"pod {path.name} does not have a host assigned")
        phase = str(dig(pod, "status", "phase") or "Pending")
        if phase != "Running":  # kubectl's own check and wording, for every client
            raise errors.BadRequest(
                f"unable to forward port because pod is not running. Current status={phase}"
            )
        if "upgrade" not in spdyupgrade.tokens(request.headers.getall("Connection", [])):
            raise errors.BadRequest("Upgrade request required")
        upgrade = request.headers.get("Upgrade", "").lower()
        if upgrade == "websocket":
            return await self._websocket(request, pod, node)
        return await self._spdy_upgrade(request, pod, node)

    async def _connector(self, node: str, pod: Obj) -> PodConnector:
        namespace = str(dig(pod, "metadata", "namespace") or "")
        name = str(dig(pod, "metadata", "name") or "")
        uid = str(dig(pod, "metadata", "uid") or "")
        local = self._local.get(node)
        if local is not None:
            return await local.connector(namespace, name, uid)
        address = str(dig(pod, "status", "podIP") or "")
        if not address and dig(pod, "spec", "hostNetwork"):
            address = str(dig(pod, "status", "hostIP") or "")  # the node's own address
        if not address:
            raise errors.InternalError(f"pod {name}_{namespace} has no IP address yet")
        return DirectConnector(f"{name}_{namespace}", uid, address)

    async def _websocket(self, request: web.Request, pod: Obj, node: str) -> web.StreamResponse:
        if request.method != "GET":
            raise errors.MethodNotAllowed("a WebSocket upgrade must be a GET")
        offered = spdyupgrade.tokens(
            request.headers.getall("Sec-WebSocket-Protocol", []), lower=False
        )
        if SPDY_TUNNEL_PROTOCOL in offered:
            ws = _websocket_response(SPDY_TUNNEL_PROTOCOL, request)
            connector = await self._connector(node, pod)
            await ws.prepare(request)
            await SpdyForwarder(ws.send_bytes, connector).serve(_binary_messages(ws))
            await ws.close()
            return ws
        chosen = next((p for p in offered if p in (V4_BINARY, V4_BASE64)), None)
        if offered and chosen is None:
            raise errors.BadRequest(
                f"requested protocol(s) are not supported: [{' '.join(offered)}];"
                f" supports [ {V4_BINARY} {V4_BASE64}]"
            )
        ports = parse_ports(request.query.getall("ports", []))
        ws = _websocket_response(chosen, request)
        connector = await self._connector(node, pod)
        await ws.prepare(request)
        await ChannelForwarder(ws, ports, connector, text=chosen == V4_BASE64).serve()
        return ws

    async def _spdy_upgrade(self, request: web.Request, pod: Obj, node: str) -> web.StreamResponse:
        """The pre-WebSocket way (``httpstream.Handshake``, then the SPDY upgrade)."""
        protocol = spdyupgrade.negotiate(request, (PORT_FORWARD_PROTOCOL,))
        connector = await self._connector(node, pod)
        upgraded = await spdyupgrade.Upgraded.accept(request, protocol)
        await SpdyForwarder(upgraded.write, connector).serve(upgraded.chunks())
        return upgraded.response


def parse_ports(values: list[str]) -> list[int]:
    """``ports=80,443`` (repeatable), as apimachinery converts query strings to ``[]int32``."""
    ports: list[int] = []
    for value in values:
        for text in value.split(","):
            if not _PORT.fullmatch(text) or int(text) > 65535:
                why = "invalid syntax" if not _PORT.fullmatch(text) else "value out of range"
                raise errors.BadRequest(
                    f'cannot convert to []int32: strconv.ParseUint: parsing "{text}": {why}'
                )
            if int(text) < 1:
                raise errors.BadRequest(f'port "{text}" must be > 0')
            ports.append(int(text))
    if not ports:
        raise errors.BadRequest('query parameter "port" is required')
    return ports


def _websocket_response(protocol: str | None, request: web.Request) -> web.WebSocketResponse:
    """Echo exactly the chosen subprotocol; no compression (kubectl never asks for it).

    A handshake aiohttp would refuse (no key, another version) is a 400 Status here, before
    anything is sent, rather than an exception.
    """
    ws = web.WebSocketResponse(
        protocols=(protocol,) if protocol else (), compress=False, max_msg_size=MAX_MESSAGE
    )
    if not ws.can_prepare(request).ok:
        raise errors.BadRequest("unable to upgrade: invalid WebSocket handshake")
    return ws


async def _binary_messages(ws: web.WebSocketResponse) -> AsyncIterator[bytes]:
    """The tunnelled byte stream; anything but a binary message ends it, as in client-go."""
    async for message in ws:
        if message.type != WSMsgType.BINARY:
            log.info("port-forward tunnel got a non-binary message", type=message.type.name)
            return
        yield message.data


class _Inbound:
    """Client bytes on their way to the pod, bounded: a full buffer holds the reader back.

    One producer (the session's reader), one consumer (the pump into the pod). Bytes may
    arrive before the pod connection exists (kubectl sends as soon as the stream is up).
    """

    def __init__(self, limit: int = INBOUND_LIMIT) -> None:
        self._chunks: deque[bytes] = deque()
        self._size, self._limit = 0, limit
        self._ended = self._closed = False
        self._changed = asyncio.Event()

    async def put(self, data: bytes) -> None:
        while self._size >= self._limit and not self._closed:
            self._changed.clear()
            await self._changed.wait()
        if not self._closed:
            self._chunks.append(data)
            self._size += len(data)
            self._changed.set()

    def end(self) -> None:
        """The client sent FIN: the pod gets EOF after the buffered bytes."""
        self._ended = True
        self._changed.set()

    def close(self) -> None:
        """Nobody reads any more: drop what is buffered and never block the producer."""
        self._closed = True
        self._chunks.clear()
        self._changed.set()

    async def get(self) -> bytes | None:
        while not self._chunks:
            if self._ended or self._closed:
                return None
            self._changed.clear()
            await self._changed.wait()
        data = self._chunks.popleft()
        self._size -= len(data)
        self._changed.set()
        return data


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    inbound: _Inbound,
    deliver: Callable[[bytes], Awaitable[bool]],
    stop: asyncio.Event | None = None,
) -> None:
    """Copy both ways until the pod ends its side (or ``stop``); then close the connection.

    The client's end (``inbound`` running dry) becomes a half-close towards the pod, which
    may still answer: ``sha256sum`` behind ``nc -e`` replies after EOF.
    """

    async def upload() -> None:
        with contextlib.suppress(OSError):
            while (data := await inbound.get()) is not None:
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

    async def download() -> None:
        with contextlib.suppress(OSError):
            while chunk := await reader.read(READ_SIZE):
                if not await deliver(chunk):
                    return

    try:
        async with asyncio.TaskGroup() as group:
            pumps = [group.create_task(upload()), group.create_task(download())]
            waits = {pumps[1]}
            if stop is not None:
                waits.add(group.create_task(_until(stop)))
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in (*pumps, *waits):
                task.cancel()
    finally:
        inbound.close()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _until(event: asyncio.Event) -> None:
    await event.wait()


def _forward_error(connector: PodConnector, port: int, exc: BaseException) -> str:
    """The kubelet's wrapping of a runtime failure (``httpstream.go``)."""
    return f"error forwarding port {port} to pod {connector.name}, uid {connector.uid}: {exc}"


# -- SPDY sessions (kubectl) --


@dataclass(eq=False)
class _Pair:
    """The two streams of one forwarded connection, as the kubelet pairs them."""

    request_id: str
    port: int = 0
    error_id: int = 0
    data_id: int = 0
    complete: asyncio.Event = field(default_factory=asyncio.Event)
    data_reset: asyncio.Event = field(default_factory=asyncio.Event)
    inbound: _Inbound = field(default_factory=_Inbound)

    def add(self, kind: str, stream_id: int, port: int) -> str:
        """Take a stream; the kubelet's complaint when this pair already has one."""
        if kind == "error":
            if self.error_id:
                return "error stream already assigned"
            self.error_id = stream_id
        else:
            if self.data_id:
                return "data stream already assigned"
            self.data_id, self.port = stream_id, port
        if self.error_id and self.data_id:
            self.complete.set()
        return ""


def stream_problem(headers: spdy.Headers) -> str:
    """``httpStreamReceived``: why the kubelet would refuse this stream ("" if it would not)."""
    port = (headers.get("port") or [""])[0]
    if not port:
        return '"port" header is required'
    if not _PORT.fullmatch(port) or int(port) > 65535:
        why = "invalid syntax" if not _PORT.fullmatch(port) else "value out of range"
        return f'unable to parse "{port}" as a port: strconv.ParseUint: parsing "{port}": {why}'
    if int(port) < 1:
        return f'port "{port}" must be > 0'
    kind = (headers.get("streamtype") or [""])[0]
    if not kind:
        return '"streamType" header is required'
    if kind not in ("error", "data"):
        return f'invalid stream type "{kind}"'
    return ""


class SpdyForwarder:
    """One kubectl session: SPDY in, stream pairs forwarded to the pod, SPDY out."""

    def __init__(
        self,
        send: Send,
        connector: PodConnector,
        *,
        creation_timeout: float = STREAM_CREATION_TIMEOUT,
    ) -> None:
        # spdystream, kubectl's SPDY, does no flow control (see spdy.py): TCP and the
        # bounded buffers here are the only back-pressure, as between kubectl and kubelet.
        self.session = spdy.Session(client=False, flow_control=False)
        self._outbox = spdy.Outbox(self.session, send)
        self._connector = connector
        self._creation_timeout = creation_timeout
        self._pairs: dict[str, _Pair] = {}
        self._by_stream: dict[int, _Pair] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def serve(self, chunks: AsyncIterator[bytes]) -> None:
        """Until the client goes (or breaks the protocol); open forwards end with it."""
        async with asyncio.TaskGroup() as group:
            try:
                async for chunk in chunks:
                    for event in self.session.receive(chunk):
                        await self._on_event(event, group)
                    if not await self.flush():
                        break
            except spdy.SessionError as exc:
                log.info("port-forward session ended by a protocol error", error=str(exc))
                await self.flush()
            finally:
                for task in self._tasks:
                    task.cancel()

    async def flush(self) -> bool:
        """Send what the session queued, in order; False once the client is gone."""
        return await self._outbox.flush()

    async def _on_event(self, event: spdy.Event, group: asyncio.TaskGroup) -> None:
        match event:
            case spdy.StreamOpened(stream_id, headers):
                self._open(stream_id, headers, group)
            case spdy.DataReceived(stream_id, data, fin):
                pair = self._by_stream.get(stream_id)
                if pair is not None and stream_id == pair.data_id:
                    if data:
                        await pair.inbound.put(data)
                    if fin:
                        pair.inbound.end()
            case spdy.StreamReset(stream_id):
                pair = self._by_stream.get(stream_id)
                if pair is not None and stream_id == pair.data_id:
                    pair.data_reset.set()
            case _:
                pass  # pings are answered by the session; nothing else concerns a forward

    def _open(self, stream_id: int, headers: spdy.Headers, group: asyncio.TaskGroup) -> None:
        problem = stream_problem(headers)
        if problem:  # the kubelet resets a stream its handler refuses
            log.info("port-forward stream refused", stream=stream_id, reason=problem)
            self.session.reset(stream_id, spdy.RstStatus.CANCEL)
            return
        self.session.reply(stream_id)
        kind = headers["streamtype"][0]
        request_id = (headers.get("requestid") or [""])[0]
        if not request_id:  # clients before 1.6: ids of one connection's streams differ by 2
            request_id = str(stream_id if kind == "error" else stream_id - 2)
        pair = self._pairs.get(request_id)
        if pair is None:
            pair = self._pairs[request_id] = _Pair(request_id)
            task = group.create_task(self._forward(pair), name=f"port-forward-{request_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        problem = pair.add(kind, stream_id, int(headers["port"][0]))
        if problem:
            self._write_error(pair, f"error processing stream for request {request_id}: {problem}")
            self.session.reset(stream_id, spdy.RstStatus.CANCEL)
        else:
            self._by_stream[stream_id] = pair

    async def _forward(self, pair: _Pair) -> None:
        try:
            async with asyncio.timeout(self._creation_timeout):
                await pair.complete.wait()
        except TimeoutError:
            message = f"(conn=spdy, request={pair.request_id}) timed out waiting for streams"
            log.warning("port-forward failed", error=message)
            self._write_error(pair, message)
            await self._end(pair)
            return
        try:
            reader, writer = await self._connector.connect(pair.port)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the kubelet reports any failure as text, so do we
            message = _forward_error(self._connector, pair.port, exc)
            log.info("port-forward failed", error=message)
            self._write_error(pair, message)
            await self._end(pair)
            return
        try:
            await _pipe(reader, writer, pair.inbound, self._deliver(pair), pair.data_reset)
        finally:
            await self._end(pair)

    def _deliver(self, pair: _Pair) -> Callable[[bytes], Awaitable[bool]]:
        async def deliver(chunk: bytes) -> bool:
            if not self.session.is_open(pair.data_id):
                return False
            self.session.send_data(pair.data_id, chunk)
            return await self.flush()

        return deliver

    def _write_error(self, pair: _Pair, message: str) -> None:
        if pair.error_id and self.session.is_open(pair.error_id):
            self.session.send_data(pair.error_id, message.encode())

    async def _end(self, pair: _Pair) -> None:
        """FIN whatever is still open (kubectl waits for both), forget the pair."""
        pair.inbound.close()
        for stream_id in (pair.data_id, pair.error_id):
            if stream_id and self.session.is_open(stream_id):
                self.session.send_data(stream_id, b"", fin=True)
            self._by_stream.pop(stream_id, None)
        self._pairs.pop(pair.request_id, None)
        await self.flush()


# -- channel WebSockets (the Python client) --


class ChannelForwarder:
    """``v4.channel.k8s.io``: one connection per port, opened at once, as the kubelet does.

    The WebSocket closes when every port's connection has ended; the client closing it
    ends them all.
    """

    def __init__(
        self, ws: web.WebSocketResponse, ports: list[int], connector: PodConnector, *, text: bool
    ) -> None:
        self._ws = ws
        self._ports = ports
        self._connector = connector
        self._text = text
        self._inbound = [_Inbound() for _ in ports]

    async def serve(self) -> None:
        for index, port in enumerate(self._ports):
            prefix = struct.pack("<H", port)
            await self._write(2 * index, prefix)
            await self._write(2 * index + 1, prefix)
        async with asyncio.TaskGroup() as group:
            forwards = [
                group.create_task(self._forward(index, port))
                for index, port in enumerate(self._ports)
            ]
            closer = group.create_task(self._close_after(forwards))
            await self._read()
            for task in (*forwards, closer):
                task.cancel()

    async def _close_after(self, forwards: list[asyncio.Task[None]]) -> None:
        await asyncio.wait(forwards)
        await self._ws.close()

    async def _read(self) -> None:
        """Client messages into their port's buffer; what fits no data channel is dropped."""
        async for message in self._ws:
            try:
                if message.type == WSMsgType.BINARY:
                    channel, data = message.data[0], message.data[1:]
                elif message.type == WSMsgType.TEXT:
                    channel = ord(message.data[0]) - ord("0")
                    data = base64.b64decode(message.data[1:], validate=True)
                else:
                    continue
            except (IndexError, ValueError):  # empty, or not base64
                continue
            index, rest = divmod(channel, 2)
            if rest == 0 and 0 <= index < len(self._inbound) and data:
                await self._inbound[index].put(data)

    async def _write(self, channel: int, data: bytes) -> bool:
        try:
            if self._text:
                await self._ws.send_str(chr(ord("0") + channel) + base64.b64encode(data).decode())
            else:
                await self._ws.send_bytes(bytes([channel]) + data)
        except ConnectionError:
            return False
        return True

    async def _forward(self, index: int, port: int) -> None:
        try:
            reader, writer = await self._connector.connect(port)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the kubelet reports any failure as text, so do we
            message = _forward_error(self._connector, port, exc)
            log.info("port-forward failed", error=message)
            self._inbound[index].close()  # the reader must never wait on this port again
            await self._write(2 * index + 1, message.encode())
            return

        async def deliver(chunk: bytes) -> bool:
            return await self._write(2 * index, chunk)

        await _pipe(reader, writer, self._inbound[index], deliver)
