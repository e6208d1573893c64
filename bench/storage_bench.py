"""Storage benchmark: each backend's figures beside ceilings measured in the same run.

Run ``.venv/bin/python -m bench.storage_bench`` (``make bench`` runs it through
``scripts/run-bench.sh``). For SQLite (a file on a real disk, never tmpfs) and a
single-member etcd that this process starts on free loopback ports, it measures:

* acknowledged creates/s with one writer and with 32 concurrent writers;
* gets/s, sequential and with 32 concurrent readers;
* watch delivery latency with 10 watchers on one prefix: from just before ``create`` is
  called to when each watcher receives the event, at a moderate fixed rate and under a
  burst (every write issued at once).

Ceilings come from the same run: plain ``sqlite3`` commits with ``synchronous=FULL`` in
WAL mode (one INSERT per COMMIT, and 32 per COMMIT for group commit), raw point SELECTs,
and raw ``aetcd.Client.put``/``get`` at the same concurrency (plus 2,000 concurrent puts,
etcd's own ceiling, and the create-if-absent Txn the etcd store sends). A store figure
and its ceiling are measured in alternating rounds, so drift in a shared machine's load
hits both alike; each is the median of its rounds. A watch latency is shown beside the
acknowledgement latency of the same writes (its floor, not a ceiling).

Speed is reported, never judged by the exit status: it is non-zero only when the
benchmark itself fails. ``--quick`` is a smoke run.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aetcd
from aetcd import rpc

from bench.common import (
    Report,
    argument_parser,
    bench_run,
    etcd_member,
    etcd_pid,
    etcd_version,
    machine,
    percentile,
    process_cpu,
    stores,
)
from minikube_py.storage.etcd import EtcdStore
from minikube_py.storage.interface import Store, WatchStream
from minikube_py.storage.sqlite import SQLiteStore
from tests.support.etcd import EtcdCluster

VALUE = b"v" * 512  # about the size of a small object's JSON
CONCURRENCY = 32
WIDE = 2000  # the "about 9,000 puts/s with 2,000 concurrent puts"
WATCHERS = 10

SQLITE_CREATES_TARGET = 2000.0
ETCD_RATIO_TARGET = 0.8
WATCH_P99_TARGET_MS = 20.0

Op = Callable[[], Awaitable[object]]
"""One operation; ops pick their own keys, so rounds never collide."""


@dataclass(frozen=True)
class Settings:
    duration: float
    """Seconds per throughput figure (split over ``rounds``)."""
    rounds: int
    watch_writes: int
    watch_rate: float
    burst_writes: int


FULL = Settings(duration=3.0, rounds=3, watch_writes=1000, watch_rate=250.0, burst_writes=1000)
QUICK = Settings(duration=0.3, rounds=1, watch_writes=40, watch_rate=250.0, burst_writes=40)


# -- measuring --


@dataclass(frozen=True)
class Rate:
    """Operations/s, and CPU µs per operation in this process and in the server (etcd)."""

    per_second: float
    client_us: float
    server_us: float = math.nan

    def cpu_note(self) -> str:
        if math.isnan(self.server_us):
            return f"cpu/op {self.client_us:,.0f} µs"
        return f"cpu/op {self.client_us:,.0f} µs here + {self.server_us:,.0f} µs etcd"


@dataclass(frozen=True)
class Load:
    """An operation, how many closed-loop workers run it, and rows each call stands for."""

    op: Op
    concurrency: int
    weight: int = 1


async def measure(load: Load, duration: float, server: int | None) -> Rate:
    """Run ``load`` for ``duration`` seconds; count only calls that returned."""
    done = 0
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await load.op()
            done += load.weight

    server_start = process_cpu(server) if server else 0.0
    cpu_start = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(load.concurrency)))
    elapsed = time.perf_counter() - start
    ops = max(done, 1)
    client_us = (time.process_time() - cpu_start) / ops * 1e6
    server_us = (process_cpu(server) - server_start) / ops * 1e6 if server else math.nan
    return Rate(done / elapsed, client_us, server_us)


async def interleaved(
    loads: Mapping[str, Load], settings: Settings, server: int | None = None
) -> dict[str, Rate]:
    """Each load in turn, ``settings.rounds`` times; the median of each load's rounds."""
    samples: dict[str, list[Rate]] = {name: [] for name in loads}
    window = settings.duration / settings.rounds
    for _ in range(settings.rounds):
        for name, load in loads.items():
            samples[name].append(await measure(load, window, server))
    return {
        name: Rate(
            statistics.median(r.per_second for r in rates),
            statistics.median(r.client_us for r in rates),
            statistics.median(r.server_us for r in rates),
        )
        for name, rates in samples.items()
    }


