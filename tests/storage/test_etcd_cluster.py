"""The etcd store through leader elections: no acknowledged write lost, no watch gap.

Three real etcd members. Eight writers create keys while one watch follows the prefix from
the starting revision. We SIGKILL the leader, wait until writes flow again, restart it, then
SIGKILL the new leader and wait again. Afterwards every acknowledged create must be
readable, and the watch must have delivered exactly the creates that happened, in strictly
increasing revision order: nothing twice, nothing missing, compared with a final list.

Writes that fail during an election are retried by the writer under a new key, so a
failed create may still have landed; the checks allow for that: such a key must hold the
value it was given, and the watch must report it like any other.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import time
import urllib.request
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from minikube_py.storage.etcd import EtcdStore, EtcdWatch
from minikube_py.storage.interface import Event, KeyExists, KeyValue, StoreUnavailable
from tests.support.etcd import EtcdCluster, EtcdMember, etcd_cluster
from tests.support.requirements import require_binary

pytestmark = [pytest.mark.slow, pytest.mark.etcd]

PREFIX = "/registry/failover/"
WRITERS = 8
ACKS_PER_PHASE = 200
"""Acknowledged creates to wait for in each phase: proof that writes flow (again)."""
PHASE_TIMEOUT = 45.0
"""Longer than the store's fail-over deadline (30 s), so its give-up shows as a failure."""
LEADER_TIMEOUT = 15.0
STATUS_TIMEOUT = 1.0
POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Ack:
    key: str
    value: bytes
    revision: int


class Progress:
    """Wakes waiters whenever something is recorded, so they re-check their condition."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        """The writers and the watch: the test cancels them only at its very end."""

    def record(self) -> None:
        self._changed.set()

    def start(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run ``work`` as a task; its end (for whatever reason) wakes the waiters too."""
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(lambda _: self.record())
        self.tasks.append(task)
        return task

    def check_tasks(self) -> None:
        """A writer or the watch that died fails the test, with its error."""
        for task in self.tasks:
            if not task.done():
                continue
            if task.cancelled():
                pytest.fail(f"{task.get_name()} was cancelled, and not by the test")
            task.result()  # raises the task's error, if it had one

    async def until(self, condition: Callable[[], bool], within: float, what: str) -> float:
        """Wait until ``condition`` holds; return how long it took."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(within):
                while not condition():
                    self.check_tasks()
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            self.check_tasks()
            stuck = "\n".join(
                f"  {t.get_name()}: {awaiting(t)}" for t in self.tasks if not t.done()
            )
            pytest.fail(f"timed out after {within} s waiting for {what}; still running:\n{stuck}")
        return time.monotonic() - started


def awaiting(task: asyncio.Task[None]) -> str:
    """Where a running task is suspended: the innermost coroutine frame of its await chain."""
    coro: Any = task.get_coro()
    where = "?"
    while coro is not None and (frame := getattr(coro, "cr_frame", None)) is not None:
        where = f"{frame.f_code.co_qualname} ({frame.f_code.co_filename}:{frame.f_lineno})"
        coro = coro.cr_await
    return where


@dataclass
class Ledger:
    """Every create the writers attempted, and the ones etcd acknowledged."""

    progress: Progress
    attempted: dict[str, bytes] = field(default_factory=dict)
    acked: list[Ack] = field(default_factory=list)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    found_own: list[str] = field(default_factory=list)
    """Keys whose create raised KeyExists: only a retry of our own landed create can."""

    async def more_acks(self, count: int, what: str) -> float:
        target = len(self.acked) + count
        return await self.progress.until(lambda: len(self.acked) >= target, PHASE_TIMEOUT, what)


async def write(index: int, store: EtcdStore, ledger: Ledger, stop: asyncio.Event) -> None:
    """Create fresh keys until ``stop``; a create that fails is not retried, a new key is."""
    for n in itertools.count():
        if stop.is_set():
            return
        key = f"{PREFIX}w{index}/{n}"
        value = f"writer {index} create {n}".encode()
        ledger.attempted[key] = value
        try:
            revision = await store.create(key, value)
        except StoreUnavailable:
            ledger.failures["unavailable"] += 1
            continue
        except KeyExists:
            ledger.failures["KeyExists"] += 1
            ledger.found_own.append(key)
            continue
        except asyncio.CancelledError as exc:
            raise_unless_cancelled(exc, f"create({key!r})")
        ledger.acked.append(Ack(key, value, revision))
        ledger.progress.record()


async def follow(watch: EtcdWatch, events: list[Event], progress: Progress) -> None:
    try:
        async for event in watch:
            events.append(event)
            progress.record()
    except asyncio.CancelledError as exc:
        raise_unless_cancelled(exc, "the watch")
    raise AssertionError("the watch ended though nobody closed it")


def raise_unless_cancelled(exc: asyncio.CancelledError, what: str) -> NoReturn:
    """Re-raise a real cancellation of this task; a CancelledError out of a store call is a bug.

    The Store protocol answers with a result or a StoreError. A CancelledError that escapes
    a call while nothing cancelled the caller would cancel, say, an API request handler.
    """
    task = asyncio.current_task()
    if task is None or task.cancelling():
        raise exc
    raise AssertionError(f"{what} raised CancelledError, but nothing cancelled its task") from exc


async def cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Stop tasks still running at the end; their errors were checked (or a failure is on)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def member_status(member: EtcdMember) -> dict[str, Any] | None:
    """etcd's ``Maintenance.Status`` through its HTTP gateway (None: no answer)."""
    request = urllib.request.Request(
        f"{member.client_url}/v3/maintenance/status", data=b"{}", method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=STATUS_TIMEOUT) as answer:
            status: dict[str, Any] = json.load(answer)
            return status
    except OSError:
        return None


