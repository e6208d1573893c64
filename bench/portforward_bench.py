"""Port-forward benchmark: MB/s through ``kubectl port-forward`` beside a direct TCP connection
to the pod IP, same run, same pod.

Run ``.venv/bin/python -m bench.portforward_bench [--quick]``. It starts a cluster in this
process (SQLite in a scratch dir on a real disk, one kubelet on real Docker) and a busybox
pod serving a file of random bytes over HTTP (``httpd``) and counting what it is sent
(``nc -ll -p 9000 -e wc -c``). Every transfer is made by a separate process (``curl`` for
downloads, a small Python uploader for uploads), so this process is only the server:

* download: ``curl`` fetches the file from ``http://<pod IP>/`` (direct), then through
  ``kubectl port-forward pod/... :80`` (kubectl 1.31+ tunnels SPDY in a WebSocket);
* upload: the uploader sends the same number of bytes to ``<pod IP>:9000``, half-closes and
  waits for ``wc -c``'s count, then the same through the forward;
* each is repeated and the median reported; direct and forwarded runs alternate, so drift in
  a shared machine's load hits both alike. With kubectl 1.30 (beside kubectl, as gcloud
  installs it) the plain SPDY upgrade is measured too.

The target is the issue's: forwarded >= 0.5x direct. On a small machine the forward's four
processes (client, kubectl, this server, the pod) share the CPUs that the direct path's two
have to themselves; the load average is printed for that reason. Speed is reported, never
judged by the exit status. ``--quick`` is a smoke run (8 MiB, 2 rounds).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    BUSYBOX,
    Report,
    argument_parser,
    bench_run,
    docker_cluster,
    docker_daemon,
    ensure_images,
    machine,
    process_cpu,
)
from minikube_py.cluster import Cluster
from minikube_py.kubelet.sync import PODS

MB = 1_000_000
UPLOADER = """
import socket, sys, time
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
chunk = bytes(256 * 1024)
began = time.perf_counter()
with socket.create_connection((host, port)) as s:
    left = size
    while left:
        left -= s.send(memoryview(chunk)[: min(left, len(chunk))])
    s.shutdown(socket.SHUT_WR)
    answer = b""
    while part := s.recv(4096):
        answer += part
