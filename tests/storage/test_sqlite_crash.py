"""The SQLite store under crashes, corruption and a second process on its data dir.

``SQLiteStore`` promises that a write is durable before it is acknowledged, and that a
damaged file stops start-up instead of being served or made worse. The crash test holds it
to the first promise the hard way: a child process (``crash_writer``) writes from eight
coroutines and reports each acknowledged write; we SIGKILL it at a random moment, twenty
times on the same file, and after each kill reopen the file and audit it. The corruption
tests hold it to the second: a failed open must name the file and leave it (and its WAL,
which may hold the newest commits) exactly as it found it, for the operator to recover.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from minikube_py.storage.interface import KeyValue, StoreCorrupt, StoreUnavailable
from minikube_py.storage.sqlite import SQLiteStore
from tests.storage.crash_writer import PREFIX, encode_value, owner, parse_value

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNS = 20
KILL_DELAY_SECONDS = (0.05, 0.6)
"""The kill lands this long after the child's first acknowledged write."""
FIRST_ACK_TIMEOUT = 30.0
EXIT_TIMEOUT = 10.0
GETS_PER_AUDIT = 64
"""Keys also read with ``get`` (besides ``list``) after each crash, chosen at random."""
SEED_VARIABLE = "CRASH_TEST_SEED"
GARBAGE = b"\xde\xad\xbe\xef"


@dataclass(frozen=True, slots=True)
class Ack:
    """A write the child reported after its ``await`` returned."""

    key: str
    value: bytes
    revision: int


@dataclass
class History:
    """What the audits so far established; none of it may be undone by a later crash."""

    revision: int = 0
    """The store's revision at the last audit."""
    acked: dict[str, Ack] = field(default_factory=dict)
    """The newest acknowledged write of every key, over all runs."""
    seen: dict[str, KeyValue] = field(default_factory=dict)
    """Every key as the last audit found it, acknowledged or not."""
    landed_unacked: int = 0
    """Writes found on disk that were never reported: the kill beat the report."""


def parse_report(line: bytes) -> Ack:
    report = json.loads(line)
    return Ack(report["key"], report["value"].encode(), report["revision"])


def stderr_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


