"""``pods/portforward`` with the real kubectl 1.32 and the official Python client, on Docker.

One in-process cluster for the module (SQLite, a kubelet on real Docker, the scheduler and
the workload controllers) and one busybox pod ``web``: ``httpd`` on port 80 serving a 10 MB
file of random bytes with its sha256, and ``nc -ll -p 9000 -e sha256sum`` answering the hash
of whatever it is sent. kubectl runs as a subprocess against the in-process server
(``KUBECONFIG=/dev/null``, a fresh ``KUBECACHEDIR``); the Python client, which blocks, runs
in a thread. A small SPDY client built on :mod:`minikube_py.apiserver.spdy` drives sessions
where kubectl cannot show the server's side (a session that outlives an error, the plain
SPDY upgrade, clients without request ids).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

import minikube_py.components  # noqa: F401  (registers the scheduler and the controllers)
from minikube_py.apiserver import spdy
from minikube_py.apiserver.portforward import SPDY_TUNNEL_PROTOCOL, SpdyForwarder
from minikube_py.client.interface import Selection
from minikube_py.cluster import Cluster
from minikube_py.kubelet.sync import PODS
from minikube_py.meta.objects import Obj
from minikube_py.registry.kinds import catalog
from tests.support.cluster import running_cluster
from tests.support.docker import remove_node_containers, require_docker
from tests.support.etcd import free_port
from tests.support.requirements import missing, require_binary
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

REPO = Path(__file__).resolve().parents[2]
SIZE = 10 * 1024 * 1024
WEB = (
    f"mkdir -p /www && head -c {SIZE} /dev/urandom > /www/big && cd /www"
    " && sha256sum big > big.sha256 && echo hello > index.html"
    " && (nc -ll -p 9000 -e sha256sum &) && exec httpd -f -p 80 -h /www"
)
SERVICES = catalog().by_kind("", "Service").info  # type: ignore[union-attr]
DEPLOYMENTS = catalog().by_kind("apps", "Deployment").info  # type: ignore[union-attr]


@dataclass
class Env:
    cluster: Cluster
    node: str

    @property
    def port(self) -> int:
        return self.cluster.config.apiserver.port

    async def pod(self, name: str) -> Obj:
        return await self.cluster.client.get(PODS, "default", name)


def web_container(script: str = WEB) -> Obj:
    return {"name": "web", "image": "busybox:1.35", "command": ["sh", "-c", script]}


async def listening(address: str, *ports: int) -> bool:
    for port in ports:
        try:
            _, writer = await asyncio.open_connection(address, port)
        except OSError:
            return False
        writer.close()
    return True


async def serving(env: Env, name: str, *ports: int) -> str:
    """Wait until pod ``name`` runs and listens (Running comes before ``httpd`` is up)."""

    async def ready() -> bool:
        status = (await env.pod(name)).get("status") or {}
        address = status.get("podIP")
        return status.get("phase") == "Running" and bool(address)

    await wait_until(ready, within=120, what=f"pod {name} Running")
    address = str((await env.pod(name))["status"]["podIP"])
    await wait_until(lambda: listening(address, *ports), within=60, what=f"{name} listening")
    return address


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    require_docker()
    require_binary("kubectl")
    node = f"pf-{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp("portforward")
    components = ("scheduler", "workload-controllers")
    try:
        async with running_cluster(
            tmp, simulated_nodes=0, docker_node=node, components=components
        ) as cluster:
            pod = {
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {"nodeName": node, "containers": [web_container()]},
            }
            await cluster.client.create(PODS, "default", pod)
            env = Env(cluster, node)
            await serving(env, "web", 80, 9000)
            yield env
    finally:
        remove_node_containers(node)


# -- clients --


@dataclass
class Forward:
    """A running ``kubectl port-forward``: remote port → local port, and what it said."""

    process: asyncio.subprocess.Process
    local: dict[int, int] = field(default_factory=dict)
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)


async def _collect(stream: asyncio.StreamReader, into: bytearray) -> None:
    while chunk := await stream.read(65536):
        into += chunk


@contextlib.asynccontextmanager
async def forwarding(
    env: Env, home: Path, target: str, *ports: str, kubectl: str = "kubectl"
) -> AsyncIterator[Forward]:
    """``kubectl port-forward <target> <ports>`` until the block ends (or kubectl does)."""
    process = await asyncio.create_subprocess_exec(
        kubectl, "--server", f"http://127.0.0.1:{env.port}", "port-forward", target, *ports,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "KUBECONFIG": "/dev/null", "KUBECACHEDIR": str(home / "kube")},
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    forward = Forward(process)
    async with asyncio.TaskGroup() as group:
        group.create_task(_collect(process.stderr, forward.stderr))
        try:
            while len(forward.local) < len(ports):
                line = await asyncio.wait_for(process.stdout.readline(), 60)
                if not line:
                    break  # kubectl gave up: the test reads why from stderr
                forward.stdout += line
                found = re.match(rb"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)", line)
                if found:
                    forward.local[int(found[2])] = int(found[1])
            group.create_task(_collect(process.stdout, forward.stdout))
            yield forward
        finally:
            if process.returncode is None:
                process.terminate()
            await process.wait()


async def http_get(port: int, path: str) -> tuple[bytes, bytes]:
    """HTTP/1.0 GET (busybox httpd closes after the answer): status line and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], body


