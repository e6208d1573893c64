"""``pods/log`` through the API server: option checks, the container, the way to the kubelet.

The pure rules are tested against pod dicts; then a real API server app (SQLite store,
registries, error middleware) serves ``/log`` through :class:`PodLogs`, reaching a
kubelet log service in-process and over HTTP, and the real kubectl reads from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from minikube_py import errors
from minikube_py.apiserver import nodeproxy
from minikube_py.apiserver import server as apiserver
from minikube_py.apiserver.bootstrap import ensure_system_objects
from minikube_py.apiserver.nodeproxy import PodLogOptions
from minikube_py.config import APIServerConfig, StoreConfig
from minikube_py.kubelet.runtime.interface import ContainerRuntime
from minikube_py.kubelet.server import LogService, kubelet_app, serve
from minikube_py.meta.objects import Obj
from minikube_py.registry.api import API
from minikube_py.storage.sqlite import SQLiteStore
from tests.kubelet.test_logs import FakeRuntime, LogCall, running, waiting
from tests.support.etcd import free_port
from tests.support.requirements import require_binary

NOW = 1_700_000_000.0


def spec_pod(*containers: str, init: tuple[str, ...] = (), ephemeral: tuple[str, ...] = ()) -> Obj:
    return {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "initContainers": [{"name": n, "image": "busybox"} for n in init],
            "containers": [{"name": n, "image": "busybox"} for n in containers],
            "ephemeralContainers": [{"name": n, "image": "busybox"} for n in ephemeral],
        },
    }


# -- options --


def test_kubectl_query_round_trips_to_the_kubelet() -> None:
    """What kubectl 1.32 sends for ``logs web -c app -f -p --tail=5 --timestamps
    --since=10m --limit-bytes=100`` (seen with ``-v=8``), and what the kubelet gets."""
    query = {
        "container": "app",
        "follow": "true",
        "limitBytes": "100",
        "previous": "true",
        "sinceSeconds": "600",
        "tailLines": "5",
        "timestamps": "true",
    }
    options = nodeproxy.parse_log_options(query)
    assert options == PodLogOptions("app", True, True, True, 600, None, 5, 100)
    assert options.kubelet_query() == {k: v for k, v in query.items() if k != "container"}


def test_since_time_goes_on_at_second_precision() -> None:
    options = nodeproxy.parse_log_options({"sinceTime": "2024-01-02T03:04:05.123456789+02:00"})
    assert options.kubelet_query() == {"sinceTime": "2024-01-02T03:04:05+02:00"}


def test_false_flags_and_unknown_parameters_are_not_sent() -> None:
    query = {"follow": "false", "previous": "0", "insecureSkipTLSVerifyBackend": "true"}
    assert nodeproxy.parse_log_options(query).kubelet_query() == {}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"tailLines": "ten"}, 'strconv.ParseInt: parsing "ten": invalid syntax'),
        ({"limitBytes": "1e3"}, 'strconv.ParseInt: parsing "1e3": invalid syntax'),
        (
            {"sinceSeconds": "9223372036854775808"},
            'strconv.ParseInt: parsing "9223372036854775808": value out of range',
        ),
        (
            {"sinceTime": "yesterday"},
            'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday"',
        ),
    ],
)
def test_undecodable_options_are_bad_requests(query: dict[str, str], message: str) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        nodeproxy.parse_log_options(query)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"tailLines": "-1"}, "tailLines: Invalid value: -1: must be greater than or equal to 0"),
        ({"limitBytes": "0"}, "limitBytes: Invalid value: 0: must be greater than 0"),
        ({"sinceSeconds": "0"}, "sinceSeconds: Invalid value: 0: must be greater than 0"),
        (
            {"sinceSeconds": "5", "sinceTime": "2024-01-02T03:04:05Z"},
            "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
        ),
    ],
)
def test_invalid_options_are_422(query: dict[str, str], message: str) -> None:
    with pytest.raises(errors.Invalid) as caught:
        nodeproxy.validate_log_options("web", nodeproxy.parse_log_options(query))
    assert caught.value.message == f'PodLogOptions "web" is invalid: {message}'
    assert caught.value.status()["details"] == {
        "name": "web",
        "kind": "PodLogOptions",
        "causes": caught.value.status()["details"]["causes"],
    }


# -- the container --


def test_the_only_container_is_the_default() -> None:
    assert nodeproxy.resolve_container(spec_pod("app", init=("setup",)), "") == "app"


def test_several_containers_need_a_name_listing_every_kind() -> None:
    pod = spec_pod("app", "sidecar", init=("setup",), ephemeral=("debug",))
    with pytest.raises(errors.BadRequest) as caught:
        nodeproxy.resolve_container(pod, "")
    assert caught.value.message == (
        "a container name must be specified for pod web, choose one of: [setup app sidecar debug]"
    )


def test_the_default_container_annotation_is_kubectls_business() -> None:
    """kube-apiserver ignores it; kubectl reads it and sends ``container=``."""
    pod = spec_pod("app", "sidecar")
    pod["metadata"]["annotations"] = {"kubectl.kubernetes.io/default-container": "sidecar"}
    with pytest.raises(errors.BadRequest, match="a container name must be specified"):
        nodeproxy.resolve_container(pod, "")


def test_a_pod_without_containers_needs_a_name() -> None:
    with pytest.raises(errors.BadRequest) as caught:
        nodeproxy.resolve_container(spec_pod(), "")
    assert caught.value.message == "a container name must be specified for pod web"


def test_named_container_must_exist_in_any_list() -> None:
    pod = spec_pod("app", init=("setup",), ephemeral=("debug",))
    for name in ("app", "setup", "debug"):
        assert nodeproxy.resolve_container(pod, name) == name
    with pytest.raises(errors.BadRequest) as caught:
        nodeproxy.resolve_container(pod, "db")
    assert caught.value.message == "container db is not valid for pod web"


# -- the kubelet's address and its refusals --


def node(addresses: list[dict[str, str]], port: int | None = None) -> Obj:
    status: Obj = {"addresses": addresses}
    if port is not None:
        status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
    return {"metadata": {"name": "node-1"}, "status": status}


def test_kubelet_address_prefers_internal_ip_and_reported_port() -> None:
    found = node(
        [{"type": "Hostname", "address": "box"}, {"type": "InternalIP", "address": "10.1.2.3"}],
        11250,
    )
    assert nodeproxy.kubelet_address(found) == ("10.1.2.3", 11250)
    assert nodeproxy.kubelet_address(node([{"type": "Hostname", "address": "box"}])) == (
        "box",
        10250,
    )


def test_node_without_address_is_an_unknown_error() -> None:
    with pytest.raises(nodeproxy.UnknownError) as caught:
        nodeproxy.kubelet_address(node([]))
    assert caught.value.status()["reason"] == ""
    assert caught.value.message == "no preferred addresses found; known addresses: []"


def test_kubelet_refusals_become_kube_apiserver_errors() -> None:
    bad = nodeproxy.kubelet_error(400, 'container "app" in pod "web" is not available', "web")
    assert (type(bad), bad.message) == (
        errors.BadRequest,
        'container "app" in pod "web" is not available',
    )
    missing = nodeproxy.kubelet_error(404, 'pod "web" does not exist', "web")
    assert missing.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server could not find the requested resource ( pods/log web)",
        "reason": "NotFound",
        "details": {"name": "web", "kind": "pods/log"},
        "code": 404,
    }
    broken = nodeproxy.kubelet_error(500, "boom", "web")
    assert (broken.code, broken.message) == (500, "Internal error occurred: boom")
    down = nodeproxy.kubelet_error(503, "later", "web")
    assert (down.code, down.reason) == (503, "InternalError")
    assert down.message == (
        'an error on the server ("later") has prevented the request from succeeding ( pods/log web)'
    )


# -- through a real API server --


@dataclass
class Cluster:
    url: str
    api: API
    runtime: FakeRuntime
    kubelet_pods: dict[tuple[str, str], Obj]
    session: aiohttp.ClientSession
    kubelet_port: int
    tmp: Path

    def info(self, kind: str) -> Any:
        strategy = self.api.registries.catalog.by_kind("", kind)
        assert strategy is not None
        return strategy.info

    async def add_node(self, name: str = "node-1", port: int | None = None) -> None:
        body = node([{"type": "InternalIP", "address": "127.0.0.1"}], port or self.kubelet_port)
        body["metadata"]["name"] = name
        await self.api.create(self.info("Node"), "", body)

    async def add_pod(
        self,
        name: str,
        containers: list[str],
        statuses: list[Obj],
        *,
        node_name: str = "node-1",
        annotations: dict[str, str] | None = None,
    ) -> None:
        """A pod on ``node_name`` with the status its kubelet reported."""
        body: Obj = {
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"containers": [{"name": c, "image": "busybox"} for c in containers]},
        }
        if node_name:
            body["spec"]["nodeName"] = node_name
        created = await self.api.create(self.info("Pod"), "default", body)
        created["status"] = {"phase": "Running", "containerStatuses": statuses}
        written = await self.api.update(
            self.info("Pod"), "default", name, created, subresource="status"
        )
        self.kubelet_pods[("default", name)] = written.obj

    async def get(self, name: str, **query: str) -> tuple[int, str, Any]:
        url = f"{self.url}/api/v1/namespaces/default/pods/{name}/log"
        async with self.session.get(url, params=query) as answer:
            content_type = answer.headers.get("Content-Type", "")
            body: Any = await answer.json() if "json" in content_type else await answer.text()
            return answer.status, content_type, body


@contextlib.asynccontextmanager
async def serving(
    serve_until_cancelled: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
) -> AsyncIterator[None]:
    """Run a server task until the block ends; fail at once if it cannot start."""
    started = asyncio.Event()
    task = asyncio.create_task(serve_until_cancelled(started))
    waiter = asyncio.create_task(started.wait())
    try:
        done, _ = await asyncio.wait({task, waiter}, timeout=30, return_when="FIRST_COMPLETED")
        if task in done:
            task.result()
        assert waiter in done, "server did not start"
        yield
    finally:
        for running in (waiter, task):
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running


@pytest.fixture(params=["in-process", "http"])
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    """An API server whose node-1 kubelet is reached in-process, or over HTTP."""
    store = await SQLiteStore.open(tmp_path / "state.db")
    port, kubelet_port = free_port(), free_port()
    server = apiserver.build(store, APIServerConfig(store=StoreConfig(tmp_path), port=port))
    runtime = FakeRuntime(
        lines={
            "c2": [(NOW - 300 + i * 60, f"line {i}\n".encode()) for i in range(5)],
            "c1": [(NOW - 900, b"crashed: out of cheese\n")],
            "s1": [(NOW, b"sidecar says hi\n")],
        }
    )
    kubelet_pods: dict[tuple[str, str], Obj] = {}
    service = LogService(
        cast(ContainerRuntime, runtime),
        lambda ns, name: kubelet_pods.get((ns, name)),
        clock=lambda: NOW,
    )
    connections = server.connections
    pod_logs = server.resources.logs
    pod_logs.poll = 0.05
    session = aiohttp.ClientSession()
    try:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(
                serving(lambda started: server.serve("127.0.0.1", port, started))
            )
            if request.param == "http":
                app = kubelet_app(service, poll=0.05)
                await stack.enter_async_context(
                    serving(lambda started: serve(app, "127.0.0.1", kubelet_port, started))
                )
            else:
                connections.register_local("node-1", service)
            await server.registries.cache.ready.wait()
            await ensure_system_objects(server.registries, port)
            cluster = Cluster(
                f"http://127.0.0.1:{port}",
                server.api,
                runtime,
                kubelet_pods,
                session,
                kubelet_port,
                tmp_path,
            )
            await cluster.add_node()
            await cluster.add_pod("web", ["app"], [running("app", "c2", restarts=1, last="c1")])
            yield cluster
    finally:
        await session.close()
        await connections.close()
        await store.close()


async def test_logs_of_the_only_container(cluster: Cluster) -> None:
    status, content_type, text = await cluster.get("web")
    assert (status, content_type) == (200, "text/plain")
    assert text == "".join(f"line {i}\n" for i in range(5))
    assert cluster.runtime.calls == [LogCall("c2", False, None, None, False)]


async def test_options_reach_the_runtime(cluster: Cluster) -> None:
    status, _, text = await cluster.get(
        "web", container="app", tailLines="2", sinceSeconds="200", limitBytes="9"
    )
    assert (status, text) == (200, "line 3\nli")
    assert cluster.runtime.calls == [LogCall("c2", False, 2, NOW - 200, False)]


async def test_previous_attempt(cluster: Cluster) -> None:
    status, _, text = await cluster.get("web", previous="true")
    assert (status, text) == (200, "crashed: out of cheese\n")


async def test_kubelet_refusals_are_bad_requests(cluster: Cluster) -> None:
    await cluster.add_pod("new", ["app"], [waiting("app", "ContainerCreating")])
    status, content_type, body = await cluster.get("new")
    assert (status, content_type) == (400, "application/json")
    assert (body["reason"], body["message"]) == (
        "BadRequest",
        'container "app" in pod "new" is waiting to start: ContainerCreating',
    )
    await cluster.add_pod("fresh", ["app"], [running("app", "c2")])
    status, _, body = await cluster.get("fresh", previous="true")
    assert (status, body["message"]) == (
        400,
        'previous terminated container "app" in pod "fresh" not found',
    )


async def test_several_containers_need_a_name(cluster: Cluster) -> None:
    await cluster.add_pod(
        "duo", ["app", "sidecar"], [running("app", "c2"), running("sidecar", "s1")]
    )
    status, _, body = await cluster.get("duo")
    assert (status, body["message"]) == (
        400,
        "a container name must be specified for pod duo, choose one of: [app sidecar]",
    )
    status, _, text = await cluster.get("duo", container="sidecar")
    assert (status, text) == (200, "sidecar says hi\n")
    status, _, body = await cluster.get("duo", container="db")
    assert (status, body["message"]) == (400, "container db is not valid for pod duo")


async def test_unscheduled_pod_answers_no_content(cluster: Cluster) -> None:
    await cluster.add_pod("pending", ["app"], [], node_name="")
    status, _, text = await cluster.get("pending")
    assert (status, text) == (204, "")


async def test_missing_pod_and_node(cluster: Cluster) -> None:
    status, _, body = await cluster.get("ghost")
    assert (status, body["message"]) == (404, 'pods "ghost" not found')
    await cluster.add_pod("lost", ["app"], [running("app", "c2")], node_name="gone")
    status, _, body = await cluster.get("lost")
    assert (status, body["message"]) == (404, 'nodes "gone" not found')


async def test_invalid_options(cluster: Cluster) -> None:
    status, _, body = await cluster.get("web", tailLines="-1")
    assert (status, body["reason"], body["message"]) == (
        422,
        "Invalid",
        'PodLogOptions "web" is invalid: tailLines: Invalid value: -1: must be greater than or'
        " equal to 0",
    )
    status, _, body = await cluster.get("web", tailLines="x")
    assert (status, body["message"]) == (400, 'strconv.ParseInt: parsing "x": invalid syntax')


async def test_only_get(cluster: Cluster) -> None:
    url = f"{cluster.url}/api/v1/namespaces/default/pods/web/log"
    async with cluster.session.post(url) as answer:
        assert answer.status == 405


async def test_unreachable_kubelet(cluster: Cluster) -> None:
    closed = free_port()
    await cluster.add_node("node-2", closed)
    await cluster.add_pod("far", ["app"], [running("app", "c2")], node_name="node-2")
    status, _, body = await cluster.get("far")
    assert (status, body["reason"]) == (500, "")
    assert body["message"] == (
        f'Get "http://127.0.0.1:{closed}/containerLogs/default/far/app": dial tcp'
        f" 127.0.0.1:{closed}: connect: connection refused"
    )


async def next_chunk(answer: aiohttp.ClientResponse) -> bytes:
    return await asyncio.wait_for(answer.content.readany(), 5)


async def test_follow_streams_until_the_container_stops(cluster: Cluster) -> None:
    url = f"{cluster.url}/api/v1/namespaces/default/pods/web/log"
    async with cluster.session.get(url, params={"follow": "true", "tailLines": "1"}) as answer:
        assert answer.status == 200
        assert await next_chunk(answer) == b"line 4\n"
        for text in (b"live 1\n", b"live 2\n"):
            await cluster.runtime.live.put(text)
            assert await next_chunk(answer) == text
        await cluster.runtime.live.put(None)
        assert await asyncio.wait_for(answer.content.read(), 5) == b""


async def test_follower_leaving_ends_the_runtime_stream(cluster: Cluster) -> None:
    url = f"{cluster.url}/api/v1/namespaces/default/pods/web/log"
    async with cluster.session.get(url, params={"follow": "true"}) as answer:
        await next_chunk(answer)
        assert cluster.runtime.open_streams == 1
        answer.close()
    for _ in range(200):
        if cluster.runtime.open_streams == 0:
            break
        await asyncio.sleep(0.02)
    assert cluster.runtime.open_streams == 0


# -- the real kubectl --


async def kubectl(cluster: Cluster, *args: str) -> tuple[int, str, str]:
    binary = require_binary("kubectl")
    env = {**os.environ, "KUBECONFIG": "/dev/null", "KUBECACHEDIR": str(cluster.tmp / "kube")}
    process = await asyncio.create_subprocess_exec(
        binary,
        "-s",
        cluster.url,
        "logs",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_kubectl_logs(cluster: Cluster) -> None:
    assert await kubectl(cluster, "web") == (0, "".join(f"line {i}\n" for i in range(5)), "")
    assert (await kubectl(cluster, "web", "--tail=1", "-c", "app"))[:2] == (0, "line 4\n")
    assert (await kubectl(cluster, "web", "--previous"))[:2] == (0, "crashed: out of cheese\n")


async def test_kubectl_defaults_the_container_itself(cluster: Cluster) -> None:
    await cluster.add_pod(
        "duo",
        ["app", "sidecar"],
        [running("app", "c2"), running("sidecar", "s1")],
        annotations={"kubectl.kubernetes.io/default-container": "sidecar"},
    )
    assert (await kubectl(cluster, "duo"))[:2] == (0, "sidecar says hi\n")


async def test_kubectl_shows_the_kubelet_refusal(cluster: Cluster) -> None:
    await cluster.add_pod("new", ["app"], [waiting("app", "ContainerCreating")])
    code, out, err = await kubectl(cluster, "new")
    assert (code, out) == (1, "")
    assert err == (
        'Error from server (BadRequest): container "app" in pod "new" is waiting to start:'
        " ContainerCreating\n"
    )


async def test_kubectl_follow(cluster: Cluster) -> None:
    follower = asyncio.create_task(kubectl(cluster, "web", "-f", "--tail=1"))
    await cluster.runtime.live.put(b"live 1\n")
    await cluster.runtime.live.put(None)
    assert (await follower)[:2] == (0, "line 4\nlive 1\n")
