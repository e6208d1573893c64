"""The Store conformance suite: every backend must pass it unchanged (see conftest `store`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from minikube_py.storage.interface import (
    Compacted,
    Event,
    EventType,
    KeyExists,
    KeyNotFound,
    RevisionConflict,
    Store,
    WatchStream,
)

WAIT = 10.0  # seconds any single expected event may take before the test fails


async def next_events(stream: WatchStream, count: int) -> list[Event]:
    """Read exactly ``count`` events, failing if they do not all arrive in time."""

    async def read() -> list[Event]:
        return [await anext(stream) for _ in range(count)]

    return await asyncio.wait_for(read(), WAIT)


def revisions(events: Sequence[Event]) -> list[int]:
    return [event.revision for event in events]


# -- single keys --


async def test_create_then_get(store: Store, root: str) -> None:
    before = await store.current_revision()
    revision = await store.create(root + "a", b"one")
    assert revision > before
    assert await store.current_revision() >= revision
    kv = await store.get(root + "a")
    assert (kv.key, kv.value, kv.create_revision, kv.mod_revision) == (
        root + "a",
        b"one",
        revision,
        revision,
    )


async def test_create_existing_key_fails_and_reports_current(store: Store, root: str) -> None:
    revision = await store.create(root + "a", b"one")
    with pytest.raises(KeyExists) as raised:
        await store.create(root + "a", b"two")
    assert raised.value.current is not None
    assert raised.value.current.value == b"one"
    assert raised.value.current.mod_revision == revision
    assert (await store.get(root + "a")).value == b"one"


async def test_get_missing_key(store: Store, root: str) -> None:
    with pytest.raises(KeyNotFound):
        await store.get(root + "missing")


async def test_update_with_expected_revision(store: Store, root: str) -> None:
    created = await store.create(root + "a", b"one")
    updated = await store.update(root + "a", b"two", expected_revision=created)
    assert updated > created
    kv = await store.get(root + "a")
    assert (kv.value, kv.create_revision, kv.mod_revision) == (b"two", created, updated)


async def test_update_with_stale_revision_conflicts(store: Store, root: str) -> None:
    created = await store.create(root + "a", b"one")
    updated = await store.update(root + "a", b"two", expected_revision=created)
    with pytest.raises(RevisionConflict) as raised:
        await store.update(root + "a", b"three", expected_revision=created)
    assert raised.value.current is not None
    assert (raised.value.current.value, raised.value.current.mod_revision) == (b"two", updated)
    assert (await store.get(root + "a")).value == b"two"


async def test_update_missing_key(store: Store, root: str) -> None:
    with pytest.raises(KeyNotFound):
        await store.update(root + "missing", b"x", expected_revision=1)


async def test_delete_returns_last_value(store: Store, root: str) -> None:
    created = await store.create(root + "a", b"one")
    deleted = await store.delete(root + "a", expected_revision=created)
    assert deleted.value == b"one"
    assert deleted.create_revision == created
    assert deleted.mod_revision > created
    with pytest.raises(KeyNotFound):
        await store.get(root + "a")


async def test_delete_with_stale_revision_conflicts(store: Store, root: str) -> None:
    created = await store.create(root + "a", b"one")
    await store.update(root + "a", b"two", expected_revision=created)
    with pytest.raises(RevisionConflict):
        await store.delete(root + "a", expected_revision=created)
    assert (await store.get(root + "a")).value == b"two"


async def test_delete_without_expected_revision_and_missing(store: Store, root: str) -> None:
    await store.create(root + "a", b"one")
    await store.delete(root + "a")
    with pytest.raises(KeyNotFound):
        await store.delete(root + "a")
    with pytest.raises(KeyNotFound):
        await store.delete(root + "never")


async def test_recreate_after_delete_starts_a_new_life(store: Store, root: str) -> None:
    first = await store.create(root + "a", b"one")
    await store.delete(root + "a")
    second = await store.create(root + "a", b"again")
    kv = await store.get(root + "a")
    assert second > first
    assert (kv.value, kv.create_revision, kv.mod_revision) == (b"again", second, second)


async def test_get_at_past_revision(store: Store, root: str) -> None:
    first = await store.create(root + "a", b"one")
    second = await store.update(root + "a", b"two", expected_revision=first)
    await store.delete(root + "a")
    assert (await store.get(root + "a", revision=first)).value == b"one"
    assert (await store.get(root + "a", revision=second)).value == b"two"


# -- ranges --


async def test_list_is_ordered_and_bounded_by_prefix(store: Store, root: str) -> None:
    for key in ["b/2", "b/1", "a", "bc/x", "b/3"]:
        await store.create(root + key, key.encode())
    await store.create(root[:-1] + "-sibling/b/9", b"outside")
    result = await store.list(root + "b/")
    assert [kv.key for kv in result.items] == [root + "b/1", root + "b/2", root + "b/3"]
    assert [kv.value for kv in result.items] == [b"b/1", b"b/2", b"b/3"]
    assert not result.more
    assert result.revision >= max(kv.mod_revision for kv in result.items)
    assert await store.count(root + "b/") == 3
    assert await store.count(root) == 5


async def test_list_larger_than_a_grpc_message(store: Store, root: str) -> None:
    """A whole LIST bigger than gRPC's default 4 MiB answer (a few thousand pods)."""
    value = bytes(range(256)) * 4096  # 1 MiB, under etcd's 1.5 MiB request limit
    for i in range(6):
        await store.create(f"{root}big{i}", value)
    result = await store.list(root)
    assert [kv.key for kv in result.items] == [f"{root}big{i}" for i in range(6)]
    assert all(kv.value == value for kv in result.items)


