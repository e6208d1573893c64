"""Exec benchmark: the round trip of ``kubectl exec pod -- true`` beside ``docker exec``.

Run ``.venv/bin/python -m bench.exec_bench [--quick]``. It runs a cluster in this process
(SQLite in a scratch dir, one real Docker node of its own name, nothing else), starts a
busybox pod (``sleep 3600``) and measures, round after round so that drift in a shared
machine's load hits every path alike, the time from start to exit status of ``true``:

* ``kubectl exec`` (the real kubectl 1.32: a process, a GET of the pod, then the v5
  WebSocket through the API server to the kubelet and Docker) beside ``docker exec`` of
  the same container (the docker CLI: a process, then Docker's API directly);
* an in-process WebSocket client (aiohttp, v5, the API server in the same event loop) beside
  its ceiling, Docker's exec API used directly with aiodocker (create, start, read to the
  end, inspect the exit code), which is what the kubelet must ask of Docker anyway.

p50 and p99 over the rounds are printed in ms, and each path's ratio to its Docker
counterpart. Speed is reported, never judged by the exit status. ``--quick`` is a smoke run
(5 rounds). Docker: the daemon that answers is used; if none does, one is started with
``scripts/docker-daemon.sh start`` and stopped at the end, and only then; the pause and
busybox images are made by ``scripts/images.sh`` when missing. The node's containers are
removed at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import aiodocker
import aiohttp

from bench.common import (
    BUSYBOX,
    Report,
    argument_parser,
    bench_run,
    docker_cluster,
    docker_daemon,
    ensure_images,
    machine,
    percentile,
)
from minikube_py.cluster import Cluster
from minikube_py.kubelet.sync import PODS


async def timed(action: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await action()
    return (time.perf_counter() - start) * 1000


async def run_process(*argv: str, env: dict[str, str] | None = None) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    _, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({process.returncode}): {err.decode()}")


class Paths:
    """The four ways to run ``true`` in the pod's container."""

    def __init__(self, cluster: Cluster, container_id: str, work: Path) -> None:
        port = cluster.config.apiserver.port
        self.server = f"http://127.0.0.1:{port}"
        self.container_id = container_id
        self.kubectl_env = {
            **os.environ,
            "KUBECONFIG": "/dev/null",
            "KUBECACHEDIR": str(work / "kubectl-cache"),
        }
        self.ws_url = (
            f"{self.server}/api/v1/namespaces/default/pods/bench/exec"
            "?command=true&stdout=true&stderr=true"
        )
        self.session = aiohttp.ClientSession()
        self.docker = aiodocker.Docker()

    async def close(self) -> None:
        await self.session.close()
        await self.docker.close()

    async def kubectl(self) -> None:
        await run_process(
            "kubectl", "-s", self.server, "exec", "bench", "--", "true", env=self.kubectl_env
        )

    async def docker_cli(self) -> None:
        await run_process("docker", "exec", self.container_id, "true")

    async def websocket(self) -> None:
        status = b""
        async with self.session.ws_connect(self.ws_url, protocols=("v5.channel.k8s.io",)) as ws:
            async for message in ws:
                if message.type is aiohttp.WSMsgType.BINARY and message.data[:1] == b"\x03":
                    status += message.data[1:]
        if json.loads(status)["status"] != "Success":
            raise RuntimeError(f"exec failed: {status.decode()}")

    async def docker_api(self) -> None:
        container = self.docker.containers.container(self.container_id)
        execution = await container.exec(["true"], stdout=True, stderr=True)
        async with execution.start(detach=False) as stream:
            while await stream.read_out() is not None:
                pass
        for _ in range(10_000):  # the stream may end a moment before Docker records the exit
            info = await execution.inspect()
            if not info["Running"]:
                break
            await asyncio.sleep(0.001)
        if info["ExitCode"] != 0:
            raise RuntimeError(f"docker exec exited {info['ExitCode']}")


async def start_pod(cluster: Cluster) -> str:
    """The pod's container ID once it runs."""
    body = {
        "metadata": {"name": "bench"},
        "spec": {
            "nodeName": cluster.config.node_name,
            "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"]}],
        },
    }
    await cluster.client.create(PODS, "default", body)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pod = await cluster.client.get(PODS, "default", "bench")
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if "running" in status.get("state", {}):
                return str(status["containerID"]).partition("://")[2]
        await asyncio.sleep(0.1)
    raise RuntimeError("the bench pod did not start in 120 s")


async def measure(paths: Paths, rounds: int) -> dict[str, list[float]]:
    ways = {
        "kubectl exec": paths.kubectl,
        "docker exec": paths.docker_cli,
        "websocket exec (in-process client)": paths.websocket,
        "docker API exec (aiodocker)": paths.docker_api,
    }
    for action in ways.values():  # warm up: kubectl's discovery cache, connections
        await action()
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, action in ways.items():
            times[name].append(await timed(action))
    return times


def print_times(report: Report, times: dict[str, list[float]], rounds: int) -> None:
    report.line(f"exec round trip of `true`, {rounds} rounds (ms)")
    report.line(f"  {'':38} {'p50':>8} {'p99':>8}")
    for name, values in times.items():
        report.line(f"  {name:38} {percentile(values, 50):8.1f} {percentile(values, 99):8.1f}")
    pairs = (
        ("kubectl exec", "docker exec"),
        ("websocket exec (in-process client)", "docker API exec (aiodocker)"),
    )
    for ours, theirs in pairs:
        ratio = percentile(times[ours], 50) / percentile(times[theirs], 50)
        report.line(f"  p50 {ours} / {theirs}: {ratio:.2f}x")


async def run(work: Path, rounds: int) -> dict[str, list[float]]:
    async with docker_cluster(work, "exec-bench") as cluster:
        paths = Paths(cluster, await start_pod(cluster), work)
        try:
            return await measure(paths, rounds)
        finally:
            await paths.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser("exec_bench", (__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="rounds per path (default 50)")
    args = parser.parse_args(argv)
    rounds = 5 if args.quick else args.rounds
    report = Report()
    title = f"exec benchmark: {machine('kubectl, this server and Docker')}"
    with bench_run(report, args, "exec-bench", title) as work:
        with docker_daemon(work, report):
            ensure_images(report)
            times = asyncio.run(run(work, rounds))
        print_times(report, times, rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
