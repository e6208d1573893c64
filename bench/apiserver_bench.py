"""API server benchmark: figures over HTTP beside ceilings measured in the same run.

Run ``.venv/bin/python -m bench.apiserver_bench [--quick] [--backend sqlite|etcd|all]``
(``make bench`` runs it through ``scripts/run-bench.sh``, after the storage benchmark). For
each backend, SQLite on a real disk (never tmpfs, where fsync costs nothing) and a
single-member etcd this process starts on free loopback ports, it starts ``minikube-py
apiserver`` as a subprocess on a free port, waits for ``/readyz`` and measures:

* pod creates/s over HTTP with 32 concurrent keep-alive clients, beside raw ``Store.create``
  calls with 32 concurrent writers on the same backend (a separate SQLite file, or keys
  outside ``/registry/`` in the same etcd), in alternating rounds so that drift in a shared
  machine's load hits both alike. These creates are also how the LIST namespace is filled;
* GET one pod, p50/p99 at a steady (open-loop) request rate, beside ``GET /version`` paced
  the same way: the HTTP stack's and this client's own floor;
* LIST of every pod in that namespace (10,000), as JSON and as the Table kubectl asks for,
  and kubectl's first page (``limit=500``); each beside what merely encoding the same
  answer with orjson costs in this process, the floor of any Python server;
* delivery latency to 100 watchers (``?watch=true&resourceVersion=<rv>``) of pod creates
  and updates written at a moderate rate, from just before the write's request to the
  event's arrival at each watcher, beside the acknowledgement latency of the same writes;
* the API server's RSS (``VmRSS``) holding those pods, beside its RSS before any pod.

The whole run takes one to three minutes for ``--backend all``; ``--quick`` is a smoke run
with small numbers (a few seconds). The API server is always stopped with SIGTERM, also on
errors, SIGTERM and Ctrl-C; its pid (and etcd's) is written to ``<work>/*.pid`` so that
``scripts/run-bench.sh`` can stop it even if this process is killed outright.

Speed is reported, never judged by the exit status: it is non-zero only when the
benchmark itself fails.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.common import (
    JSON_HEADERS,
    Report,
    ServerProcess,
    argument_parser,
    bench_run,
    etcd_member,
    etcd_pid,
    etcd_version,
    log_on_failure,
    machine,
    percentile,
    proc_status,
    process_cpu,
    start_minikube_py,
    stores,
)
from minikube_py.storage.etcd import EtcdStore
from minikube_py.storage.interface import Store
from minikube_py.storage.sqlite import SQLiteStore

CLIENTS = 32
NAMESPACE = "bench"
WATCH_NAMESPACE = "bench-watch"
SEQ = "bench.minikube-py.io/seq"
"""The annotation that tells a watcher which write an event comes from."""
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json", "Accept": "application/json"}

CREATE_RATIO_TARGET = 0.5
LIST_P50_TARGET_MS = 150.0
WATCH_P99_TARGET_MS = 50.0
RSS_TARGET_MB = 300.0
STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Settings:
    """Sizes of one run: ``FULL`` is the workload the targets are about, ``QUICK`` a smoke run."""

    pods: int
    """Pods created over HTTP (the creates figure) and then listed, read and held."""
    create_rounds: int
    get_rate: float
    get_seconds: float
    floor_seconds: float
    list_runs: int
    page: int
    watchers: int
    watch_rate: float
    watch_seconds: float


FULL = Settings(
    pods=10_000,
    create_rounds=4,
    get_rate=500.0,
    get_seconds=5.0,
    floor_seconds=2.0,
    list_runs=7,
    page=500,
    watchers=100,
    watch_rate=50.0,
    watch_seconds=5.0,
)
QUICK = Settings(
    pods=300,
    create_rounds=2,
    get_rate=200.0,
    get_seconds=0.5,
    floor_seconds=0.3,
    list_runs=3,
    page=50,
    watchers=10,
    watch_rate=50.0,
    watch_seconds=0.6,
)


@dataclass(frozen=True)
class Labels:
    """Every figure's and target's label for one backend, so the smoke test can look for each."""

    backend: str
    settings: Settings

    @property
    def creates(self) -> str:
        return f"{self.backend} pod creates/s HTTP {CLIENTS} clients"

    def get(self, q: int) -> str:
        return f"{self.backend} GET pod p{q} ms at {self.settings.get_rate:.0f}/s"

    def listing(self, variant: str) -> str:
        return f"{self.backend} LIST {variant} p50 ms"

    def watch(self, q: int) -> str:
        return f"{self.backend} watch p{q} ms {self.settings.watchers} watchers"

    @property
    def rss(self) -> str:
        return f"{self.backend} RSS MB holding {self.settings.pods} pods"

    def variants(self) -> list[tuple[str, str, int]]:
        """(label part, Accept, limit) of each LIST measured."""
        n, page = self.settings.pods, self.settings.page
        return [
            (f"{n} pods JSON", "application/json", 0),
            (f"{n} pods Table", TABLE, 0),
            (f"limit={page} JSON", "application/json", page),
            (f"limit={page} Table", TABLE, page),
        ]

    def figures(self) -> list[str]:
        return [
            self.creates,
            self.get(50),
            self.get(99),
            *(self.listing(variant) for variant, _, _ in self.variants()),
            self.watch(50),
            self.watch(99),
            self.rss,
        ]

    def create_target(self) -> str:
        return f"{self.backend} creates/s HTTP >= {CREATE_RATIO_TARGET}x raw store"

    def list_target(self, variant: str) -> str:
        return f"{self.backend} LIST {variant} p50 <= {LIST_P50_TARGET_MS:.0f} ms"

    def watch_target(self) -> str:
        w = self.settings.watchers
        return f"{self.backend} watch p99 {w} watchers <= {WATCH_P99_TARGET_MS:.0f} ms"

    def rss_target(self) -> str:
        return f"{self.backend} RSS with {self.settings.pods} pods <= {RSS_TARGET_MB:.0f} MB"

    def targets(self) -> list[str]:
        return [
            self.create_target(),
            *(self.list_target(variant) for variant, _, _ in self.variants()),
            self.watch_target(),
            self.rss_target(),
        ]


# -- CPU accounting --


def cpu_now(pids: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds so far of this process ("bench") and of each named process."""
    now = {"bench": time.process_time()}
    now.update({name: process_cpu(pid) for name, pid in pids.items()})
    return now


