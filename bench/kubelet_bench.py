"""Kubelet benchmark: pod start-up latency of ``minikube-py up`` beside raw Docker, same run.

Run ``.venv/bin/python -m bench.kubelet_bench [--quick]`` (``make bench`` runs it through
``scripts/run-bench.sh``). It starts ``minikube-py up`` as a subprocess (its own data dir on
a real disk, a free port, a node name of its own, no kubeconfig touched), waits for the node
to be Ready and measures, on real Docker:

* pod start-up latency, the Kubernetes SLI: from just before the POST of a one-container
  busybox pod (``busybox:1.35``, ``sleep 3600``, ``nodeName`` set, image present) to when
  a watch on the pods collection (``?watch=true``) shows it ``Running``; p50 and p99 over
  30 pods created one after another (each once the previous one runs);
* beside it, the ceiling: what the kubelet must ask of Docker for such a pod, done
  directly with aiodocker in this process: create+start of a pause container, then
  create+start of the busybox container joining its network and IPC namespaces, with the
  very bodies the kubelet sends (``docker_config``). Raw pods and kubelet pods alternate,
  so drift in a shared machine's load hits both alike;
* where a kubelet pod's time goes, from Docker's own timestamps of its two containers;
* 50 pods created at once: time until all are Running, beside 50 raw pods at once.

The Docker daemon may be shared: ``minikube-py down`` of another cluster on it removes
every minikube-py container, ours too. The kubelet then redoes them and the figures are
wrong, so a warning is printed whenever a container had to be redone.

A raw pod's containers are labelled ``io.minikube-py.node=<node>-raw``, so that the kubelet
(which only lists ``<node>``) never mistakes them for orphans. Everything labelled with
either node name is removed at the end, after ``up`` is stopped (``up`` leaves pods running
on SIGTERM by design). Docker: the daemon that answers is used; if none does, one is started
with ``scripts/docker-daemon.sh start`` and stopped at the end, and only then. Missing images
are made by ``scripts/images.sh``. The ``up`` pid goes to ``<work>/minikube-py-up.pid`` and
the node names to ``<work>/docker-nodes`` so that ``scripts/run-bench.sh`` can clean up even
if this process is killed outright.

Speed is reported, never judged by the exit status: it is non-zero only when the benchmark
itself fails. ``--quick`` is a smoke run (5 pods, then 5 at once).
"""

from __future__ import annotations

import asyncio
import math
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp

from bench.common import (
    BUSYBOX,
    PAUSE,
    Report,
    argument_parser,
    bench_run,
    cpu_seconds,
    daemon_pid,
    log_on_failure,
    machine,
    number,
    percentile,
    record_nodes,
    unique_node,
)
from bench.up_process import (
    NAMESPACE,
    RUNNING_TIMEOUT,
    PodWatch,
    Up,
    create_pod,
    delete_pod,
    start_up,
    up_environment,
    up_etcd,
    wait_api,
    wait_node_ready,
)
from minikube_py.kubelet.runtime.docker_config import (
    container_body,
    container_name,
    parse_time,
    sandbox_body,
    sandbox_name,
)
from minikube_py.kubelet.runtime.interface import (
    CONTAINER_TYPE,
    NODE_NAME,
    POD_NAME,
    RESTART_COUNT,
    ContainerConfig,
    PodRef,
    SandboxConfig,
)

P50_RATIO_TARGET = 1.3
P99_TARGET_MS = 2000.0


@dataclass(frozen=True)
class Settings:
    """Sizes of one run: ``FULL`` is what the targets are about, ``QUICK`` a smoke run."""

    serial: int
    """Pods created one after another (each once the previous one runs), and as many raw."""
    burst: int
    """Pods created at once, and as many raw pods at once."""
    warmup: int
    """Pods (and raw pods) run first and not counted: the first of each pays one-off costs."""


FULL = Settings(serial=30, burst=50, warmup=2)
QUICK = Settings(serial=5, burst=5, warmup=1)