async def test_list_skips_deleted_keys(store: Store, root: str) -> None:
    await store.create(root + "a", b"1")
    await store.create(root + "b", b"2")
    await store.delete(root + "a")
    assert [kv.key for kv in (await store.list(root)).items] == [root + "b"]
    assert await store.count(root) == 1


async def test_list_with_limit_and_continuation(store: Store, root: str) -> None:
    keys = [f"{root}k{i:03d}" for i in range(25)]
    for key in keys:
        await store.create(key, key.encode())
    seen: list[str] = []
    first = await store.list(root, limit=10)
    revision, page = first.revision, first
    while True:
        assert len(page.items) <= 10
        assert page.revision == revision
        seen.extend(kv.key for kv in page.items)
        if not page.more:
            break
        page = await store.list(root, limit=10, start_after=seen[-1], revision=revision)
    assert seen == keys


async def test_paged_list_at_fixed_revision_is_a_snapshot(store: Store, root: str) -> None:
    revs = {}
    for i in range(20):
        key = f"{root}k{i:02d}"
        revs[key] = await store.create(key, b"v1")
    snapshot = await store.list(root, limit=5)
    at = snapshot.revision
    pages = list(snapshot.items)
    # Writes go on between pages: updates, deletes and new keys must not show up.
    await store.update(f"{root}k07", b"v2", expected_revision=revs[f"{root}k07"])
    await store.delete(f"{root}k12")
    await store.create(f"{root}k05a", b"new")
    await store.create(f"{root}zz", b"new")
    more = snapshot.more
    while more:
        page = await store.list(root, limit=5, start_after=pages[-1].key, revision=at)
        pages.extend(page.items)
        more = page.more
    assert [kv.key for kv in pages] == sorted(revs)
    assert {kv.value for kv in pages} == {b"v1"}
    now = await store.list(root)
    assert {kv.key for kv in now.items} == (set(revs) - {f"{root}k12"}) | {
        f"{root}k05a",
        f"{root}zz",
    }


# -- watches --


async def test_watch_sees_every_change_in_order(store: Store, root: str) -> None:
    start = await store.current_revision()
    async with store.watch(root, after_revision=start) as stream:
        created = await store.create(root + "a", b"1")
        updated = await store.update(root + "a", b"2", expected_revision=created)
        await store.create(root[:-1] + "-other", b"not mine")
        other = await store.create(root + "b", b"3")
        deleted = await store.delete(root + "a")
        events = await next_events(stream, 4)
    assert revisions(events) == [created, updated, other, deleted.mod_revision]
    assert [e.type for e in events] == [EventType.PUT] * 3 + [EventType.DELETE]
    assert [e.is_create for e in events] == [True, False, True, False]
    assert [e.kv.value for e in events] == [b"1", b"2", b"3", b"2"]
    assert events[1].prev is not None
    assert events[1].prev.value == b"1"
    assert events[3].kv.key == root + "a"


async def test_watch_replays_history_after_a_revision(store: Store, root: str) -> None:
    start = await store.current_revision()
    written = [await store.create(f"{root}k{i}", str(i).encode()) for i in range(10)]
    async with store.watch(root, after_revision=written[3]) as stream:
        history = await next_events(stream, 6)
        live = await store.create(root + "live", b"x")
        (event,) = await next_events(stream, 1)
    assert revisions(history) == written[4:]
    assert event.revision == live
    async with store.watch(root, after_revision=start) as stream:
        assert revisions(await next_events(stream, 11)) == [*written, live]