async def hash_of_upload(port: int, data: bytes) -> str:
    """Send ``data`` to ``sha256sum`` in the pod, half-close, read its answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    writer.write_eof()
    answer = await reader.read()
    writer.close()
    return answer.decode().split()[0]


class SpdyClient:
    """kubectl's side of a session, for what kubectl does not show."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        self.session = spdy.Session(client=True, flow_control=False)
        self._send = send
        self.received: dict[int, bytearray] = {}
        self.finished: dict[int, asyncio.Event] = {}
        self.reset: dict[int, int] = {}
        self.pongs: list[int] = []

    async def run(self, chunks: AsyncIterator[bytes]) -> None:
        async for chunk in chunks:
            for event in self.session.receive(chunk):
                match event:
                    case spdy.DataReceived(stream_id, data, fin):
                        self.received[stream_id] += data
                        if fin:
                            self.finished[stream_id].set()
                    case spdy.StreamReset(stream_id, status):
                        self.reset[stream_id] = status
                        self.finished[stream_id].set()
                    case spdy.PingAnswered(ping_id):
                        self.pongs.append(ping_id)
            await self.flush()

    async def flush(self) -> None:
        if data := self.session.data_to_send():
            await self._send(data)

    def open(self, headers: dict[str, list[str]]) -> int:
        stream_id = self.session.open_stream(headers)
        self.received[stream_id] = bytearray()
        self.finished[stream_id] = asyncio.Event()
        return stream_id

    async def forward(
        self, port: int, payload: bytes, request_id: str | None, *, fin: bool = False
    ) -> tuple[str, bytes]:
        """One forwarded connection as kubectl makes it: error stream, then data stream.

        With ``fin`` the data stream is half-closed after ``payload`` (the pod sees EOF).
        """
        headers = {"streamType": ["error"], "port": [str(port)]}
        if request_id is not None:
            headers["requestID"] = [request_id]
        error = self.open(headers)
        self.session.send_data(error, b"", fin=True)  # kubectl never writes there
        data = self.open({**headers, "streamType": ["data"]})
        self.session.send_data(data, payload, fin=fin)
        await self.flush()
        await asyncio.wait_for(self.finished[data].wait(), 30)
        await asyncio.wait_for(self.finished[error].wait(), 30)
        return self.received[error].decode(), bytes(self.received[data])


async def _binary(ws: aiohttp.ClientWebSocketResponse) -> AsyncIterator[bytes]:
    async for message in ws:
        if message.type == aiohttp.WSMsgType.BINARY:
            yield message.data


