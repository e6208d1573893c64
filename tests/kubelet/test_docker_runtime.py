"""DockerRuntime against a real Docker daemon: pods as a pause sandbox plus containers.

Every test gets a runtime with its own node name; the fixture removes whatever carries that
node's label afterwards, so a failing test leaves nothing behind (the finally block of every
test, in one place). Pod names are unique. Waits poll a condition under a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from minikube_py.kubelet.runtime.docker import DockerCallError, DockerNotFound, DockerRuntime
from minikube_py.kubelet.runtime.interface import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    ImagePullError,
    ImageResult,
    ItemState,
    Mount,
    PodRef,
    PodSnapshot,
    PortMapping,
    RuntimeUnavailable,
    SandboxConfig,
    SecurityContext,
)
from tests.kubelet.conftest import BUSYBOX, PAUSE, DockerCLI
from tests.support.waiting import wait_until

pytestmark = pytest.mark.docker

MISSING_IMAGE = "registry.invalid/minikube-py/never-there:0"


@pytest.fixture
def node_name() -> str:
    return f"test-node-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def runtime(docker: DockerCLI, node_name: str) -> AsyncIterator[DockerRuntime]:
    opened = DockerRuntime(node_name=node_name)
    try:
        yield opened
    finally:
        await opened.close()
        await docker.sweep(node_name)


def new_pod() -> PodRef:
    suffix = uuid.uuid4().hex[:8]
    return PodRef(uid=str(uuid.uuid4()), name=f"t-{suffix}", namespace="test")


async def sandbox(runtime: DockerRuntime, pod: PodRef, **options: Any) -> str:
    config = SandboxConfig(pod=pod, attempt=0, hostname=pod.name, **options)
    return (await runtime.run_sandbox(config)).id


def busybox(pod: PodRef, name: str, *command: str, **options: Any) -> ContainerConfig:
    fields: dict[str, Any] = {"attempt": 0, "image": BUSYBOX, "command": command, **options}
    return ContainerConfig(pod=pod, name=name, **fields)


async def start(runtime: DockerRuntime, sandbox_id: str, config: ContainerConfig) -> str:
    container_id = await runtime.create_container(sandbox_id, config)
    await runtime.start_container(container_id)
    return container_id


async def status_of(runtime: DockerRuntime, container_id: str) -> ContainerStatus:
    (found,) = [c for c in await runtime.containers() if c.id == container_id]
    return found


async def wait_exited(runtime: DockerRuntime, container_id: str) -> ContainerStatus:
    async def exited() -> bool:
        return (await status_of(runtime, container_id)).state is ContainerState.EXITED

    await wait_until(exited, within=15, interval=0.05, what=f"{container_id[:12]} to exit")
    return await status_of(runtime, container_id)


async def logs(runtime: DockerRuntime, container_id: str, **options: Any) -> bytes:
    return b"".join([chunk async for chunk in runtime.logs(container_id, **options)])


async def run_to_exit(runtime: DockerRuntime, sandbox_id: str, config: ContainerConfig) -> bytes:
    container_id = await start(runtime, sandbox_id, config)
    await wait_exited(runtime, container_id)
    return await logs(runtime, container_id)


def count_calls(runtime: DockerRuntime) -> list[str]:
    """Every Docker API call the runtime makes from now on, as ``METHOD path``."""
    client = runtime._client()
    calls: list[str] = []
    through = client._do_query

    async def counting(path: Any, method: str, **options: Any) -> Any:
        calls.append(f"{method} {path}")
        return await through(path, method, **options)

    client._do_query = counting  # type: ignore[method-assign]
    return calls


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def http_get(url: str) -> str:
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        return await response.text()


# -- sandboxes and networking --


async def test_sandbox_runs_pause_with_an_ip(runtime: DockerRuntime, docker: DockerCLI) -> None:
    pod = new_pod()
    config = SandboxConfig(
        pod=pod,
        attempt=0,
        hostname=pod.name,
        dns_servers=("10.96.0.10",),
        dns_searches=("test.svc.cluster.local",),
    )
    started = await runtime.run_sandbox(config)
    sandbox_id = started.id
    (status,) = await runtime.sandboxes(pod.uid)
    assert started == status  # what run_sandbox tells is what a listing says after it
    assert (status.id, status.pod, status.attempt, status.ready) == (sandbox_id, pod, 0, True)
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", status.ip)
    assert abs(status.created_at - time.time()) < 60
    info = await docker.inspect(sandbox_id)
    assert info["Name"] == f"/k8s_POD_{pod.name}_test_{pod.uid}_0"
    assert info["Path"] == "/pause"
    assert info["State"]["Running"]
    assert info["Config"]["Hostname"] == pod.name
    assert info["HostConfig"]["IpcMode"] == "shareable"
    assert info["HostConfig"]["RestartPolicy"]["Name"] == "no"
    assert info["HostConfig"]["Dns"] == ["10.96.0.10"]
    assert info["Config"]["Labels"]["io.kubernetes.docker.type"] == "podsandbox"
    assert info["Config"]["Labels"]["io.kubernetes.pod.uid"] == pod.uid


async def test_containers_share_the_sandbox_network(
    runtime: DockerRuntime, docker: DockerCLI
) -> None:
    pod = new_pod()
    host_port = free_port()
    sandbox_id = await sandbox(runtime, pod, ports=(PortMapping(8080, host_port),))
    serve = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www"
    await start(runtime, sandbox_id, busybox(pod, "web", "sh", "-c", serve))
    client_id = await start(runtime, sandbox_id, busybox(pod, "client", "sleep", "3600"))
    fetch = ["timeout", "5", "wget", "-qO-", "http://127.0.0.1:8080/"]

    async def served() -> bool:
        return (await runtime.exec(client_id, fetch, 10)).output == b"hello\n"

    await wait_until(served, within=10, interval=0.1, what="httpd on the pod's loopback")
    info = await docker.inspect(client_id)
    assert info["HostConfig"]["NetworkMode"] == f"container:{sandbox_id}"
    assert info["HostConfig"]["IpcMode"] == f"container:{sandbox_id}"
    assert info["HostConfig"]["PidMode"] == ""
    (status,) = await runtime.sandboxes(pod.uid)
    assert await http_get(f"http://{status.ip}:8080/") == "hello\n"
    assert await http_get(f"http://127.0.0.1:{host_port}/") == "hello\n"


async def test_host_network_sandbox(runtime: DockerRuntime, docker: DockerCLI) -> None:
    pod = new_pod()
    sandbox_id = await sandbox(runtime, pod, host_network=True, dns_servers=("10.96.0.10",))
    (status,) = await runtime.sandboxes(pod.uid)
    assert status.ready
    assert status.ip == ""  # the kubelet reports the node's IP
    assert (await docker.inspect(sandbox_id))["HostConfig"]["NetworkMode"] == "host"


# -- container configuration --


async def test_command_and_args_follow_kubernetes(
    runtime: DockerRuntime, docker: DockerCLI
) -> None:
    pod = new_pod()
    sandbox_id = await sandbox(runtime, pod)
    # command only: the image's CMD ("sh") is dropped, not appended
    assert await run_to_exit(runtime, sandbox_id, busybox(pod, "cmd", "echo", "only")) == b"only\n"
    both = busybox(pod, "both", "echo", args=("x", "y"))
    assert await run_to_exit(runtime, sandbox_id, both) == b"x y\n"
    args_only = busybox(pod, "args", args=("echo", "from", "args"))
    assert await run_to_exit(runtime, sandbox_id, args_only) == b"from args\n"
    defaults_id = await start(runtime, sandbox_id, busybox(pod, "defaults"))
    assert (await wait_exited(runtime, defaults_id)).reason == "Completed"  # `sh`, no stdin
    assert (await docker.inspect(defaults_id))["Config"]["Cmd"] == ["sh"]
    # args only keeps an image's ENTRYPOINT (pause has one): inspected, not run
    pause = ContainerConfig(pod=pod, name="entry", attempt=0, image=PAUSE, args=("-v",))
    config = (await docker.inspect(await runtime.create_container(sandbox_id, pause)))["Config"]
    assert (config["Entrypoint"], config["Cmd"]) == (["/pause"], ["-v"])


async def test_env_and_working_dir(runtime: DockerRuntime) -> None:
    pod = new_pod()
    sandbox_id = await sandbox(runtime, pod)
    config = busybox(
        pod,
        "env",
        "sh",
        "-c",
        'echo "$GREETING $EMPTY." && pwd',
        env=(("GREETING", "hi there"), ("EMPTY", "")),
        working_dir="/var/www",
    )
    assert await run_to_exit(runtime, sandbox_id, config) == b"hi there .\n/var/www\n"


async def test_mounts(runtime: DockerRuntime, tmp_path: Path) -> None:
    pod = new_pod()
    ro, rw = tmp_path / "ro", tmp_path / "rw"
    ro.mkdir()
    rw.mkdir()
    (ro / "given").write_text("from the host")
    mounts = (
        Mount(str(ro), "/ro", read_only=True),
        Mount(str(rw), "/rw"),
        Mount("", "/scratch", tmpfs=True),
    )
    sandbox_id = await sandbox(runtime, pod)
    cid = await start(runtime, sandbox_id, busybox(pod, "m", "sleep", "3600", mounts=mounts))
    assert (await runtime.exec(cid, ["cat", "/ro/given"], 10)).output == b"from the host"
    assert (await runtime.exec(cid, ["touch", "/ro/nope"], 10)).exit_code != 0
    assert (await runtime.exec(cid, ["sh", "-c", "echo out > /rw/made"], 10)).exit_code == 0
    assert (rw / "made").read_text() == "out\n"
    table = (await runtime.exec(cid, ["cat", "/proc/mounts"], 10)).output.decode()
    assert re.search(r"^tmpfs /scratch tmpfs rw", table, re.MULTILINE), table
    assert (await runtime.exec(cid, ["touch", "/scratch/x"], 10)).exit_code == 0


async def test_resources_and_security(runtime: DockerRuntime, docker: DockerCLI) -> None:
    pod = new_pod()
    sandbox_id = await sandbox(runtime, pod)
    security = SecurityContext(
        run_as_user=1000,
        run_as_group=2000,
        read_only_root=True,
        add_capabilities=("NET_ADMIN",),
        drop_capabilities=("CHOWN",),
    )
    config = busybox(
        pod,
        "limited",
        "sleep",
        "3600",
        memory_limit=64 * 2**20,
        cpu_limit_millis=500,
        cpu_shares=512,
        security=security,
    )
    cid = await start(runtime, sandbox_id, config)
    host = (await docker.inspect(cid))["HostConfig"]
    assert (host["Memory"], host["MemorySwap"]) == (64 * 2**20, 64 * 2**20)
    assert (host["CpuQuota"], host["CpuPeriod"], host["CpuShares"]) == (50_000, 100_000, 512)
    assert (host["ReadonlyRootfs"], host["Privileged"]) == (True, False)
    assert (host["CapAdd"], host["CapDrop"]) == (["NET_ADMIN"], ["CHOWN"])
    assert (await runtime.exec(cid, ["id", "-u"], 10)).output == b"1000\n"
    assert (await runtime.exec(cid, ["id", "-g"], 10)).output == b"2000\n"
    assert (await runtime.exec(cid, ["touch", "/root-is-ro"], 10)).exit_code != 0


# -- lifecycle --


async def test_exit_codes_and_reasons(runtime: DockerRuntime) -> None:
    pod = new_pod()
    sandbox_id = await sandbox(runtime, pod)
    failed_id = await start(runtime, sandbox_id, busybox(pod, "fails", "sh", "-c", "exit 3"))
    done_id = await start(runtime, sandbox_id, busybox(pod, "done", "true"))
    failed = await wait_exited(runtime, failed_id)
    assert (failed.exit_code, failed.reason, failed.name, failed.pod) == (3, "Error", "fails", pod)
    assert 0 < failed.created_at <= failed.started_at <= failed.finished_at
    assert failed.image == BUSYBOX
    assert failed.image_id.startswith("sha256:")
    done = await wait_exited(runtime, done_id)
    assert (done.exit_code, done.reason) == (0, "Completed")
    # a start that fails leaves Docker's "created" with an error: reported exited
    broken_id = await runtime.create_container(sandbox_id, busybox(pod, "broken", "/nope"))
    with pytest.raises(RuntimeError, match="nope"):
        await runtime.start_container(broken_id)
    broken = await status_of(runtime, broken_id)
    assert (broken.state, broken.reason) == (ContainerState.EXITED, "ContainerCannotRun")
    assert "/nope" in broken.message


async def test_state_is_readopted_from_labels(runtime: DockerRuntime, node_name: str) -> None:
    pod = new_pod()
    sandbox_id = await sandbox(runtime, pod)
    config = busybox(pod, "app", "sleep", "3600", attempt=2)
    container_id = await start(runtime, sandbox_id, config)
    before = (await runtime.sandboxes(pod.uid), await runtime.containers(pod.uid))
    restarted = DockerRuntime(node_name=node_name)
    other_node = DockerRuntime(node_name=f"{node_name}-other")
    try:
        after = (await restarted.sandboxes(pod.uid), await restarted.containers(pod.uid))
        assert after == before
        (status,) = after[1]
        assert (status.id, status.name, status.attempt) == (container_id, "app", 2)
        assert status.state is ContainerState.RUNNING
        # a retried create of the same attempt adopts, never duplicates
        assert (await restarted.run_sandbox(SandboxConfig(pod, 0, pod.name))).id == sandbox_id
        assert await restarted.create_container(sandbox_id, config) == container_id
        # ... but an exited one of that name is replaced
        await restarted.stop_container(container_id, 0)
        replaced = await restarted.create_container(sandbox_id, config)
        assert replaced != container_id
        assert [c.id for c in await restarted.containers(pod.uid)] == [replaced]
        assert await other_node.sandboxes() == []
        assert await other_node.containers() == []
    finally:
        await restarted.close()
        await other_node.close()


# -- listings: the relist's cheap one, a sync's snapshot --


async def test_states_tell_every_sandbox_and_container_in_one_call(
    runtime: DockerRuntime, docker: DockerCLI, node_name: str
) -> None:
    pod, other = new_pod(), new_pod()
    sandbox_id = await sandbox(runtime, pod)
    running = await start(runtime, sandbox_id, busybox(pod, "app", "sleep", "3600"))
    done = await start(runtime, sandbox_id, busybox(pod, "once", "true"))
    await wait_exited(runtime, done)
    created = await runtime.create_container(sandbox_id, busybox(pod, "later", "true"))
    host_sandbox = await sandbox(runtime, other, host_network=True)
    (pod_sandbox,) = await runtime.sandboxes(pod.uid)
    stranger = DockerRuntime(node_name=f"{node_name}-other")
    try:
        await sandbox(stranger, new_pod())  # another node's: never in this node's listing
        calls = count_calls(runtime)
        states = await runtime.states()
        assert len(calls) == 1
        assert calls[0].startswith("GET containers/json")
        assert sorted(states, key=lambda s: s.id) == sorted(
            [
                ItemState(sandbox_id, pod.uid, True, ContainerState.RUNNING, pod_sandbox.ip),
                ItemState(running, pod.uid, False, ContainerState.RUNNING),
                ItemState(done, pod.uid, False, ContainerState.EXITED),
                ItemState(created, pod.uid, False, ContainerState.CREATED),
                ItemState(host_sandbox, other.uid, True, ContainerState.RUNNING, ""),
            ],
            key=lambda s: s.id,
        )
        assert pod_sandbox.ip
        await docker.run("kill", running)
        await docker.run("rm", "-f", done)
        expected = {
            sandbox_id: ContainerState.RUNNING,
            running: ContainerState.EXITED,
            created: ContainerState.CREATED,
        }

        async def seen() -> bool:  # the kill is told a moment after `docker kill` returns
            states = await runtime.states()
            return {s.id: s.state for s in states if s.pod_uid == pod.uid} == expected

        await wait_until(seen, within=15, interval=0.02, what="the kill and the removal listed")
        await runtime.stop_sandbox(sandbox_id, 0)
        (stopped,) = [s for s in await runtime.states() if s.id == sandbox_id]
        assert (stopped.state, stopped.ip) == (ContainerState.EXITED, "")
    finally:
        await stranger.close()
        await docker.sweep(f"{node_name}-other")


async def test_snapshot_is_one_listing_and_an_inspect_each(runtime: DockerRuntime) -> None:
    pod = new_pod()
    sandbox_id = await sandbox(runtime, pod)
    first = await start(runtime, sandbox_id, busybox(pod, "a", "sleep", "3600"))
    await start(runtime, sandbox_id, busybox(pod, "b", "sh", "-c", "exit 3"))
    await sandbox(runtime, new_pod())  # another pod's: not in this one's snapshot
    expected = PodSnapshot(await runtime.sandboxes(pod.uid), await runtime.containers(pod.uid))
    calls = count_calls(runtime)
    assert await runtime.snapshot(pod.uid) == expected
    assert [c.split("?")[0] for c in calls].count("GET containers/json") == 1
    assert len(calls) == 4  # the listing, then the sandbox and its two containers
    assert [c.name for c in expected.containers] == ["a", "b"]
    assert await runtime.container_status(first) == expected.containers[0]
    await runtime.remove_container(first)
    assert await runtime.container_status(first) is None
    assert await runtime.snapshot(new_pod().uid) == PodSnapshot([], [])


async def test_pause_image_is_looked_up_once(docker: DockerCLI, node_name: str) -> None:
    """Not for every pod; and if it goes away, the next sandbox says so as a pull error."""
    pause = f"127.0.0.1:1/minikube-py-test/pause:{uuid.uuid4().hex[:8]}"  # nowhere to pull
    await docker.run("tag", PAUSE, pause)
    runtime = DockerRuntime(node_name=node_name, pause_image=pause)
    try:
        calls = count_calls(runtime)
        await runtime.run_sandbox(SandboxConfig(new_pod(), 0, "a"))
        assert sum(c.startswith("GET images/") for c in calls) == 1
        calls.clear()
        await runtime.run_sandbox(SandboxConfig(new_pod(), 0, "b"))
        assert not [c for c in calls if c.startswith("GET images/")]
        assert len(calls) == 3  # create, start, inspect
        await docker.run("rmi", pause)
        with pytest.raises(ImagePullError, match=re.escape(pause)):
            await runtime.run_sandbox(SandboxConfig(new_pod(), 0, "c"))
        await docker.run("tag", PAUSE, pause)
        assert (await runtime.run_sandbox(SandboxConfig(new_pod(), 0, "d"))).ready
    finally:
        await runtime.close()
        await docker.sweep(node_name)
        with contextlib.suppress(AssertionError):
            await docker.run("rmi", pause)


async def test_stop_honours_sigterm_then_kills(runtime: DockerRuntime) -> None:
    pod = new_pod()
    sandbox_id = await sandbox(runtime, pod)
    trap = "trap 'echo bye; exit 7' TERM; echo up; while true; do sleep 0.1; done"
    polite_id = await start(runtime, sandbox_id, busybox(pod, "polite", "sh", "-c", trap))
    # PID 1 without a handler ignores SIGTERM: only the SIGKILL after the grace ends it
    stubborn_id = await start(runtime, sandbox_id, busybox(pod, "stubborn", "sleep", "3600"))

    async def up() -> bool:
        return await logs(runtime, polite_id) == b"up\n"

    await wait_until(up, within=10, interval=0.05, what="the trap to be set")
    began = time.monotonic()
    await runtime.stop_container(polite_id, 30)
    assert time.monotonic() - began < 5
    polite = await status_of(runtime, polite_id)
    assert (polite.exit_code, polite.reason) == (7, "Error")
    assert await logs(runtime, polite_id) == b"up\nbye\n"
    began = time.monotonic()
    await runtime.stop_container(stubborn_id, 1)
    assert 0.9 < time.monotonic() - began < 10
    assert (await status_of(runtime, stubborn_id)).exit_code == 137
    await runtime.stop_sandbox(sandbox_id, 5)
    assert not (await runtime.sandboxes(pod.uid))[0].ready


async def test_sandbox_stop_and_remove_take_its_containers(runtime: DockerRuntime) -> None:
    pod = new_pod()
    sandbox_id = await sandbox(runtime, pod)
    await start(runtime, sandbox_id, busybox(pod, "a", "sleep", "3600"))
    await runtime.stop_sandbox(sandbox_id, 0)
    assert [c.state for c in await runtime.containers(pod.uid)] == [ContainerState.EXITED]
    await runtime.remove_sandbox(sandbox_id)
    assert await runtime.sandboxes(pod.uid) == []
    assert await runtime.containers(pod.uid) == []


async def test_daemon_refusals_are_translated(runtime: DockerRuntime) -> None:
    pod = new_pod()
    sandbox_id = await sandbox(runtime, pod)
    with pytest.raises(DockerCallError, match="Minimum memory limit") as refused:
        await runtime.create_container(sandbox_id, busybox(pod, "tiny", memory_limit=1024))
    assert refused.value.status == 400
    with pytest.raises(DockerNotFound, match="No such image"):
        await runtime.create_container(sandbox_id, busybox(pod, "x", image=MISSING_IMAGE))
    stopped = await start(runtime, sandbox_id, busybox(pod, "stopped", "true"))
    await wait_exited(runtime, stopped)
    with pytest.raises(DockerCallError, match="not running") as refused:
        await runtime.exec(stopped, ["true"], 5)
    assert refused.value.status == 409


async def test_missing_ids(runtime: DockerRuntime) -> None:
    missing = "0" * 64
    await runtime.stop_container(missing, 1)
    await runtime.remove_container(missing)
    await runtime.stop_sandbox(missing, 1)
    await runtime.remove_sandbox(missing)
    with pytest.raises(DockerNotFound, match="not found"):
        await runtime.start_container(missing)
    with pytest.raises(LookupError):
        await logs(runtime, missing)
    with pytest.raises(LookupError):
        await runtime.exec(missing, ["true"], 5)


# -- logs and exec --


async def test_logs_tail_timestamps_since_follow(runtime: DockerRuntime) -> None:
    pod = new_pod()
    sandbox_id = await sandbox(runtime, pod)
    script = "for i in 1 2 3 4; do echo line$i; done; sleep 0.3; echo oops >&2"  # ordered
    cid = await start(runtime, sandbox_id, busybox(pod, "talk", "sh", "-c", script))
    finished = (await wait_exited(runtime, cid)).finished_at
    assert await logs(runtime, cid) == b"line1\nline2\nline3\nline4\noops\n"
    assert await logs(runtime, cid, tail=2) == b"line4\noops\n"
    stamped = (await logs(runtime, cid, tail=1, timestamps=True)).decode()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z oops\n", stamped), stamped
    assert await logs(runtime, cid, since=finished + 1) == b""
    ticking = "for i in 1 2 3; do echo tick$i; sleep 0.2; done"
    follow_id = await start(runtime, sandbox_id, busybox(pod, "tick", "sh", "-c", ticking))
    followed = await asyncio.wait_for(logs(runtime, follow_id, follow=True), 15)
    assert followed == b"tick1\ntick2\ntick3\n"  # ends when the container does
    forever = busybox(pod, "forever", "sh", "-c", "echo first; exec sleep 3600")
    forever_id = await start(runtime, sandbox_id, forever)
    async with contextlib.aclosing(runtime.logs(forever_id, follow=True)) as stream:
        assert await asyncio.wait_for(anext(stream), 10) == b"first\n"  # then leave early


async def test_logs_keep_bytes_with_or_without_tty(runtime: DockerRuntime) -> None:
    pod = new_pod()
    sandbox_id = await sandbox(runtime, pod)
    # (invalid UTF-8 cannot survive: Docker's json-file log driver replaces it when writing)
    binary = busybox(pod, "bin", "printf", "gr\\303\\274\\303\\237e\\000\\n")
    assert await run_to_exit(runtime, sandbox_id, binary) == "grüße\0\n".encode()
    terminal = busybox(pod, "tty", "echo", "hi", tty=True)  # raw stream, no frames
    assert await run_to_exit(runtime, sandbox_id, terminal) == b"hi\r\n"


async def test_exec(runtime: DockerRuntime) -> None:
    pod = new_pod()
    sandbox_id = await sandbox(runtime, pod)
    cid = await start(runtime, sandbox_id, busybox(pod, "box", "sleep", "3600"))
    result = await runtime.exec(cid, ["sh", "-c", "echo out; echo err >&2; exit 4"], 10)
    assert result.exit_code == 4
    assert sorted(result.output.splitlines()) == [b"err", b"out"]
    assert (await runtime.exec(cid, ["true"], 10)).exit_code == 0
    began = time.monotonic()
    with pytest.raises(TimeoutError, match="timed out"):
        await runtime.exec(cid, ["sleep", "30"], 0.5)
    assert time.monotonic() - began < 5


# -- images and the daemon --


async def test_ensure_image_policies(runtime: DockerRuntime, docker: DockerCLI) -> None:
    info = await docker.inspect(BUSYBOX)
    local = ImageResult(id=info["Id"], size=info["Size"])
    pulls: list[str] = []

    def pulling() -> None:
        pulls.append("pull")

    assert await runtime.ensure_image(BUSYBOX, "Never", on_pull=pulling) == local
    assert await runtime.ensure_image(BUSYBOX, "IfNotPresent", on_pull=pulling) == local
    assert pulls == []  # present: no pull
    # no registry here: the pull fails and Always falls back to the local image, saying why
    fallback = await runtime.ensure_image(BUSYBOX, "Always", on_pull=pulling)
    assert pulls == ["pull"]
    assert (fallback.id, fallback.pulled) == (local.id, False)
    assert fallback.pull_error
    never = f'Container image "{MISSING_IMAGE}" is not present with pull policy of Never'
    with pytest.raises(ImagePullError, match=re.escape(never)):
        await runtime.ensure_image(MISSING_IMAGE, "Never")
    for policy in ("IfNotPresent", "Always"):
        with pytest.raises(ImagePullError, match=f'Failed to pull image "{MISSING_IMAGE}": .+'):
            await runtime.ensure_image(MISSING_IMAGE, policy)
    with pytest.raises(ValueError, match="pull policy"):
        await runtime.ensure_image(BUSYBOX, "Sometimes")


async def test_version_and_ping(runtime: DockerRuntime) -> None:
    await runtime.ping()
    assert re.fullmatch(r"docker://\d+\.\d+\.\d+.*", await runtime.version())


async def test_unreachable_daemon(
    node_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Needs no daemon: a bogus DOCKER_HOST, and a TCP port nobody listens on."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    for runtime in (
        DockerRuntime(node_name=node_name),
        DockerRuntime(node_name=node_name, docker_host="tcp://127.0.0.1:1"),
    ):
        try:
            with pytest.raises(RuntimeUnavailable, match=re.escape(runtime.docker_host)):
                await runtime.ping()
            # idempotent removal must not hide a daemon that is down
            with pytest.raises(RuntimeUnavailable):
                await runtime.remove_container("0" * 64)
            with pytest.raises(RuntimeUnavailable):
                await logs(runtime, "0" * 64)
        finally:
            await runtime.close()
    with pytest.raises(ValueError, match="unsupported Docker host"):
        DockerRuntime(node_name=node_name, docker_host="/var/run/docker.sock")
