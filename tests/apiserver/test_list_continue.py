"""Paging on each backend once compaction has passed a list's revision: 410 Expired with
kube-apiserver's message and a token to go on; exact-revision lists; bad tokens."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from minikube_py.storage.interface import Store
from tests.apiserver.inprocess import Served, serving

EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can"
    " start a new list without the continue parameter, or use the continue token in this"
    " response to retrieve the remainder of the results. Continuing with the provided token"
    " results in an inconsistent list - objects that were created, modified, or deleted"
    " between the time the first chunk was returned and now may show up in the list."
)


@pytest.fixture
async def served(store: Store, tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(store, tmp_path) as running:
        yield running


def names(listed: dict) -> list[str]:
    return [item["metadata"]["name"] for item in listed["items"]]


async def test_continue_past_compaction_is_410_with_a_token_to_go_on(served: Served) -> None:
    ns = await served.namespace()
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(5):
        await served.request("POST", cms, {"metadata": {"name": f"cm{i}"}})
    status, first = await served.request("GET", f"{cms}?limit=2")
    assert status == 200
    assert names(first) == ["cm0", "cm1"]
    assert first["metadata"]["remainingItemCount"] == 3
    token = first["metadata"]["continue"]

    # Before compaction the token still reads the first page's snapshot.
    await served.request("POST", cms, {"metadata": {"name": "late"}})
    status, page = await served.request("GET", f"{cms}?limit=10&continue={token}")
    assert status == 200
    assert names(page) == ["cm2", "cm3", "cm4"]
    assert page["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]

    await served.store.compact(await served.store.current_revision())
    status, expired = await served.request("GET", f"{cms}?limit=10&continue={token}")
    assert status == 410, expired
    assert expired["kind"] == "Status"
    assert expired["status"] == "Failure"
    assert expired["reason"] == "Expired"
    assert expired["code"] == 410
    assert expired["message"] == EXPIRED
    onward = expired["metadata"]["continue"]
    assert onward
    assert onward != token

    # The inconsistent continuation: the rest at a newer revision, "late" included.
    status, rest = await served.request("GET", f"{cms}?limit=10&continue={onward}")
    assert status == 200, rest
    assert names(rest) == ["cm2", "cm3", "cm4", "late"]
    assert int(rest["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])


async def test_exact_list_reads_one_revision_until_compacted(served: Served) -> None:
    ns = await served.namespace()
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    _, created = await served.request("POST", cms, {"metadata": {"name": "old"}})
    at = created["metadata"]["resourceVersion"]
    await served.request("POST", cms, {"metadata": {"name": "new"}})
    exact = f"{cms}?resourceVersion={at}&resourceVersionMatch=Exact"
    status, listed = await served.request("GET", exact)
    assert status == 200, listed
    assert names(listed) == ["old"]
    assert listed["metadata"]["resourceVersion"] == at
    status, newer = await served.request("GET", f"{cms}?resourceVersion={at}")
    assert names(newer) == ["new", "old"]  # NotOlderThan: the cache's newer state

    await served.store.compact(await served.store.current_revision())
    status, expired = await served.request("GET", exact)
    assert status == 410, expired
    assert expired["reason"] == "Expired"
    assert expired["message"] == "The resourceVersion for the provided list is too old."


def token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-token",
        token({"v": "meta.k8s.io/v1", "rv": 0, "start": "x"}),
        token({"v": "meta.k8s.io/v1", "start": "x"}),
        token(["list"]),
    ],
)
async def test_malformed_continue_is_400(served: Served, bad: str) -> None:
    status, answer = await served.request("GET", f"/api/v1/namespaces/default/pods?continue={bad}")
    assert status == 400, answer
    assert answer["reason"] == "BadRequest"
    assert answer["message"].startswith("continue key is not valid")


async def test_continue_with_a_resource_version_is_400(served: Served) -> None:
    status, first = await served.request("GET", "/api/v1/namespaces?limit=1")
    token = first["metadata"]["continue"]
    status, answer = await served.request(
        "GET", f"/api/v1/namespaces?continue={token}&resourceVersion=5"
    )
    assert status == 400
    assert answer["message"] == "specifying resource version is not allowed when using continue"
