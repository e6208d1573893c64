"""The kubelet's half of exec and attach on real Docker: the runtime's streams, the kubelet's
WebSocket endpoint, and kubectl going through it over HTTP.

Pods are run by a real cluster (in-process, one Docker node); the runtime is then driven
directly, and the kubelet's HTTP app is served on a port of its own, as a kubelet on
another machine would be, with the API server sent there instead of the in-process way.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from minikube_py.apiserver import channels
from minikube_py.apiserver.channels import Refused, StreamOptions
from minikube_py.apiserver.streaming import StreamConnections
from minikube_py.cluster import Cluster
from minikube_py.kubelet.runtime.interface import ContainerRuntime, ExecSession, RuntimeUnavailable
from minikube_py.kubelet.runtime.simulated import SimulatedRuntime
from minikube_py.kubelet.server import kubelet_app, serve
from minikube_py.kubelet.streams import RuntimeSession, StreamService
from minikube_py.kubelet.sync import PODS
from tests.apiserver.test_exec import BUSYBOX, busybox, kubectl, run_pod
from tests.apiserver.test_pod_logs import serving
from tests.support.cluster import running_cluster
from tests.support.docker import remove_node_containers, require_docker
from tests.support.etcd import free_port
from tests.support.waiting import wait_until


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    require_docker()
    node = f"xd-{uuid.uuid4().hex[:8]}"
    try:
        async with running_cluster(tmp_path, simulated_nodes=0, docker_node=node) as running:
            yield running
    finally:
        remove_node_containers(node)


def runtime(cluster: Cluster) -> ContainerRuntime:
    return cluster.kubelets[0].runtime


async def container_id(cluster: Cluster, pod: str, container: str = "c") -> str:
    found = await cluster.client.get(PODS, "default", pod)
    for status in found["status"]["containerStatuses"]:
        if status["name"] == container:
            return str(status["containerID"]).partition("://")[2]
    raise AssertionError(f"no container {container} in {pod}")


async def drain(process: ExecSession) -> list[tuple[int, bytes]]:
    items = []
    while (item := await process.read()) is not None:
        items.append(item)
    return items


def joined(items: list[tuple[int, bytes]], channel: int) -> bytes:
    return b"".join(data for number, data in items if number == channel)


# -- the kubelet's rules, on a fake runtime --


class FakeProcess:
    """A process that wrote ``output`` and ended with ``code`` (or broke while read)."""

    def __init__(self, output: list[tuple[int, bytes]], code: int | None, broken: bool = False):
        self.output = list(output)
        self.code = code
        self.broken = broken
        self.closed = False

    async def read(self) -> tuple[int, bytes] | None:
        if self.broken:
            raise RuntimeUnavailable("Docker at unix:///x does not answer (read): gone")
        return self.output.pop(0) if self.output else None

    async def write(self, data: bytes) -> None:
        raise ConnectionResetError("the process is gone")

    async def close_stdin(self) -> None: ...

    async def resize(self, width: int, height: int) -> None: ...

    async def exit_code(self) -> int | None:
        return self.code

    async def close(self) -> None:
        self.closed = True


def pod_with(container: str, running: bool) -> dict[str, Any]:
    state = {"running": {}} if running else {"waiting": {"reason": "ContainerCreating"}}
    return {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": [{"name": container, "image": BUSYBOX}]},
        "status": {
            "containerStatuses": [
                {"name": container, "containerID": "docker://abc", "state": state}
            ]
        },
    }


async def test_refusals_come_before_anything_runs() -> None:
    pods = {("ns", "p"): pod_with("c", running=False)}
    service = StreamService(SimulatedRuntime("sim-9"), lambda ns, name: pods.get((ns, name)))
    asked = StreamOptions(("true",), "", False, True, True, False)
    cases = [
        ("exec", "q", "c", asked, 404, "pod does not exist"),
        ("exec", "p", "c", asked, 500, 'container not found ("c")'),
        ("attach", "p", "c", asked, 500, "container c not found in pod p_ns"),
        ("exec", "p", "c", StreamOptions(("true",)), 400, "you must specify at least 1 of"),
    ]
    for kind, pod, container, options, code, text in cases:
        with pytest.raises(Refused) as caught:
            await service.open(kind, "ns", pod, container, options)
        assert caught.value.code == code
        assert caught.value.text.startswith(text)
    pods[("ns", "p")] = pod_with("c", running=True)
    session = await service.open("exec", "ns", "p", "c", asked)
    assert await session.read() is None
    assert await session.status() == channels.internal_error(
        "error executing command in container: exec is not supported on simulated node sim-9"
    )


async def test_the_status_a_process_ends_with() -> None:
    command = ("sh", "-c", "exit 3")
    ended = RuntimeSession(FakeProcess([(1, b"x")], 3), command=command)
    assert await ended.read() == (1, b"x")
    await ended.write(b"ignored")  # the process is gone: dropped, not an error
    assert await ended.read() is None
    assert await ended.status() == channels.exit_failure(
        3, "error executing command [sh -c exit 3], exit code 3"
    )
    fine = RuntimeSession(FakeProcess([], 0), command=command)
    assert await fine.status() == channels.success()
    attached = RuntimeSession(FakeProcess([], None), command=None)
    assert await attached.status() == channels.success()
    broken = RuntimeSession(FakeProcess([], 0, broken=True), command=None)
    assert await broken.read() is None
    assert (await broken.status())["message"] == (
        "Internal error occurred: error attaching to container:"
        " Docker at unix:///x does not answer (read): gone"
    )
    process = FakeProcess([], 0)
    closing = RuntimeSession(process, command=command)
    await closing.close()
    await closing.close()
    assert process.closed


# -- the runtime's streams --


async def test_output_arrives_as_it_is_written(cluster: Cluster) -> None:
    """Not gathered: the first line comes while the command still sleeps."""
    await run_pod(cluster, "box")
    script = "echo first; sleep 3; echo second >&2; exit 2"
    process = await runtime(cluster).exec_stream(
        await container_id(cluster, "box"),
        ["sh", "-c", script],
        stdin=False,
        stdout=True,
        stderr=True,
        tty=False,
    )
    try:
        assert await asyncio.wait_for(process.read(), 2) == (1, b"first\n")
        assert await drain(process) == [(2, b"second\n")]
        assert await process.exit_code() == 2
    finally:
        await process.close()


async def test_stdin_both_ways_then_eof_and_the_exit_code(cluster: Cluster) -> None:
    """3 MB through ``cat`` while its output is read: flow control both ways, then EOF."""
    await run_pod(cluster, "box")
    data = os.urandom(3 * 2**20)
    process = await runtime(cluster).exec_stream(
        await container_id(cluster, "box"),
        ["sh", "-c", "cat; exit 5"],
        stdin=True,
        stdout=True,
        stderr=True,
        tty=False,
    )

    async def feed() -> None:
        for start in range(0, len(data), 100_000):
            await process.write(data[start : start + 100_000])
        await process.close_stdin()

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(feed())
            items = await drain(process)
        assert joined(items, 1) == data
        assert max(len(chunk) for _, chunk in items) <= 2**16
        assert await process.exit_code() == 5
    finally:
        await process.close()


async def test_a_tty_is_resized(cluster: Cluster) -> None:
    await run_pod(cluster, "box")
    process = await runtime(cluster).exec_stream(
        await container_id(cluster, "box"),
        ["sh", "-c", "read a; stty size"],
        stdin=True,
        stdout=True,
        stderr=False,
        tty=True,
    )
    try:
        await process.resize(90, 33)
        await process.write(b"\n")
        assert b"33 90" in joined(await drain(process), 1)
        assert await process.exit_code() == 0
    finally:
        await process.close()


async def test_attach_passes_eof_only_to_stdin_once_containers(cluster: Cluster) -> None:
    await run_pod(
        cluster,
        "once",
        {"name": "c", "image": BUSYBOX, "command": ["sh"], "stdin": True, "stdinOnce": True},
        restartPolicy="Never",
    )
    process = await runtime(cluster).attach(
        await container_id(cluster, "once"), stdin=True, stdout=True, stderr=True
    )
    try:
        await process.write(b"echo hi; echo there >&2\n")
        await process.close_stdin()  # sh reads EOF and ends: so does the attach
        items = await asyncio.wait_for(drain(process), 30)
        assert (joined(items, 1), joined(items, 2)) == (b"hi\n", b"there\n")
        assert await process.exit_code() is None
    finally:
        await process.close()


# -- the kubelet's endpoint --


@pytest.fixture
async def kubelet_port(cluster: Cluster) -> AsyncIterator[int]:
    """The in-process kubelet's HTTP app (logs, exec, attach) on a port of its own."""
    kubelet = cluster.kubelets[0]
    port = free_port()
    app = kubelet_app(kubelet.logs, streams=kubelet.streams)
    async with serving(lambda started: serve(app, "127.0.0.1", port, started)):
        yield port