async def find_leader(members: list[EtcdMember]) -> EtcdMember:
    """The member that every one of ``members`` (all running) names as its leader."""
    deadline = time.monotonic() + LEADER_TIMEOUT
    while True:
        answers = await asyncio.gather(*(asyncio.to_thread(member_status, m) for m in members))
        by_id = {a["header"]["member_id"]: m for m, a in zip(members, answers, strict=True) if a}
        named = {a.get("leader") for a in answers if a}
        if len(by_id) == len(members) and len(named) == 1 and (leader := named.pop()) in by_id:
            return by_id[leader]
        if time.monotonic() > deadline:
            pytest.fail(f"no agreed leader among {[m.name for m in members]}: {answers}")
        await asyncio.sleep(POLL_SECONDS)


def initial_cluster(cluster: EtcdCluster) -> str:
    return ",".join(f"{m.name}={m.peer_url}" for m in cluster.members)


async def restart(member: EtcdMember, binary: str, cluster: EtcdCluster) -> None:
    """Start a killed member again: same name, data dir and ports, joining its cluster."""
    await asyncio.to_thread(member.start, binary, initial_cluster(cluster), "existing")
    await asyncio.to_thread(cluster.wait_healthy, PHASE_TIMEOUT, [member])


def check_acks(ledger: Ledger, listed: dict[str, KeyValue], fetched: dict[str, KeyValue]) -> None:
    revisions = [ack.revision for ack in ledger.acked]
    assert len(set(revisions)) == len(revisions), "two acknowledged creates share a revision"
    for ack in ledger.acked:
        expected = KeyValue(ack.key, ack.value, ack.revision, ack.revision)
        assert fetched[ack.key] == expected, f"get disagrees with the ack of {ack.key}"
        assert listed.get(ack.key) == expected, f"list disagrees with the ack of {ack.key}"


def check_listed(ledger: Ledger, listed: dict[str, KeyValue], start: int) -> None:
    """Every key is one a writer attempted, holding its value, created once after ``start``."""
    for key, kv in listed.items():
        assert ledger.attempted.get(key) == kv.value, f"{key} holds a value nobody wrote"
        assert start < kv.create_revision == kv.mod_revision, f"{key} was not a single create"
    lost = [key for key in ledger.found_own if key not in listed]
    assert not lost, f"KeyExists for keys that do not exist: {lost}"


