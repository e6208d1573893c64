"""Image pulls through Docker from a real registry on 127.0.0.1 (Debian's docker-registry),
with each pull policy and the waiting reasons the kubelet reports."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from minikube_py.cluster import Cluster
from minikube_py.kubelet.sync import PODS
from tests.support.cluster import running_cluster
from tests.support.docker import remove_node_containers
from tests.support.waiting import wait_until


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    node = f"pull-{uuid.uuid4().hex[:8]}"
    try:
        async with running_cluster(
            tmp_path / "cluster", simulated_nodes=0, docker_node=node
        ) as running:
            yield running
    finally:
        remove_node_containers(node)


async def create(cluster: Cluster, name: str, image: str, policy: str) -> None:
    container = {
        "name": "c",
        "image": image,
        "imagePullPolicy": policy,
        "command": ["sleep", "3600"],
    }
    pod = {
        "metadata": {"name": name},
        "spec": {"nodeName": cluster.config.node_name, "containers": [container]},
    }
    await cluster.client.create(PODS, "default", pod)


async def waiting_reason(cluster: Cluster, name: str) -> str:
    status: dict[str, Any] = (await cluster.client.get(PODS, "default", name)).get("status") or {}
    statuses = status.get("containerStatuses") or []
    return str(statuses[0]["state"].get("waiting", {}).get("reason", "")) if statuses else ""


async def running(cluster: Cluster, name: str) -> bool:
    status = (await cluster.client.get(PODS, "default", name)).get("status") or {}
    return status.get("phase") == "Running"


async def test_pull_policies_against_a_local_registry(cluster: Cluster, registry: str) -> None:
    image = f"{registry}/demo/busybox:v1"  # pushed, then removed locally by the fixture
    await create(cluster, "never", image, "Never")
    await wait_until(
        lambda: _is(cluster, "never", "ErrImageNeverPull"), within=30, what="ErrImageNeverPull"
    )
    await create(cluster, "present", image, "IfNotPresent")
    await wait_until(lambda: running(cluster, "present"), within=60, what="pulled and Running")
    await create(cluster, "always", image, "Always")
    await wait_until(lambda: running(cluster, "always"), within=60, what="Always pulls and runs")
    missing = f"{registry}/demo/nothing:v1"
    await create(cluster, "missing", missing, "IfNotPresent")
    await wait_until(
        lambda: _is(cluster, "missing", "ErrImagePull"), within=30, what="ErrImagePull"
    )
    await wait_until(
        lambda: _is(cluster, "missing", "ImagePullBackOff"), within=30, what="ImagePullBackOff"
    )


async def _is(cluster: Cluster, name: str, reason: str) -> bool:
    return await waiting_reason(cluster, name) == reason