async def run_until_killed(db: Path, seed: int, delay: float, stderr_path: Path) -> list[Ack]:
    """Start the child, SIGKILL it ``delay`` s after its first ack; return every full report.

    A report cut short by the kill has no newline and is dropped: that write counts as
    unacknowledged, which the audit tolerates (it may or may not have landed).
    """
    with stderr_path.open("ab") as stderr:
        child = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tests.storage.crash_writer", str(db), str(seed)),
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    acks: list[Ack] = []
    first_ack = asyncio.Event()

    async def read_reports() -> None:
        assert child.stdout is not None
        while (line := await child.stdout.readline()).endswith(b"\n"):
            acks.append(parse_report(line))
            first_ack.set()

    reader = asyncio.create_task(read_reports())
    waiter = asyncio.create_task(first_ack.wait())
    try:
        await asyncio.wait(
            {reader, waiter}, timeout=FIRST_ACK_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if not first_ack.is_set():
            pytest.fail(f"the child acknowledged no write:\n{stderr_tail(stderr_path)}")
        await asyncio.sleep(delay)  # the chosen crash moment, not a wait for a condition
        if reader.done():  # stdout closed (or a bad report): the child is exiting by itself
            reader.result()
            pytest.fail(f"the child exited before the kill:\n{stderr_tail(stderr_path)}")
        child.send_signal(signal.SIGKILL)
        async with asyncio.timeout(EXIT_TIMEOUT):
            await child.wait()
            await reader  # the pipe still holds every report written before the kill
    finally:
        waiter.cancel()
        reader.cancel()
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert child.returncode == -signal.SIGKILL, stderr_tail(stderr_path)
    return acks


def integrity_check(db: Path) -> list[tuple[str]]:
    """SQLite's own verdict, on a read-only connection of our own (the store is closed)."""
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        rows: list[tuple[str]] = conn.execute("PRAGMA integrity_check").fetchall()
        return rows
    finally:
        conn.close()


@dataclass
class Snapshot:
    """The reopened store as one audit read it."""

    revision: int
    items: dict[str, KeyValue]
    fetched: dict[str, KeyValue]
    """``get`` answers for a sample of keys, to compare with ``list``."""


async def reopen_and_read(db: Path, sample_from: list[str], rng: random.Random) -> Snapshot:
    store = await SQLiteStore.open(db)
    try:
        revision = await store.current_revision()
        listing = await store.list(PREFIX)
        assert listing.revision == revision, "list answered at another revision than current"
        sample = rng.sample(sample_from, min(GETS_PER_AUDIT, len(sample_from)))
        fetched = {key: await store.get(key) for key in sample}
    finally:
        await store.close()
    return Snapshot(revision, {kv.key: kv for kv in listing.items}, fetched)


def check_ack(stored: KeyValue | None, ack: Ack) -> None:
    """The ack survived: its exact value, or a later write of the key that landed unreported."""
    assert stored is not None, f"acknowledged {ack.key} at revision {ack.revision} was lost"
    if stored.mod_revision == ack.revision:
        assert stored.value == ack.value, f"{ack.key} holds another value at {ack.revision}"
        return
    assert stored.mod_revision > ack.revision, f"{ack.key} went back before its ack: {stored}"
    newer, acked = parse_value(stored.value), parse_value(ack.value)
    assert newer.sequence > acked.sequence, f"{ack.key}: {stored.mod_revision} is not newer"


def check_stored(kv: KeyValue, revision: int) -> None:
    """Every stored key holds an intact value that its owner wrote for exactly that key."""
    written = parse_value(kv.value)  # raises on a damaged value
    assert (written.key, written.writer) == (kv.key, owner(kv.key)), f"misplaced value: {kv}"
    assert kv.create_revision <= kv.mod_revision <= revision, f"revisions out of range: {kv}"


def known(write: Ack | KeyValue | None) -> int:
    """The revision of a write we knew about (0: none)."""
    if write is None:
        return 0
    return write.revision if isinstance(write, Ack) else write.mod_revision


def audit(history: History, acks: list[Ack], snapshot: Snapshot) -> None:
    """Check one reopened store against every ack so far and against the last audit.

    Revisions only grow: this run's first ack is above the revision the last audit found,
    and the reopened store's revision is at least this run's newest ack.
    """
    revisions = [ack.revision for ack in acks]
    assert revisions, "the run acknowledged nothing"
    assert min(revisions) > history.revision, "a revision was handed out twice"
    assert len(set(revisions)) == len(revisions), "two acks share a revision"
    assert snapshot.revision >= max(revisions), "current revision is behind an ack"
    for ack in acks:
        history.acked[ack.key] = ack  # the child reports in ack order: the last one wins
    for kv in snapshot.items.values():
        check_stored(kv, snapshot.revision)
    for key, ack in history.acked.items():
        check_ack(snapshot.items.get(key), ack)
    for key, before in history.seen.items():
        now = snapshot.items.get(key)
        assert now is not None, f"{key} (revision {before.mod_revision}) disappeared"
        assert now.mod_revision >= before.mod_revision, f"{key} went back: {before} -> {now}"
        assert now.mod_revision > before.mod_revision or now.value == before.value, now
    history.landed_unacked += sum(
        kv.mod_revision > max(known(history.acked.get(key)), known(history.seen.get(key)))
        for key, kv in snapshot.items.items()
    )
    for key, kv in snapshot.fetched.items():
        assert kv == snapshot.items[key], f"get and list disagree on {key}"
    history.revision, history.seen = snapshot.revision, snapshot.items


def crash_seed() -> int:
    seed = int(os.environ.get(SEED_VARIABLE) or random.randrange(2**32))
    print(f"crash test seed {seed} (replay the same choices with {SEED_VARIABLE}={seed})")
    return seed


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    rng = random.Random(crash_seed())
    db, stderr_path = tmp_path / "state.db", tmp_path / "crash_writer.log"
    history = History()
    for run in range(RUNS):
        delay = rng.uniform(*KILL_DELAY_SECONDS)
        acks = await run_until_killed(db, rng.randrange(2**32), delay, stderr_path)
        snapshot = await reopen_and_read(db, sorted({ack.key for ack in acks}), rng)
        try:
            audit(history, acks, snapshot)
        except AssertionError as exc:
            raise AssertionError(f"run {run} (killed {delay:.3f} s after its first ack)") from exc
        assert integrity_check(db) == [("ok",)]
    print(
        f"{RUNS} crashes: {len(history.acked)} keys, revision {history.revision},"
        f" {history.landed_unacked} writes landed without their ack"
    )
    await check_still_writable(db, history)


async def check_still_writable(db: Path, history: History) -> None:
    """After all the crashes the revision counter resumes and writes go through."""
    key = max(history.acked.values(), key=lambda ack: ack.revision).key
    store = await SQLiteStore.open(db)
    try:
        revision = await store.current_revision()
        assert revision == history.revision
        created = await store.create("/registry/after-crashes/probe", b"probe")
        assert created == revision + 1
        stored = await store.get(key)
        value = encode_value(owner(key), parse_value(stored.value).sequence + 1, key, "final")
        updated = await store.update(key, value, expected_revision=stored.mod_revision)
        assert updated == created + 1
        assert (await store.get(key)).value == value
    finally:
        await store.close()


# -- a damaged file --


Fingerprint = dict[str, tuple[int, str] | None]


def fingerprint(db: Path) -> Fingerprint:
    """Size and hash of the database and its WAL (None: the file does not exist)."""
    prints: Fingerprint = {}
    for suffix in ("", "-wal"):
        path = Path(f"{db}{suffix}")
        data = path.read_bytes() if path.exists() else None
        prints[path.name] = None if data is None else (len(data), hashlib.sha256(data).hexdigest())
    return prints


def open_descriptors(db: Path) -> list[str]:
    """Files of ``db`` (the database or its WAL) this process still has open."""
    targets = {str(db), f"{db}-wal"}
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed while we looked
            continue
        if target in targets:
            found.append(target)
    return found


def wal_pages(wal: Path) -> set[int]:
    """Page numbers the WAL holds a frame for (32-byte header, then 24 + page size each)."""
    data = wal.read_bytes()
    (page_size,) = struct.unpack(">I", data[8:12])
    frame = 24 + page_size
    return {
        struct.unpack(">I", data[at : at + 4])[0] for at in range(32, len(data) - frame + 1, frame)
    }


def overwrite(db: Path, offset: int, length: int) -> None:
    with db.open("r+b") as f:
        f.seek(offset)
        f.write((GARBAGE * (length // len(GARBAGE) + 1))[:length])


async def fill(db: Path, keys: int) -> None:
    """A database with ``keys`` keys, closed cleanly: checkpointed, no WAL left."""
    store = await SQLiteStore.open(db)
    try:
        for i in range(keys):
            await store.create(f"/registry/fill/{i}", b"x" * 500)
    finally:
        await store.close()


async def copy_with_wal(source: Path, target: Path) -> None:
    """Copy ``source`` while a store holds one more commit in its WAL, as a crash leaves it."""
    store = await SQLiteStore.open(source)
    try:
        current = await store.get("/registry/fill/0")
        await store.update(current.key, b"y" * 500, expected_revision=current.mod_revision)
        target.parent.mkdir()
        shutil.copyfile(source, target)
        shutil.copyfile(f"{source}-wal", f"{target}-wal")
    finally:
        await store.close()


def page_size(db: Path) -> int:
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()


def table_root(db: Path, table: str) -> int:
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        query = "SELECT rootpage FROM sqlite_schema WHERE name = ?"
        return int(conn.execute(query, (table,)).fetchone()[0])
    finally:
        conn.close()


async def assert_refused_untouched(db: Path) -> None:
    """Opening ``db`` raises StoreCorrupt naming it, and changes nothing on disk."""
    before = fingerprint(db)
    with pytest.raises(StoreCorrupt) as refused:
        await SQLiteStore.open(db)
    assert str(db) in str(refused.value)
    after = fingerprint(db)
    assert after == before, "the failed open modified the damaged files"
    # A handle left open would checkpoint the WAL into the damaged file when it is closed
    # (at the latest at exit), so "untouched" only holds if nothing is left open.
    assert open_descriptors(db) == [], "the failed open left the database open"
    with pytest.raises(StoreCorrupt):  # the data dir lock was released: same verdict again
        await SQLiteStore.open(db)


async def test_garbage_header_is_refused_and_left_untouched(tmp_path: Path) -> None:
    source, copy = tmp_path / "source" / "state.db", tmp_path / "copy" / "state.db"
    await fill(source, 50)
    copy.parent.mkdir()
    shutil.copyfile(source, copy)
    assert fingerprint(copy)["state.db-wal"] is None, "a clean close should leave no WAL"
    overwrite(copy, 0, 100)
    await assert_refused_untouched(copy)


async def test_garbage_header_with_a_wal_is_refused_and_left_untouched(tmp_path: Path) -> None:
    """The WAL holds the newest commit: merging it into a damaged file would destroy it."""
    source, copy = tmp_path / "source" / "state.db", tmp_path / "copy" / "state.db"
    await fill(source, 200)
    await copy_with_wal(source, copy)
    # A WAL frame of page 1 would supersede the damaged header: then there is no damage.
    assert 1 not in wal_pages(Path(f"{copy}-wal")), "fixture: the WAL must not hold page 1"
    overwrite(copy, 0, 100)
    await assert_refused_untouched(copy)


async def test_damaged_page_with_a_wal_is_refused_and_left_untouched(tmp_path: Path) -> None:
    """A b-tree page only the main file holds is garbage: the integrity check must catch it."""
    source, copy = tmp_path / "source" / "state.db", tmp_path / "copy" / "state.db"
    await fill(source, 200)
    await copy_with_wal(source, copy)
    root, size = table_root(copy, "kv"), page_size(copy)
    assert root not in wal_pages(Path(f"{copy}-wal")), "fixture: the WAL must not hold it"
    overwrite(copy, (root - 1) * size, size)
    await assert_refused_untouched(copy)


# -- a second process on the same data dir --


async def test_second_open_of_a_data_dir_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    first = await SQLiteStore.open(db)
    try:
        created = await first.create("/registry/lock/a", b"a")
        with pytest.raises(StoreUnavailable) as refused:
            await SQLiteStore.open(db)
        message = str(refused.value)
        assert str(tmp_path) in message, message
        assert f"pid {os.getpid()}" in message, message
        assert await first.create("/registry/lock/b", b"b") == created + 1, "first disturbed"
    finally:
        await first.close()
    second = await SQLiteStore.open(db)  # closing the first released the lock
    try:
        assert (await second.get("/registry/lock/b")).value == b"b"
    finally:
        await second.close()
