"""/healthz, /livez and /readyz follow the storage: failing while etcd is down, ok again after."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from minikube_py.storage.etcd import EtcdStore
from tests.apiserver.inprocess import serving
from tests.support.etcd import etcd_cluster
from tests.support.requirements import require_binary
from tests.support.waiting import wait_until

pytestmark = pytest.mark.asyncio

PROBES = ("/healthz", "/livez", "/readyz")


async def probe(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as answer:
        return answer.status, await answer.text()


async def test_health_follows_etcd(tmp_path: Path) -> None:
    binary = require_binary("etcd")
    with etcd_cluster(binary, tmp_path) as cluster:
        store = await EtcdStore.open(cluster.endpoints)
        try:
            async with serving(store, tmp_path) as served:
                for path in PROBES:
                    assert await probe(served.http, served.url + path) == (200, "ok")

                member = cluster.members[0]
                member.stop()

                async def failing() -> bool:
                    status, text = await probe(served.http, served.url + "/readyz")
                    return status == 500 and text.startswith("[-]etcd failed")

                await wait_until(failing, within=30, interval=0.2, what="/readyz to fail")
                for path in ("/healthz", "/livez"):
                    status, text = await probe(served.http, served.url + path)
                    assert status == 500, (path, text)
                    assert "etcd failed" in text, (path, text)

                member.start(binary, f"{member.name}={member.peer_url}")
                cluster.wait_healthy()

                async def healthy() -> bool:
                    answers = [await probe(served.http, served.url + p) for p in PROBES]
                    return all(answer == (200, "ok") for answer in answers)

                await wait_until(healthy, within=30, interval=0.2, what="health to come back")
        finally:
            await store.close()