print(time.perf_counter() - began, answer.decode().strip())
"""


@dataclass(frozen=True)
class Settings:
    size: int  # bytes per transfer
    rounds: int


FULL = Settings(size=256 * 1024 * 1024, rounds=5)
QUICK = Settings(size=8 * 1024 * 1024, rounds=2)


def pod_script(size: int) -> str:
    return (
        f"mkdir -p /www && head -c {size} /dev/urandom > /www/blob"
        " && (nc -ll -p 9000 -e wc -c &) && exec httpd -f -p 80 -h /www"
    )


async def wait_for(condition: Any, what: str, within: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def start_pod(cluster: Cluster, node: str, size: int) -> str:
    """The pod, Running and listening on both ports; its IP."""
    container = {"name": "bench", "image": BUSYBOX, "command": ["sh", "-c", pod_script(size)]}
    pod = {"metadata": {"name": "bench"}, "spec": {"nodeName": node, "containers": [container]}}
    await cluster.client.create(PODS, "default", pod)

    async def address() -> str:
        found = await cluster.client.get(PODS, "default", "bench")
        status = found.get("status") or {}
        return str(status.get("podIP") or "") if status.get("phase") == "Running" else ""

    async def listening() -> bool:
        ip = await address()
        for port in (80, 9000):
            try:
                _, writer = await asyncio.open_connection(ip, port)
            except OSError:
                return False
            writer.close()
        return bool(ip)

    await wait_for(listening, "the pod to listen on ports 80 and 9000")
    return await address()


async def run(*command: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({process.returncode}): {err.decode()}")
    return out.decode()


async def download(host: str, port: int, size: int) -> float:
    """MB/s of one ``curl`` of the file (checked for its length)."""
    out = await run(
        "curl", "-sS", "-o", "/dev/null", "-w", "%{size_download} %{time_total}",
        f"http://{host}:{port}/blob",
    )  # fmt: skip
    got, seconds = out.split()
    if int(got) != size:
        raise RuntimeError(f"downloaded {got} bytes of {size}")
    return size / float(seconds) / MB


async def upload(host: str, port: int, size: int) -> float:
    """MB/s of one upload, until the pod has counted every byte (``wc -c``)."""
    out = await run(sys.executable, "-c", UPLOADER, host, str(port), str(size))
    seconds, counted = out.split()
    if int(counted) != size:
        raise RuntimeError(f"the pod counted {counted} bytes of {size}")
    return size / float(seconds) / MB


@asynccontextmanager
async def kubectl_forward(
    kubectl: str, server: int, home: Path, target: str, *ports: int
) -> AsyncIterator[tuple[dict[int, int], int]]:
    """``kubectl port-forward target :p ...`` running: remote port → local port, its pid."""
    env = {**os.environ, "KUBECONFIG": "/dev/null", "KUBECACHEDIR": str(home / "cache")}
    process = await asyncio.create_subprocess_exec(
        kubectl, "--server", f"http://127.0.0.1:{server}", "port-forward", target,
        *(f":{port}" for port in ports),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    local: dict[int, int] = {}
    try:
        while len(local) < len(ports):
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            if not line:
                raise RuntimeError(f"kubectl: {(await process.stderr.read()).decode()}")
            if line.startswith("Forwarding from 127.0.0.1:"):
                address, remote = line.removeprefix("Forwarding from ").split(" -> ")
                local[int(remote)] = int(address.rsplit(":", 1)[1])
        async with asyncio.TaskGroup() as group:
            drain = group.create_task(process.stdout.read())  # "Handling connection ..."
            yield local, process.pid
            process.terminate()
            await drain
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


@dataclass
class Cpu:
    """CPU seconds this server and kubectl spend on forwarded transfers (not the direct ones)."""

    kubectl: int = 0  # its pid
    server: float = 0.0
    client: float = 0.0
    megabytes: float = 0.0

    @contextmanager
    def measure(self, size: int) -> Iterator[None]:
        server, client = time.process_time(), process_cpu(self.kubectl)
        yield
        self.server += time.process_time() - server
        self.client += process_cpu(self.kubectl) - client
        self.megabytes += size / MB

    def server_ms(self) -> float:
        return self.server * 1000 / self.megabytes

    def kubectl_ms(self) -> float:
        return self.client * 1000 / self.megabytes


def kubectl_binaries() -> list[tuple[str, str]]:
    """kubectl as installed, and a kubectl 1.30 beside it when there is one (SPDY upgrade)."""
    found = shutil.which("kubectl")
    if found is None:
        raise RuntimeError("no kubectl on PATH")
    binaries = [("kubectl (WebSocket)", found)]
    old = Path(found).resolve().parent / "kubectl.1.30"
    if old.exists():
        binaries.append(("kubectl 1.30 (SPDY upgrade)", str(old)))
    return binaries


async def measure(
    cluster: Cluster, ip: str, settings: Settings, report: Report, home: Path
) -> None:
    size, server = settings.size, cluster.config.apiserver.port
    report.line(f"{settings.size / MB:,.0f} MB per transfer, median of {settings.rounds} rounds")
    report.header("direct to the pod IP")
    for label, kubectl in kubectl_binaries():
        down: dict[str, list[float]] = {"direct": [], "forward": []}
        up: dict[str, list[float]] = {"direct": [], "forward": []}
        cpu = {"download": Cpu(), "upload": Cpu()}
        async with kubectl_forward(kubectl, server, home, "pod/bench", 80, 9000) as forward:
            local, pid = forward
            cpu["download"].kubectl = cpu["upload"].kubectl = pid
            for _ in range(settings.rounds):
                down["direct"].append(await download(ip, 80, size))
                with cpu["download"].measure(size):
                    down["forward"].append(await download("127.0.0.1", local[80], size))
                up["direct"].append(await upload(ip, 9000, size))
                with cpu["upload"].measure(size):
                    up["forward"].append(await upload("127.0.0.1", local[9000], size))
        for way, values in (("download", down), ("upload", up)):
            forwarded, direct = (
                statistics.median(values["forward"]),
                statistics.median(values["direct"]),
            )
            report.figure(f"{label} {way}", forwarded, "MB/s", f"{way} direct", direct)
            report.target(
                f"{label} {way} >= 0.5x direct",
                f"{forwarded / direct:.2f}x",
                forwarded >= 0.5 * direct,
            )
            report.note(
                f"CPU per MB forwarded ({way}): this server {cpu[way].server_ms():.2f} ms,"
                f" kubectl {cpu[way].kubectl_ms():.2f} ms"
            )
        kubectl_ms = cpu["download"].kubectl_ms()
        ceiling = 1000 / kubectl_ms if kubectl_ms else float("inf")
        report.note(
            f"kubectl alone, with a whole CPU and a server costing nothing, could download at"
            f" most {ceiling:,.0f} MB/s = {ceiling / statistics.median(down['direct']):.2f}x"
            " direct"
        )


async def bench(work: Path, settings: Settings, report: Report) -> None:
    async with docker_cluster(work, "bench-pf") as cluster:
        ip = await start_pod(cluster, cluster.config.node_name, settings.size)
        await measure(cluster, ip, settings, report, work)


def main(argv: Sequence[str] | None = None) -> int:
    args = argument_parser(
        "portforward_bench", "MB/s through kubectl port-forward beside a direct TCP connection."
    ).parse_args(argv)
    settings = QUICK if args.quick else FULL
    report = Report()
    title = f"port-forward benchmark: {machine('the clients, kubectl, this server and Docker')}"
    with bench_run(report, args, "portforward-bench", title) as work:
        with docker_daemon(work, report):
            ensure_images(report)
            asyncio.run(bench(work, settings, report))
        report.print_targets()
    return 0


if __name__ == "__main__":
    sys.exit(main())
