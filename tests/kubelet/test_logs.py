"""The kubelet's container logs: the pure rules, then its HTTP endpoint end to end.

The endpoint tests use a small runtime double whose ``logs`` serves canned lines (and
live ones for ``follow``): the point here is what the kubelet does with a request, not
how Docker reads a log file (the Docker runtime tests cover that).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import aiohttp
import pytest

from minikube_py.kubelet import logs
from minikube_py.kubelet.logs import LogOptions, LogsError
from minikube_py.kubelet.runtime.interface import ContainerRuntime
from minikube_py.kubelet.server import LogService, kubelet_app, serve
from minikube_py.meta.objects import Obj
from tests.support.etcd import free_port

NOW = 1_700_000_000.0


# -- pods as the kubelet sees them --


def running(name: str, cid: str, restarts: int = 0, last: str = "") -> Obj:
    status: Obj = {
        "name": name,
        "state": {"running": {"startedAt": "2023-11-14T22:13:20Z"}},
        "lastState": {},
        "restartCount": restarts,
        "containerID": f"docker://{cid}",
    }
    if last:
        status["lastState"] = {"terminated": {"exitCode": 1, "containerID": f"docker://{last}"}}
    return status


def waiting(name: str, reason: str, last: str = "") -> Obj:
    status: Obj = {"name": name, "state": {"waiting": {"reason": reason}}, "lastState": {}}
    if last:
        status["lastState"] = {"terminated": {"exitCode": 1, "containerID": f"docker://{last}"}}
        status["containerID"] = f"docker://{last}"
    return status


def terminated(name: str, cid: str) -> Obj:
    return {
        "name": name,
        "state": {"terminated": {"exitCode": 0, "containerID": f"docker://{cid}"}},
        "lastState": {},
        "containerID": f"docker://{cid}",
    }


def pod(*statuses: Obj, name: str = "web", init: tuple[Obj, ...] = ()) -> Obj:
    names = [s["name"] for s in statuses] or ["app"]
    spec: Obj = {"containers": [{"name": n, "image": "busybox"} for n in names]}
    status: Obj = {"containerStatuses": list(statuses)}
    if init:
        spec["initContainers"] = [{"name": s["name"], "image": "busybox"} for s in init]
        status["initContainerStatuses"] = list(init)
    return {
        "metadata": {"name": name, "namespace": "default", "uid": "uid-1"},
        "spec": spec,
        "status": status,
    }


# -- options --


def test_options_default_to_everything_once() -> None:
    assert logs.parse_options({}) == LogOptions()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("1", True), ("yes", True), ("", True), ("0", False), ("FALSE", False)],
)
def test_booleans_follow_apimachinery(value: str, expected: bool) -> None:
    assert logs.parse_options({"follow": value}).follow is expected


def test_all_options_decode() -> None:
    options = logs.parse_options(
        {
            "follow": "true",
            "previous": "true",
            "timestamps": "true",
            "tailLines": "5",
            "limitBytes": "100",
            "sinceTime": "2024-01-02T03:04:05.5+01:00",
        }
    )
    stamp = dt.datetime(2024, 1, 2, 2, 4, 5, 500000, dt.UTC).timestamp()
    assert options == LogOptions(True, True, True, 5, None, stamp, 100)


def test_legacy_tail_parameter() -> None:
    assert logs.parse_options({"tail": "7"}).tail_lines == 7
    assert logs.parse_options({"tail": "all", "tailLines": "3"}).tail_lines is None


@pytest.mark.parametrize(
    "query",
    [
        {"tailLines": "abc"},
        {"tailLines": "1.5"},
        {"limitBytes": " 5"},
        {"sinceSeconds": "99999999999999999999"},
        {"sinceTime": "2024-01-02"},
        {"sinceTime": "2024-01-02T03:04:05"},
    ],
)
def test_undecodable_query_is_a_400(query: dict[str, str]) -> None:
    with pytest.raises(LogsError) as caught:
        logs.parse_options(query)
    assert (caught.value.code, caught.value.message) == (
        400,
        '{"message": "Unable to decode query."}',
    )


@pytest.mark.parametrize(
    "query",
    [
        {"tailLines": "-1"},
        {"limitBytes": "0"},
        {"sinceSeconds": "0"},
        {"sinceSeconds": "5", "sinceTime": "2024-01-02T03:04:05Z"},
    ],
)
def test_invalid_options_are_a_422(query: dict[str, str]) -> None:
    with pytest.raises(LogsError) as caught:
        logs.parse_options(query)
    assert (caught.value.code, caught.value.message) == (422, '{"message": "Invalid request."}')


def test_since_is_absolute_or_relative_to_now() -> None:
    assert LogOptions(since_seconds=60).since(NOW) == NOW - 60
    assert LogOptions(since_time=123.5).since(NOW) == 123.5
    assert LogOptions().since(NOW) is None


# -- which container --


def test_running_container_is_the_current_one() -> None:
    assert logs.pick_container_id(pod(running("app", "c2")), "app", previous=False) == "docker://c2"


def test_previous_is_the_last_terminated_attempt() -> None:
    found = pod(running("app", "c2", restarts=1, last="c1"))
    assert logs.pick_container_id(found, "app", previous=True) == "docker://c1"


def test_previous_without_a_restart_is_refused() -> None:
    with pytest.raises(LogsError) as caught:
        logs.pick_container_id(pod(running("app", "c1")), "app", previous=True)
    assert caught.value.code == 400
    assert caught.value.message == 'previous terminated container "app" in pod "web" not found'


def test_crash_loop_shows_the_crashed_attempt_with_or_without_previous() -> None:
    found = pod(waiting("app", "CrashLoopBackOff", last="c3"))
    assert logs.pick_container_id(found, "app", previous=False) == "docker://c3"
    assert logs.pick_container_id(found, "app", previous=True) == "docker://c3"


def test_terminated_container_keeps_its_logs() -> None:
    assert logs.pick_container_id(pod(terminated("app", "c9")), "app", previous=False) == (
        "docker://c9"
    )


def test_terminated_without_id_falls_back_to_the_last_attempt() -> None:
    status = terminated("app", "c9")
    del status["state"]["terminated"]["containerID"]  # the next attempt never started
    status["lastState"] = {"terminated": {"containerID": "docker://c0"}}
    assert logs.pick_container_id(pod(status), "app", previous=False) == "docker://c0"
    status["lastState"] = {}
    with pytest.raises(LogsError, match='container "app" in pod "web" is terminated'):
        logs.pick_container_id(pod(status), "app", previous=False)


@pytest.mark.parametrize(
    ("reason", "detail"),
    [
        ("ContainerCreating", "ContainerCreating"),
        ("ErrImagePull", "image can't be pulled"),
        ("ImagePullBackOff", "trying and failing to pull image"),
        ("CreateContainerConfigError", "CreateContainerConfigError"),
    ],
)
def test_waiting_container_has_no_logs_yet(reason: str, detail: str) -> None:
    with pytest.raises(LogsError) as caught:
        logs.pick_container_id(pod(waiting("app", reason)), "app", previous=False)
    assert caught.value.code == 400
    assert caught.value.message == f'container "app" in pod "web" is waiting to start: {detail}'


def test_container_without_status_is_not_available() -> None:
    with pytest.raises(LogsError, match='container "app" in pod "web" is not available'):
        logs.pick_container_id(pod(), "app", previous=False)


def test_container_without_state_has_no_logs_yet() -> None:
    status: Obj = {"name": "app", "state": {}, "lastState": {}}
    with pytest.raises(LogsError, match="is waiting to start - no logs yet"):
        logs.pick_container_id(pod(status), "app", previous=False)


def test_init_containers_have_logs_too() -> None:
    found = pod(waiting("app", "PodInitializing"), init=(terminated("setup", "i1"),))
    assert logs.container_spec(found, "setup") is not None
    assert logs.pick_container_id(found, "setup", previous=False) == "docker://i1"


def test_runtime_id_drops_the_scheme() -> None:
    assert logs.runtime_id("docker://abc") == "abc"
    assert logs.runtime_id("abc") == "abc"


# -- limitBytes --


async def collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


async def test_limit_cuts_the_last_chunk_and_stops_reading() -> None:
    pulled: list[bytes] = []

    async def source() -> AsyncIterator[bytes]:
        for chunk in (b"hello\n", b"world\n", b"never\n"):
            pulled.append(chunk)
            yield chunk

    assert await collect(logs.limit_bytes(source(), 8)) == [b"hello\n", b"wo"]
    assert pulled == [b"hello\n", b"world\n"]


async def test_no_limit_passes_everything() -> None:
    async def source() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    assert await collect(logs.limit_bytes(source(), None)) == [b"a", b"b"]


# -- the HTTP endpoint, over a runtime double --


def stamp(moment: float) -> bytes:
    """Docker's and the kubelet's RFC3339Nano with nine fraction digits."""
    when = dt.datetime.fromtimestamp(moment, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f000Z").encode()


@dataclass
class LogCall:
    container_id: str
    follow: bool
    tail: int | None
    since: float | None
    timestamps: bool


@dataclass
class FakeRuntime:
    """Only ``logs``: canned lines per container, live lines for followers (None = stop)."""

    lines: dict[str, list[tuple[float, bytes]]] = field(default_factory=dict)
    live: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    calls: list[LogCall] = field(default_factory=list)
    open_streams: int = 0
    broken: bool = False

    async def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
    ) -> AsyncIterator[bytes]:
        self.calls.append(LogCall(container_id, follow, tail, since, timestamps))
        if self.broken or container_id not in self.lines:
            raise LookupError(f"no such container: {container_id}")
        self.open_streams += 1
        try:
            kept = [
                (t, text) for t, text in self.lines[container_id] if since is None or t >= since
            ]
            if tail is not None:
                kept = kept[len(kept) - tail :] if tail else []
            for moment, text in kept:
                yield stamp(moment) + b" " + text if timestamps else text
            while follow and (live := await self.live.get()) is not None:
                yield live
        finally:
            self.open_streams -= 1


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime(
        lines={
            "c2": [(NOW - 300 + i * 60, f"line {i}\n".encode()) for i in range(5)],
            "c1": [(NOW - 900, b"crashed: out of cheese\n")],
        }
    )


@pytest.fixture
def pods() -> dict[tuple[str, str], Obj]:
    return {
        ("default", "web"): pod(running("app", "c2", restarts=1, last="c1")),
        ("default", "new"): pod(waiting("app", "ContainerCreating"), name="new"),
        ("default", "fresh"): pod(running("app", "c2"), name="fresh"),
    }


@dataclass
class Kubelet:
    url: str
    session: aiohttp.ClientSession
    runtime: FakeRuntime

    async def get(self, path: str, **query: str) -> tuple[int, str, str]:
        async with self.session.get(self.url + path, params=query) as answer:
            return answer.status, answer.headers.get("Content-Type", ""), await answer.text()


@pytest.fixture
async def kubelet(runtime: FakeRuntime, pods: dict[tuple[str, str], Obj]) -> AsyncIterator[Kubelet]:
    service = LogService(
        cast(ContainerRuntime, runtime), lambda ns, name: pods.get((ns, name)), clock=lambda: NOW
    )
    port = free_port()
    started = asyncio.Event()
    task = asyncio.create_task(serve(kubelet_app(service, poll=0.05), "127.0.0.1", port, started))
    await asyncio.wait_for(started.wait(), 10)
    session = aiohttp.ClientSession()
    try:
        yield Kubelet(f"http://127.0.0.1:{port}", session, runtime)
    finally:
        await session.close()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_healthz(kubelet: Kubelet) -> None:
    assert await kubelet.get("/healthz") == (200, "text/plain; charset=utf-8", "ok")


async def test_all_logs_as_plain_text(kubelet: Kubelet) -> None:
    status, content_type, text = await kubelet.get("/containerLogs/default/web/app")
    assert (status, content_type) == (200, "text/plain")
    assert text == "".join(f"line {i}\n" for i in range(5))
    assert kubelet.runtime.calls == [LogCall("c2", False, None, None, False)]


async def test_tail_since_and_timestamps_reach_the_runtime(kubelet: Kubelet) -> None:
    status, _, text = await kubelet.get(
        "/containerLogs/default/web/app", tailLines="2", sinceSeconds="200", timestamps="true"
    )
    assert status == 200
    assert kubelet.runtime.calls == [LogCall("c2", False, 2, NOW - 200, True)]
    lines = text.splitlines()
    assert lines == [f"{stamp(NOW - 300 + i * 60).decode()} line {i}" for i in (3, 4)]


async def test_since_time_is_absolute(kubelet: Kubelet) -> None:
    since = dt.datetime.fromtimestamp(NOW - 120, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, _, text = await kubelet.get("/containerLogs/default/web/app", sinceTime=since)
    assert status == 200
    assert kubelet.runtime.calls[0].since == NOW - 120
    assert text == "line 3\nline 4\n"


async def test_limit_bytes_truncates(kubelet: Kubelet) -> None:
    status, _, text = await kubelet.get("/containerLogs/default/web/app", limitBytes="10")
    assert (status, text) == (200, "line 0\nlin")


async def test_previous_reads_the_last_attempt(kubelet: Kubelet) -> None:
    status, _, text = await kubelet.get("/containerLogs/default/web/app", previous="true")
    assert (status, text) == (200, "crashed: out of cheese\n")


async def test_previous_without_restart_is_a_400(kubelet: Kubelet) -> None:
    answer = await kubelet.get("/containerLogs/default/fresh/app", previous="true")
    assert answer[0] == 400
    assert answer[2] == 'previous terminated container "app" in pod "fresh" not found'


async def test_waiting_container_is_a_400(kubelet: Kubelet) -> None:
    answer = await kubelet.get("/containerLogs/default/new/app")
    assert (answer[0], answer[2]) == (
        400,
        'container "app" in pod "new" is waiting to start: ContainerCreating',
    )
    assert kubelet.runtime.calls == []


async def test_unknown_pod_and_container_are_404s(kubelet: Kubelet) -> None:
    missing_pod = await kubelet.get("/containerLogs/default/ghost/app")
    assert (missing_pod[0], missing_pod[2]) == (404, 'pod "ghost" does not exist')
    missing_container = await kubelet.get("/containerLogs/default/web/sidecar")
    assert (missing_container[0], missing_container[2]) == (
        404,
        'container "sidecar" not found in pod "web"',
    )


async def test_bad_queries_get_the_kubelet_canned_answers(kubelet: Kubelet) -> None:
    status, _, text = await kubelet.get("/containerLogs/default/web/app", tailLines="x")
    assert (status, text) == (400, '{"message": "Unable to decode query."}')
    status, _, text = await kubelet.get("/containerLogs/default/web/app", tailLines="-3")
    assert (status, text) == (422, '{"message": "Invalid request."}')


async def test_runtime_failure_is_said_inline(kubelet: Kubelet) -> None:
    kubelet.runtime.broken = True
    status, _, text = await kubelet.get("/containerLogs/default/web/app")
    assert (status, text) == (200, "unable to retrieve container logs for docker://c2")


async def next_chunk(response: aiohttp.ClientResponse) -> bytes:
    return await asyncio.wait_for(response.content.readany(), 5)


async def test_follow_streams_each_chunk_as_it_comes(kubelet: Kubelet) -> None:
    url = kubelet.url + "/containerLogs/default/web/app"
    async with kubelet.session.get(url, params={"follow": "true", "tailLines": "1"}) as answer:
        assert answer.status == 200
        assert answer.headers.get("Transfer-Encoding") == "chunked"
        assert await next_chunk(answer) == b"line 4\n"
        await kubelet.runtime.live.put(b"live 1\n")
        assert await next_chunk(answer) == b"live 1\n"
        await kubelet.runtime.live.put(None)  # the container stops
        assert await asyncio.wait_for(answer.content.read(), 5) == b""
    assert kubelet.runtime.calls[0].follow is True


async def test_follower_leaving_closes_the_runtime_stream(kubelet: Kubelet) -> None:
    url = kubelet.url + "/containerLogs/default/web/app"
    async with kubelet.session.get(url, params={"follow": "true"}) as answer:
        await next_chunk(answer)
        assert kubelet.runtime.open_streams == 1
        answer.close()  # hang up while the container is quiet
    for _ in range(100):
        if kubelet.runtime.open_streams == 0:
            break
        await asyncio.sleep(0.02)
    assert kubelet.runtime.open_streams == 0
