"""Watch BOOKMARKs on each backend: periodic, in order with the events, safe to resume
from; the streaming-list end marker; never sent unless the client allows them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from minikube_py.storage.interface import Store
from tests.apiserver.inprocess import Served, serving, watching

INTERVAL = 0.2


@pytest.fixture
async def served(store: Store, tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(store, tmp_path) as running:
        running.server.registries.cache.bookmark_interval = INTERVAL
        yield running


def rv(frame: dict) -> int:
    return int(frame["object"]["metadata"]["resourceVersion"])


async def test_bookmarks_are_periodic_and_resumable(served: Served) -> None:
    ns = await served.namespace()
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    _, listed = await served.request("GET", cms)
    start = listed["metadata"]["resourceVersion"]
    base = f"{cms}?watch=true&resourceVersion={start}&timeoutSeconds=60"
    async with (
        watching(served, base + "&allowWatchBookmarks=true") as with_bookmarks,
        watching(served, base) as without,
    ):
        await served.request("POST", cms, {"metadata": {"name": "a"}})
        await served.request("POST", cms, {"metadata": {"name": "b"}})
        events = [await with_bookmarks.next() for _ in range(2)]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events if e] == [
            ("ADDED", "a"),
            ("ADDED", "b"),
        ]
        last = rv(with_bookmarks.frames[-1])
        bookmark = await with_bookmarks.until("BOOKMARK")
        assert bookmark["object"] == {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": bookmark["object"]["metadata"]["resourceVersion"]},
        }
        assert rv(bookmark) >= last
        second = await with_bookmarks.until("BOOKMARK")  # periodic, not once
        assert rv(second) >= rv(bookmark)

        # Resuming from the bookmark gives exactly what came after it.
        await served.request("POST", cms, {"metadata": {"name": "c"}})
        await served.request("DELETE", f"{cms}/a")
        resumed_path = f"{cms}?watch=true&resourceVersion={rv(second)}&timeoutSeconds=60"
        async with watching(served, resumed_path) as resumed:
            await served.request("POST", cms, {"metadata": {"name": "sentinel"}})
            seen = []
            while not seen or seen[-1] != ("ADDED", "sentinel"):
                frame = await resumed.next()
                assert frame is not None
                seen.append((frame["type"], frame["object"]["metadata"]["name"]))
            assert seen == [("ADDED", "c"), ("DELETED", "a"), ("ADDED", "sentinel")]

        # The watcher without allowWatchBookmarks was open all along: it saw every
        # change up to the sentinel (so anything queued before it) and no BOOKMARK.
        while True:
            frame = await without.next()
            assert frame is not None
            if frame["object"]["metadata"].get("name") == "sentinel":
                break
        assert [f["type"] for f in without.frames] == [
            "ADDED",
            "ADDED",
            "ADDED",
            "DELETED",
            "ADDED",
        ]


async def test_last_bookmark_comes_before_the_timeout(served: Served) -> None:
    served.server.registries.cache.bookmark_interval = 60.0  # only the pre-timeout one
    ns = await served.namespace()
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    _, listed = await served.request("GET", cms)
    start = listed["metadata"]["resourceVersion"]
    path = f"{cms}?watch=true&resourceVersion={start}&timeoutSeconds=3&allowWatchBookmarks=true"
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with watching(served, path) as stream:
        await served.request("POST", cms, {"metadata": {"name": "a"}})
        bookmark = await stream.until("BOOKMARK")
        # Two seconds before the three-second deadline, long before the next heartbeat.
        assert 0.8 <= loop.time() - began < 2.5
    assert [f["type"] for f in stream.frames] == ["ADDED", "BOOKMARK"]
    assert rv(bookmark) >= rv(stream.frames[0])


async def test_streaming_list_ends_its_initial_events_with_an_annotated_bookmark(
    served: Served,
) -> None:
    ns = await served.namespace()
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    for name in ("a", "b"):
        _, created = await served.request("POST", cms, {"metadata": {"name": name}})
    written = int(created["metadata"]["resourceVersion"])
    path = (
        f"{cms}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        "&allowWatchBookmarks=true&timeoutSeconds=60"
    )
    async with watching(served, path) as stream:
        initial = [await stream.next() for _ in range(3)]
        assert [(f["type"], f["object"]["metadata"].get("name")) for f in initial if f] == [
            ("ADDED", "a"),
            ("ADDED", "b"),
            ("BOOKMARK", None),
        ]
        end = stream.frames[2]["object"]
        assert end["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        assert rv(stream.frames[2]) >= written  # a consistent read: no older than the writes
        await served.request("POST", cms, {"metadata": {"name": "later"}})
        frame = await stream.next()
        assert frame is not None
        assert (frame["type"], frame["object"]["metadata"]["name"]) == ("ADDED", "later")
        assert rv(frame) > rv(stream.frames[2])


async def test_plain_bookmarks_carry_no_annotation_and_start_after_changes(
    served: Served,
) -> None:
    ns = await served.namespace()
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    await served.request("POST", cms, {"metadata": {"name": "a"}})
    path = f"{cms}?watch=true&allowWatchBookmarks=true&timeoutSeconds=60"
    async with watching(served, path) as stream:
        assert (await stream.next() or {})["type"] == "ADDED"  # synthetic, from the state
        await served.request("POST", cms, {"metadata": {"name": "b"}})
        bookmark = await stream.until("BOOKMARK")
        assert "annotations" not in bookmark["object"]["metadata"]
        assert [f["type"] for f in stream.frames] == ["ADDED", "ADDED", "BOOKMARK"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "watch=true&sendInitialEvents=true",
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting"
            " resourceVersionMatch to NotOlderThan",
        ),
        (
            "watch=true&resourceVersionMatch=NotOlderThan",
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch"
            " unless sendInitialEvents is provided",
        ),
        (
            "watch=true&sendInitialEvents=true&resourceVersionMatch=Exact",
            "[resourceVersionMatch: Forbidden: sendInitialEvents requires setting"
            " resourceVersionMatch to NotOlderThan, resourceVersionMatch: Unsupported value:"
            ' "Exact": supported values: "NotOlderThan"]',
        ),
        (
            "sendInitialEvents=true",
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
        ),
        (
            "resourceVersionMatch=Exact",
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless"
            " resourceVersion is provided",
        ),
    ],
)
async def test_list_options_are_checked_as_upstream(
    served: Served, query: str, message: str
) -> None:
    status, answer = await served.request("GET", f"/api/v1/namespaces/default/configmaps?{query}")
    assert status == 422, answer
    assert answer["reason"] == "Invalid"
    assert answer["details"] == {
        "group": "meta.k8s.io",
        "kind": "ListOptions",
        "causes": answer["details"]["causes"],
    }
    assert answer["message"] == f'ListOptions.meta.k8s.io "" is invalid: {message}'