@dataclass(frozen=True)
class Labels:
    """Every figure's and target's label, so that the smoke test can look for each."""

    settings: Settings

    def startup(self, q: int) -> str:
        return f"pod start-up p{q} ms ({self.settings.serial} one by one)"

    def raw(self, q: int) -> str:
        return f"raw docker pod p{q}"

    @property
    def burst_all(self) -> str:
        return f"{self.settings.burst} pods at once: all Running ms"

    @property
    def raw_burst_all(self) -> str:
        return f"raw: {self.settings.burst} pods at once"

    def burst(self, q: int) -> str:
        return f"{self.settings.burst} pods at once: p{q} ms"

    def raw_burst(self, q: int) -> str:
        return f"raw: {self.settings.burst} at once p{q}"

    def figures(self) -> list[str]:
        return [
            self.startup(50),
            self.startup(99),
            self.burst_all,
            self.burst(50),
            self.burst(99),
        ]

    @property
    def p50_target(self) -> str:
        return f"pod start-up p50 <= {P50_RATIO_TARGET}x raw p50"

    @property
    def p99_target(self) -> str:
        return f"pod start-up p99 <= {P99_TARGET_MS / 1000:g} s"

    def targets(self) -> list[str]:
        return [self.p50_target, self.p99_target]


# -- pods through the API, seen through a watch --


async def kubelet_pod(session: aiohttp.ClientSession, up: Up, watch: PodWatch, name: str) -> float:
    """Create one pod and wait until the watch shows it Running; the latency in seconds."""
    began = time.perf_counter()
    await create_pod(session, up, name)
    await watch.until(lambda: name in watch.running, f"pod {name} Running", RUNNING_TIMEOUT)
    return watch.running[name] - began


# -- raw Docker: the same containers, without the cluster --


class RawPods:
    """Pods done by hand with aiodocker: the ceiling of what the kubelet does per pod.

    The bodies are the kubelet's own (``sandbox_body``, ``container_body``), so Docker does
    exactly the same work; only the node label differs (``<node>-raw``).
    """

    def __init__(self, docker: aiodocker.Docker, node: str) -> None:
        self.docker = docker
        self.node = f"{node}-raw"
        self.count = 0

    async def pod(self) -> tuple[float, float]:
        """Create+start a pause container, then busybox joining it; (wall start, seconds)."""
        self.count += 1
        ref = PodRef(uid=uuid.uuid4().hex, name=f"raw-{self.count}", namespace=NAMESPACE)
        sandbox = sandbox_body(
            SandboxConfig(pod=ref, attempt=0, hostname=ref.name), image=PAUSE, node_name=self.node
        )
        config = ContainerConfig(
            pod=ref, name="busybox", attempt=0, image=BUSYBOX, command=("sleep", "3600")
        )
        wall, began = time.time(), time.perf_counter()
        pause = await self.docker.containers.create(sandbox, name=sandbox_name(ref, 0))
        await pause.start()
        body = container_body(config, sandbox_id=pause.id, node_name=self.node)
        app = await self.docker.containers.create(body, name=container_name(config))
        await app.start()
        return wall, time.perf_counter() - began

    async def remove_all(self) -> None:
        found = await self.docker.containers.list(
            all=True, filters={"label": [f"{NODE_NAME}={self.node}"]}
        )
        await asyncio.gather(*(c.delete(force=True) for c in found))


# -- where the time goes --

STAGES = (
    "until Docker creates the sandbox",
    "sandbox create+start (Docker)",
    "sandbox started -> app container created",
    "app container create+start (Docker)",
    "app started -> Running seen by the watch",
)


