"""Informers: list then watch, on both clients."""

from __future__ import annotations

import asyncio

from minikube_py.client.informer import Informer
from minikube_py.client.interface import Client, Selection
from minikube_py.registry.kinds import catalog
from tests.support.waiting import wait_until

CONFIGMAPS = catalog().lookup("", "v1", "configmaps")
assert CONFIGMAPS is not None


async def test_informer_follows_changes(client: Client) -> None:
    await client.create(CONFIGMAPS, "default", {"metadata": {"name": "before"}})
    informer = Informer(client, CONFIGMAPS, Selection("default"))
    seen: list[tuple[str, str]] = []
    informer.on_change(lambda kind, obj, prev: seen.append((kind, obj["metadata"]["name"])))
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 10)
        assert set(informer.objects) == {"default/before"}
        await client.create(CONFIGMAPS, "default", {"metadata": {"name": "after"}})
        await client.delete(CONFIGMAPS, "default", "before")
        await wait_until(lambda: set(informer.objects) == {"default/after"}, what="informer")
        assert seen == [("ADDED", "before"), ("ADDED", "after"), ("DELETED", "before")]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