def node_at(port: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "elsewhere"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        },
    }


async def test_the_api_servers_way_over_http(cluster: Cluster, kubelet_port: int) -> None:
    """StreamConnections reaches the kubelet as a WebSocket (v5): output, stdin EOF, Status."""
    await run_pod(cluster, "box")
    connections = StreamConnections()
    node = node_at(kubelet_port)
    options = StreamOptions(("sh", "-c", "wc -c; exit 3"), "", True, True, True, False)
    try:
        session = await connections.open(node, "exec", "default", "box", "c", options)
        try:
            await session.write(b"x" * 70_000)
            await session.close_stdin()
            output = []
            while (item := await session.read()) is not None:
                output.append(item)
            assert output == [(1, b"70000\n")]
            status = await session.status()
        finally:
            await session.close()
        assert status == channels.exit_failure(
            3, "error executing command [sh -c wc -c; exit 3], exit code 3"
        )
        refusals = [
            ("nosuch", "c", Refused(404, "pod does not exist")),
            ("box", "z", Refused(500, 'container not found ("z")')),
        ]
        for pod, container, expected in refusals:
            with pytest.raises(Refused) as caught:
                await connections.open(node, "exec", "default", pod, container, options)
            assert (caught.value.code, caught.value.text) == (expected.code, expected.text)
        nothing = StreamOptions(("true",))
        with pytest.raises(Refused) as caught:
            await connections.open(node, "exec", "default", "box", "c", nothing)
        assert (caught.value.code, caught.value.text) == (
            400,
            "you must specify at least 1 of stdin, stdout, stderr",
        )
    finally:
        await connections.close()