class CpuTally:
    """CPU each process spent over some measured spans, per operation done in them.

    It shows which process a figure is bound by: on a small machine the client, the API
    server and etcd share the same CPUs.
    """

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = pids
        self.spent: dict[str, float] = {}
        self.ops = 0

    def start(self) -> dict[str, float]:
        return cpu_now(self.pids)

    def add(self, before: Mapping[str, float], ops: int) -> None:
        for name, seconds in cpu_now(self.pids).items():
            self.spent[name] = self.spent.get(name, 0.0) + seconds - before[name]
        self.ops += ops

    def note(self) -> str:
        ops = max(self.ops, 1)
        parts = [f"{name} {seconds / ops * 1e6:,.0f}" for name, seconds in self.spent.items()]
        return "cpu µs/op: " + ", ".join(parts)


def rss_mb(pid: int) -> float:
    """Resident set size (VmRSS) of a process, in MB."""
    return proc_status(pid, "VmRSS") / 1024


# -- the API server process --


def start_server(work: Path, etcd_servers: str) -> ServerProcess:
    """Start the server; its pid goes to ``<work>/../apiserver.pid`` for run-bench.sh's cleanup.

    ``--data-dir`` is given even with etcd so that the command line names the scratch dir,
    which is how run-bench.sh recognises a process it may stop.
    """
    work.mkdir(parents=True, exist_ok=True)
    return start_minikube_py(
        "the API server",
        ["--log-level", "warning", "apiserver"],
        work / "data",
        etcd_servers,
        work / "apiserver.log",
        work.parent / "apiserver.pid",
    )


async def check(answer: aiohttp.ClientResponse, *expected: int) -> bytes:
    """The body of an answer with one of the expected statuses; anything else is a failure."""
    body = await answer.read()
    if answer.status not in expected:
        text = body[:500].decode(errors="replace")
        raise RuntimeError(f"{answer.method} {answer.url.path}: {answer.status} {text}")
    return body


# -- objects --