async def stage_times(
    docker: aiodocker.Docker, node: str, began: dict[str, float], seen: dict[str, float]
) -> list[list[float]]:
    """Per stage, its seconds for each pod, from Docker's timestamps of the pod's containers.

    ``began`` is the wall time each pod's creation began, ``seen`` when it was seen Running
    (none for raw pods: their last stage is then left out). Docker's ``Created`` is stamped
    as it begins a create and ``StartedAt`` once the process runs, so a Docker stage holds
    the create's rootfs set-up and the start, and the kubelet's stages the rest.
    """
    listed = await docker.containers.list(all=True, filters={"label": [f"{NODE_NAME}={node}"]})
    infos = await asyncio.gather(*(c.show() for c in listed))
    by_pod: dict[str, dict[str, dict[str, Any]]] = {}
    for info in infos:
        labels = info["Config"]["Labels"]
        by_pod.setdefault(labels[POD_NAME], {})[labels[CONTAINER_TYPE]] = info
    stages: list[list[float]] = [[] for _ in STAGES]
    for name, start in began.items():
        parts = by_pod.get(name, {})
        if "podsandbox" not in parts or "container" not in parts:
            continue
        sandbox, app = parts["podsandbox"], parts["container"]
        marks = [
            start,
            parse_time(sandbox["Created"]),
            parse_time(sandbox["State"]["StartedAt"]),
            parse_time(app["Created"]),
            parse_time(app["State"]["StartedAt"]),
        ]
        if name in seen:
            marks.append(seen[name])
        for index in range(len(marks) - 1):
            stages[index].append(marks[index + 1] - marks[index])
    return stages


async def redone(docker: aiodocker.Docker, node: str) -> int:
    """How many of ``node``'s containers are a second attempt (a sandbox or container redone).

    None should be: these pods never fail. Some are when something else removed containers
    meanwhile (``minikube-py down`` of another cluster on this daemon removes every
    minikube-py container): the kubelet then redoes them, and the figures are suspect.
    """
    listed = await docker.containers.list(all=True, filters={"label": [f"{NODE_NAME}={node}"]})
    count = 0
    for container in listed:
        labels = container["Labels"] or {}
        name = str((container["Names"] or ["?"])[0])
        if labels.get(RESTART_COUNT, "0") != "0" or not name.endswith("_0"):
            count += 1
    return count


def warn_redone(report: Report, count: int) -> None:
    if count:
        report.line(
            f"WARNING: {count} container(s) had to be redone: something removed containers"
            " during the run (e.g. `minikube-py down` elsewhere on this daemon); figures suspect"
        )


def print_stages(report: Report, kubelet: list[list[float]], raw: list[list[float]]) -> None:
    report.section("where a pod's time goes (median ms, from Docker's timestamps)")
    report.line(f"{'stage':<44} {'kubelet':>9} {'raw':>9}")
    for index, stage in enumerate(STAGES):
        ours = statistics.median(kubelet[index]) * 1000 if kubelet[index] else math.nan
        theirs = statistics.median(raw[index]) * 1000 if raw[index] else math.nan
        report.line(f"{stage:<44} {number(ours, 'ms'):>9} {number(theirs, 'ms'):>9}")


# -- the benchmark --


class Cpu:
    """CPU seconds the ``up`` process and dockerd spend over some spans, per pod done in them.

    On a small machine the client, ``up`` and Docker share the CPUs: this says which of them
    a figure is bound by. dockerd's share includes whatever else uses that daemon meanwhile.
    """

    def __init__(self, up_pid: int) -> None:
        self.pids = (up_pid, daemon_pid("dockerd"))
        self.spent = [0.0, 0.0]
        self.pods = 0
        self._marks = [0.0, 0.0]

    def start(self) -> None:
        self._marks = [cpu_seconds(pid) for pid in self.pids]

    def stop(self, pods: int) -> None:
        for index, pid in enumerate(self.pids):
            self.spent[index] += cpu_seconds(pid) - self._marks[index]
        self.pods += pods

    def note(self) -> str:
        up, dockerd = (seconds / max(self.pods, 1) * 1000 for seconds in self.spent)
        return f"cpu ms/pod: up {number(up, 'ms')}, dockerd {number(dockerd, 'ms')}"


