"""Behaviour specific to the embedded SQLite store: durability, compaction, slow watchers."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from minikube_py.storage import watchhub
from minikube_py.storage.factory import open_store
from minikube_py.storage.interface import KeyNotFound
from minikube_py.storage.sqlite import CompactionPolicy, SQLiteStore
from tests.support.waiting import wait_until

WAIT = 10.0


def row_count(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM kv").fetchone()[0])


async def test_default_store_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    store = await open_store(data_dir=tmp_path / "data")
    try:
        assert store.name == f"sqlite:{tmp_path / 'data' / 'state.db'}"
        await store.create("/registry/a", b"1")
    finally:
        await store.close()
    assert (tmp_path / "data" / "state.db").exists()


async def test_acknowledged_writes_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = await SQLiteStore.open(path)
    revisions = await asyncio.gather(
        *(store.create(f"/registry/k/{i}", str(i).encode()) for i in range(64))
    )
    deleted = await store.delete("/registry/k/3")
    await store.close()

    store = await SQLiteStore.open(path)
    try:
        assert await store.current_revision() == deleted.mod_revision
        listed = await store.list("/registry/k/")
        assert len(listed.items) == 63
        for kv in listed.items:
            index = int(kv.key.rsplit("/", 1)[1])
            assert kv.value == str(index).encode()
            assert kv.mod_revision == revisions[index]
        with pytest.raises(KeyNotFound):
            await store.get("/registry/k/3")
    finally:
        await store.close()


async def test_revisions_never_go_back_after_compaction_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = await SQLiteStore.open(path)
    revision = await store.create("/registry/a", b"1")
    last = await store.delete("/registry/a", expected_revision=revision)
    await store.compact(last.mod_revision + 1)  # asks past the end: clamps to the latest
    await store.close()
    store = await SQLiteStore.open(path)
    try:
        assert await store.current_revision() == last.mod_revision
        assert await store.create("/registry/b", b"2") == last.mod_revision + 1
    finally:
        await store.close()


async def test_compaction_in_steps_never_resurrects_deleted_keys(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = await SQLiteStore.open(path, CompactionPolicy(step_rows=7))
    try:
        for i in range(40):
            rev = await store.create(f"/registry/k/{i:02d}", b"1")
            rev = await store.update(f"/registry/k/{i:02d}", b"2", expected_revision=rev)
            if i % 2:
                await store.delete(f"/registry/k/{i:02d}", expected_revision=rev)
        target = await store.create("/registry/z", b"last")
        await store.compact(target)

        async def compacted() -> bool:
            listed = await store.list("/registry/k/")
            assert [kv.key for kv in listed.items] == [
                f"/registry/k/{i:02d}" for i in range(0, 40, 2)
            ]
            return row_count(path) == 21  # the 20 live keys of /registry/k/ and /registry/z

        await wait_until(compacted, what="compaction to finish")
        assert {kv.value for kv in (await store.list("/registry/k/")).items} == {b"2"}
    finally:
        await store.close()


async def test_background_compaction_keeps_the_log_bounded(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    policy = CompactionPolicy(keep_seconds=0.05, keep_revisions=50, tick_seconds=0.02)
    store = await SQLiteStore.open(path, policy)
    try:
        revision = await store.create("/registry/hot", b"0")
        for i in range(400):
            revision = await store.update(
                "/registry/hot", str(i).encode(), expected_revision=revision
            )

        async def settled() -> bool:
            compacted = await store.compacted_revision()
            return compacted >= revision - 60 and row_count(path) <= 60

        await wait_until(settled, what="background compaction")
        assert (await store.get("/registry/hot")).value == b"399"
        assert await store.compacted_revision() <= revision - policy.keep_revisions
    finally:
        await store.close()


async def test_slow_watcher_catches_up_from_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A watcher that falls behind drops its buffer but still sees every event in order."""
    monkeypatch.setattr(watchhub, "MAX_BUFFERED", 16)
    monkeypatch.setattr(watchhub, "PAGE", 10)
    store = await SQLiteStore.open(tmp_path / "state.db")
    try:
        start = await store.current_revision()
        async with store.watch("/registry/", after_revision=start) as stream:
            written = [await store.create(f"/registry/k/{i}", b"v") for i in range(100)]

            async def read_all() -> list[int]:
                return [(await anext(stream)).revision for _ in written]

            assert await asyncio.wait_for(read_all(), WAIT) == written
    finally:
        await store.close()
