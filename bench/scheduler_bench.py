"""Scheduler benchmark: pods bound per second beside the raw store write rate, same run.

Run ``.venv/bin/python -m bench.scheduler_bench [--quick] [--dir DIR]``. In one process, on
SQLite on a real disk (never tmpfs, where fsync costs nothing), it starts the API server
(in-process client, no HTTP), then:

* creates 1,000 Node objects through the client (as kube's scheduler_perf does: 4 CPUs,
  32 GiB, 110 pods, Ready; no kubelets) and 10,000 pending pods (100m CPU, 500 MiB, as
  scheduler_perf's default pod) with 64 concurrent creators;
* measures the raw store write rate: ``Store.create`` of one of those pods as stored, with
  as many concurrent writers as the scheduler has binders, on keys outside ``/registry/``
  (no watcher sees them), just before and just after the scheduling run (the figure is
  their mean, so drift in a shared machine's load hits both alike);
* starts the scheduler and times from its first to its last acknowledged binding, then
  checks through a LIST that every pod is bound and no node holds more than it allows;
* then binds as many fresh pods again straight through the API (``pods/binding`` with as
  many concurrent callers, no scheduler deciding): the ceiling of the binding path itself.

Each binding is a read-modify-write of the pod through the registry (at least one store
write), plus the watch events it causes and the scheduler's own decision, so the ratio to
the raw write rate says how much of the store's ceiling scheduling reaches. Speed is
reported, never judged by the exit status: it is non-zero only when the benchmark fails.
``--quick`` is a smoke run (100 nodes, 1,000 pods).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.common import Report, argument_parser, bench_run, machine
from minikube_py.client.interface import Selection
from minikube_py.cluster import Cluster, ClusterConfig
from minikube_py.config import APIServerConfig, StoreConfig
from minikube_py.meta.objects import Obj
from minikube_py.scheduler.algorithm import nodes_to_find
from minikube_py.scheduler.resources import CPU, MEMORY, PODS, amount
from minikube_py.scheduler.scheduler import NODES, Scheduler, SchedulerConfig
from minikube_py.scheduler.writer import PODS as POD_RESOURCE
from minikube_py.storage.sqlite import SQLiteStore
from tests.support.etcd import free_port

NAMESPACE = "default"
CREATORS = 64
RATE_TARGET = 500.0
RATIO_TARGET = 0.5


@dataclass(frozen=True)
class Settings:
    nodes: int
    pods: int
    raw_seconds: float
    timeout: float


FULL = Settings(nodes=1000, pods=10_000, raw_seconds=3.0, timeout=600.0)
QUICK = Settings(nodes=100, pods=1000, raw_seconds=0.5, timeout=120.0)


def node(index: int) -> Obj:
    name = f"node-{index:05d}"
    capacity = {"cpu": "4", "memory": "32Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


def pod(index: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"pod-{index:06d}", "namespace": NAMESPACE},
        "spec": {
            "containers": [
                {
                    "name": "pause",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}},
                }
            ]
        },
    }


async def in_parallel(
    count: int, workers: int, action: Callable[[int], Awaitable[object]]
) -> float:
    """Run ``action(i)`` for i in range(count) with ``workers`` at a time; seconds taken."""
    numbers = iter(range(count))
    start = time.perf_counter()

    async def worker() -> None:
        for index in numbers:
            await action(index)

    async with asyncio.TaskGroup() as group:
        for _ in range(workers):
            group.create_task(worker())
    return time.perf_counter() - start


async def raw_writes(
    store: SQLiteStore, value: bytes, writers: int, seconds: float, round_: int
) -> float:
    """Acknowledged ``Store.create`` calls per second with ``writers`` at a time."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def writer(number: int) -> None:
        nonlocal done
        sequence = 0
        while time.perf_counter() < deadline:
            await store.create(f"/bench-raw/{round_}/{number}/{sequence}", value)
            sequence += 1
            done += 1

    start = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for number in range(writers):
            group.create_task(writer(number))
    return done / (time.perf_counter() - start)


