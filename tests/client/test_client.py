"""The Client conformance suite: LocalClient and HttpClient must behave the same."""

from __future__ import annotations

import asyncio

import pytest

from minikube_py import errors
from minikube_py.client.interface import Client, Selection
from minikube_py.registry.kinds import catalog

CATALOG = catalog()
CONFIGMAPS = CATALOG.lookup("", "v1", "configmaps")
PODS = CATALOG.lookup("", "v1", "pods")
assert CONFIGMAPS is not None
assert PODS is not None


def cm(name: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": labels}, "data": {"v": name}}


async def test_crud(client: Client) -> None:
    created = await client.create(CONFIGMAPS, "default", cm("a"))
    assert created["kind"] == "ConfigMap"
    got = await client.get(CONFIGMAPS, "default", "a")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    got["data"] = {"v": "changed"}
    updated = await client.update(CONFIGMAPS, "default", got)
    assert updated["data"] == {"v": "changed"}
    patched = await client.patch(CONFIGMAPS, "default", "a", {"metadata": {"labels": {"x": "1"}}})
    assert patched["metadata"]["labels"] == {"x": "1"}
    await client.delete(CONFIGMAPS, "default", "a")
    with pytest.raises(errors.NotFound):
        await client.get(CONFIGMAPS, "default", "a")


async def test_errors_are_the_api_classes(client: Client) -> None:
    first = await client.create(CONFIGMAPS, "default", cm("dup"))
    with pytest.raises(errors.AlreadyExists):
        await client.create(CONFIGMAPS, "default", cm("dup"))
    await client.update(CONFIGMAPS, "default", {**first, "data": {"v": "2"}})
    with pytest.raises(errors.Conflict):
        await client.update(CONFIGMAPS, "default", {**first, "data": {"v": "3"}})
    with pytest.raises(errors.Invalid) as invalid:
        await client.create(CONFIGMAPS, "default", cm("Bad_Name"))
    assert invalid.value.code == 422
    with pytest.raises(errors.NotFound):
        await client.delete(CONFIGMAPS, "default", "missing")


async def test_list_and_selectors(client: Client) -> None:
    for name, team in (("a", "x"), ("b", "y"), ("c", "x")):
        await client.create(CONFIGMAPS, "default", cm(name, team=team))
    everything = await client.list(CONFIGMAPS, Selection(namespace="default"))
    assert [o["metadata"]["name"] for o in everything.items] == ["a", "b", "c"]
    assert int(everything.resource_version) > 0
    team_x = await client.list(CONFIGMAPS, Selection("default", label_selector="team=x"))
    assert [o["metadata"]["name"] for o in team_x.items] == ["a", "c"]
    page = await client.list(CONFIGMAPS, Selection("default"), limit=2)
    assert len(page.items) == 2
    rest = await client.list(
        CONFIGMAPS, Selection("default"), limit=2, continue_token=page.continue_token
    )
    assert [o["metadata"]["name"] for o in rest.items] == ["c"]


async def test_watch_from_a_list(client: Client) -> None:
    listed = await client.list(CONFIGMAPS, Selection("default"))
    seen: list[tuple[str, str]] = []

    async def consume() -> None:
        async for event in client.watch(
            CONFIGMAPS, Selection("default"), resource_version=listed.resource_version
        ):
            seen.append((event.type, event.object["metadata"]["name"]))
            if len(seen) == 3:
                return

    task = asyncio.create_task(consume())
    created = await client.create(CONFIGMAPS, "default", cm("w"))
    await client.patch(CONFIGMAPS, "default", "w", {"data": {"v": "2"}})
    await client.delete(CONFIGMAPS, "default", "w", uid=created["metadata"]["uid"])
    await asyncio.wait_for(task, 10)
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


async def test_bind_and_status(client: Client) -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    await client.create(PODS, "default", pod)
    await client.bind("default", "p", "node-1")
    bound = await client.get(PODS, "default", "p")
    assert bound["spec"]["nodeName"] == "node-1"
    assert bound["status"]["conditions"][0]["type"] == "PodScheduled"
    bound["status"]["phase"] = "Running"
    bound["spec"]["nodeName"] = "ignored-by-status"
    written = await client.update(PODS, "default", bound, subresource="status")
    assert written["status"]["phase"] == "Running"
    assert written["spec"]["nodeName"] == "node-1"
    gone = await client.delete(PODS, "default", "p", grace_period=30)
    assert gone["metadata"]["deletionTimestamp"]
    await client.delete(PODS, "default", "p", grace_period=0)
    with pytest.raises(errors.NotFound):
        await client.get(PODS, "default", "p")