@contextlib.asynccontextmanager
async def tunnel(env: Env, pod: str = "web") -> AsyncIterator[SpdyClient]:
    """A SPDY session in a WebSocket, as kubectl 1.31+ opens it."""
    url = f"http://127.0.0.1:{env.port}/api/v1/namespaces/default/pods/{pod}/portforward"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, protocols=[SPDY_TUNNEL_PROTOCOL]) as ws,
        asyncio.TaskGroup() as group,
    ):
        assert ws.protocol == SPDY_TUNNEL_PROTOCOL
        client = SpdyClient(ws.send_bytes)
        reader = group.create_task(client.run(_binary(ws)))
        yield client
        await ws.close()
        await reader


REQUEST = b"GET /index.html HTTP/1.0\r\n\r\n"


# -- kubectl --


async def test_concurrent_connections_through_one_forward(env: Env, tmp_path: Path) -> None:
    async with forwarding(env, tmp_path, "pod/web", ":80") as forward:
        port = forward.local[80]
        _, listed = await http_get(port, "/big.sha256")
        async with asyncio.TaskGroup() as group:
            bigs = [group.create_task(http_get(port, "/big")) for _ in range(6)]
            smalls = [group.create_task(http_get(port, "/index.html")) for _ in range(6)]
    for task in bigs:
        status, body = task.result()
        assert status == b"HTTP/1.1 200 OK"
        assert hashlib.sha256(body).hexdigest() == listed.decode().split()[0]
    assert [task.result()[1] for task in smalls] == [b"hello\n"] * 6
    assert forward.stdout.count(b"Handling connection for") == 13


async def test_ten_megabytes_arrive_intact_both_ways(env: Env, tmp_path: Path) -> None:
    upload = os.urandom(SIZE)
    async with forwarding(env, tmp_path, "pod/web", ":80", ":9000") as forward:
        status, body = await http_get(forward.local[80], "/big")
        _, listed = await http_get(forward.local[80], "/big.sha256")
        echoed = await hash_of_upload(forward.local[9000], upload)
    assert status == b"HTTP/1.1 200 OK"
    assert len(body) == SIZE
    assert hashlib.sha256(body).hexdigest() == listed.decode().split()[0]
    assert echoed == hashlib.sha256(upload).hexdigest()


async def test_closed_port_reports_the_error_kubectl_expects(env: Env, tmp_path: Path) -> None:
    """Docker's text (cri-dockerd runs socat in the sandbox's network namespace).

    kubectl 1.32 prints it and then ends its whole session (``lost connection to pod``):
    that is kubectl's choice. The next forward is served at once, and one session that
    outlives an error is shown below with a client that keeps its session.
    """
    uid = (await env.pod("web"))["metadata"]["uid"]
    sandbox = (await env.cluster.kubelets[0].runtime.sandboxes(uid))[-1].id
    async with forwarding(env, tmp_path, "pod/web", ":81") as forward:
        reader, writer = await asyncio.open_connection("127.0.0.1", forward.local[81])
        assert await reader.read() == b""  # closed without a byte
        writer.close()
        assert await asyncio.wait_for(forward.process.wait(), 30) == 1
    local = forward.local[81]
    text = forward.stderr.decode()
    expected = (
        rf"an error occurred forwarding {local} -> 81: error forwarding port 81 to pod"
        rf" {sandbox}, uid : exit status 1: \d{{4}}/\d\d/\d\d \d\d:\d\d:\d\d socat\[\d+\]"
        r" E connect\(5, AF=2 127\.0\.0\.1:81, 16\): Connection refused"
    )
    assert re.search(expected, text), text
    assert "error: lost connection to pod" in text
    async with forwarding(env, tmp_path, "pod/web", ":80") as again:
        assert await http_get(again.local[80], "/index.html") == (b"HTTP/1.1 200 OK", b"hello\n")


