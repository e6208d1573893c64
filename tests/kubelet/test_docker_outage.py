"""Docker goes away (or hangs) under a running kubelet, then comes back.

The kubelet runs as ``minikube-py kubelet`` does (its own command line, HTTP to an
in-process API server) with ``--docker-host`` pointing at a proxy in front of the shared
daemon; cutting the proxy (or making it swallow requests) is the outage, and no other
test sees it. The node must turn NotReady with the kubelet's reason and a message naming
the runtime, turn Ready again by itself, leave the pod it already ran untouched (same
containers, no restart) and start the pods that came meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from minikube_py import errors
from minikube_py.cli import _parser as cli_parser
from minikube_py.client.events import EVENTS
from minikube_py.client.interface import Client, Selection
from minikube_py.kubelet import standalone
from minikube_py.kubelet.node import NODES, NodeAgent, NodeConfig, RuntimeHealth
from minikube_py.kubelet.runtime.interface import POD_UID, RuntimeUnavailable
from minikube_py.kubelet.runtime.simulated import SimulatedRuntime
from minikube_py.kubelet.sync import PODS
from tests.kubelet.conftest import BUSYBOX, DockerCLI
from tests.support.cluster import running_cluster
from tests.support.requirements import missing
from tests.support.sockproxy import SocketProxy, socket_proxy
from tests.support.waiting import wait_until

STATUS_FREQUENCY = 0.3
"""--node-status-update-frequency: how soon the node reports the outage and the return."""
RUNTIME_GRACE = 1.0
"""How long the runtime may not answer before the node says it is down (30 s by default)."""


def docker_socket() -> Path:
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not host.startswith("unix://"):
        missing(f"a Docker daemon on a unix socket (DOCKER_HOST is {host})")
    return Path(host.removeprefix("unix://"))


@pytest.fixture
def short() -> Iterator[Path]:
    """A directory with a short path: a unix socket's path must fit in ~100 bytes."""
    with tempfile.TemporaryDirectory(prefix="mkpy-") as path:
        yield Path(path)


@contextlib.asynccontextmanager
async def kubelet(tmp: Path, api_port: int, node: str, docker_host: str) -> AsyncIterator[None]:
    """``minikube-py kubelet`` with its flags, in this process, for the block."""
    kubeconfig = tmp / "kubelet.conf"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: local\n"
        f"clusters:\n- name: local\n  cluster:\n    server: http://127.0.0.1:{api_port}\n"
        "contexts:\n- name: local\n  context:\n    cluster: local\n"
    )
    flags = cli_parser().parse_args(
        [
            "kubelet",
            f"--kubeconfig={kubeconfig}",
            f"--node-name={node}",
            f"--docker-host={docker_host}",
            f"--root-dir={tmp / 'kubelet'}",
            f"--node-status-update-frequency={STATUS_FREQUENCY}",
            "--port=0",
        ]
    )
    config = standalone.config_from(flags)
    node_config = dataclasses.replace(config.kubelet.node, runtime_grace=RUNTIME_GRACE)
    config = dataclasses.replace(
        config, kubelet=dataclasses.replace(config.kubelet, node=node_config)
    )
    task = asyncio.create_task(standalone.run(config))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass
class Node:
    """A kubelet behind a proxy, as a test sees it: the API, Docker, and the switch."""

    name: str
    client: Client
    docker: DockerCLI
    proxy: SocketProxy

    async def ready(self) -> dict[str, Any]:
        """The node's Ready condition ({} before it registers)."""
        try:
            found = await self.client.get(NODES, "", self.name)
        except errors.NotFound:
            return {}
        conditions = (found.get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c.get("type") == "Ready"), {})

    async def wait_ready(self, status: str, what: str) -> dict[str, Any]:
        async def reached() -> bool:
            return (await self.ready()).get("status") == status

        await wait_until(reached, within=30, what=what)
        return await self.ready()

    async def create_pod(self, name: str, *, probe: bool = False) -> None:
        """A long sleeper; with ``probe``, an exec liveness probe every second."""
        container: dict[str, Any] = {
            "name": "main",
            "image": BUSYBOX,
            "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
        }
        if probe:
            container["livenessProbe"] = {
                "exec": {"command": ["true"]},
                "periodSeconds": 1,
                "failureThreshold": 1,
            }
        spec = {"nodeName": self.name, "containers": [container]}
        await self.client.create(PODS, "default", {"metadata": {"name": name}, "spec": spec})

    async def wait_running(self, name: str) -> None:
        async def running() -> bool:
            status = (await self.client.get(PODS, "default", name)).get("status") or {}
            statuses = status.get("containerStatuses") or []
            return status.get("phase") == "Running" and all(
                "running" in s["state"] for s in statuses
            )

        await wait_until(running, within=60, what=f"pod {name} Running")

    async def containers(self, pod: str) -> list[str]:
        """``name id`` of every container (sandbox included) Docker holds for ``pod``."""
        uid = (await self.client.get(PODS, "default", pod))["metadata"]["uid"]
        out = await self.docker.run(
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            f"label={POD_UID}={uid}",
            "--format",
            "{{.Names}} {{.ID}}",
        )
        return sorted(out.splitlines())

    async def probe_errored(self, pod: str) -> bool:
        found = await self.client.list(EVENTS, Selection(namespace="default"))
        return any(
            event["involvedObject"].get("name") == pod
            and event.get("reason") == "Unhealthy"
            and "Liveness probe errored" in event.get("message", "")
            for event in found.items
        )


