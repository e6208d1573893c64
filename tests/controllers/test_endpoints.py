"""Endpoints and EndpointSlices follow the pods a Service selects, and their readiness.

No kubelet runs here: each test writes pod status (IP, phase, Ready) itself, so
readiness flips exactly when the test says.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from minikube_py import errors
from minikube_py.client.interface import Selection
from minikube_py.cluster import Cluster
from minikube_py.controllers import endpoints
from minikube_py.controllers.base import resource
from minikube_py.meta.objects import Obj
from tests.controllers.corecluster import core_cluster, pod
from tests.support.waiting import wait_until

PODS = resource("", "Pod")
SERVICES = resource("", "Service")
ENDPOINTS = resource("", "Endpoints")
SLICES = resource("discovery.k8s.io", "EndpointSlice")
NS = "default"


def web_pod(name: str, port_name: str = "http", port: int = 8080) -> Obj:
    found = pod(name, {"app": "web"})
    found["spec"]["containers"][0]["ports"] = [{"name": port_name, "containerPort": port}]
    return found


async def serve(cluster: Cluster, name: str, ip: str, *, ready: bool = True) -> None:
    """Act as the kubelet: the pod runs at ``ip``, Ready or not."""
    current = await cluster.client.get(PODS, NS, name)
    current["status"].update(
        {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        }
    )
    await cluster.client.update(PODS, NS, current, subresource="status")


async def web_service(cluster: Cluster, **spec: Any) -> Obj:
    body = {
        "metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            **spec,
        },
    }
    return await cluster.client.create(SERVICES, NS, body)


async def endpoints_of(cluster: Cluster, name: str = "web") -> Obj | None:
    try:
        return await cluster.client.get(ENDPOINTS, NS, name)
    except errors.NotFound:
        return None


async def slices_of(cluster: Cluster, name: str = "web") -> list[Obj]:
    selector = f"kubernetes.io/service-name={name}"
    return (await cluster.client.list(SLICES, Selection(NS, label_selector=selector))).items


def slice_sizes(
    cluster: Cluster, sizes: list[int], name: str = "web"
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        pieces = await slices_of(cluster, name)
        return sorted(len(s.get("endpoints") or []) for s in pieces) == sizes

    return check


def ips(subsets: list[Obj], key: str) -> list[str]:
    return sorted(a["ip"] for s in subsets for a in s.get(key) or [])


def endpoints_show(
    cluster: Cluster, ready: list[str], not_ready: list[str]
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        found = await endpoints_of(cluster)
        subsets = (found or {}).get("subsets") or []
        return ips(subsets, "addresses") == ready and ips(subsets, "notReadyAddresses") == not_ready

    return check


async def test_ready_and_not_ready_pods_with_a_named_target_port(tmp_path: Path) -> None:
    async with core_cluster(tmp_path) as cluster:
        await web_service(cluster)
        await cluster.client.create(PODS, NS, web_pod("a"))
        await cluster.client.create(PODS, NS, web_pod("b"))
        await cluster.client.create(PODS, NS, pod("other", {"app": "db"}))
        await serve(cluster, "a", "10.1.0.1")
        await serve(cluster, "b", "10.1.0.2", ready=False)
        await serve(cluster, "other", "10.1.0.3")
        await wait_until(endpoints_show(cluster, ["10.1.0.1"], ["10.1.0.2"]), what="endpoints")
        found = await endpoints_of(cluster)
        assert found is not None
        assert found["metadata"]["labels"] == {"tier": "front"}
        subset = found["subsets"][0]
        assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        address = subset["addresses"][0]
        assert address["targetRef"]["kind"] == "Pod"
        assert address["targetRef"]["name"] == "a"

        await wait_until(slice_sizes(cluster, [2]), what="slice with both pods")
        [piece] = await slices_of(cluster)
        labels = piece["metadata"]["labels"]
        assert labels["kubernetes.io/service-name"] == "web"
        assert labels["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
        assert piece["metadata"]["name"].startswith("web-")
        assert piece["metadata"]["ownerReferences"][0]["kind"] == "Service"
        assert piece["addressType"] == "IPv4"
        assert piece["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        conditions = {e["addresses"][0]: e["conditions"] for e in piece["endpoints"]}
        assert conditions["10.1.0.1"] == {"ready": True, "serving": True, "terminating": False}
        assert conditions["10.1.0.2"] == {"ready": False, "serving": False, "terminating": False}

        await serve(cluster, "b", "10.1.0.2", ready=True)
        await wait_until(endpoints_show(cluster, ["10.1.0.1", "10.1.0.2"], []), what="b ready")
        await serve(cluster, "a", "10.1.0.1", ready=False)
        await wait_until(endpoints_show(cluster, ["10.1.0.2"], ["10.1.0.1"]), what="a unready")


async def test_numbered_ports_and_different_named_ports_make_subsets(tmp_path: Path) -> None:
    async with core_cluster(tmp_path) as cluster:
        await web_service(cluster)
        await cluster.client.create(PODS, NS, web_pod("old", port=8080))
        await cluster.client.create(PODS, NS, web_pod("new", port=9090))
        await serve(cluster, "old", "10.2.0.1")
        await serve(cluster, "new", "10.2.0.2")

        async def two_subsets() -> bool:
            found = await endpoints_of(cluster)
            return len((found or {}).get("subsets") or []) == 2

        await wait_until(two_subsets, what="a subset per resolved port")
        found = await endpoints_of(cluster)
        assert found is not None
        by_port = {s["ports"][0]["port"]: ips([s], "addresses") for s in found["subsets"]}
        assert by_port == {8080: ["10.2.0.1"], 9090: ["10.2.0.2"]}
        await wait_until(slice_sizes(cluster, [1, 1]), what="a slice per resolved port")

        await cluster.client.create(
            SERVICES,
            NS,
            {
                "metadata": {"name": "plain"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 7070}]},
            },
        )

        async def plain() -> bool:
            found = await endpoints_of(cluster, "plain")
            subsets = (found or {}).get("subsets") or []
            return ips(subsets, "addresses") == ["10.2.0.1", "10.2.0.2"]

        await wait_until(plain, what="numbered port endpoints")
        found = await endpoints_of(cluster, "plain")
        assert found is not None
        assert found["subsets"][0]["ports"] == [{"port": 7070, "protocol": "TCP"}]


async def test_terminating_pods_leave_endpoints_but_stay_in_slices(tmp_path: Path) -> None:
    async with core_cluster(tmp_path) as cluster:
        await web_service(cluster)
        await cluster.client.create(PODS, NS, web_pod("leaving"))
        await cluster.client.bind(NS, "leaving", "far-away")  # no kubelet: stays terminating
        await serve(cluster, "leaving", "10.3.0.1")
        await wait_until(endpoints_show(cluster, ["10.3.0.1"], []), what="serving")
        await cluster.client.delete(PODS, NS, "leaving")

        async def terminating_in_slice() -> bool:
            pieces = await slices_of(cluster)
            found = [e for s in pieces for e in s.get("endpoints") or []]
            return [e["conditions"] for e in found] == [
                {"ready": False, "serving": True, "terminating": True}
            ]

        await wait_until(endpoints_show(cluster, [], []), what="left the Endpoints")
        await wait_until(terminating_in_slice, what="terminating endpoint in the slice")


async def test_many_pods_are_split_over_slices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(endpoints, "MAX_PER_SLICE", 2)
    async with core_cluster(tmp_path) as cluster:
        await web_service(cluster)
        for index in range(5):
            await cluster.client.create(PODS, NS, web_pod(f"p{index}"))
            await serve(cluster, f"p{index}", f"10.4.0.{index + 1}")
        await wait_until(slice_sizes(cluster, [1, 2, 2]), what="three slices of at most two")
        for index in range(3):
            await cluster.client.delete(PODS, NS, f"p{index}")
        await wait_until(slice_sizes(cluster, [2]), what="one slice left")


async def test_a_service_without_pods_gets_a_placeholder_slice_and_cleanup(
    tmp_path: Path,
) -> None:
    async with core_cluster(tmp_path) as cluster:
        await web_service(cluster)

        async def placeholder() -> bool:
            pieces = await slices_of(cluster)
            return len(pieces) == 1 and pieces[0].get("endpoints") == []

        await wait_until(placeholder, what="placeholder slice")
        assert await endpoints_of(cluster) is not None
        await cluster.client.delete(ENDPOINTS, NS, "web")

        async def recreated() -> bool:
            return await endpoints_of(cluster) is not None

        await wait_until(recreated, what="deleted Endpoints recreated")
        await cluster.client.delete(SERVICES, NS, "web")

        async def cleaned() -> bool:
            return await endpoints_of(cluster) is None and not await slices_of(cluster)

        await wait_until(cleaned, what="endpoints and slices removed with the service")


async def test_the_kubernetes_service_points_at_the_api_server(tmp_path: Path) -> None:
    async with core_cluster(tmp_path) as cluster:
        port = cluster.config.apiserver.port

        async def published() -> bool:
            return await endpoints_of(cluster, "kubernetes") is not None

        await wait_until(published, what="kubernetes endpoints")
        found = await endpoints_of(cluster, "kubernetes")
        assert found is not None
        assert found["subsets"] == [
            {
                "addresses": [{"ip": "127.0.0.1"}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            }
        ]
        await wait_until(slice_sizes(cluster, [1], "kubernetes"), what="kubernetes slice")
        [piece] = await slices_of(cluster, "kubernetes")
        assert piece["metadata"]["name"] == "kubernetes"
        assert piece["endpoints"] == [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]
        assert piece["ports"] == [{"name": "https", "port": port, "protocol": "TCP"}]
