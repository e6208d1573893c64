"""WATCH semantics on each backend: legacy paths, too-old versions, selectors on both
states, clean timeouts, Table frames, one store watch for all clients, stuck clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from minikube_py.storage.interface import Store
from tests.apiserver.inprocess import Served, serving, watching

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


@pytest.fixture
async def served(store: Store, tmp_path: Path) -> AsyncIterator[Served]:
    # Writes before start-up: the cache's history then begins after revision 1.
    for _ in range(2):
        await store.create(f"/registry/test-{uuid.uuid4().hex}/x", b"{}")
    async with serving(store, tmp_path) as running:
        yield running


def summary(frames: list[dict[str, Any] | None]) -> list[tuple[str, str]]:
    assert None not in frames, "the stream ended early"
    return [(f["type"], f["object"]["metadata"].get("name", "")) for f in frames if f]


async def test_legacy_watch_paths(served: Served) -> None:
    ns = await served.namespace()
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    _, listed = await served.request("GET", cms)
    rv = listed["metadata"]["resourceVersion"]
    collection = f"/api/v1/watch/namespaces/{ns}/configmaps?resourceVersion={rv}"
    single = f"/api/v1/watch/namespaces/{ns}/configmaps/b?resourceVersion={rv}"
    async with watching(served, collection) as every, watching(served, single) as one:
        for name in ("a", "b"):
            await served.request("POST", cms, {"metadata": {"name": name}})
        assert summary([await every.next(), await every.next()]) == [
            ("ADDED", "a"),
            ("ADDED", "b"),
        ]
        assert summary([await one.next()]) == [("ADDED", "b")]


async def test_too_old_resource_version_is_an_error_event(served: Served) -> None:
    path = "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1"
    async with watching(served, path) as stream:
        error = await stream.next()
        assert await stream.next() is None  # and the stream ends
    assert error is not None
    assert error["type"] == "ERROR"
    status = error["object"]
    assert status["kind"] == "Status"
    assert status["code"] == 410
    assert status["reason"] == "Expired"
    assert status["message"].startswith("too old resource version: 1 (")


async def test_selectors_apply_to_the_old_and_the_new_object(served: Served) -> None:
    ns = await served.namespace()
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    _, listed = await served.request("GET", cms)
    rv = listed["metadata"]["resourceVersion"]
    path = f"{cms}?watch=true&resourceVersion={rv}&labelSelector=team%3Dx"

    async def relabel(name: str, team: str) -> None:
        patch = {"metadata": {"labels": {"team": team}}}
        async with served.http.patch(
            f"{served.url}{cms}/{name}",
            data=json.dumps(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        ) as answer:
            assert answer.status == 200, await answer.text()

    async with watching(served, path) as stream:
        await served.request("POST", cms, {"metadata": {"name": "a", "labels": {"team": "x"}}})
        await served.request("POST", cms, {"metadata": {"name": "other", "labels": {"team": "y"}}})
        await relabel("a", "y")  # leaves the selection
        await relabel("other", "x")  # enters it
        await relabel("a", "x")  # and back
        await served.request("DELETE", f"{cms}/other")
        frames = [await stream.next() for _ in range(5)]
    assert summary(frames) == [
        ("ADDED", "a"),
        ("DELETED", "a"),
        ("ADDED", "other"),
        ("ADDED", "a"),
        ("DELETED", "other"),
    ]
    left = frames[1]
    assert left is not None
    assert left["object"]["metadata"]["labels"] == {"team": "y"}


async def test_timeout_seconds_ends_the_stream_cleanly(served: Served) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    path = "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1&resourceVersion=0"
    async with served.http.get(served.url + path) as response:
        assert response.status == 200
        assert response.headers["Transfer-Encoding"] == "chunked"
        body = await asyncio.wait_for(response.read(), 10)  # EOF, not a broken connection
    elapsed = loop.time() - began
    assert 0.9 <= elapsed < 5
    assert all(json.loads(line)["type"] == "ADDED" for line in body.splitlines())


async def test_table_watch_sends_the_columns_once(served: Served) -> None:
    ns = await served.namespace()
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    await served.request("POST", cms, {"metadata": {"name": "a"}, "data": {"k": "v"}})
    path = f"{served.url}{cms}?watch=true&resourceVersion=0&timeoutSeconds=30"
    async with served.http.get(path, headers={"Accept": TABLE}) as response:
        assert response.status == 200
        first = json.loads(await asyncio.wait_for(response.content.readline(), 10))
        await served.request("POST", cms, {"metadata": {"name": "b"}})
        second = json.loads(await asyncio.wait_for(response.content.readline(), 10))
    assert first["object"]["kind"] == "Table"
    columns = [c["name"] for c in first["object"]["columnDefinitions"]]
    assert columns == ["Name", "Data", "Age"]
    assert first["object"]["rows"][0]["cells"][:2] == ["a", 1]
    assert not second["object"].get("columnDefinitions")
    assert second["object"]["rows"][0]["cells"][0] == "b"
    assert second["object"]["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


async def test_lists_and_watches_are_served_from_the_cache(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients never get a store watch or a store range read of their own."""
    reads: list[str] = []
    real_watch, real_list = served.store.watch, served.store.list

    def watch(prefix: str, *, after_revision: int) -> Any:
        reads.append(f"watch {prefix}")
        return real_watch(prefix, after_revision=after_revision)

    async def list_(prefix: str, **kwargs: Any) -> Any:
        reads.append(f"list {prefix}")
        return await real_list(prefix, **kwargs)

    monkeypatch.setattr(served.store, "watch", watch)
    monkeypatch.setattr(served.store, "list", list_)
    ns = await served.namespace()
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    pods = f"/api/v1/namespaces/{ns}/pods"
    paths = [f"{p}?watch=true&resourceVersion=0" for p in (cms, cms, cms, pods, pods)]
    async with contextlib.AsyncExitStack() as stack:
        streams = [await stack.enter_async_context(watching(served, p)) for p in paths]
        _, created = await served.request("POST", cms, {"metadata": {"name": "a"}})
        for stream in streams[:3]:
            assert summary([await stream.next()]) == [("ADDED", "a")]
    rv = created["metadata"]["resourceVersion"]
    for query in ("", "?resourceVersion=0", f"?resourceVersion={rv}", "?limit=1"):
        status, listed = await served.request("GET", cms + query)
        assert status == 200
        assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
    status, _ = await served.request("GET", "/api/v1/pods?labelSelector=x%3Dy")
    assert status == 200
    assert reads == []


async def test_a_stuck_watcher_blocks_nobody(served: Served) -> None:
    """A client that never reads its watch: writes, reads and other watchers go on."""
    ns = await served.namespace()
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    host, port = served.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {cms}?watch=true&resourceVersion=0 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()  # ... and never read
    try:
        _, listed = await served.request("GET", cms)
        path = f"{cms}?watch=true&resourceVersion={listed['metadata']['resourceVersion']}"
        async with watching(served, path) as healthy:
            blob = "x" * 200_000
            count = 40  # 8 MB: far more than the socket buffers hold
            for i in range(count):
                status, _ = await asyncio.wait_for(
                    served.request(
                        "POST", cms, {"metadata": {"name": f"c{i}"}, "data": {"b": blob}}
                    ),
                    10,
                )
                assert status == 201
            for _ in range(count):
                frame = await healthy.next()
                assert frame is not None
            assert healthy.frames[-1]["object"]["metadata"]["name"] == f"c{count - 1}"
            status, _ = await asyncio.wait_for(served.request("GET", "/api/v1/namespaces"), 5)
            assert status == 200
    finally:
        writer.close()