async def test_other_clients_of_the_kubelet(cluster: Cluster, kubelet_port: int) -> None:
    """v4 gets the CRI's wording, base64 its text frames; refusals are plain HTTP errors."""
    await run_pod(cluster, "box")
    base = f"http://127.0.0.1:{kubelet_port}"
    query = "command=sh&command=-c&command=echo+hi%3B+exit+3&output=1&error=1"
    async with aiohttp.ClientSession() as session:
        frames = []
        async with session.ws_connect(
            f"{base}/exec/default/box/c?{query}", protocols=(channels.V4,)
        ) as ws:
            assert ws.protocol == channels.V4
            async for message in ws:
                frames.append(bytes(message.data))
        assert frames[:2] == [b"\x01", b"\x01hi\n"]  # the hello, then the output
        assert json.loads(frames[2][1:])["message"] == (
            "command terminated with non-zero exit code:"
            " error executing command [sh -c echo hi; exit 3], exit code 3"
        )
        texts = []
        async with session.ws_connect(
            f"{base}/exec/default/box/c?{query}", protocols=(channels.V1_BASE64,)
        ) as ws:
            async for message in ws:
                texts.append(str(message.data))
        assert texts[1] == "1" + base64.b64encode(b"hi\n").decode()
        assert (
            base64.b64decode(texts[2][1:])
            .decode()
            .startswith("command terminated with non-zero exit code")
        )
        async with session.get(f"{base}/exec/default/box/c?{query}") as answer:
            assert (answer.status, await answer.text()) == (400, "Upgrade request required")


async def test_kubectl_through_the_kubelets_port(
    cluster: Cluster, kubelet_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API server as on a real cluster: the node's kubelet over HTTP, not in-process."""
    await run_pod(cluster, "box", busybox("c"), busybox("d", "exit 0"), restartPolicy="Never")
    streams = cluster.server.streams
    streams.unregister_local(cluster.config.node_name)
    monkeypatch.setattr(streams, "address", lambda node: ("127.0.0.1", kubelet_port))
    data = os.urandom(2**20)
    code, out, _ = await kubectl(
        cluster, tmp_path, "exec", "-i", "box", "-c", "c", "--", "sh", "-c", "cat > /x; exit 9"
    )
    assert (code, out) == (9, b"")  # stdin is /dev/null: its end travels at once
    code, out, err = await kubectl(
        cluster, tmp_path, "exec", "-i", "box", "-c", "c", "--", "sh", "-c", "cat > /x", stdin=data
    )
    assert (code, out, err) == (0, b"", "")
    code, out, _ = await kubectl(cluster, tmp_path, "exec", "box", "-c", "c", "--", "cat", "/x")
    assert hashlib.sha256(out).digest() == hashlib.sha256(data).digest()

    async def d_exited() -> bool:
        pod = await cluster.client.get(PODS, "default", "box")
        statuses = pod["status"].get("containerStatuses") or []
        return any(s["name"] == "d" and "terminated" in s["state"] for s in statuses)

    await wait_until(d_exited, within=30, what="container d to exit")
    code, _, err = await kubectl(cluster, tmp_path, "exec", "box", "-c", "d", "--", "true")
    assert (code, err) == (
        1,
        'error: Internal error occurred: unable to upgrade connection: container not found ("d")\n',
    )
    monkeypatch.setattr(streams, "address", lambda node: ("127.0.0.1", free_port()))
    code, _, err = await kubectl(cluster, tmp_path, "exec", "box", "-c", "c", "--", "true")
    assert code == 1
    assert err.startswith(
        "error: Internal error occurred: error dialing backend: dial tcp 127.0.0.1:"
    )
    assert err.endswith(": connect: connection refused\n")