async def test_service_and_deployment_forms(env: Env, tmp_path: Path) -> None:
    service = {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080, "targetPort": 80}]},
    }
    await env.cluster.client.create(SERVICES, "default", service)
    async with forwarding(env, tmp_path, "svc/web", ":8080") as forward:
        assert forward.local.keys() == {80}  # kubectl translated the service port
        assert await http_get(forward.local[80], "/index.html") == (b"HTTP/1.1 200 OK", b"hello\n")

    labels = {"app": "echo"}
    script = "mkdir /www && echo deployed > /www/index.html && exec httpd -f -p 80 -h /www"
    deployment = {
        "metadata": {"name": "echo"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [web_container(script)]},
            },
        },
    }
    await env.cluster.client.create(DEPLOYMENTS, "default", deployment)

    async def created() -> str:
        pods = await env.cluster.client.list(PODS, Selection("default", "app=echo"))
        return str(pods.items[0]["metadata"]["name"]) if pods.items else ""

    async def exists() -> bool:
        return bool(await created())

    await wait_until(exists, within=60, what="the Deployment's pod")
    await serving(env, await created(), 80)
    async with forwarding(env, tmp_path, "deploy/echo", ":80") as forward:
        answer = await http_get(forward.local[80], "/index.html")
    assert answer == (b"HTTP/1.1 200 OK", b"deployed\n")


async def test_host_network_pod(env: Env, tmp_path: Path) -> None:
    """A ``hostNetwork`` pod listens on the node itself: the kubelet connects to 127.0.0.1."""
    port = free_port()
    script = f"mkdir /www && echo host > /www/index.html && exec httpd -f -p {port} -h /www"
    pod = {
        "metadata": {"name": "hostnet"},
        "spec": {"nodeName": env.node, "hostNetwork": True, "containers": [web_container(script)]},
    }
    await env.cluster.client.create(PODS, "default", pod)

    async def running() -> bool:  # no podIP: the kubelet reports none for hostNetwork yet
        return bool((await env.pod("hostnet")).get("status", {}).get("phase") == "Running")

    await wait_until(running, within=60, what="pod hostnet Running")
    await wait_until(lambda: listening("127.0.0.1", port), within=60, what="httpd on the host")
    async with forwarding(env, tmp_path, "pod/hostnet", f":{port}") as forward:
        answer = await http_get(forward.local[port], "/index.html")
    assert answer == (b"HTTP/1.1 200 OK", b"host\n")


async def test_pod_that_is_not_running_is_refused(env: Env, tmp_path: Path) -> None:
    waiting = {
        "metadata": {"name": "waiting"},
        "spec": {
            "nodeName": env.node,
            "initContainers": [
                {"name": "wait", "image": "busybox:1.35", "command": ["sleep", "3600"]}
            ],
            "containers": [web_container()],
        },
    }
    await env.cluster.client.create(PODS, "default", waiting)
    unscheduled = {
        "metadata": {"name": "nowhere"},
        "spec": {"schedulerName": "none", "containers": [web_container()]},
    }
    await env.cluster.client.create(PODS, "default", unscheduled)

    async def initialising() -> bool:
        statuses = (await env.pod("waiting")).get("status", {}).get("initContainerStatuses")
        return bool(statuses) and "running" in statuses[0]["state"]

    await wait_until(initialising, within=60, what="the init container running")
    async with forwarding(env, tmp_path, "pod/waiting", ":80") as forward:
        assert await forward.process.wait() == 1
    message = "error: unable to forward port because pod is not running. Current status=Pending"
    assert message in forward.stderr.decode()
    # Clients that do not check first get a 400 Status from the server.
    base = f"http://127.0.0.1:{env.port}/api/v1/namespaces/default/pods"
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Protocol": SPDY_TUNNEL_PROTOCOL,
    }
    async with aiohttp.ClientSession() as http:
        for pod, text in (
            (
                "waiting",
                "unable to forward port because pod is not running. Current status=Pending",
            ),
            ("nowhere", "pod nowhere does not have a host assigned"),
        ):
            async with http.get(f"{base}/{pod}/portforward", headers=upgrade) as answer:
                assert answer.status == 400
                status = await answer.json()
            assert (status["reason"], status["message"]) == ("BadRequest", text)