async def serial_phase(
    session: aiohttp.ClientSession,
    up: Up,
    watch: PodWatch,
    raw: RawPods,
    settings: Settings,
    report: Report,
) -> tuple[list[float], list[float]]:
    """Warm-up, then raw pods and kubelet pods alternately; (kubelet, raw) latencies in s."""
    for index in range(settings.warmup):
        await raw.pod()
        await kubelet_pod(session, up, watch, f"warmup-{index}")
    kubelet_cpu, raw_cpu = Cpu(up.pid), Cpu(up.pid)
    kubelet_times: list[float] = []
    raw_times: list[float] = []
    began: dict[str, float] = {}
    raw_began: dict[str, float] = {}
    for index in range(settings.serial):
        raw_cpu.start()
        wall, seconds = await raw.pod()
        raw_cpu.stop(1)
        raw_began[f"raw-{raw.count}"] = wall
        raw_times.append(seconds)
        name = f"serial-{index}"
        began[name] = time.time()
        kubelet_cpu.start()
        kubelet_times.append(await kubelet_pod(session, up, watch, name))
        kubelet_cpu.stop(1)

    labels = Labels(settings)
    n = settings.serial
    report.section(f"{n} pods one after another (after {settings.warmup} warm-up pod(s) each)")
    report.header()
    for q in (50, 99):
        report.figure(
            labels.startup(q),
            percentile(kubelet_times, q) * 1000,
            "ms",
            labels.raw(q),
            percentile(raw_times, q) * 1000,
        )
    report.note(
        f"kubelet min {min(kubelet_times) * 1000:,.0f} ms, max {max(kubelet_times) * 1000:,.0f}"
        f" ms; raw min {min(raw_times) * 1000:,.0f} ms, max {max(raw_times) * 1000:,.0f} ms"
    )
    report.note(f"kubelet pods {kubelet_cpu.note()}; raw pods {raw_cpu.note()}")
    seen = {name: watch.running_wall[name] for name in began if name in watch.running_wall}
    ours = await stage_times(raw.docker, up.node, began, seen)
    theirs = await stage_times(raw.docker, raw.node, raw_began, {})
    print_stages(report, ours, theirs)
    warn_redone(report, await redone(raw.docker, up.node))
    return kubelet_times, raw_times


async def clear_node(
    session: aiohttp.ClientSession, up: Up, watch: PodWatch, raw: RawPods, names: list[str]
) -> None:
    """Delete the pods (grace 0) and the raw pods; wait until Docker holds none of them."""
    await asyncio.gather(*(delete_pod(session, up, name) for name in names))
    await watch.until(lambda: watch.gone.issuperset(names), "pods deleted", RUNNING_TIMEOUT)
    await raw.remove_all()
    deadline = time.perf_counter() + RUNNING_TIMEOUT
    while await raw.docker.containers.list(all=True, filters={"label": [f"{NODE_NAME}={up.node}"]}):
        if time.perf_counter() > deadline:
            raise RuntimeError("the kubelet did not remove the deleted pods' containers")
        await asyncio.sleep(0.1)


