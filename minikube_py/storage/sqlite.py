"""The embedded default store: a kine-style revision log in one SQLite file.

One writer thread owns the only write connection and commits in groups: every request
that arrives while the previous transaction is being fsynced joins the next one, so 32
concurrent writers share one COMMIT. A caller is answered only after its COMMIT returned.
Reads run on a small pool of reader connections beside the writer (WAL). Committed events
reach watchers straight from the writer's hand-off, with no polling.
"""

from __future__ import annotations

import asyncio
import builtins
import fcntl
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import structlog

from minikube_py.storage import sqlite_sql as sql
from minikube_py.storage.interface import (
    Compacted,
    Event,
    EventType,
    KeyExists,
    KeyNotFound,
    KeyValue,
    ListResult,
    RevisionConflict,
    StoreError,
    StoreUnavailable,
)
from minikube_py.storage.watchhub import HubStream, WatchHub

log = structlog.get_logger(__name__)
T = TypeVar("T")

MAX_BATCH = 1024
READERS = 4


@dataclass(frozen=True)
class CompactionPolicy:
    """Keep at least ``keep_seconds`` and ``keep_revisions`` of history; check every tick."""

    keep_seconds: float = 300.0
    keep_revisions: int = 1000
    tick_seconds: float = 30.0
    step_rows: int = 2000


@dataclass
class _Write:
    """One queued write; ``op`` is create, update, delete or compact."""

    op: str
    key: str
    value: bytes
    expected: int
    future: asyncio.Future[object]
    result: object = None
    events: list[Event] = field(default_factory=list)


_STOP = object()