class StoreOps:
    """Creates and gets on a ``Store`` under a fresh prefix."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.prefix = f"/registry/bench-{os.getpid()}-{time.monotonic_ns()}/"
        self.created: list[str] = []
        self._numbers = itertools.count()
        self._reads = itertools.count()
        self._keys: list[str] = []

    async def create(self) -> None:
        key = f"{self.prefix}{next(self._numbers):09d}"
        await self.store.create(key, VALUE)
        self.created.append(key)

    def ready_to_read(self) -> None:
        self._keys = self.created[:]
        random.Random(7).shuffle(self._keys)

    async def get(self) -> None:
        await self.store.get(self._keys[next(self._reads) % len(self._keys)])


# -- watch latency --


@dataclass(frozen=True)
class Latency:
    """Milliseconds: watch delivery (each watcher, each write) and the writes' own acks."""

    watch_p50: float
    watch_p99: float
    ack_p50: float
    ack_p99: float


async def watch_latency(store: Store, prefix: str, writes: int, rate: float | None) -> Latency:
    """``writes`` creates under ``prefix`` at ``rate``/s (None: all at once), 10 watchers."""
    after = await store.current_revision()
    sent: dict[str, float] = {}
    delays: list[float] = []
    acks: list[float] = []
    warmup = f"{prefix}warmup"
    expected = writes + 1

    async def consume(stream: WatchStream, ready: asyncio.Event) -> None:
        seen = 0
        async for event in stream:
            now = time.perf_counter()
            seen += 1
            if event.kv.key == warmup:
                ready.set()
            else:
                delays.append(now - sent[event.kv.key])
            if seen == expected:
                return

    async def write(i: int) -> None:
        key = f"{prefix}{i:06d}"
        start = time.perf_counter()
        sent[key] = start
        await store.create(key, VALUE)
        acks.append(time.perf_counter() - start)

    streams = [store.watch(prefix, after_revision=after) for _ in range(WATCHERS)]
    readies = [asyncio.Event() for _ in streams]
    consumers = [asyncio.create_task(consume(s, r)) for s, r in zip(streams, readies, strict=True)]
    try:
        # Every watcher has its stream open and delivering before the clock starts.
        await store.create(warmup, VALUE)
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
        if rate is None:
            await asyncio.gather(*(write(i) for i in range(writes)))
        else:
            begin = time.perf_counter()
            tasks = []
            for i in range(writes):  # open loop: a slow write does not delay the next one
                pause = begin + i / rate - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
                tasks.append(asyncio.create_task(write(i)))
            await asyncio.gather(*tasks)
        await asyncio.wait_for(asyncio.gather(*consumers), 60)
    finally:
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        for stream in streams:
            await stream.close()
    if len(delays) != writes * WATCHERS:
        raise RuntimeError(f"watchers received {len(delays)} events, expected {writes * WATCHERS}")
    ms = [d * 1000 for d in delays]
    ack_ms = [a * 1000 for a in acks]
    return Latency(
        percentile(ms, 50), percentile(ms, 99), percentile(ack_ms, 50), percentile(ack_ms, 99)
    )