async def burst_phase(
    session: aiohttp.ClientSession,
    up: Up,
    watch: PodWatch,
    raw: RawPods,
    settings: Settings,
    report: Report,
) -> tuple[float, float]:
    """Raw pods at once, then as many kubelet pods at once; (kubelet, raw) all-done in s."""
    n = settings.burst
    raw_cpu, kubelet_cpu = Cpu(up.pid), Cpu(up.pid)
    raw_cpu.start()
    began = time.perf_counter()
    raw_results = await asyncio.gather(*(raw.pod() for _ in range(n)))
    raw_all = time.perf_counter() - began
    raw_cpu.stop(n)
    raw_times = [seconds for _, seconds in raw_results]
    await raw.remove_all()

    names = [f"burst-{index}" for index in range(n)]
    kubelet_cpu.start()
    began = time.perf_counter()
    await asyncio.gather(*(create_pod(session, up, name) for name in names))
    posted = time.perf_counter() - began
    await watch.until(
        lambda: all(name in watch.running for name in names), f"{n} pods Running", 600.0
    )
    kubelet_all = max(watch.running[name] for name in names) - began
    kubelet_cpu.stop(n)
    kubelet_times = [watch.running[name] - began for name in names]

    labels = Labels(settings)
    report.section(f"{n} pods created at once")
    report.header()
    report.figure(labels.burst_all, kubelet_all * 1000, "ms", labels.raw_burst_all, raw_all * 1000)
    for q in (50, 99):
        report.figure(
            labels.burst(q),
            percentile(kubelet_times, q) * 1000,
            "ms",
            labels.raw_burst(q),
            percentile(raw_times, q) * 1000,
        )
    report.note(f"the {n} POSTs took {posted * 1000:,.0f} ms")
    report.note(f"kubelet pods {kubelet_cpu.note()}; raw pods {raw_cpu.note()}")
    warn_redone(report, await redone(raw.docker, up.node))
    return kubelet_all, raw_all


async def bench(up: Up, settings: Settings, report: Report) -> None:
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:
        await wait_api(session, up)
        await wait_node_ready(session, up)
        report.line(
            f"node {up.node} Ready {time.perf_counter() - up.started:.2f} s after starting"
            f" `minikube-py up` (pid {up.pid})"
        )
        docker = aiodocker.Docker()
        watch = PodWatch(session, up)
        await watch.start()
        try:
            raw = RawPods(docker, up.node)
            kubelet_times, raw_times = await serial_phase(session, up, watch, raw, settings, report)
            await clear_node(session, up, watch, raw, sorted(watch.running))
            await burst_phase(session, up, watch, raw, settings, report)
        finally:
            await watch.stop()
            await docker.close()
    labels = Labels(settings)
    p50, raw_p50 = percentile(kubelet_times, 50), percentile(raw_times, 50)
    p99 = percentile(kubelet_times, 99) * 1000
    ratio = p50 / raw_p50
    report.target(
        labels.p50_target,
        f"{ratio:.2f}x ({p50 * 1000:,.0f} vs {raw_p50 * 1000:,.0f} ms)",
        ratio <= P50_RATIO_TARGET,
    )
    report.target(labels.p99_target, f"{p99:,.0f} ms", p99 <= P99_TARGET_MS)


# -- main --


def run_up(work: Path, node: str, servers: str, settings: Settings, report: Report) -> None:
    """``up`` for the benchmark: started here, always stopped here (SIGTERM, then SIGKILL)."""
    up = start_up(work, node, servers)
    try:
        with log_on_failure(up, "kubelet_bench"):
            asyncio.run(bench(up, settings, report))
    finally:
        try:
            stopped = up.stop()  # first: printing may fail (a closed pipe)
        finally:
            if up.process.poll() is None:  # the stop itself was cut short (a second SIGTERM)
                up.process.kill()
        report.line()
        report.line(f"minikube-py up (pid {up.pid}) {stopped}")


def main(argv: Sequence[str] | None = None) -> int:
    args = argument_parser(
        "kubelet_bench", "Pod start-up latency of `minikube-py up` beside raw Docker, same run."
    ).parse_args(argv)
    settings = QUICK if args.quick else FULL
    etcd = up_etcd(args, "kubelet_bench")
    report = Report()
    title = f"kubelet benchmark: {machine('this client, `up` and Docker')}"
    with bench_run(report, args, "kubelet-bench", title) as work:
        node = unique_node("bench-kubelet")
        record_nodes(work, node, f"{node}-raw")
        with up_environment(work, report, etcd) as servers:
            run_up(work, node, servers, settings, report)
        report.print_targets()
    return 0


if __name__ == "__main__":
    sys.exit(main())
