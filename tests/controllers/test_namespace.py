"""Namespace deletion: Terminating, content deleted, conditions while waiting, then gone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from minikube_py import errors
from minikube_py.client.interface import Selection
from minikube_py.cluster import Cluster
from minikube_py.controllers.base import resource
from minikube_py.meta.objects import Obj
from tests.controllers.corecluster import condition, core_cluster, pod
from tests.support.waiting import wait_until

NAMESPACES = resource("", "Namespace")
PODS = resource("", "Pod")
CONFIGMAPS = resource("", "ConfigMap")
SECRETS = resource("", "Secret")
SERVICES = resource("", "Service")
JOBS = resource("batch", "Job")


async def _create_namespace(cluster: Cluster, name: str) -> None:
    await cluster.client.create(NAMESPACES, "", {"metadata": {"name": name}})


def _gone(cluster: Cluster, name: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            await cluster.client.get(NAMESPACES, "", name)
        except errors.NotFound:
            return True
        return False

    return check


async def _namespace(cluster: Cluster, name: str) -> Obj:
    return await cluster.client.get(NAMESPACES, "", name)


async def test_deleting_a_namespace_deletes_its_content_then_itself(tmp_path: Path) -> None:
    async with core_cluster(tmp_path, simulated_nodes=1) as cluster:
        client = cluster.client
        await _create_namespace(cluster, "doomed")
        await client.create(CONFIGMAPS, "doomed", {"metadata": {"name": "c"}, "data": {"a": "1"}})
        await client.create(SECRETS, "doomed", {"metadata": {"name": "s"}})
        await client.create(
            SERVICES, "doomed", {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
        )
        await client.create(PODS, "doomed", pod("loose"))
        await client.create(PODS, "doomed", pod("running"))
        await client.bind("doomed", "running", "sim-0")
        await client.create(
            JOBS,
            "doomed",
            {"metadata": {"name": "j"}, "spec": {"template": pod("t")}},
        )

        async def running() -> bool:
            found = await client.get(PODS, "doomed", "running")
            return bool(found["status"].get("phase") == "Running")

        await wait_until(running, what="pod running on sim-0")
        await client.delete(NAMESPACES, "", "doomed")
        marked = await _namespace(cluster, "doomed")
        assert marked["status"]["phase"] == "Terminating"
        await wait_until(_gone(cluster, "doomed"), within=30, what="namespace removed")
        for info in (CONFIGMAPS, SECRETS, SERVICES, PODS, JOBS):
            listed = await client.list(info, Selection(namespace="doomed"))
            assert not listed.items, info.plural


async def test_a_finalizer_holds_the_namespace_and_the_conditions_say_why(tmp_path: Path) -> None:
    async with core_cluster(tmp_path) as cluster:
        client = cluster.client
        await _create_namespace(cluster, "held")
        await client.create(
            CONFIGMAPS, "held", {"metadata": {"name": "keep", "finalizers": ["example.com/hold"]}}
        )
        await client.delete(NAMESPACES, "", "held")

        async def reported() -> bool:
            found = condition(await _namespace(cluster, "held"), "NamespaceFinalizersRemaining")
            return found.get("status") == "True"

        await wait_until(reported, what="NamespaceFinalizersRemaining=True")
        namespace = await _namespace(cluster, "held")
        remaining = condition(namespace, "NamespaceContentRemaining")
        assert remaining["reason"] == "SomeResourcesRemain"
        assert remaining["message"] == (
            "Some resources are remaining: configmaps has 1 resource instances"
        )
        assert condition(namespace, "NamespaceFinalizersRemaining")["message"] == (
            "Some content in the namespace has finalizers remaining:"
            " example.com/hold in 1 resource instances"
        )
        assert namespace["spec"]["finalizers"] == ["kubernetes"]
        with_hold = await client.get(CONFIGMAPS, "held", "keep")
        with_hold["metadata"]["finalizers"] = []
        await client.update(CONFIGMAPS, "held", with_hold)
        await wait_until(_gone(cluster, "held"), what="namespace removed once released")


async def test_creating_in_a_terminating_namespace_is_refused(tmp_path: Path) -> None:
    async with core_cluster(tmp_path) as cluster:
        client = cluster.client
        await _create_namespace(cluster, "closing")
        await client.create(
            CONFIGMAPS, "closing", {"metadata": {"name": "keep", "finalizers": ["x.io/hold"]}}
        )
        await client.delete(NAMESPACES, "", "closing")
        try:
            await client.create(CONFIGMAPS, "closing", {"metadata": {"name": "late"}})
        except errors.Forbidden:
            pass
        else:
            raise AssertionError("create in a terminating namespace was accepted")