async def watch_figures(name: str, store: Store, settings: Settings, report: Report) -> None:
    prefix = f"/registry/watch-{os.getpid()}-{time.monotonic_ns()}/"
    steady = await watch_latency(
        store, f"{prefix}steady/", settings.watch_writes, settings.watch_rate
    )
    rate = f"{settings.watch_rate:.0f}/s"
    burst = await watch_latency(store, f"{prefix}burst/", settings.burst_writes, None)
    for label, got in ((rate, steady), ("burst", burst)):
        report.figure(
            f"{name} watch p50 ms {label}",
            got.watch_p50,
            "ms",
            "ack p50 (same writes)",
            got.ack_p50,
        )
        report.figure(
            f"{name} watch p99 ms {label}",
            got.watch_p99,
            "ms",
            "ack p99 (same writes)",
            got.ack_p99,
        )


# -- SQLite --


RAW_SCHEMA = """
CREATE TABLE kv (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, value BLOB NOT NULL);
CREATE UNIQUE INDEX kv_name ON kv (name);
"""


class RawSQLite:
    """Plain sqlite3 on one connection: WAL, synchronous=FULL, like the store's writer.

    Its operations block the event loop while they run; nothing else runs meanwhile.
    """

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(RAW_SCHEMA)
        self.names: list[str] = []
        self._reads = itertools.count()
        self._order: list[str] = []

    def _insert(self, rows: int) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        for _ in range(rows):
            name = f"/registry/raw/{len(self.names):09d}"
            self.conn.execute("INSERT INTO kv (name, value) VALUES (?, ?)", (name, VALUE))
            self.names.append(name)
        self.conn.execute("COMMIT")

    async def commit_one(self) -> None:
        self._insert(1)

    async def commit_batch(self) -> None:
        self._insert(CONCURRENCY)

    def ready_to_read(self) -> None:
        self._order = self.names[:]
        random.Random(7).shuffle(self._order)

    async def select(self) -> None:
        name = self._order[next(self._reads) % len(self._order)]
        row = self.conn.execute("SELECT value FROM kv WHERE name = ?", (name,)).fetchone()
        assert row is not None

    def close(self) -> None:
        self.conn.close()


async def bench_sqlite(work: Path, settings: Settings, report: Report) -> None:
    raw = RawSQLite(work / "raw.db")
    store = await SQLiteStore.open(work / "state.db")
    ops = StoreOps(store)
    try:
        await measure(Load(ops.create, 4), 0.2, None)  # warm up
        writes = await interleaved(
            {
                "raw1": Load(raw.commit_one, 1),
                "create1": Load(ops.create, 1),
                "raw32": Load(raw.commit_batch, 1, weight=CONCURRENCY),
                "create32": Load(ops.create, CONCURRENCY),
            },
            settings,
        )
        raw.ready_to_read()
        ops.ready_to_read()
        reads = await interleaved(
            {
                "select": Load(raw.select, 1),
                "get1": Load(ops.get, 1),
                "get32": Load(ops.get, CONCURRENCY),
            },
            settings,
        )

        report.section(
            f"SQLite {sqlite3.sqlite_version} ceilings (plain sqlite3, WAL, synchronous=FULL)"
        )
        one, batched, select = writes["raw1"], writes["raw32"], reads["select"]
        report.ceiling("raw sqlite commits/s 1 row/commit", one.per_second, "/s", one.cpu_note())
        report.ceiling(
            f"raw sqlite rows/s {CONCURRENCY} rows/commit",
            batched.per_second,
            "/s",
            f"= {batched.per_second / CONCURRENCY:,.0f} commits/s, group-commit ceiling",
        )
        report.ceiling("raw sqlite selects/s 1 conn", select.per_second, "/s", select.cpu_note())

        report.section(f"SQLite store ({store.path})")
        report.header()
        rows = [
            ("creates/s 1 writer", writes["create1"], "raw commits/s 1 row/commit", one),
            (
                f"creates/s {CONCURRENCY} writers",
                writes["create32"],
                f"raw rows/s {CONCURRENCY} rows/commit",
                batched,
            ),
            ("gets/s 1 reader", reads["get1"], "raw selects/s 1 conn", select),
            (f"gets/s {CONCURRENCY} readers", reads["get32"], "raw selects/s 1 conn", select),
        ]
        for label, got, bound_label, bound in rows:
            report.figure(
                f"sqlite {label}",
                got.per_second,
                "/s",
                bound_label,
                bound.per_second,
                got.cpu_note(),
            )
        await watch_figures("sqlite", store, settings, report)
    finally:
        await store.close()
        raw.close()