async def test_requests_refused_before_any_upgrade(env: Env) -> None:
    url = f"http://127.0.0.1:{env.port}/api/v1/namespaces/default/pods/web/portforward"
    async with aiohttp.ClientSession() as http:
        async with http.put(url) as answer:
            assert answer.status == 405
        async with http.get(url) as answer:
            assert answer.status == 400
            assert (await answer.json())["message"] == "Upgrade request required"
        async with http.get(url.replace("/web/", "/absent/")) as answer:
            assert answer.status == 404
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, protocols=["v4.channel.k8s.io"])
        assert refused.value.status == 400  # no ports: 'query parameter "port" is required'
        async with http.get(
            url + "?ports=80,x",
            headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                     "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="},
        ) as answer:  # fmt: skip
            assert answer.status == 400
            text = (await answer.json())["message"]
    assert text == 'cannot convert to []int32: strconv.ParseUint: parsing "x": invalid syntax'


# -- the server's side of a session --


async def test_one_session_keeps_serving_after_an_error(env: Env) -> None:
    async with tunnel(env) as client:
        error, data = await client.forward(81, REQUEST, "0")
        assert "connect(5, AF=2 127.0.0.1:81, 16): Connection refused" in error
        assert data == b""
        error, data = await client.forward(80, REQUEST, "1")
        assert (error, data.split(b"\r\n")[0], data.endswith(b"hello\n")) == (
            "",
            b"HTTP/1.1 200 OK",
            True,
        )
        async with asyncio.TaskGroup() as group:  # pairs interleaved on one session
            pairs = [group.create_task(client.forward(80, REQUEST, str(n))) for n in (2, 3, 4)]
        assert all(p.result()[1].endswith(b"hello\n") for p in pairs)
        ping = client.session.ping()
        await client.flush()
        await wait_until(lambda: ping in client.pongs, within=10, what="the PING answered")


async def test_streams_without_request_ids_pair_by_stream_id(env: Env) -> None:
    """Clients before 1.6 sent no ``requestID``; the kubelet pairs ids n and n+2."""
    async with tunnel(env) as client:
        error, data = await client.forward(80, REQUEST, None)
        assert error == ""
        assert data.endswith(b"hello\n")


async def test_refused_streams_are_reset(env: Env) -> None:
    async with tunnel(env) as client:
        for headers in (
            {"streamType": ["data"]},  # no port
            {"streamType": ["data"], "port": ["0"]},
            {"streamType": ["stdin"], "port": ["80"]},
        ):
            stream_id = client.open(headers)
            await client.flush()
            await asyncio.wait_for(client.finished[stream_id].wait(), 10)
            assert client.reset[stream_id] == spdy.RstStatus.CANCEL