def pod(name: str, seq: str = "") -> dict[str, Any]:
    """A small, realistic pod: labels, one container with a port, requests and an env var."""
    meta: dict[str, Any] = {"name": name, "labels": {"app": "bench", "tier": "web"}}
    if seq:
        meta["annotations"] = {SEQ: seq}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "registry.k8s.io/pause:3.9",
                    "ports": [{"containerPort": 8080, "name": "http"}],
                    "env": [{"name": "MODE", "value": "bench"}],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
            "restartPolicy": "Always",
        },
    }


def pods_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"


async def ensure_namespace(session: aiohttp.ClientSession, name: str) -> None:
    body = orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    async with session.post("/api/v1/namespaces", data=body, headers=JSON_HEADERS) as answer:
        await check(answer, 201, 409)


# -- creates: HTTP beside the raw store --


@dataclass(frozen=True)
class Rate:
    per_second: float
    note: str


class PodFiller:
    """Creates the pods of ``NAMESPACE`` over HTTP, ``CLIENTS`` requests in flight."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.names: list[str] = []
        self._numbers = itertools.count()

    async def fill(self, count: int) -> None:
        todo = iter(range(count))

        async def client() -> None:
            for _ in todo:  # one shared iterator: each create is done exactly once
                name = f"pod-{next(self._numbers):06d}"
                body = orjson.dumps(pod(name))
                async with self.session.post(
                    pods_path(NAMESPACE), data=body, headers=JSON_HEADERS
                ) as answer:
                    await check(answer, 201)
                self.names.append(name)

        await asyncio.gather(*(client() for _ in range(CLIENTS)))


class RawCreates:
    """``Store.create`` straight on the backend, ``CLIENTS`` concurrent writers."""

    def __init__(self, store: Store, prefix: str, value: bytes) -> None:
        self.store = store
        self.prefix = prefix
        self.value = value
        self._numbers = itertools.count()

    async def run(self, seconds: float) -> int:
        done = 0
        deadline = time.perf_counter() + seconds

        async def writer() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await self.store.create(f"{self.prefix}{next(self._numbers):09d}", self.value)
                done += 1

        await asyncio.gather(*(writer() for _ in range(CLIENTS)))
        return done


async def stored_value(session: aiohttp.ClientSession, name: str) -> bytes:
    """A created pod as the store holds it (no resourceVersion, no selfLink)."""
    async with session.get(f"{pods_path(NAMESPACE)}/{name}") as answer:
        obj = orjson.loads(await check(answer, 200))
    for derived in ("resourceVersion", "selfLink"):
        obj["metadata"].pop(derived, None)
    value: bytes = orjson.dumps(obj)
    return value


async def creates(
    filler: PodFiller,
    raw_store: Store,
    raw_prefix: str,
    pids: Mapping[str, int],
    settings: Settings,
) -> tuple[Rate, Rate, int]:
    """Fill the namespace in rounds, each followed by a raw-store round as long as it took.

    Returns (HTTP creates, raw creates, size of one stored pod in bytes).
    """
    warm = max(CLIENTS, settings.pods // 50)
    await filler.fill(warm)  # connections open, code paths warm; these pods count
    value = await stored_value(filler.session, filler.names[0])
    raw = RawCreates(raw_store, raw_prefix, value)
    await raw.run(0.2)
    left = settings.pods - warm
    http_rates: list[float] = []
    raw_rates: list[float] = []
    http_cpu, raw_cpu = CpuTally(pids), CpuTally(pids)
    for r in range(settings.create_rounds):
        count = left // settings.create_rounds + (1 if r < left % settings.create_rounds else 0)
        before = http_cpu.start()
        start = time.perf_counter()
        await filler.fill(count)
        took = time.perf_counter() - start
        http_rates.append(count / took)
        http_cpu.add(before, count)
        before = raw_cpu.start()
        start = time.perf_counter()
        done = await raw.run(took)
        raw_rates.append(done / (time.perf_counter() - start))
        raw_cpu.add(before, done)
    return (
        Rate(statistics.median(http_rates), http_cpu.note()),
        Rate(statistics.median(raw_rates), raw_cpu.note()),
        len(value),
    )


async def outside_write_stall(
    session: aiohttp.ClientSession, raw_store: Store, raw_prefix: str, backend: Backend
) -> float | None:
    """Time a consistent LIST just after a write the watch cache does not follow (ms).

    Only etcd shares its revision counter with keys outside ``/registry/``: the raw
    creates above are such writes, and so is anything else that uses the same etcd.
    """
    if not backend.etcd_servers:
        return None
    await raw_store.create(f"{raw_prefix}probe", b"{}")
    start = time.perf_counter()
    async with session.get(pods_path(NAMESPACE), params={"limit": "1"}) as answer:
        await check(answer, 200)
    return (time.perf_counter() - start) * 1000


# -- GET latency at a steady rate --


@dataclass(frozen=True)
class Paced:
    """Latencies (ms) of an open-loop run, and how well this client kept to its schedule."""

    latencies: list[float]
    issued_per_second: float
    behind_ms: float
    """The furthest behind schedule a request was issued: a busy client skews the pacing."""

    def note(self) -> str:
        return (
            f"{len(self.latencies):,} at {self.issued_per_second:,.0f}/s"
            f" (<= {self.behind_ms:,.1f} ms late), max {max(self.latencies):,.1f} ms"
        )


async def paced(rate: float, seconds: float, call: Callable[[int], Awaitable[None]]) -> Paced:
    """Open loop: request i starts at ``i / rate`` whether or not earlier ones have finished.

    Latencies are from just before each request to its whole answer, so a slow server
    shows up as queueing in later requests instead of silently lowering the request rate.
    """
    latencies: list[float] = []

    async def one(i: int) -> None:
        start = time.perf_counter()
        await call(i)
        latencies.append((time.perf_counter() - start) * 1000)

    tasks: list[asyncio.Task[None]] = []
    count = max(1, int(rate * seconds))
    behind = 0.0
    begin = time.perf_counter()
    for i in range(count):
        pause = begin + i / rate - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        else:
            behind = max(behind, -pause)
        tasks.append(asyncio.create_task(one(i)))
    issued = time.perf_counter() - begin
    await asyncio.gather(*tasks)
    return Paced(latencies, (count - 1) / issued if count > 1 else rate, behind * 1000)


async def get_latency(
    session: aiohttp.ClientSession, names: Sequence[str], settings: Settings
) -> tuple[Paced, Paced]:
    """GET one pod at a time (a random one of them all) at the steady rate, then
    ``/version`` the same way: the floor of this client, aiohttp and the loopback."""
    order = list(names)
    random.Random(7).shuffle(order)

    async def get_pod(i: int) -> None:
        async with session.get(f"{pods_path(NAMESPACE)}/{order[i % len(order)]}") as answer:
            await check(answer, 200)

    async def get_version(i: int) -> None:
        async with session.get("/version") as answer:
            await check(answer, 200)

    await paced(settings.get_rate, 0.2, get_version)  # warm the connection pool
    pods = await paced(settings.get_rate, settings.get_seconds, get_pod)
    floor = await paced(settings.get_rate, settings.floor_seconds, get_version)
    return pods, floor


# -- LIST --


@dataclass(frozen=True)
class Listed:
    p50_ms: float
    floor_ms: float
    size_mb: float
    note: str


async def lists(
    session: aiohttp.ClientSession,
    labels: Labels,
    pids: Mapping[str, int],
) -> dict[str, Listed]:
    """Each LIST variant in turn, ``list_runs`` times; p50 of each, beside its encode floor.

    The first call of each variant is untimed: it checks the answer (every pod, or one
    page with a continue token) and yields the body whose orjson encoding is the floor.
    """
    settings = labels.settings
    variants = labels.variants()
    timings: dict[str, list[float]] = {variant: [] for variant, _, _ in variants}
    cpu: dict[str, float] = dict.fromkeys(timings, 0.0)
    sizes: dict[str, int] = {}
    floors: dict[str, float] = {}

    async def fetch(accept: str, limit: int) -> bytes:
        params = {"limit": str(limit)} if limit else {}
        async with session.get(
            pods_path(NAMESPACE), params=params, headers={"Accept": accept}
        ) as a:
            return await check(a, 200)

    for variant, accept, limit in variants:
        body = await fetch(accept, limit)
        answer = orjson.loads(body)
        items = answer.get("rows") if accept == TABLE else answer.get("items")
        expected = limit or settings.pods
        if not isinstance(items, list) or len(items) != expected:
            got = len(items) if isinstance(items, list) else "no"
            raise RuntimeError(f"LIST {variant}: {got} items, expected {expected}")
        if limit and not answer["metadata"].get("continue"):
            raise RuntimeError(f"LIST {variant}: no continue token")
        sizes[variant] = len(body)
        encodes = []
        for _ in range(3):
            start = time.perf_counter()
            orjson.dumps(answer)
            encodes.append((time.perf_counter() - start) * 1000)
        floors[variant] = min(encodes)
    for _ in range(settings.list_runs):
        for variant, accept, limit in variants:  # alternating: drift hits every variant alike
            before = process_cpu(pids["apiserver"])
            start = time.perf_counter()
            await fetch(accept, limit)
            timings[variant].append((time.perf_counter() - start) * 1000)
            cpu[variant] += process_cpu(pids["apiserver"]) - before
    return {
        variant: Listed(
            statistics.median(timings[variant]),
            floors[variant],
            sizes[variant] / 1e6,
            f"{sizes[variant] / 1e6:,.1f} MB; apiserver cpu"
            f" {cpu[variant] / settings.list_runs * 1000:,.0f} ms/LIST;"
            f" p99 {percentile(timings[variant], 99):,.0f} ms",
        )
        for variant in timings
    }


# -- watch fan-out --


@dataclass(frozen=True)
class WatchLatency:
    p50: float
    p99: float
    ack_p50: float
    ack_p99: float
    writes: int
    note: str


async def watch_latency(
    session: aiohttp.ClientSession,
    server: ServerProcess,
    settings: Settings,
    pids: Mapping[str, int],
) -> WatchLatency:
    """``watchers`` streams on one namespace's pods; creates and status patches at a fixed rate.

    Each write carries its sequence number (a create's in an annotation, an update's in
    ``status.message``); a watcher looks it up to find when the write's request started.
    A warm-up write that every watcher must receive first proves all streams are open and
    delivering before the clock starts. The delays include this client's own reading of
    every stream, one after another on one loop (its CPU per write is in the note).
    """
    await ensure_namespace(session, WATCH_NAMESPACE)
    async with session.get(pods_path(WATCH_NAMESPACE), params={"limit": "1"}) as answer:
        rv = orjson.loads(await check(answer, 200))["metadata"]["resourceVersion"]
    writes = max(2, int(settings.watch_rate * settings.watch_seconds))
    expected = writes + 1
    sent: dict[str, float] = {}
    delays: list[float] = []
    acks: list[float] = []
    readies = [asyncio.Event() for _ in range(settings.watchers)]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    watch_params = {"watch": "true", "resourceVersion": rv}

    async def watcher(stream: aiohttp.ClientSession, ready: asyncio.Event) -> None:
        seen = 0
        async with stream.get(pods_path(WATCH_NAMESPACE), params=watch_params) as answer:
            if answer.status != 200:
                await check(answer, 200)
            async for line in answer.content:
                now = time.perf_counter()
                event = orjson.loads(line)
                kind, obj = event.get("type"), event.get("object")
                if kind == "ADDED":
                    seq = obj["metadata"]["annotations"][SEQ]
                elif kind == "MODIFIED":
                    seq = obj["status"]["message"]
                else:
                    raise RuntimeError(f"unexpected watch event: {line[:300]!r}")
                seen += 1
                if seq == "warmup":
                    ready.set()
                else:
                    delays.append((now - sent[seq]) * 1000)
                if seen == expected:
                    return
        raise RuntimeError(f"a watch ended after {seen} of {expected} events")

    created: list[str] = []

    async def write(i: int) -> None:
        """Even writes create a pod; odd ones set the status of the latest pod created.

        The updates go through ``/status``, as the kubelet's do; a create's seq is in an
        annotation, an update's in ``status.message``.
        """
        seq = str(i)
        creating = i % 2 == 0 or not created
        name = f"watched-{i:06d}" if creating else created[-1]
        if creating:
            method, path, status, headers = "POST", pods_path(WATCH_NAMESPACE), 201, JSON_HEADERS
            data = orjson.dumps(pod(name, seq))
        else:
            method, path, status = "PATCH", f"{pods_path(WATCH_NAMESPACE)}/{name}/status", 200
            headers = MERGE_PATCH
            data = orjson.dumps({"status": {"message": seq}})
        start = time.perf_counter()
        sent[seq] = start
        async with session.request(method, path, data=data, headers=headers) as answer:
            await check(answer, status)
        acks.append((time.perf_counter() - start) * 1000)
        if creating:
            created.append(name)

    async with aiohttp.ClientSession(server.url, connector=connector, timeout=timeout) as stream:
        tasks = [asyncio.create_task(watcher(stream, ready)) for ready in readies]
        try:
            warm = orjson.dumps(pod("watched-warmup", "warmup"))
            async with session.post(
                pods_path(WATCH_NAMESPACE), data=warm, headers=JSON_HEADERS
            ) as answer:
                await check(answer, 201)
            waiting = asyncio.gather(*(ready.wait() for ready in readies))
            await asyncio.wait_for(_first(waiting, tasks), 60)
            tally = CpuTally(pids)
            before = tally.start()
            begin = time.perf_counter()
            writers: list[asyncio.Task[None]] = []
            for i in range(writes):  # open loop: a slow write does not delay the next one
                pause = begin + i / settings.watch_rate - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
                writers.append(asyncio.create_task(write(i)))
            await asyncio.gather(*writers)
            await asyncio.wait_for(asyncio.gather(*tasks), 60)
            tally.add(before, writes)
            note = tally.note()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    if len(delays) != writes * settings.watchers:
        raise RuntimeError(
            f"watchers received {len(delays)} events, expected {writes * settings.watchers}"
        )
    return WatchLatency(
        percentile(delays, 50),
        percentile(delays, 99),
        percentile(acks, 50),
        percentile(acks, 99),
        writes,
        note,
    )


async def _first(waiting: Awaitable[object], watchers: list[asyncio.Task[None]]) -> None:
    """Wait for ``waiting``, but fail at once if a watcher fails before it is ready."""
    ready = asyncio.ensure_future(waiting)
    try:
        done, _ = await asyncio.wait([ready, *watchers], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # a failed watcher raises here
    finally:
        ready.cancel()


# -- one backend --


@dataclass
class Backend:
    name: str
    title: str
    etcd_servers: str
    etcd_pid: int | None = None


async def open_raw_store(backend: Backend, work: Path) -> tuple[Store, str]:
    """The raw store: a separate SQLite file, or keys outside ``/registry/`` in the same etcd.

    Either way the API server's watch cache never sees these writes.
    """
    prefix = f"/apiserver-bench-raw/{os.getpid()}/"
    if backend.etcd_servers:
        return await EtcdStore.open(backend.etcd_servers), prefix
    (work / "raw").mkdir(parents=True, exist_ok=True)
    return await SQLiteStore.open(work / "raw" / "state.db"), prefix


async def bench_backend(
    backend: Backend, server: ServerProcess, work: Path, settings: Settings, report: Report
) -> None:
    labels = Labels(backend.name, settings)
    pids = {"apiserver": server.pid}
    if backend.etcd_pid is not None:
        pids["etcd"] = backend.etcd_pid
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(server.url, connector=connector) as session:
        await server.answering(session, 60, 0.05)
        idle_rss = rss_mb(server.pid)
        report.section(f"{backend.title}: API server pid {server.pid} at {server.url}")
        report.header("ceiling or floor (same run)")
        await ensure_namespace(session, NAMESPACE)
        raw_store, raw_prefix = await open_raw_store(backend, work)
        try:
            filler = PodFiller(session)
            http_rate, raw_rate, value_size = await creates(
                filler, raw_store, raw_prefix, pids, settings
            )
            stall = await outside_write_stall(session, raw_store, raw_prefix, backend)
        finally:
            await raw_store.close()
        # A write under /registry/ brings the watch cache up to the store's revision, so
        # that the LISTs below measure the cache, not the wait described above.
        await ensure_namespace(session, WATCH_NAMESPACE)

        report.figure(
            labels.creates,
            http_rate.per_second,
            "/s",
            f"raw Store.create/s {CLIENTS} writers",
            raw_rate.per_second,
            f"{settings.pods:,} pods in {settings.create_rounds} rounds",
        )
        report.line(f"  HTTP: {http_rate.note}")
        report.line(f"  raw:  {raw_rate.note} ({value_size:,} B per value)")
        if stall is not None:
            report.line(
                f"  a consistent LIST (limit=1) just after one write outside /registry/ took"
                f" {stall:,.0f} ms: the watch cache waits for a revision it never sees"
            )
        ratio = http_rate.per_second / raw_rate.per_second if raw_rate.per_second else math.nan
        report.target(labels.create_target(), f"{ratio:.2f}x", ratio >= CREATE_RATIO_TARGET)

        pods_ms, floor_ms = await get_latency(session, filler.names, settings)
        for q in (50, 99):
            report.figure(
                labels.get(q),
                percentile(pods_ms.latencies, q),
                "ms",
                f"GET /version p{q} same pacing",
                percentile(floor_ms.latencies, q),
                f"GETs: {pods_ms.note()}" if q == 50 else f"/version: {floor_ms.note()}",
            )

        before_lists = rss_mb(server.pid)
        listed = await lists(session, labels, pids)
        for variant, _, _ in labels.variants():
            one = listed[variant]
            report.figure(
                labels.listing(variant),
                one.p50_ms,
                "ms",
                "orjson.dumps of it here",
                one.floor_ms,
                one.note,
            )
            report.target(
                labels.list_target(variant),
                f"{one.p50_ms:,.1f} ms",
                one.p50_ms <= LIST_P50_TARGET_MS,
            )

        held = rss_mb(server.pid)
        report.figure(
            labels.rss,
            held,
            "MB",
            "RSS at start, no pods",
            idle_rss,
            f"{before_lists:,.0f} MB before the LISTs; {settings.pods:,} pods x"
            f" {value_size:,} B of JSON = {settings.pods * value_size / 1e6:,.0f} MB",
        )

        watched = await watch_latency(session, server, settings, pids)
        for q, got, floor in (
            (50, watched.p50, watched.ack_p50),
            (99, watched.p99, watched.ack_p99),
        ):
            report.figure(
                labels.watch(q),
                got,
                "ms",
                f"write ack p{q} (same writes)",
                floor,
                f"{watched.writes} writes at {settings.watch_rate:.0f}/s"
                if q == 50
                else watched.note,
            )
    report.target(labels.rss_target(), f"{held:,.0f} MB", held <= RSS_TARGET_MB)
    report.target(
        labels.watch_target(), f"{watched.p99:,.2f} ms", watched.p99 <= WATCH_P99_TARGET_MS
    )


def run_backend(backend: Backend, work: Path, settings: Settings, report: Report) -> None:
    """One API server for one backend: started here, always stopped here (SIGTERM)."""
    server = start_server(work, backend.etcd_servers)
    try:
        with log_on_failure(server, "apiserver_bench"):
            asyncio.run(bench_backend(backend, server, work, settings, report))
    finally:
        stopped = server.stop(STOP_TIMEOUT)  # first: printing may fail (a closed pipe)
        report.line(f"  API server pid {server.pid} {stopped}")


# -- main --


def main(argv: Sequence[str] | None = None) -> int:
    args = argument_parser(
        "apiserver_bench", "API server figures over HTTP beside ceilings measured in the same run."
    ).parse_args(argv)
    settings = QUICK if args.quick else FULL
    names, binary = stores(args, "apiserver_bench")
    report = Report(width=40, bound_width=31)
    title = (
        f"API server benchmark: {machine('this client, the server and etcd')},"
        f" aiohttp {aiohttp.__version__}"
    )
    with bench_run(report, args, "apiserver-bench", title) as work:
        if "sqlite" in names:
            sqlite = Backend("sqlite", "SQLite", "")
            run_backend(sqlite, work / "sqlite", settings, report)
        if "etcd" in names:
            with etcd_member(binary, work) as cluster:
                title = f"etcd {etcd_version(binary)} ({cluster.endpoints})"
                backend = Backend("etcd", title, cluster.endpoints, etcd_pid(cluster))
                run_backend(backend, work / "etcd-server", settings, report)
        report.print_targets()
    return 0


if __name__ == "__main__":
    sys.exit(main())