# -- etcd --


class RawEtcd:
    """aetcd used directly: its own put/get, and the Txn the etcd store sends for a create."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.prefix = f"/raw-{os.getpid()}-{time.monotonic_ns()}/"
        self._numbers = itertools.count()
        self._reads = itertools.count()
        self._keys: list[bytes] = []

    def _key(self) -> bytes:
        return f"{self.prefix}{next(self._numbers):09d}".encode()

    async def put(self) -> None:
        await self.client.put(self._key(), VALUE)

    async def txn(self) -> None:
        key = self._key()
        absent = rpc.Compare(key=key, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL)
        request = rpc.TxnRequest(
            compare=[absent],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=VALUE))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=key))],
        )
        answer = await self.client.kvstub.Txn(request, timeout=10)
        assert answer.succeeded

    def ready_to_read(self) -> None:
        written = next(self._numbers)
        self._keys = [f"{self.prefix}{i:09d}".encode() for i in range(min(written, 20_000))]
        random.Random(7).shuffle(self._keys)

    async def get(self) -> None:
        found = await self.client.get(self._keys[next(self._reads) % len(self._keys)])
        assert found is not None


async def bench_etcd(
    cluster: EtcdCluster, version: str, settings: Settings, report: Report
) -> None:
    pid = etcd_pid(cluster)
    client: Any = aetcd.Client(host="127.0.0.1", port=cluster.members[0].client_port, timeout=10)
    await client.connect()
    store = await EtcdStore.open(cluster.endpoints)
    raw, ops = RawEtcd(client), StoreOps(store)
    try:
        await measure(Load(raw.put, 4), 0.2, None)  # warm up both channels
        await measure(Load(ops.create, 4), 0.2, None)
        writes = await interleaved(
            {"put1": Load(raw.put, 1), "create1": Load(ops.create, 1)}, settings, pid
        )
        writes |= await interleaved(
            {
                "put32": Load(raw.put, CONCURRENCY),
                "txn32": Load(raw.txn, CONCURRENCY),
                "create32": Load(ops.create, CONCURRENCY),
            },
            settings,
            pid,
        )
        wide = (await interleaved({"wide": Load(raw.put, WIDE)}, settings, pid))["wide"]
        raw.ready_to_read()
        ops.ready_to_read()
        reads = await interleaved(
            {"get1": Load(raw.get, 1), "sget1": Load(ops.get, 1)}, settings, pid
        )
        reads |= await interleaved(
            {"get32": Load(raw.get, CONCURRENCY), "sget32": Load(ops.get, CONCURRENCY)},
            settings,
            pid,
        )

        report.section(f"etcd {version} ceilings (raw aetcd, one gRPC channel)")
        ceilings = [
            ("raw aetcd put/s 1 writer", writes["put1"]),
            (f"raw aetcd put/s {CONCURRENCY} writers", writes["put32"]),
            (f"raw aetcd put/s {WIDE} writers", wide),
            (f"raw etcd txn/s {CONCURRENCY} writers", writes["txn32"]),
            ("raw aetcd get/s 1 reader", reads["get1"]),
            (f"raw aetcd get/s {CONCURRENCY} readers", reads["get32"]),
        ]
        for label, rate in ceilings:
            report.ceiling(label, rate.per_second, "/s", rate.cpu_note())
        report.line(
            f"  ({WIDE} writers: the issue quotes about 9,000 puts/s; txn: the create-if-absent"
            " Txn the store sends, through aetcd's stub)"
        )

        report.section(f"etcd store ({cluster.endpoints})")
        report.header()
        rows = [
            ("creates/s 1 writer", writes["create1"], ceilings[0]),
            (f"creates/s {CONCURRENCY} writers", writes["create32"], ceilings[1]),
            ("gets/s 1 reader", reads["sget1"], ceilings[4]),
            (f"gets/s {CONCURRENCY} readers", reads["sget32"], ceilings[5]),
        ]
        for label, got, (bound_label, bound) in rows:
            report.figure(
                f"etcd {label}",
                got.per_second,
                "/s",
                bound_label,
                bound.per_second,
                got.cpu_note(),
            )
        await watch_figures("etcd", store, settings, report)

        put, txn, create = writes["put32"], writes["txn32"], writes["create32"]
        report.line()
        report.line(f"where a create's time goes at {CONCURRENCY} writers (CPU per operation):")
        for label, rate in (("raw put", put), ("raw txn", txn), ("store create", create)):
            report.line(f"  {label:<13} {rate.cpu_note()}")
        report.line(
            f"  store create / raw txn {create.per_second / txn.per_second:.2f}x,"
            f" raw txn / raw put {txn.per_second / put.per_second:.2f}x"
        )
    finally:
        await store.close()
        await client.close()


# -- main --


def summary(report: Report, settings: Settings, names: list[str]) -> None:
    """The targets of the stores measured (``names``), printed at the end."""
    values = report.values
    if "sqlite" in names:
        rate = values[f"sqlite creates/s {CONCURRENCY} writers"]
        report.target(
            f"sqlite creates/s {CONCURRENCY} writers >= {SQLITE_CREATES_TARGET:,.0f}/s",
            f"{rate:,.0f}/s",
            rate >= SQLITE_CREATES_TARGET,
        )
    if "etcd" in names:
        rate = values[f"etcd creates/s {CONCURRENCY} writers"]
        raw = values[f"raw aetcd put/s {CONCURRENCY} writers"]
        ratio = rate / raw if raw else math.nan
        report.target(
            f"etcd creates/s {CONCURRENCY} >= {ETCD_RATIO_TARGET}x raw put/s {CONCURRENCY}",
            f"{ratio:.2f}x ({rate:,.0f}/s vs {raw:,.0f}/s)",
            ratio >= ETCD_RATIO_TARGET,
        )
    for name in names:
        p99 = values[f"{name} watch p99 ms {settings.watch_rate:.0f}/s"]
        report.target(
            f"{name} watch p99 at {settings.watch_rate:.0f}/s <= {WATCH_P99_TARGET_MS:.0f} ms",
            f"{p99:.2f} ms",
            p99 <= WATCH_P99_TARGET_MS,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser(
        "storage_bench", "Storage figures beside ceilings measured in the same run."
    )
    parser.add_argument("--duration", type=float, help="seconds per throughput figure")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.duration:
        settings = replace(settings, duration=args.duration)
    names, binary = stores(args, "storage_bench")
    report = Report(width=34, bound_width=27)
    title = (
        f"storage benchmark: {machine()}, {settings.duration:g} s per throughput figure"
        f" in {settings.rounds} round(s)"
    )
    with bench_run(report, args, "storage-bench", title) as work:
        if "sqlite" in names:
            (work / "sqlite").mkdir()
            asyncio.run(bench_sqlite(work / "sqlite", settings, report))
        if "etcd" in names:
            with etcd_member(binary, work) as cluster:
                asyncio.run(bench_etcd(cluster, etcd_version(binary), settings, report))
        summary(report, settings, names)
        report.print_targets()
    return 0


if __name__ == "__main__":
    sys.exit(main())
