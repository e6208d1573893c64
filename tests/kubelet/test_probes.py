"""Probes: the manager's timing and verdicts, and each check kind against real sockets.

Exec probes run against a small test double of the runtime (the Docker runtime's exec is
tested with Docker); httpGet, tcpSocket and grpc probes talk to real servers on 127.0.0.1.
Probe time runs 100x faster than wall time (a 10 s period takes 0.1 s): the manager takes
its clock and sleep from ``FastTime``, and tests wait on conditions, never on luck.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import web

from minikube_py.kubelet.probe_checks import (
    USER_AGENT,
    CheckResult,
    HTTPRequest,
    Outcome,
    ProbeError,
    grpc_check,
    http_check,
    http_request,
    tcp_check,
)
from minikube_py.kubelet.probes import ProbeKind, ProbeManager, ProbeSpec
from minikube_py.kubelet.runtime.interface import (
    ContainerRuntime,
    ContainerState,
    ContainerStatus,
    ExecResult,
    PodRef,
    RuntimeUnavailable,
)
from minikube_py.meta.objects import Obj
from tests.support.requirements import require_binary
from tests.support.waiting import wait_until

SCALE = 0.01  # wall seconds per probe second


class FastTime:
    """Probe time running 1/SCALE times faster than the wall clock, for clock and sleep alike."""

    def __init__(self) -> None:
        self.origin = time.time()
        self.start = time.monotonic()

    def clock(self) -> float:
        return self.origin + (time.monotonic() - self.start) / SCALE

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds * SCALE)


@dataclass
class FakeRuntime:
    """Only ``exec``: answers by command name from ``codes`` (exit code) or ``errors``."""

    clock: Callable[[], float]
    codes: dict[str, int] = field(default_factory=dict)
    script: dict[str, list[int]] = field(default_factory=dict)  # exit codes in turn, then codes
    errors: dict[str, BaseException] = field(default_factory=dict)
    calls: list[tuple[str, list[str], float, float]] = field(default_factory=list)

    async def exec(self, container_id: str, command: list[str], limit_seconds: float) -> ExecResult:
        self.calls.append((container_id, command, limit_seconds, self.clock()))
        name = command[0]
        if name in self.errors:
            raise self.errors[name]
        turns = self.script.get(name)
        code = turns.pop(0) if turns else self.codes.get(name, 0)
        return ExecResult(code, f"{name} said {code}\n".encode())

    def count(self, name: str, container_id: str | None = None) -> int:
        return sum(
            1
            for cid, command, _, _ in self.calls
            if command[0] == name and container_id in (None, cid)
        )


@dataclass
class Calls:
    changes: list[str] = field(default_factory=list)
    kills: list[tuple[str, str, str, float]] = field(default_factory=list)
    events: list[tuple[str, str, str, str]] = field(default_factory=list)
    kill_error: BaseException | None = None

    async def kill(self, uid: str, container_id: str, reason: str, grace: float) -> None:
        self.kills.append((uid, container_id, reason, grace))
        if self.kill_error is not None:
            error, self.kill_error = self.kill_error, None
            raise error

    def event(self, pod: Obj, type_: str, reason: str, message: str, field_path: str) -> None:
        self.events.append((type_, reason, message, field_path))

    def messages(self, reason: str = "Unhealthy") -> list[str]:
        return [message for _, r, message, _ in self.events if r == reason]


@dataclass
class Harness:
    manager: ProbeManager
    runtime: FakeRuntime
    time: FastTime
    calls: Calls

    def update(self, pod: Obj, *running: ContainerStatus) -> None:
        self.manager.update(pod, {c.name: c for c in running}, pod_ip="127.0.0.1")

    def running(self, container_id: str, name: str = "app") -> ContainerStatus:
        return ContainerStatus(
            id=container_id,
            pod=PodRef("u1", "web", "default"),
            name=name,
            attempt=0,
            image="busybox",
            image_id="sha256:1",
            state=ContainerState.RUNNING,
            created_at=self.time.clock(),
            started_at=self.time.clock(),
        )

    async def probe_seconds(self, seconds: float) -> None:
        """Let ``seconds`` of probe time pass (a condition on the clock, not a guess)."""
        until = self.time.clock() + seconds
        await wait_until(lambda: self.time.clock() >= until, what=f"{seconds}s of probe time")


def new_manager(runtime: Any, calls: Calls, fast: FastTime) -> ProbeManager:
    return ProbeManager(
        cast(ContainerRuntime, runtime),
        kill=calls.kill,
        on_change=calls.changes.append,
        event=calls.event,
        clock=fast.clock,
        sleep=fast.sleep,
    )


@pytest.fixture
async def probes() -> AsyncIterator[Harness]:
    fast = FastTime()
    runtime = FakeRuntime(fast.clock)
    calls = Calls()
    manager = new_manager(runtime, calls, fast)
    task = asyncio.create_task(manager.run())
    try:
        yield Harness(manager, runtime, fast, calls)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def exec_probe(command: str, **fields: Any) -> Obj:
    return {"exec": {"command": [command]}, **fields}


def pod(*containers: Obj, uid: str = "u1", policy: str = "Always", **meta: Any) -> Obj:
    return {
        "metadata": {"uid": uid, "name": "web", "namespace": "default", **meta},
        "spec": {
            "containers": list(containers),
            "restartPolicy": policy,
            "terminationGracePeriodSeconds": 30,
        },
        "status": {"phase": "Running"},
    }


def app(**fields: Any) -> Obj:
    return {"name": "app", "image": "busybox", **fields}


# -- the manager: timing, thresholds, gating --


async def test_liveness_kills_after_failure_threshold_then_holds(probes: Harness) -> None:
    probes.runtime.codes["live"] = 1
    probes.update(pod(app(livenessProbe=exec_probe("live"))), probes.running("c1"))

    await wait_until(lambda: bool(probes.calls.kills), what="a kill")
    assert probes.calls.kills == [
        ("u1", "c1", "Container app failed liveness probe, will be restarted", 30.0)
    ]
    assert (
        probes.calls.events
        == [
            ("Warning", "Unhealthy", "Liveness probe failed: live said 1\n", "spec.containers{app}")
        ]
        * 3
    )
    await probes.probe_seconds(40)  # four more periods: on hold until a new container
    assert probes.runtime.count("live") == 3
    assert len(probes.calls.kills) == 1


async def test_liveness_failures_must_be_consecutive(probes: Harness) -> None:
    probes.runtime.script["live"] = [1, 1, 0, 1, 1, 0, 1, 1, 0]
    probes.update(pod(app(livenessProbe=exec_probe("live"))), probes.running("c1"))
    await wait_until(lambda: probes.runtime.count("live") >= 10, what="ten probes")
    assert probes.calls.kills == []


async def test_readiness_starts_unready_flaps_and_notifies(probes: Harness) -> None:
    probe = exec_probe("ready", failureThreshold=2)
    probes.update(pod(app(readinessProbe=probe)), probes.running("c1"))
    assert not probes.manager.readiness("u1", "app")  # not before the first success
    assert probes.manager.started("u1", "app")

    await wait_until(lambda: probes.manager.readiness("u1", "app"), what="ready")
    probes.runtime.codes["ready"] = 1
    await wait_until(lambda: not probes.manager.readiness("u1", "app"), what="unready")
    assert probes.calls.messages() == ["Readiness probe failed: ready said 1\n"] * 2
    probes.runtime.codes["ready"] = 0
    await wait_until(lambda: probes.manager.readiness("u1", "app"), what="ready again")
    assert probes.calls.changes == ["u1", "u1", "u1"]  # one per transition, none for the start
    assert probes.calls.kills == []


async def test_readiness_success_threshold(probes: Harness) -> None:
    probes.runtime.script["ready"] = [0, 0, 1, 0, 0, 0]
    probe = exec_probe("ready", successThreshold=3)
    probes.update(pod(app(readinessProbe=probe)), probes.running("c1"))
    await wait_until(lambda: bool(probes.calls.changes), what="a verdict")
    assert probes.manager.readiness("u1", "app")
    assert probes.runtime.count("ready") == 6  # the first run of three successes ended early


async def test_no_probes_means_ready_while_running(probes: Harness) -> None:
    spec = pod(app())
    probes.update(spec, probes.running("c1"))
    assert probes.manager.readiness("u1", "app")
    assert probes.manager.started("u1", "app")
    assert probes.manager.active("u1") == set()
    probes.update(spec)  # no longer running
    assert not probes.manager.readiness("u1", "app")
    assert not probes.manager.started("u1", "app")
    assert not probes.manager.readiness("other", "app")


async def test_initial_delay(probes: Harness) -> None:
    running = probes.running("c1")
    probes.update(pod(app(livenessProbe=exec_probe("live", initialDelaySeconds=30))), running)
    await wait_until(lambda: bool(probes.runtime.calls), what="the first probe")
    first_at = probes.runtime.calls[0][3]
    assert first_at - running.started_at >= 30
    assert first_at - running.started_at < 30 + 10 + 20  # the first tick after it, give or take


async def test_startup_gates_liveness_and_readiness(probes: Harness) -> None:
    probes.runtime.codes["startup"] = 1
    container = app(
        startupProbe=exec_probe("startup", failureThreshold=30),
        livenessProbe=exec_probe("live"),
        readinessProbe=exec_probe("ready", periodSeconds=300),
    )
    probes.update(pod(container), probes.running("c1"))
    await wait_until(lambda: probes.runtime.count("startup") >= 3, what="startup probes")
    assert probes.runtime.count("live") == probes.runtime.count("ready") == 0
    assert not probes.manager.started("u1", "app")
    assert not probes.manager.readiness("u1", "app")

    probes.runtime.codes["startup"] = 0
    await wait_until(lambda: bool(probes.calls.changes), what="started")
    assert probes.manager.started("u1", "app")
    # Woken by the startup verdict: ready well before the 300 s readiness period.
    await wait_until(lambda: probes.runtime.count("ready") >= 1, within=1.0, what="ready probe")
    await wait_until(lambda: probes.runtime.count("live") >= 2, what="liveness probes")
    startups = probes.runtime.count("startup")
    await probes.probe_seconds(30)
    assert probes.runtime.count("startup") == startups  # done once started


async def test_startup_failure_kills_with_probe_grace(probes: Harness) -> None:
    probes.runtime.codes["startup"] = 1
    probe = exec_probe("startup", failureThreshold=2, terminationGracePeriodSeconds=5)
    probes.update(pod(app(startupProbe=probe), policy="Never"), probes.running("c1"))
    await wait_until(lambda: bool(probes.calls.kills), what="a kill")
    assert probes.calls.kills == [("u1", "c1", "Container app failed startup probe", 5.0)]
    assert probes.calls.messages() == ["Startup probe failed: startup said 1\n"] * 2


async def test_results_reset_on_new_container_id(probes: Harness) -> None:
    spec = pod(app(readinessProbe=exec_probe("ready"), livenessProbe=exec_probe("live")))
    probes.update(spec, probes.running("c1"))
    await wait_until(lambda: probes.manager.readiness("u1", "app"), what="c1 ready")

    probes.runtime.codes["ready"] = 1
    probes.update(spec, probes.running("c2"))
    assert not probes.manager.readiness("u1", "app")  # c2 has no verdict of its own yet
    c1_probes = probes.runtime.count("ready", "c1")
    await wait_until(lambda: probes.runtime.count("ready", "c2") >= 2, what="c2 probes")
    assert probes.runtime.count("ready", "c1") == c1_probes  # c1's workers are gone
    probes.runtime.codes["ready"] = 0
    await wait_until(lambda: probes.manager.readiness("u1", "app"), what="c2 ready")


async def test_liveness_count_restarts_with_the_container(probes: Harness) -> None:
    probes.runtime.script["live"] = [1, 1]
    spec = pod(app(livenessProbe=exec_probe("live")))
    probes.update(spec, probes.running("c1"))
    await wait_until(lambda: probes.runtime.count("live") >= 2, what="two failures on c1")
    probes.runtime.script["live"] = [1, 1]
    probes.update(spec, probes.running("c2"))  # two more failures, but on a new container
    await wait_until(lambda: probes.runtime.count("live", "c2") >= 4, what="c2 probes")
    assert probes.calls.kills == []


async def test_exec_timeout_is_a_failure(probes: Harness) -> None:
    probes.runtime.errors["sleep"] = TimeoutError("exec timed out after 2s")
    probe = {"exec": {"command": ["sleep", "5"]}, "timeoutSeconds": 2, "failureThreshold": 1}
    probes.update(pod(app(livenessProbe=probe)), probes.running("c1"))
    await wait_until(lambda: bool(probes.calls.kills), what="a kill")
    assert probes.calls.messages() == ['Liveness probe failed: command "sleep 5" timed out']
    assert probes.runtime.calls[0][2] == 2.0  # timeoutSeconds is the runtime's limit


async def test_runtime_errors_are_retried_then_discarded(probes: Harness) -> None:
    probes.runtime.errors["live"] = RuntimeUnavailable("docker is down")
    probes.update(pod(app(livenessProbe=exec_probe("live"))), probes.running("c1"))
    await wait_until(lambda: len(probes.calls.events) >= 4, what="four probe periods")
    assert probes.calls.messages()[0] == (
        "Liveness probe errored and resulted in unknown state: docker is down"
    )
    assert probes.runtime.count("live") == 3 * len(probes.calls.events)  # three tries each
    assert probes.calls.kills == []  # errors never count as failures


async def test_exec_expands_static_env(probes: Harness) -> None:
    container = app(
        livenessProbe={"exec": {"command": ["check", "$(PORT)", "$$(PORT)", "$(NONE)"]}},
        env=[{"name": "PORT", "value": "8080"}],
    )
    probes.update(pod(container), probes.running("c1"))
    await wait_until(lambda: bool(probes.runtime.calls), what="a probe")
    assert probes.runtime.calls[0][1] == ["check", "8080", "$(PORT)", "$(NONE)"]


async def test_pod_deletion_stops_liveness_and_startup(probes: Harness) -> None:
    probes.runtime.codes["startup"] = 1
    container = app(
        startupProbe=exec_probe("startup", failureThreshold=100),
        readinessProbe=exec_probe("ready"),
    )
    probes.update(pod(container), probes.running("c1"))
    assert probes.manager.active("u1") == {("app", ProbeKind.STARTUP), ("app", ProbeKind.READINESS)}
    deleting = pod(container, deletionTimestamp="2025-01-01T00:00:00Z")
    probes.update(deleting, probes.running("c1"))
    assert probes.manager.active("u1") == {("app", ProbeKind.READINESS)}
    assert probes.manager.started("u1", "app")  # startup reports success for a quiet shutdown
    await wait_until(lambda: probes.manager.readiness("u1", "app"), what="still probing ready")


async def test_finished_or_removed_pods_stop_probing(probes: Harness) -> None:
    spec = pod(app(readinessProbe=exec_probe("ready")))
    probes.update(spec, probes.running("c1"))
    probes.update({**spec, "status": {"phase": "Succeeded"}}, probes.running("c1"))
    assert probes.manager.active("u1") == set()
    probes.update(spec, probes.running("c1"))
    assert probes.manager.active("u1") == {("app", ProbeKind.READINESS)}
    probes.manager.remove_pod("u1")
    assert probes.manager.active("u1") == set()
    assert not probes.manager.readiness("u1", "app")


async def test_sidecars_are_probed_and_always_restarted(probes: Harness) -> None:
    probes.runtime.codes["live"] = 1
    sidecar = {"name": "proxy", "restartPolicy": "Always", "livenessProbe": exec_probe("live")}
    spec = pod(app(), policy="Never")
    spec["spec"]["initContainers"] = [sidecar]
    probes.update(spec, probes.running("c1"), probes.running("s1", name="proxy"))
    await wait_until(lambda: bool(probes.calls.kills), what="a kill")
    assert probes.calls.kills[0][2] == "Container proxy failed liveness probe, will be restarted"
    assert probes.calls.events[0][3] == "spec.initContainers{proxy}"


async def test_a_failed_kill_is_asked_again(probes: Harness) -> None:
    probes.runtime.codes["live"] = 1
    probes.calls.kill_error = RuntimeUnavailable("docker is down")
    probes.update(pod(app(livenessProbe=exec_probe("live"))), probes.running("c1"))
    await wait_until(lambda: len(probes.calls.kills) == 2, what="a second kill")
    assert probes.runtime.count("live") == 6  # another failureThreshold of failures


def test_probe_defaults_and_thresholds() -> None:
    spec = ProbeSpec.parse(ProbeKind.LIVENESS, {"exec": {}, "successThreshold": 3})
    assert (spec.period, spec.timeout, spec.failure_threshold) == (10.0, 1.0, 3)
    assert spec.success_threshold == 1  # must be 1 for liveness and startup
    ready = ProbeSpec.parse(ProbeKind.READINESS, {"exec": {}, "successThreshold": 3})
    assert ready.success_threshold == 3


async def test_run_owns_every_task() -> None:
    fast = FastTime()
    calls = Calls()
    runtime = FakeRuntime(fast.clock)
    manager = new_manager(runtime, calls, fast)
    harness = Harness(manager, runtime, fast, calls)
    harness.update(pod(app(readinessProbe=exec_probe("ready"))), harness.running("c1"))
    before = asyncio.all_tasks()
    task = asyncio.create_task(manager.run())  # workers added before run() start now
    await wait_until(lambda: manager.readiness("u1", "app"), what="ready")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert asyncio.all_tasks() == before


# -- httpGet, tcpSocket, grpc against real servers --


@dataclass
class Server:
    port: int
    seen: list[web.Request] = field(default_factory=list)
    status: int = 200
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> HTTPRequest:
        return http_request({"host": "127.0.0.1", "port": self.port, "path": path}, {}, "")


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server(port=0)

    async def handle(request: web.Request) -> web.StreamResponse:
        state.seen.append(request)
        path = request.path
        if path == "/status":
            return web.Response(status=state.status, text="secret details")
        if path == "/redirect":
            raise web.HTTPFound("/ok")
        if path == "/away":
            raise web.HTTPFound(f"http://localhost:{state.port}/ok")
        if path == "/loop":
            raise web.HTTPFound("/loop")
        if path == "/slow":
            await state.release.wait()
        return web.Response(text="fine")

    app_ = web.Application()
    app_.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app_, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_http_success_and_status_failure(server: Server) -> None:
    assert await http_check(server.url("/ok"), 1) == CheckResult(Outcome.SUCCESS, "fine")
    server.status = 500
    assert await http_check(server.url("/status"), 1) == CheckResult(
        Outcome.FAILURE, "HTTP probe failed with statuscode: 500"
    )
    server.status = 399
    assert (await http_check(server.url("/status"), 1)).outcome is Outcome.WARNING


async def test_http_headers(server: Server) -> None:
    action = {
        "host": "127.0.0.1",
        "port": server.port,
        "path": "healthz?deep=1",
        "httpHeaders": [{"name": "X-Token", "value": "t"}, {"name": "Host", "value": "app.local"}],
    }
    assert (await http_check(http_request(action, {}, ""), 1)).outcome is Outcome.SUCCESS
    request = server.seen[-1]
    assert (request.path, request.query_string) == ("/healthz", "deep=1")
    assert request.headers["X-Token"] == "t"
    assert request.headers["Host"] == "app.local"
    assert request.headers["User-Agent"] == USER_AGENT == "kube-probe/1.32"
    assert request.headers["Accept"] == "*/*"
    assert "Accept-Encoding" not in request.headers


async def test_http_redirects(server: Server) -> None:
    followed = await http_check(server.url("/redirect"), 1)
    assert followed == CheckResult(Outcome.SUCCESS, "fine")
    elsewhere = await http_check(server.url("/away"), 1)  # localhost is another hostname
    assert elsewhere.outcome is Outcome.WARNING
    assert elsewhere.output.startswith("Probe terminated redirects, Response body: ")
    server.seen.clear()
    looping = await http_check(server.url("/loop"), 1)
    assert looping == CheckResult(Outcome.FAILURE, 'Get "/loop": stopped after 10 redirects')
    assert len(server.seen) == 10


async def test_http_timeout_and_refused(server: Server) -> None:
    slow = await http_check(server.url("/slow"), 0.2)
    assert slow == CheckResult(
        Outcome.FAILURE,
        f'Get "http://127.0.0.1:{server.port}/slow": context deadline exceeded'
        " (Client.Timeout exceeded while awaiting headers)",
    )
    port = closed_port()
    refused = await http_check(http_request({"host": "127.0.0.1", "port": port}, {}, ""), 1)
    assert refused == CheckResult(
        Outcome.FAILURE,
        f'Get "http://127.0.0.1:{port}": dial tcp 127.0.0.1:{port}: connect: connection refused',
    )


def test_http_request_ports_and_host() -> None:
    container = {"ports": [{"name": "web", "containerPort": 8080}]}
    request = http_request({"port": "web", "path": "/h", "scheme": "HTTPS"}, container, "10.1.0.5")
    assert str(request.url) == "https://10.1.0.5:8080/h"
    with pytest.raises(ProbeError, match='port "nope" not found'):
        http_request({"port": "nope"}, container, "10.1.0.5")
    with pytest.raises(ProbeError, match="invalid port number: 70000"):
        http_request({"port": 70000}, container, "10.1.0.5")
    assert http_request({"port": 80, "host": "fd00::1"}, {}, "").url.port == 80


async def test_https_skips_verification(tmp_path: Path) -> None:
    openssl = require_binary("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = await asyncio.create_subprocess_exec(
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=nobody", "-keyout", str(key), "-out", str(cert),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await asyncio.wait_for(made.wait(), 60) == 0
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def secure(request: web.Request) -> web.Response:
        return web.Response(text="secure")

    app_ = web.Application()
    app_.router.add_get("/", secure)
    runner = web.AppRunner(app_, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    try:
        port = runner.addresses[0][1]
        action = {"host": "127.0.0.1", "port": port, "scheme": "HTTPS"}
        result = await http_check(http_request(action, {}, ""), 2)
        assert result == CheckResult(Outcome.SUCCESS, "secure")
    finally:
        await runner.cleanup()


async def test_http_readiness_through_the_manager(probes: Harness, server: Server) -> None:
    probe = {"httpGet": {"host": "127.0.0.1", "port": server.port, "path": "/status"}}
    probes.update(pod(app(readinessProbe=probe)), probes.running("c1"))
    await wait_until(lambda: probes.manager.readiness("u1", "app"), what="ready")
    server.status = 500
    await wait_until(lambda: not probes.manager.readiness("u1", "app"), what="unready")
    assert probes.calls.messages()[0] == (
        "Readiness probe failed: HTTP probe failed with statuscode: 500"
    )


async def test_tcp_socket() -> None:
    listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    async with listener:
        port = listener.sockets[0].getsockname()[1]
        assert await tcp_check("127.0.0.1", port, 1) == CheckResult(Outcome.SUCCESS)
    port = closed_port()
    assert await tcp_check("127.0.0.1", port, 1) == CheckResult(
        Outcome.FAILURE, f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    )


async def test_tcp_liveness_through_the_manager(probes: Harness) -> None:
    port = closed_port()
    probe = {"tcpSocket": {"host": "127.0.0.1", "port": port}}
    probes.update(pod(app(livenessProbe=probe)), probes.running("c1"))
    await wait_until(lambda: bool(probes.calls.kills), what="a kill")
    assert (
        probes.calls.messages()
        == [f"Liveness probe failed: dial tcp 127.0.0.1:{port}: connect: connection refused"] * 3
    )


async def test_grpc_health() -> None:
    grpc = pytest.importorskip("grpc")
    statuses = {"": b"\x08\x01", "db": b"\x08\x02"}  # SERVING, NOT_SERVING

    async def check(request: bytes, context: Any) -> bytes:
        service = request[2:].decode()  # field 1, one length byte: short names only
        if service not in statuses:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return statuses[service]

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(check)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": handler})]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        assert await grpc_check("127.0.0.1", port, "", 2) == CheckResult(
            Outcome.SUCCESS, "service healthy"
        )
        assert await grpc_check("127.0.0.1", port, "db", 2) == CheckResult(
            Outcome.FAILURE, 'service unhealthy (responded with "NOT_SERVING")'
        )
        missing = await grpc_check("127.0.0.1", port, "cache", 2)
        assert missing.output == (
            "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service"
        )
    finally:
        await server.stop(None)
    refused = await grpc_check("127.0.0.1", closed_port(), "", 0.3)
    assert refused.output.startswith("timeout: failed to connect service")