async def test_watch_resumes_from_last_seen_revision(store: Store, root: str) -> None:
    start = await store.current_revision()
    written = [await store.create(f"{root}k{i}", b"v") for i in range(6)]
    async with store.watch(root, after_revision=start) as stream:
        first = await next_events(stream, 3)
    more = [await store.create(f"{root}m{i}", b"v") for i in range(3)]
    async with store.watch(root, after_revision=first[-1].revision) as stream:
        rest = await next_events(stream, 6)
    assert revisions(first + rest) == written + more


async def test_watch_while_writes_race_has_no_gaps_or_duplicates(store: Store, root: str) -> None:
    start = await store.current_revision()

    async def writer(n: int) -> list[int]:
        return [await store.create(f"{root}w{n}/{i}", b"v") for i in range(25)]

    async with store.watch(root, after_revision=start) as stream:
        written = await asyncio.gather(*(writer(n) for n in range(8)))
        expected = sorted(r for revs in written for r in revs)
        seen = revisions(await next_events(stream, len(expected)))
    assert seen == expected


async def test_late_watch_joins_history_and_live_without_gaps(store: Store, root: str) -> None:
    """A watch opened from the past while writes continue must stitch history to live."""
    start = await store.current_revision()
    written: list[int] = []
    twenty, sixty = asyncio.Event(), asyncio.Event()

    async def keep_writing() -> None:
        for i in range(60):
            written.append(await store.create(f"{root}k{i}", b"v"))
            if len(written) == 20:
                twenty.set()
        sixty.set()

    task = asyncio.create_task(keep_writing())
    await asyncio.wait_for(twenty.wait(), WAIT)
    async with store.watch(root, after_revision=start) as stream:
        await asyncio.wait_for(sixty.wait(), WAIT)
        await task
        seen = revisions(await next_events(stream, len(written)))
    assert seen == written


# -- compaction --


async def test_compaction_keeps_current_values(store: Store, root: str) -> None:
    first = await store.create(root + "a", b"1")
    second = await store.update(root + "a", b"2", expected_revision=first)
    gone = await store.create(root + "gone", b"x")
    await store.delete(root + "gone", expected_revision=gone)
    kept = await store.create(root + "b", b"3")
    await store.compact(kept)
    assert await store.compacted_revision() >= kept
    assert (await store.get(root + "a")).mod_revision == second
    assert [kv.key for kv in (await store.list(root)).items] == [root + "a", root + "b"]
    assert (await store.list(root, revision=kept)).revision == kept


async def test_reads_and_watches_below_compaction_fail(store: Store, root: str) -> None:
    old = await store.create(root + "a", b"1")
    for i in range(5):
        old = await store.update(root + "a", str(i).encode(), expected_revision=old)
    latest = await store.create(root + "b", b"x")
    await store.compact(latest)
    below = latest - 3
    with pytest.raises(Compacted):
        await store.list(root, revision=below)
    with pytest.raises(Compacted):
        await store.get(root + "a", revision=below)
    with pytest.raises(Compacted):
        async with store.watch(root, after_revision=below) as stream:
            await asyncio.wait_for(anext(stream), WAIT)
    async with store.watch(root, after_revision=latest) as stream:
        live = await store.create(root + "c", b"y")
        assert revisions(await next_events(stream, 1)) == [live]


# -- concurrency --


async def test_concurrent_writers_on_one_key_exactly_one_wins(store: Store, root: str) -> None:
    key = root + "contended"
    revision = await store.create(key, b"start")
    for round_no in range(5):

        async def attempt(n: int, expected: int = revision, round_no: int = round_no) -> int:
            return await store.update(key, f"{round_no}:{n}".encode(), expected_revision=expected)

        results = await asyncio.gather(*(attempt(n) for n in range(32)), return_exceptions=True)
        winners = [r for r in results if isinstance(r, int)]
        losers = [r for r in results if isinstance(r, RevisionConflict)]
        assert len(winners) == 1, results
        assert len(losers) == 31
        revision = winners[0]
        kv = await store.get(key)
        assert kv.mod_revision == revision
        assert kv.value.startswith(f"{round_no}:".encode())


async def test_concurrent_writers_on_distinct_keys_all_succeed(store: Store, root: str) -> None:
    async def writer(n: int) -> list[int]:
        return [await store.create(f"{root}w{n:02d}/{i:02d}", b"v") for i in range(20)]

    results = await asyncio.gather(*(writer(n) for n in range(32)))
    all_revisions = [r for revs in results for r in revs]
    assert len(set(all_revisions)) == 32 * 20
    for revs in results:
        assert revs == sorted(revs)
    listed = await store.list(root)
    assert len(listed.items) == 32 * 20
    assert {kv.mod_revision for kv in listed.items} == set(all_revisions)