async def test_plain_spdy_upgrade(env: Env) -> None:
    """What kubectl before 1.31 does, and 1.31+ when the WebSocket is refused."""
    reader, writer = await asyncio.open_connection("127.0.0.1", env.port)
    writer.write(
        b"POST /api/v1/namespaces/default/pods/web/portforward HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        b"X-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n\r\n"
    )
    head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
    assert head.startswith("http/1.1 101 switching protocols\r\n")
    assert "upgrade: spdy/3.1\r\n" in head
    assert "x-stream-protocol-version: portforward.k8s.io\r\n" in head

    async def send(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await reader.read(65536):
            yield chunk

    client = SpdyClient(send)
    async with asyncio.TaskGroup() as group:
        running = group.create_task(client.run(chunks()))
        error, data = await client.forward(80, REQUEST, "0")
        assert (error, data.endswith(b"hello\n")) == ("", True)
        error, data = await client.forward(81, REQUEST, "1")
        assert "Connection refused" in error
        writer.close()
        await running


def _kubectl_1_30() -> Path | None:
    """gcloud installs kubectl 1.30 beside its version-dispatching kubectl."""
    found = shutil.which("kubectl")
    old = Path(found).resolve().parent / "kubectl.1.30" if found else None
    return old if old is not None and old.exists() else None


async def test_kubectl_before_1_31_upgrades_to_spdy(env: Env, tmp_path: Path) -> None:
    old = _kubectl_1_30()
    if old is None:
        missing("kubectl 1.30 beside kubectl (its package installs one)")
        return
    async with forwarding(env, tmp_path, "pod/web", ":80", kubectl=str(old)) as forward:
        status, body = await http_get(forward.local[80], "/big")
        _, listed = await http_get(forward.local[80], "/big.sha256")
    assert status == b"HTTP/1.1 200 OK"
    assert hashlib.sha256(body).hexdigest() == listed.decode().split()[0]


async def test_channel_protocols_base64_and_none(env: Env) -> None:
    """``v4.base64.channel.k8s.io`` (text: channel digit, then base64) and no subprotocol.

    The server's first message on every channel is the port, little-endian; the WebSocket
    closes once every port's connection has ended (80 answered, 81 refused).
    """
    url = f"http://127.0.0.1:{env.port}/api/v1/namespaces/default/pods/web/portforward"
    for protocols in (["v4.base64.channel.k8s.io"], []):
        text = bool(protocols)
        channels: dict[int, bytearray] = {n: bytearray() for n in range(4)}
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(url + "?ports=80&ports=81", protocols=protocols) as ws,
        ):
            assert ws.protocol == (protocols[0] if protocols else None)
            request = b"\x00" + REQUEST
            if text:
                await ws.send_str("0" + base64.b64encode(REQUEST).decode())
            else:
                await ws.send_bytes(request)
            async for message in ws:
                if text:
                    channel = int(message.data[0])
                    channels[channel] += base64.b64decode(message.data[1:])
                else:
                    channels[message.data[0]] += message.data[1:]
        assert channels[0].startswith(b"P\x00HTTP/1.1 200 OK")  # 80 = 0x50, little-endian
        assert channels[0].endswith(b"hello\n")
        assert channels[1] == b"P\x00"  # no error on 80
        assert channels[2] == b"Q\x00"  # connection refused: nothing on 81's data
        assert channels[3].startswith(b"Q\x00error forwarding port 81 to pod ")


# -- the forwarder alone, against a local echo server --


@dataclass
class EchoConnector:
    """A "pod" whose port 7 echoes until EOF and whose other ports refuse."""

    address: tuple[str, int]
    name: str = "sandbox-id"
    uid: str = ""
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if port != 7:
            raise ConnectionRefusedError("Connection refused")
        return await asyncio.open_connection(*self.address)