class _DataDirLock:
    """An exclusive flock beside the database: one process per data dir."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip()
            os.close(self._fd)
            raise StoreUnavailable(
                f"{path.parent} is in use by another minikube-py process (pid {holder or '?'})"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        os.close(self._fd)


class _Writer(threading.Thread):
    """The single writer: batches queued writes into one transaction, then compacts a bit."""

    def __init__(self, store: SQLiteStore, conn: sqlite3.Connection, revision: int) -> None:
        super().__init__(name="sqlite-writer", daemon=True)
        self.store = store
        self.conn = conn
        self.queue: queue.SimpleQueue[_Write | object] = queue.SimpleQueue()
        self.revision = revision
        self.compacting: tuple[int, int] | None = None  # (target revision, next row id)
        self.samples: list[tuple[float, int]] = []
        self.last_sample = time.monotonic()

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # a bug here must not leave callers waiting forever
            log.exception("sqlite writer stopped", error=str(exc))
            self.store.loop.call_soon_threadsafe(self.store.writer_died, exc)

    def _loop(self) -> None:
        while True:
            timeout = 0.0 if self.compacting else self.store.policy.tick_seconds
            try:
                first = self.queue.get(timeout=timeout) if timeout else self.queue.get_nowait()
            except queue.Empty:
                first = None
            if first is _STOP:
                return
            if isinstance(first, _Write):
                batch = [first]
                stop = self._drain(batch)
                self._commit(batch)
                if stop:
                    return
            self._maintain()

    def _drain(self, batch: list[_Write]) -> bool:
        while len(batch) < MAX_BATCH:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            assert isinstance(item, _Write)
            batch.append(item)
        return False

    def _commit(self, batch: list[_Write]) -> None:
        start = self.revision
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            for write in batch:
                self._apply(write)
            self.conn.execute("COMMIT")
        except Exception as exc:  # the whole batch fails; the writer lives on
            log.error("sqlite commit failed", error=str(exc), batch=len(batch))
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            self.revision = start
            failure = StoreError(f"storage write failed: {exc}")
            for write in batch:
                write.result, write.events = failure, []
        self.store.loop.call_soon_threadsafe(self.store.committed, batch)

    def _apply(self, write: _Write) -> None:
        if write.op == "compact":
            write.result = self._start_compaction(write.expected)
            return
        current = sql.latest_row(self.conn, write.key)
        live = current if current is not None and not current.deleted else None
        try:
            write.result, write.events = self._change(write, live, current)
        except StoreError as exc:
            write.result = exc

    def _change(
        self, write: _Write, live: sql.Row | None, newest: sql.Row | None
    ) -> tuple[object, list[Event]]:
        key = write.key
        if write.op == "create":
            if live is not None:
                raise KeyExists(key, live.as_kv(key))
        elif live is None:
            raise KeyNotFound(key)
        elif write.expected and live.id != write.expected:
            raise RevisionConflict(key, write.expected, live.as_kv(key))
        revision = self.revision + 1
        deleted = write.op == "delete"
        value = live.value if deleted and live else write.value
        created = live.create_revision if live else revision
        sql.append(
            self.conn,
            revision=revision,
            key=key,
            value=value,
            deleted=deleted,
            create_revision=created,
            prev_revision=newest.id if newest else 0,
        )
        self.revision = revision
        kv = KeyValue(key, value, created, revision)
        prev = live.as_kv(key) if live else None
        event = Event(EventType.DELETE if deleted else EventType.PUT, kv, prev)
        return (kv if deleted else revision), [event]

    def _start_compaction(self, target: int) -> int:
        """Record the new compaction revision now (readers see it at COMMIT); delete later."""
        target = min(target, self.revision)
        current = sql.compact_revision(self.conn)
        if target > current:
            sql.set_compact_revision(self.conn, target)
            self.compacting = (target, 0)
        return max(target, current)

    def _maintain(self) -> None:
        """Take a revision sample each tick; compact one step at a time between batches."""
        now = time.monotonic()
        policy = self.store.policy
        if now - self.last_sample >= policy.tick_seconds:
            self.last_sample = now
            self.samples.append((now, self.revision))
            old = [rev for at, rev in self.samples if now - at >= policy.keep_seconds]
            self.samples = [(at, r) for at, r in self.samples if now - at < policy.keep_seconds]
            if old:
                self.samples.insert(0, (now - policy.keep_seconds, old[-1]))
                target = min(old[-1], self.revision - policy.keep_revisions)
                if target > 0:
                    self.conn.execute("BEGIN IMMEDIATE")
                    target = self._start_compaction(target)
                    self.conn.execute("COMMIT")
                    self.store.loop.call_soon_threadsafe(self.store.compacted_to, target)
        if self.compacting is None:
            return
        target, start = self.compacting
        try:
            start = sql.compact_step(self.conn, target, start, policy.step_rows)
        except sqlite3.Error as exc:
            log.error("sqlite compaction step failed", error=str(exc), target=target)
            self.compacting = None
            return
        self.compacting = None if start >= target else (target, start)
        if self.compacting is None:
            log.debug("sqlite compaction done", revision=target)


class SQLiteStore:
    """``Store`` on one SQLite file; see the module docstring for the design."""

    def __init__(self, path: Path, policy: CompactionPolicy | None = None) -> None:
        self.path = path
        self.policy = policy or CompactionPolicy()
        self.loop = asyncio.get_running_loop()
        self._lock: _DataDirLock | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._reader_conns: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._writer: _Writer | None = None
        self._inline: sqlite3.Connection | None = None
        self._hub: WatchHub | None = None
        self._closed = False

    @property
    def name(self) -> str:
        return f"sqlite:{self.path}"

    @classmethod
    async def open(cls, path: Path, policy: CompactionPolicy | None = None) -> SQLiteStore:
        store = cls(Path(path), policy)
        await asyncio.to_thread(store._open_blocking)
        return store

    def _open_blocking(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _DataDirLock(self.path.with_name(self.path.name + ".lock"))
        try:
            sql.check_integrity(self.path)
            conn = sql.connect(self.path, writer=True)
        except BaseException:
            self._lock.release()
            raise
        revision, compacted = sql.last_revision(conn), sql.compact_revision(conn)
        self._hub = WatchHub(self._history, revision, compacted)
        self._readers = ThreadPoolExecutor(READERS, thread_name_prefix="sqlite-reader")
        self._inline = sql.connect(self.path, writer=False)
        self._reader_conns.append(self._inline)
        self._writer = _Writer(self, conn, revision)
        self._writer.start()
        log.info("sqlite store opened", path=str(self.path), revision=revision)

    # -- plumbing between the writer thread, reader threads and the event loop --

    def committed(self, batch: list[_Write]) -> None:
        """On the loop: publish a committed batch's events, then answer its callers."""
        assert self._hub is not None
        self._hub.publish([event for write in batch for event in write.events])
        for write in batch:
            if write.op == "compact" and isinstance(write.result, int):
                self.compacted_to(write.result)
            if write.future.done():
                continue
            if isinstance(write.result, BaseException):
                write.future.set_exception(write.result)
            else:
                write.future.set_result(write.result)

    def writer_died(self, exc: BaseException) -> None:
        """On the loop: refuse further work and fail whatever is still queued."""
        self._closed = True
        failure = StoreUnavailable(f"the SQLite writer stopped: {exc}")
        assert self._writer is not None
        while True:
            try:
                item = self._writer.queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Write) and not item.future.done():
                item.future.set_exception(failure)
        if self._hub is not None:
            self._hub.close()

    def compacted_to(self, revision: int) -> None:
        assert self._hub is not None
        self._hub.compacted = max(self._hub.compacted, revision)

    async def _submit(self, op: str, key: str, value: bytes = b"", expected: int = 0) -> object:
        if self._closed or self._writer is None:
            raise StoreUnavailable("the store is closed")
        future: asyncio.Future[object] = self.loop.create_future()
        self._writer.queue.put(_Write(op, key, value, expected, future))
        return await future

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sql.connect(self.path, writer=False)
            self._local.conn = conn
            self._reader_conns.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one read transaction (one snapshot) on a reader thread."""
        if self._closed or self._readers is None:
            raise StoreUnavailable("the store is closed")

        def run() -> T:
            conn = self._conn()
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")

        try:
            return await self.loop.run_in_executor(self._readers, run)
        except sqlite3.Error as exc:
            raise StoreError(f"storage read failed: {exc}") from exc

    @staticmethod
    def _check_revision(conn: sqlite3.Connection, revision: int) -> None:
        compacted = sql.compact_revision(conn)
        if revision and revision < compacted:
            raise Compacted(revision, compacted)

    # -- the Store protocol --

    async def get(self, key: str, *, revision: int = 0) -> KeyValue:
        """Point reads run inline on the loop's own connection: an indexed lookup takes
        microseconds, far less than a hop to a reader thread (WAL readers never wait)."""
        if self._closed or self._inline is None:
            raise StoreUnavailable("the store is closed")
        conn = self._inline
        try:
            if revision:
                conn.execute("BEGIN")
                try:
                    self._check_revision(conn, revision)
                    row = sql.latest_row(conn, key, revision)
                finally:
                    conn.execute("COMMIT")
            else:
                row = sql.latest_row(conn, key)
        except sqlite3.Error as exc:
            raise StoreError(f"storage read failed: {exc}") from exc
        if row is None or row.deleted:
            raise KeyNotFound(key)
        return row.as_kv(key)

    async def list(
        self, prefix: str, *, limit: int = 0, start_after: str = "", revision: int = 0
    ) -> ListResult:
        def run(conn: sqlite3.Connection) -> ListResult:
            self._check_revision(conn, revision)
            at = revision or sql.last_revision(conn)
            items = sql.list_range(conn, prefix, start_after, at, limit + 1 if limit else 0)
            more = bool(limit) and len(items) > limit
            return ListResult(items[:limit] if more else items, at, more)

        return await self._read(run)

    async def count(self, prefix: str) -> int:
        return await self._read(lambda conn: sql.count_range(conn, prefix))

    async def create(self, key: str, value: bytes) -> int:
        result = await self._submit("create", key, value)
        assert isinstance(result, int)
        return result

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> int:
        result = await self._submit("update", key, value, expected_revision)
        assert isinstance(result, int)
        return result

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        result = await self._submit("delete", key, expected=expected_revision)
        assert isinstance(result, KeyValue)
        return result

    def watch(self, prefix: str, *, after_revision: int) -> HubStream:
        if self._hub is None:
            raise StoreUnavailable("the store is closed")
        return self._hub.subscribe(prefix, after_revision)

    async def _history(
        self, prefix: str, after: int, upto: int, limit: int
    ) -> builtins.list[Event]:
        def run(conn: sqlite3.Connection) -> builtins.list[Event]:
            compacted = sql.compact_revision(conn)
            if after < compacted:
                raise Compacted(after, compacted)
            return sql.events_between(conn, prefix, after, upto, limit)

        return await self._read(run)

    async def current_revision(self) -> int:
        assert self._hub is not None
        return self._hub.revision

    async def compacted_revision(self) -> int:
        return await self._read(sql.compact_revision)

    async def compact(self, revision: int) -> None:
        await self._submit("compact", "", expected=revision)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._hub is not None:
            self._hub.close()
        if self._writer is not None:
            self._writer.queue.put(_STOP)
            await asyncio.to_thread(self._writer.join)
            self._writer.conn.close()
        if self._readers is not None:
            self._readers.shutdown(wait=True)
        for conn in self._reader_conns:
            conn.close()
        if self._lock is not None:
            self._lock.release()
        log.info("sqlite store closed", path=str(self.path))