def check_watch(events: list[Event], listed: dict[str, KeyValue], ledger: Ledger) -> None:
    revisions = [event.revision for event in events]
    assert all(a < b for a, b in itertools.pairwise(revisions)), "watch out of order or repeated"
    assert all(event.is_create for event in events), "the watch reported something but creates"
    watched = {event.kv.key: event.kv for event in events}
    missing = sorted(listed.keys() - watched.keys())
    assert not missing, f"the watch missed {len(missing)} creates, first {missing[:5]}"
    extra = sorted(watched.keys() - listed.keys())
    assert not extra, f"the watch reported {len(extra)} creates that are not stored: {extra[:5]}"
    assert watched == listed, "the watch and the list disagree on a key's value or revision"
    assert len(events) == len(listed), "a key was reported twice"
    assert {ack.revision for ack in ledger.acked} <= set(revisions)


async def elections(cluster: EtcdCluster, binary: str, ledger: Ledger) -> EtcdMember:
    """Kill the leader, restart it, kill the new leader: writes must resume after each step.

    Returns the member killed first (running again by the end).
    """
    await ledger.more_acks(ACKS_PER_PHASE, "the first writes")
    first = await find_leader(cluster.members)
    await asyncio.to_thread(first.kill)
    took = await ledger.more_acks(ACKS_PER_PHASE, f"writes after killing leader {first.name}")
    print(f"killed leader {first.name}: {ACKS_PER_PHASE} more acks in {took:.2f} s")

    await restart(first, binary, cluster)
    await ledger.more_acks(ACKS_PER_PHASE, f"writes after restarting {first.name}")
    leader = await find_leader(cluster.members)
    others = [m for m in cluster.members if m is not first]
    second = leader if leader is not first else others[0]
    await asyncio.to_thread(second.kill)
    took = await ledger.more_acks(ACKS_PER_PHASE, f"writes after killing {second.name}")
    print(f"killed {second.name} (leader: {second is leader}): more acks in {took:.2f} s")
    return first


@pytest.mark.timeout(120)
async def test_writes_and_watch_survive_leader_kills(tmp_path: Path) -> None:
    binary = require_binary("etcd")
    progress = Progress()
    ledger = Ledger(progress)
    events: list[Event] = []
    stop = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        cluster = stack.enter_context(etcd_cluster(binary, tmp_path, size=3))
        store = await EtcdStore.open(cluster.endpoints)
        stack.push_async_callback(store.close)
        start = await store.current_revision()
        watch = store.watch(PREFIX, after_revision=start)
        stack.push_async_callback(watch.close)
        progress.start(follow(watch, events, progress), "the watch")
        writers = [
            progress.start(write(i, store, ledger, stop), f"writer {i}") for i in range(WRITERS)
        ]
        stack.push_async_callback(cancel, progress.tasks)

        rejoined = await elections(cluster, binary, ledger)

        stop.set()
        async with asyncio.timeout(PHASE_TIMEOUT):
            await asyncio.gather(*writers)
        final = await store.list(PREFIX)
        listed = {kv.key: kv for kv in final.items}
        last = max(kv.mod_revision for kv in final.items)
        await progress.until(
            lambda: bool(events) and events[-1].revision >= last,
            PHASE_TIMEOUT,
            "the watch to catch up",
        )
        fetched = {ack.key: await store.get(ack.key) for ack in ledger.acked}
        print(
            f"{len(ledger.acked)} acked, {len(listed)} stored, {len(events)} watched,"
            f" failures: {dict(ledger.failures)}"
        )
        check_acks(ledger, listed, fetched)
        check_listed(ledger, listed, start)
        check_watch(events, listed, ledger)

        # The member killed first and restarted serves the same data: it caught up.
        direct = await EtcdStore.open(rejoined.client_url)
        stack.push_async_callback(direct.close)
        assert (await direct.list(PREFIX, revision=final.revision)).items == final.items