@contextlib.asynccontextmanager
async def forwarder(
    creation_timeout: float = 30.0,
) -> AsyncIterator[tuple[SpdyClient, EchoConnector]]:
    """A :class:`SpdyForwarder` and a client joined by queues, and the echo server."""
    to_server: asyncio.Queue[bytes | None] = asyncio.Queue()
    to_client: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def drain(queue: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
        while (chunk := await queue.get()) is not None:
            yield chunk

    async def send_to_client(data: bytes) -> None:
        await to_client.put(data)

    async def send_to_server(data: bytes) -> None:
        await to_server.put(data)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()
        connector.closed.set()

    async with await asyncio.start_server(echo, "127.0.0.1", 0) as server:
        connector = EchoConnector(server.sockets[0].getsockname()[:2])
        spdy_server = SpdyForwarder(send_to_client, connector, creation_timeout=creation_timeout)
        client = SpdyClient(send_to_server)
        async with asyncio.TaskGroup() as group:
            serving = group.create_task(spdy_server.serve(drain(to_server)))
            reading = group.create_task(client.run(drain(to_client)))
            yield client, connector
            await to_server.put(None)  # the client goes: the session ends
            await serving
            await to_client.put(None)
            await reading


async def test_forwarder_echo_with_half_close_and_refusal() -> None:
    async with forwarder() as (client, _):
        error, data = await client.forward(7, b"x" * 300_000, "0", fin=True)
        assert (error, data) == ("", b"x" * 300_000)
        error, data = await client.forward(8, b"y", "1", fin=True)
        assert data == b""
        assert error == "error forwarding port 8 to pod sandbox-id, uid : Connection refused"


async def test_forwarder_times_out_a_pair_without_its_data_stream() -> None:
    async with forwarder(creation_timeout=0.1) as (client, _):
        error = client.open({"streamType": ["error"], "port": ["7"], "requestID": ["5"]})
        await client.flush()
        await asyncio.wait_for(client.finished[error].wait(), 10)
        assert client.received[error] == b"(conn=spdy, request=5) timed out waiting for streams"


async def test_forwarder_refuses_a_second_data_stream() -> None:
    async with forwarder() as (client, _):
        headers = {"streamType": ["error"], "port": ["7"], "requestID": ["0"]}
        error = client.open(headers)
        data = client.open({**headers, "streamType": ["data"]})
        again = client.open({**headers, "streamType": ["data"]})
        await client.flush()
        await asyncio.wait_for(client.finished[again].wait(), 10)
        assert client.reset[again] == spdy.RstStatus.CANCEL
        client.session.reset(data)
        await client.flush()
        await asyncio.wait_for(client.finished[error].wait(), 10)
    message = b"error processing stream for request 0: data stream already assigned"
    assert client.received[error] == message


async def test_forwarder_closes_the_pod_connection_when_the_data_stream_is_reset() -> None:
    async with forwarder() as (client, connector):
        headers = {"streamType": ["error"], "port": ["7"], "requestID": ["0"]}
        error = client.open(headers)
        data = client.open({**headers, "streamType": ["data"]})
        client.session.send_data(data, b"ping")
        await client.flush()
        await wait_until(lambda: client.received[data] == b"ping", what="the echo")
        client.session.reset(data)
        await client.flush()
        await asyncio.wait_for(connector.closed.wait(), 10)  # the echo server saw EOF
        await asyncio.wait_for(client.finished[error].wait(), 10)
    assert client.received[error] == b""


# -- the official Python client --


def _python_client_session(port: int) -> dict[str, Any]:
    """Runs in a thread: the client blocks, and the server lives on the test's loop."""
    from kubernetes import client
    from kubernetes.stream import portforward

    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    api = client.CoreV1Api(client.ApiClient(configuration))
    forward = portforward(
        api.connect_get_namespaced_pod_portforward, "web", "default", ports="80,81"
    )
    web: socket.socket = forward.socket(80)
    web.sendall(b"GET /big HTTP/1.0\r\n\r\n")
    answer = bytearray()
    while chunk := web.recv(1 << 20):
        answer += chunk
    web.close()
    refused: socket.socket = forward.socket(81)
    closed = refused.recv(10)
    refused.close()
    forward.close()
    # The client's proxy thread ends once the server closes the WebSocket (as the kubelet
    # does when every port is done) but leaves that socket open: close it here.
    for thread in threading.enumerate():
        if thread.name.startswith("Kubernetes port forward proxy"):
            thread.join(30)
    forward.websocket.shutdown()
    return {
        "answer": bytes(answer),
        "closed": closed,
        "errors": (forward.error(80), forward.error(81)),
    }


async def test_python_client_portforward(env: Env) -> None:
    result = await asyncio.wait_for(asyncio.to_thread(_python_client_session, env.port), 120)
    head, _, body = result["answer"].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert len(body) == SIZE
    assert result["closed"] == b""
    no_error, refused = result["errors"]
    assert no_error is None
    assert refused.startswith("error forwarding port 81 to pod ")
    assert refused.rstrip().endswith("E connect(5, AF=2 127.0.0.1:81, 16): Connection refused")


# -- the benchmark --


async def test_quick_bench_prints_its_figures() -> None:
    """``bench.portforward_bench --quick`` runs end to end; speed is not judged here."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bench.portforward_bench", "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    for way in ("download", "upload"):
        assert re.search(rf"kubectl \(WebSocket\) {way} +[0-9,.]+ MB/s", done.stdout), done.stdout
    assert "CPU per MB forwarded (download): this server" in done.stdout