@pytest.fixture
async def node(tmp_path: Path, short: Path, docker: DockerCLI) -> AsyncIterator[Node]:
    """A Ready node whose kubelet reaches Docker through a proxy."""
    name = f"outage-{uuid.uuid4().hex[:8]}"
    try:
        async with (
            running_cluster(tmp_path, simulated_nodes=0) as cluster,
            socket_proxy(short / "docker.sock", docker_socket()) as proxy,
            kubelet(tmp_path, cluster.config.apiserver.port, name, proxy.url),
        ):
            running = Node(name, cluster.client, docker, proxy)
            await running.wait_ready("True", "the node Ready")
            yield running
    finally:
        await docker.sweep(name)


@pytest.mark.docker
async def test_docker_gone_turns_the_node_not_ready_and_back(node: Node) -> None:
    await node.create_pod("before", probe=True)
    await node.wait_running("before")
    held = await node.containers("before")
    assert len(held) == 2, held  # the sandbox and the container

    await node.proxy.cut()
    condition = await node.wait_ready("False", "the node NotReady")
    assert condition["reason"] == "KubeletNotReady"
    assert condition["message"].startswith("container runtime is down: "), condition
    assert node.proxy.url in condition["message"], condition  # names the daemon
    await node.create_pod("during")
    # Down until a liveness probe of "before" could not run: an error, not a failure.
    await wait_until(
        lambda: node.probe_errored("before"), within=20, what="a liveness probe errored"
    )

    await node.proxy.restore()
    condition = await node.wait_ready("True", "the node Ready again")
    assert condition["reason"] == "KubeletReady"
    await node.wait_running("during")
    await node.create_pod("after")
    await node.wait_running("after")
    assert await node.containers("before") == held  # no restart, no duplicate
    status = (await node.client.get(PODS, "default", "before"))["status"]
    assert status["containerStatuses"][0]["restartCount"] == 0


@pytest.mark.docker
async def test_docker_hung_turns_the_node_not_ready_and_back(node: Node) -> None:
    """A daemon that accepts but never answers: bounded pings, not a stuck kubelet."""
    await node.create_pod("before")
    await node.wait_running("before")
    held = await node.containers("before")

    node.proxy.hang()
    condition = await node.wait_ready("False", "the node NotReady")
    assert condition["reason"] == "KubeletNotReady"
    assert condition["message"].startswith("container runtime is down: "), condition
    assert "no answer within" in condition["message"], condition
    await node.create_pod("during")

    await node.proxy.restore()
    await node.wait_ready("True", "the node Ready again")
    await node.wait_running("during")
    assert await node.containers("before") == held


def test_the_runtime_is_down_only_after_the_grace() -> None:
    """A daemon that misses a check is not yet down; one never reached is not known up."""
    now = [1000.0]
    health = RuntimeHealth(grace=30.0, clock=lambda: now[0])
    health.observe("refused")
    assert health.not_ready() == (
        "container runtime status check may not have completed yet: refused"
    )
    health.observe(None)
    assert health.not_ready() is None
    now[0] += 29.0
    health.observe("refused")
    assert health.not_ready() is None
    now[0] += 1.0
    assert health.not_ready() == "container runtime is down: refused"
    health.observe(None)
    assert health.not_ready() is None


class SwitchedRuntime(SimulatedRuntime):
    """A runtime whose daemon can be switched off (only ``ping`` is used here)."""

    up = True

    async def ping(self) -> None:
        if not self.up:
            raise RuntimeUnavailable("switched off")


async def test_the_kubelet_is_told_once_when_the_runtime_is_back() -> None:
    """Pods waiting in back-off are synced at once, not whenever their back-off ends."""
    runtime = SwitchedRuntime("switched")
    back: list[str] = []
    config = NodeConfig(name="switched", runtime_grace=0.0)
    agent = NodeAgent(cast(Client, None), runtime, config, on_runtime_up=lambda: back.append("up"))
    assert await agent.check_runtime() is None  # up from the start: nothing to tell
    runtime.up = False
    assert await agent.check_runtime() == "container runtime is down: switched off"
    assert agent.runtime_failing
    assert await agent.check_runtime() is not None
    runtime.up = True
    assert await agent.check_runtime() is None
    assert await agent.check_runtime() is None
    assert back == ["up"]