async def verify(cluster: Cluster) -> str:
    """Every pod bound, to an existing node, no node over its pods/cpu/memory."""
    listed = await cluster.client.list(POD_RESOURCE, Selection(namespace=NAMESPACE))
    per_node: dict[str, list[Obj]] = {}
    for item in listed.items:
        per_node.setdefault(str(item["spec"].get("nodeName") or ""), []).append(item)
    unbound = len(per_node.pop("", []))
    if unbound:
        return f"{unbound} pods not bound"
    limits = {CPU: amount(CPU, "4"), MEMORY: amount(MEMORY, "32Gi"), PODS: 110}
    for name, pods in per_node.items():
        cpu = sum(
            amount(CPU, p["spec"]["containers"][0]["resources"]["requests"][CPU]) for p in pods
        )
        memory = sum(
            amount(MEMORY, p["spec"]["containers"][0]["resources"]["requests"][MEMORY])
            for p in pods
        )
        if cpu > limits[CPU] or memory > limits[MEMORY] or len(pods) > limits[PODS]:
            return f"node {name} over its allocatable"
    return f"all {len(listed.items):,} pods bound on {len(per_node)} nodes, none over allocatable"


@dataclass(frozen=True)
class Run:
    """What the scheduling run measured."""

    rate: float
    bound: int
    elapsed: float
    cpu_per_pod: float
    unschedulable: int
    bind_errors: int


async def populate(cluster: Cluster, settings: Settings, report: Report, percentage: int) -> None:
    seconds = await in_parallel(
        settings.nodes, CREATORS, lambda i: cluster.client.create(NODES, "", node(i))
    )
    report.line(
        f"created {settings.nodes:,} nodes in {seconds:.1f} s; each decision scores"
        f" up to {nodes_to_find(settings.nodes, percentage)} feasible nodes"
    )
    seconds = await in_parallel(
        settings.pods, CREATORS, lambda i: cluster.client.create(POD_RESOURCE, NAMESPACE, pod(i))
    )
    report.line(f"created {settings.pods:,} pending pods in {seconds:.1f} s")


async def schedule_all(cluster: Cluster, settings: Settings, config: SchedulerConfig) -> Run:
    """Start a scheduler, wait until every pod is bound, stop it."""
    scheduler = Scheduler(cluster.client, cluster.informers, config)
    stats = scheduler.stats
    cpu_start = time.process_time()
    async with asyncio.TaskGroup() as group:
        task = group.create_task(scheduler.run(), name="scheduler")
        async with asyncio.timeout(settings.timeout):
            while stats.bound < settings.pods:
                stats.bound_event.clear()
                await stats.bound_event.wait()
        task.cancel()
    elapsed = stats.last_bound - stats.first_bound
    return Run(
        rate=(stats.bound - 1) / elapsed if elapsed > 0 else float("nan"),
        bound=stats.bound,
        elapsed=elapsed,
        cpu_per_pod=(time.process_time() - cpu_start) / max(stats.bound, 1),
        unschedulable=stats.unschedulable,
        bind_errors=stats.bind_errors,
    )


async def direct_binds(cluster: Cluster, settings: Settings, workers: int) -> float:
    """Bindings/s through the API with no scheduler deciding: the same number of fresh
    pending pods (for another scheduler, so none is placed behind our back), each bound
    by one of ``workers`` concurrent callers to a node in turn, as the binders do."""

    def held(index: int) -> Obj:
        found = pod(index)
        found["metadata"]["name"] = f"direct-{index:06d}"
        found["spec"]["schedulerName"] = "nobody"
        return found

    await in_parallel(
        settings.pods, CREATORS, lambda i: cluster.client.create(POD_RESOURCE, NAMESPACE, held(i))
    )
    seconds = await in_parallel(
        settings.pods,
        workers,
        lambda i: cluster.client.bind(
            NAMESPACE, f"direct-{i:06d}", f"node-{i % settings.nodes:05d}"
        ),
    )
    return settings.pods / seconds


def figures(
    report: Report, run: Run, raw: tuple[float, float], api_binds: float, writers: int
) -> None:
    raw_rate = sum(raw) / 2
    report.section("figures")
    report.ceiling(
        f"raw store writes/s {writers} writers",
        raw_rate,
        "/s",
        f"before {raw[0]:,.0f}, after {raw[1]:,.0f}",
    )
    report.ceiling(
        f"API binds/s {writers} callers", api_binds, "/s", "pods/binding, no scheduler deciding"
    )
    report.header()
    report.figure(
        "pods bound/s",
        run.rate,
        "/s",
        "raw store writes/s",
        raw_rate,
        f"{run.bound:,} pods in {run.elapsed:.2f} s; cpu/pod (with start-up)"
        f" {run.cpu_per_pod * 1e6:,.0f} µs; {run.unschedulable} unschedulable,"
        f" {run.bind_errors} bind errors",
    )
    report.figure("pods bound/s", run.rate, "/s", "API binds/s", api_binds)
    report.target(
        f"pods bound/s >= {RATE_TARGET:,.0f}/s", f"{run.rate:,.0f}/s", run.rate >= RATE_TARGET
    )
    ratio = run.rate / raw_rate if raw_rate else float("nan")
    report.target(
        f"pods bound/s >= {RATIO_TARGET}x raw store writes/s",
        f"{ratio:.2f}x",
        ratio >= RATIO_TARGET,
    )


async def bench(work: Path, settings: Settings, report: Report, percentage: int) -> None:
    store = await SQLiteStore.open(work / "state.db")
    config = ClusterConfig(
        apiserver=APIServerConfig(store=StoreConfig(work), port=free_port()),
        kubelet_root=work / "kubelet",
    )
    cluster = Cluster(store, config)
    scheduler_config = SchedulerConfig(percentage_of_nodes_to_score=percentage)
    writers = scheduler_config.bind_workers
    try:
        async with asyncio.TaskGroup() as group:
            running = group.create_task(cluster.run(), name="cluster")
            await cluster.ready.wait()
            await populate(cluster, settings, report, percentage)
            # A stored pod, as the registry wrote it: what a binding rewrites.
            value = orjson.dumps(await cluster.client.get(POD_RESOURCE, NAMESPACE, "pod-000000"))
            before = await raw_writes(store, value, writers, settings.raw_seconds / 2, 0)
            run = await schedule_all(cluster, settings, scheduler_config)
            after = await raw_writes(store, value, writers, settings.raw_seconds / 2, 1)
            verified = await verify(cluster)
            report.line(verified)
            if "none over" not in verified:
                raise AssertionError(verified)
            api_binds = await direct_binds(cluster, settings, writers)
            figures(report, run, (before, after), api_binds, writers)
            running.cancel()
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser("scheduler_bench", __doc__ or "")
    parser.add_argument("--nodes", type=int, help="Node objects to create")
    parser.add_argument("--pods", type=int, help="pending pods to create")
    parser.add_argument(
        "--percentage-of-nodes-to-score",
        type=int,
        default=0,
        help="the scheduler's sampling (0: kube's adaptive default, 42%% of 1,000 nodes)",
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    settings = Settings(
        args.nodes or settings.nodes,
        args.pods or settings.pods,
        settings.raw_seconds,
        settings.timeout,
    )
    report = Report(width=34, bound_width=27)
    title = f"scheduler benchmark: {settings.nodes:,} nodes, {settings.pods:,} pods; {machine()}"
    with bench_run(report, args, "scheduler-bench", title) as work:
        asyncio.run(bench(work, settings, report, args.percentage_of_nodes_to_score))
        report.print_targets()
    return 0


if __name__ == "__main__":
    sys.exit(main())
