"""Static pods: manifests, the file source, mirror pods, and the kubelet's handling of both.

Parsing and the source need no API. Mirror pods are checked against an in-process API
server. The lifecycle runs the real PodSyncer on the simulated runtime behind a small
harness that does what the kubelet does for static pods (one work queue, an informer
on the node's pods). The last tests go through ``Kubelet`` itself (simulated and real
Docker) and run once kubelet.py carries the static pod integration.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from minikube_py import errors
from minikube_py.apiserver import server as apiserver
from minikube_py.apiserver.app import APIServer
from minikube_py.apiserver.bootstrap import ensure_system_objects
from minikube_py.client.informer import Informer
from minikube_py.client.interface import Client, Selection
from minikube_py.client.local import LocalClient
from minikube_py.client.workqueue import WorkQueue, work
from minikube_py.config import APIServerConfig, StoreConfig
from minikube_py.kubelet import static
from minikube_py.kubelet.kubelet import Kubelet, KubeletConfig
from minikube_py.kubelet.node import NODES, NodeConfig
from minikube_py.kubelet.runtime.interface import ContainerState
from minikube_py.kubelet.runtime.simulated import SimulatedRuntime
from minikube_py.kubelet.static import (
    CONFIG_HASH,
    CONFIG_MIRROR,
    CONFIG_SEEN,
    CONFIG_SOURCE,
    ManifestError,
    MirrorPods,
    StaticPods,
    StaticPodSource,
    is_mirror,
    is_static,
    parse_documents,
    read_manifests,
    static_pod,
)
from minikube_py.kubelet.sync import PODS, PodSyncer
from minikube_py.meta.objects import Obj
from minikube_py.storage.sqlite import SQLiteStore
from tests.support.etcd import free_port
from tests.support.waiting import wait_until

NODE = "static-node"


def pod_doc(name: str, *, command: str = "sleep 3600", **meta: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, **meta},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "main", "image": "busybox:1.35", "command": ["sh", "-c", command]}
            ],
        },
    }


def write_yaml(path: Path, *documents: Obj) -> None:
    path.write_text(yaml.safe_dump_all(documents))


@dataclass
class Logged:
    """Stands in for the module's structlog logger: what was logged, at which level."""

    lines: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def _at(self, level: str) -> Callable[..., None]:
        return lambda event, **kw: self.lines.append((level, event, kw))

    def __getattr__(self, level: str) -> Callable[..., None]:
        if level.startswith("_"):
            raise AttributeError(level)
        return self._at(level)

    def events(self, level: str) -> list[str]:
        return [event for at, event, _ in self.lines if at == level]


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> Logged:
    recorder = Logged()
    monkeypatch.setattr(static, "log", recorder)
    return recorder


# -- manifests --


def test_parses_several_yaml_documents_and_lists() -> None:
    text = yaml.safe_dump_all([pod_doc("a"), None, pod_doc("b")]) + "---\n"
    text += yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [pod_doc("c")]})
    assert [d["metadata"]["name"] for d in parse_documents(text)] == ["a", "b", "c"]


def test_parses_json_even_with_tab_indentation() -> None:
    text = json.dumps(pod_doc("j"), indent="\t")  # YAML 1.1 would refuse the tabs
    assert parse_documents(text)[0]["metadata"]["name"] == "j"


def test_yaml_dates_become_strings() -> None:
    document = pod_doc("d", annotations={"since": "x"})
    text = yaml.safe_dump(document).replace("since: x", "since: 2024-05-01")
    assert parse_documents(text)[0]["metadata"]["annotations"]["since"] == "2024-05-01"


@pytest.mark.parametrize(
    "text",
    ["kind: [unclosed", "- just\n- a list\n", '{"apiVersion": "v1",'],
)
def test_unparsable_manifests_are_errors(text: str) -> None:
    with pytest.raises(ManifestError):
        parse_documents(text)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(kind="Deployment"), "not a v1 Pod"),
        (lambda d: d.update(apiVersion="apps/v1"), "not a v1 Pod"),
        (lambda d: d["metadata"].pop("name"), "metadata.name is required"),
        (lambda d: d["spec"].update(containers=[]), "spec.containers"),
        (lambda d: d["spec"].update(restartPolicy="Sometimes"), "spec.restartPolicy"),
    ],
)
def test_invalid_pods_are_errors(change: Callable[[Obj], object], message: str) -> None:
    document = pod_doc("bad")
    change(document)
    with pytest.raises(ManifestError, match=message):
        static_pod(document, path=Path("/m/bad.yaml"), node_name=NODE, seen=0)


def test_static_pod_name_uid_and_annotations() -> None:
    document = pod_doc("web", labels={"app": "web"}, annotations={"team": "a"})
    pod = static_pod(document, path=Path("/m/web.yaml"), node_name="Node-A".lower(), seen=1.5)
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["name"] == "web-node-a"
    assert meta["namespace"] == "default"
    assert spec["nodeName"] == "node-a"
    assert len(meta["uid"]) == 32
    assert meta["annotations"] == {
        "team": "a",
        CONFIG_SOURCE: "file",
        CONFIG_HASH: meta["uid"],
        CONFIG_SEEN: "1970-01-01T00:00:01.500000Z",
    }
    assert meta["labels"] == {"app": "web"}
    # What the API server would default, and the kubelet's toleration of NoExecute taints.
    assert spec["restartPolicy"] == "Always"
    assert spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert spec["tolerations"] == [{"operator": "Exists", "effect": "NoExecute"}]
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    assert is_static(pod)
    assert not is_mirror(pod)


def test_static_pod_keeps_namespace_and_tolerations() -> None:
    toleration = {"key": "k", "operator": "Exists", "effect": "NoSchedule"}
    document = pod_doc("sys", namespace="kube-system")
    document["spec"]["tolerations"] = [toleration]
    pod = static_pod(document, path=Path("/m/sys.yaml"), node_name=NODE, seen=0)
    assert pod["metadata"]["namespace"] == "kube-system"
    assert pod["spec"]["tolerations"] == [toleration, {"operator": "Exists", "effect": "NoExecute"}]


def test_uid_follows_content_node_and_file_not_time() -> None:
    def uid(document: Obj, path: str = "/m/a.yaml", node: str = NODE, seen: float = 0) -> str:
        pod = static_pod(document, path=Path(path), node_name=node, seen=seen)
        return str(pod["metadata"]["uid"])

    base = uid(pod_doc("a"))
    assert uid(pod_doc("a"), seen=99) == base
    assert uid(pod_doc("a", command="sleep 1")) != base
    assert uid(pod_doc("a"), node="other") != base
    assert uid(pod_doc("a"), path="/m/b.yaml") != base


def test_reads_a_directory_as_the_kubelet_does(tmp_path: Path, logged: Logged) -> None:
    write_yaml(tmp_path / "a.yaml", pod_doc("a1"), pod_doc("a2"))
    (tmp_path / "b.json").write_text(json.dumps(pod_doc("b"), indent="\t"))
    write_yaml(tmp_path / ".hidden.yaml", pod_doc("hidden"))
    (tmp_path / "broken.yaml").write_text("kind: [unclosed")
    write_yaml(tmp_path / "half.yaml", pod_doc("half-ok"), {"kind": "Pod"})
    write_yaml(tmp_path / "z-duplicate.yaml", pod_doc("a1"))
    (tmp_path / "sub").mkdir()
    write_yaml(tmp_path / "sub" / "c.yaml", pod_doc("c"))

    pods = read_manifests(tmp_path, NODE, 0)

    assert [p["metadata"]["name"] for p in pods] == [f"{n}-{NODE}" for n in ("a1", "a2", "b")]
    warned = logged.events("warning")
    assert warned.count("cannot process manifest file") == 2  # broken.yaml, half.yaml
    assert "static pod dropped: duplicate name" in warned
    assert "not recursing into manifest directory" in warned
    paths = {kw.get("path") for _, _, kw in logged.lines}
    assert str(tmp_path / "broken.yaml") in paths
    assert not any("hidden" in str(p) for p in paths)


def test_reads_one_file_and_a_missing_path(tmp_path: Path) -> None:
    write_yaml(tmp_path / "one.yaml", pod_doc("one"))
    assert len(read_manifests(tmp_path / "one.yaml", NODE, 0)) == 1
    assert read_manifests(tmp_path / "absent", NODE, 0) == []


# -- the source --


async def test_source_reports_added_changed_and_removed_pods(tmp_path: Path) -> None:
    changes: list[str] = []
    now = [100.0]
    source = StaticPodSource(tmp_path, NODE, on_change=changes.append, clock=lambda: now[0])
    write_yaml(tmp_path / "web.yaml", pod_doc("web"))
    first = await source.refresh()
    assert source.synced.is_set()
    [uid] = first
    assert changes == [uid]
    assert source.named("default", f"web-{NODE}") is source.get(uid)

    now[0] = 200.0  # unchanged file: same pod, first-seen time kept
    assert await source.refresh() == set()
    assert source.pods[uid]["metadata"]["annotations"][CONFIG_SEEN].startswith(
        "1970-01-01T00:01:40"
    )

    write_yaml(tmp_path / "web.yaml", pod_doc("web", command="sleep 7200"))
    changed = await source.refresh()
    [new] = changed - {uid}
    assert changed == {uid, new}
    assert uid in source.terminating
    assert source.get(uid) is None
    assert source.blocked(new), "the new pod waits for the old one of the same name"
    changes.clear()
    source.stopped(uid)
    assert not source.blocked(new)
    assert changes == [new], "its successor is queued again once the old pod stopped"

    (tmp_path / "web.yaml").unlink()
    assert await source.refresh() == {new}
    assert source.pods == {}
    assert set(source.terminating) == {new}


async def test_source_polls_the_directory(tmp_path: Path) -> None:
    changes: list[str] = []
    source = StaticPodSource(tmp_path, NODE, period=0.05, on_change=changes.append)
    task = asyncio.create_task(source.run())
    try:
        await asyncio.wait_for(source.synced.wait(), 5)
        assert changes == []
        write_yaml(tmp_path / "late.yaml", pod_doc("late"))
        await wait_until(lambda: len(changes) == 1, what="the new manifest noticed")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_no_manifest_path_means_no_static_pods() -> None:
    source = StaticPodSource(None, NODE)
    assert await source.refresh() == set()
    assert source.synced.is_set()


# -- an API server, and a client that can lose it --


class Unreachable(OSError):
    """What HttpClient raises when nothing listens (ClientConnectorError is an OSError)."""


class FlakyClient:
    """A LocalClient that can be cut off from the API server, as a network can."""

    def __init__(self, inner: LocalClient) -> None:
        self.inner = inner
        self.down = False

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not inspect.iscoroutinefunction(target):
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise Unreachable(111, "Connect call failed ('127.0.0.1', 8080)")
            return await target(*args, **kwargs)

        return call


@dataclass
class Api:
    server: APIServer
    client: LocalClient
    port: int
    flaky: FlakyClient


@contextlib.asynccontextmanager
async def api_server(tmp_path: Path, port: int | None = None) -> AsyncIterator[Api]:
    store = await SQLiteStore.open(tmp_path / "state.db")
    port = port or free_port()
    server = apiserver.build(store, APIServerConfig(store=StoreConfig(tmp_path), port=port))
    started = asyncio.Event()
    task = asyncio.create_task(server.serve("127.0.0.1", port, started))
    try:
        await started.wait()
        await server.registries.cache.ready.wait()
        await ensure_system_objects(server.registries, port)
        client = LocalClient(server.api)
        yield Api(server, client, port, FlakyClient(client))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()


async def register_node(client: Client, name: str = NODE) -> Obj:
    return await client.create(NODES, "", {"metadata": {"name": name}})


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with api_server(tmp_path) as running:
        await register_node(running.client)
        yield running


def a_static_pod(name: str = "web", **extra: Any) -> Obj:
    return static_pod(pod_doc(name, **extra), path=Path(f"/m/{name}.yaml"), node_name=NODE, seen=0)


RUNNING = {"phase": "Running", "qosClass": "BestEffort", "podIP": "10.1.0.9"}


async def mirror(api: Api, name: str = "web") -> Obj | None:
    try:
        return await api.client.get(PODS, "default", f"{name}-{NODE}")
    except errors.NotFound:
        return None


# -- mirror pods --


async def test_mirror_pod_shows_the_static_pod_and_its_status(api: Api) -> None:
    node = await api.client.get(NODES, "", NODE)
    mirrors = MirrorPods(api.client, NODE)
    pod = a_static_pod()
    mirrors.remember(pod, RUNNING)
    assert mirrors.with_status(pod)["status"] == RUNNING

    assert await mirrors.report(pod)

    shown = await mirror(api)
    assert shown is not None
    meta = shown["metadata"]
    assert meta["uid"] != pod["metadata"]["uid"]
    assert meta["annotations"][CONFIG_MIRROR] == pod["metadata"]["uid"]
    assert meta["annotations"][CONFIG_SOURCE] == "file"
    assert meta["annotations"][CONFIG_HASH] == pod["metadata"]["uid"]
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "name": NODE,
            "uid": node["metadata"]["uid"],
            "controller": True,
        }
    ]
    assert shown["spec"]["nodeName"] == NODE
    assert shown["status"]["phase"] == "Running"
    assert shown["status"]["podIP"] == "10.1.0.9"
    assert is_mirror(shown)
    assert not is_static(shown)

    assert await mirrors.report(pod)  # nothing changed: nothing written
    again = await mirror(api)
    assert again is not None
    assert again["metadata"]["resourceVersion"] == meta["resourceVersion"]


async def test_deleted_or_outdated_mirror_is_replaced(api: Api) -> None:
    mirrors = MirrorPods(api.client, NODE)
    pod = a_static_pod()
    mirrors.remember(pod, RUNNING)
    assert await mirrors.report(pod)
    first = await mirror(api)
    assert first is not None

    await api.client.delete(PODS, "default", f"web-{NODE}")  # kubectl delete: graceful
    marked = await mirror(api)
    assert marked is not None
    assert marked["metadata"].get("deletionTimestamp")
    assert await mirrors.report(pod)
    second = await mirror(api)
    assert second is not None
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    assert not second["metadata"].get("deletionTimestamp")
    assert second["status"]["phase"] == "Running"

    changed = a_static_pod(command="sleep 1")  # same name, new content: new hash
    mirrors.remember(changed, RUNNING)
    assert await mirrors.report(changed)
    third = await mirror(api)
    assert third is not None
    assert third["metadata"]["annotations"][CONFIG_MIRROR] == changed["metadata"]["uid"]


async def test_a_pod_that_is_no_mirror_is_never_touched(api: Api, logged: Logged) -> None:
    mirrors = MirrorPods(api.client, NODE)
    regular = {"metadata": {"name": f"web-{NODE}"}, "spec": pod_doc("x")["spec"]}
    created = await api.client.create(PODS, "default", regular)

    assert not await mirrors.report(a_static_pod())
    assert await mirrors.remove("default", f"web-{NODE}")

    still = await mirror(api)
    assert still is not None
    assert still["metadata"]["uid"] == created["metadata"]["uid"]
    assert "mirror pod not written; will retry" in logged.events("warning")


async def test_mirror_waits_for_its_node(tmp_path: Path, logged: Logged) -> None:
    async with api_server(tmp_path) as running:
        mirrors = MirrorPods(running.client, NODE)
        pod = a_static_pod()
        assert not await mirrors.report(pod)
        await register_node(running.client)
        assert await mirrors.report(pod)
        assert "mirror pod written again" in logged.events("info")


async def test_unreachable_api_is_logged_once_and_retried(api: Api, logged: Logged) -> None:
    mirrors = MirrorPods(api.flaky, NODE)
    pod = a_static_pod()
    mirrors.remember(pod, RUNNING)
    api.flaky.down = True
    assert not await mirrors.report(pod)
    assert not await mirrors.report(pod)
    assert logged.events("warning") == ["mirror pod not written; will retry"]
    assert logged.events("debug") == ["mirror pod not written; will retry"]
    assert not await mirrors.remove("default", f"web-{NODE}")

    api.flaky.down = False
    assert await mirrors.report(pod)
    shown = await mirror(api)
    assert shown is not None
    assert shown["status"]["phase"] == "Running"
    assert await mirrors.remove("default", f"web-{NODE}")
    assert await mirror(api) is None


# -- the lifecycle: real PodSyncer on the simulated runtime, as the kubelet wires it --


class StatusToMirror:
    """PodSyncer's client until sync.py is integrated: a static pod's status goes to
    ``MirrorPods.remember`` (the line sync.py's ``_report`` gets), all else to the API."""

    def __init__(self, inner: FlakyClient, mirrors: MirrorPods) -> None:
        self.inner = inner
        self.mirrors = mirrors

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def update(self, info: Any, namespace: str, obj: Obj, *, subresource: str = "") -> Obj:
        if subresource == "status" and is_static(obj):
            self.mirrors.remember(obj, obj["status"])
            return obj
        updated: Obj = await self.inner.update(info, namespace, obj, subresource=subresource)
        return updated


class RecordingSyncer:
    """The PodSyncer, with the order of its calls kept (to see who stopped before whom)."""

    def __init__(self, inner: PodSyncer) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str]] = []

    async def sync(self, uid: str, pod: Obj | None) -> float | None:
        self.calls.append(("sync", uid))
        return await self.inner.sync(uid, pod)

    async def teardown(self, uid: str, grace: float) -> None:
        self.calls.append(("teardown", uid))
        await self.inner.teardown(uid, grace)


@dataclass
class Harness:
    api: Api
    manifests: Path
    runtime: SimulatedRuntime
    source: StaticPodSource
    mirrors: MirrorPods
    syncer: RecordingSyncer
    static: StaticPods

    async def uids(self) -> set[str]:
        """Pod uids with a running container in the runtime."""
        running = await self.runtime.containers()
        return {c.pod.uid for c in running if c.state is ContainerState.RUNNING}

    async def mirror_phase(self, name: str = "web") -> str | None:
        found = await mirror(self.api, name)
        return None if found is None else found.get("status", {}).get("phase")


def syncer_for(
    runtime: SimulatedRuntime, client: FlakyClient, mirrors: MirrorPods, root: Path
) -> PodSyncer:
    if "mirrors" in inspect.signature(PodSyncer).parameters:  # sync.py integrated
        integrated: dict[str, Any] = {"mirrors": mirrors}
        return PodSyncer(runtime, client, root_dir=root, host_ip="10.0.0.1", **integrated)
    router = StatusToMirror(client, mirrors)
    return PodSyncer(runtime, router, root_dir=root, host_ip="10.0.0.1")


@pytest.fixture
async def harness(api: Api, tmp_path: Path) -> AsyncIterator[Harness]:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    queue = WorkQueue()
    runtime = SimulatedRuntime(NODE)
    mirrors = MirrorPods(api.flaky, NODE, retry_interval=0.1)
    syncer = RecordingSyncer(syncer_for(runtime, api.flaky, mirrors, tmp_path / "kubelet"))
    source = StaticPodSource(manifests, NODE, period=3600, on_change=queue.add)
    pods = StaticPods(source, mirrors, syncer, resync_interval=1.0)
    informer = Informer(api.client, PODS, Selection(field_selector=f"spec.nodeName={NODE}"))

    def changed(kind: str, pod: Obj, previous: Obj | None) -> None:  # as Kubelet._pod_changed
        if is_mirror(pod) and (key := pods.mirror_changed(kind, pod)) is not None:
            queue.add(key)

    informer.on_change(changed)
    await source.refresh()
    tasks = [
        asyncio.create_task(informer.run()),
        asyncio.create_task(work(queue, pods.sync, on_error=lambda k, e: None)),
    ]
    try:
        yield Harness(api, manifests, runtime, source, mirrors, syncer, pods)
    finally:
        queue.shutdown()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_static_pod_runs_and_its_mirror_shows_it_running(harness: Harness) -> None:
    write_yaml(harness.manifests / "web.yaml", pod_doc("web"))
    [uid] = await harness.source.refresh()

    async def shown_running() -> bool:
        return await harness.mirror_phase() == "Running"

    await wait_until(shown_running, what="mirror pod Running")
    assert await harness.uids() == {uid}
    shown = await mirror(harness.api)
    assert shown is not None
    statuses = shown["status"]["containerStatuses"]
    assert [(s["name"], s["ready"]) for s in statuses] == [("main", True)]
    assert shown["status"]["podIP"].startswith("10.")


async def test_changed_manifest_replaces_the_pod(harness: Harness) -> None:
    write_yaml(harness.manifests / "web.yaml", pod_doc("web"))
    [old] = await harness.source.refresh()

    async def running(uid: str) -> bool:
        shown = await mirror(harness.api)
        return (
            shown is not None
            and shown["metadata"]["annotations"][CONFIG_MIRROR] == uid
            and shown.get("status", {}).get("phase") == "Running"
            and await harness.uids() == {uid}
        )

    await wait_until(lambda: running(old), what="first version running")
    first_mirror = await mirror(harness.api)
    assert first_mirror is not None

    write_yaml(harness.manifests / "web.yaml", pod_doc("web", command="sleep 7200"))
    [new] = await harness.source.refresh() - {old}

    await wait_until(lambda: running(new), what="second version running, first gone")
    assert not await harness.runtime.containers(old)
    assert not await harness.runtime.sandboxes(old)
    calls = harness.syncer.calls
    assert calls.index(("teardown", old)) < calls.index(("sync", new)), "old stops first"
    second_mirror = await mirror(harness.api)
    assert second_mirror is not None
    assert second_mirror["metadata"]["uid"] != first_mirror["metadata"]["uid"]
    assert not harness.static.owns(old)


async def test_removed_manifest_stops_the_pod_and_deletes_its_mirror(harness: Harness) -> None:
    write_yaml(harness.manifests / "web.yaml", pod_doc("web"))
    [uid] = await harness.source.refresh()

    async def shown_running() -> bool:
        return await harness.mirror_phase() == "Running"

    await wait_until(shown_running, what="mirror pod Running")
    (harness.manifests / "web.yaml").unlink()
    await harness.source.refresh()

    async def gone() -> bool:
        return (
            await mirror(harness.api) is None
            and not await harness.runtime.containers(uid)
            and not await harness.runtime.sandboxes(uid)
        )

    await wait_until(gone, what="containers and mirror pod gone")
    assert ("teardown", uid) in harness.syncer.calls
    assert not harness.static.owns(uid)
    assert uid not in harness.mirrors.statuses


async def test_deleting_the_mirror_recreates_it_and_the_pod_runs_on(harness: Harness) -> None:
    write_yaml(harness.manifests / "web.yaml", pod_doc("web"))
    await harness.source.refresh()

    async def shown_running() -> bool:
        return await harness.mirror_phase() == "Running"

    await wait_until(shown_running, what="mirror pod Running")
    before = await mirror(harness.api)
    assert before is not None
    containers = {c.id for c in await harness.runtime.containers()}

    await harness.api.client.delete(PODS, "default", f"web-{NODE}")  # graceful, as kubectl

    async def recreated() -> bool:
        shown = await mirror(harness.api)
        return (
            shown is not None
            and shown["metadata"]["uid"] != before["metadata"]["uid"]
            and not shown["metadata"].get("deletionTimestamp")
            and shown.get("status", {}).get("phase") == "Running"
        )

    await wait_until(recreated, what="a new mirror pod, Running")
    assert {c.id for c in await harness.runtime.containers()} == containers


async def test_static_pods_run_while_the_api_is_down(harness: Harness, logged: Logged) -> None:
    harness.api.flaky.down = True
    write_yaml(harness.manifests / "web.yaml", pod_doc("web"))
    [uid] = await harness.source.refresh()

    async def running() -> bool:
        return await harness.uids() == {uid}

    await wait_until(running, what="the static pod running without the API")
    await wait_until(
        lambda: "mirror pod not written; will retry" in logged.events("debug"),
        what="the mirror retried",
    )
    assert await mirror(harness.api) is None

    harness.api.flaky.down = False

    async def shown_running() -> bool:
        return await harness.mirror_phase() == "Running"

    await wait_until(shown_running, what="the mirror once the API answers")
    assert logged.events("warning").count("mirror pod not written; will retry") == 1


async def test_orphaned_mirror_is_deleted(harness: Harness) -> None:
    left = MirrorPods(harness.api.client, NODE).mirror_of(
        a_static_pod("left"),
        str((await harness.api.client.get(NODES, "", NODE))["metadata"]["uid"]),
    )
    await harness.api.client.create(PODS, "default", left)

    async def deleted() -> bool:
        return await mirror(harness.api, "left") is None

    await wait_until(deleted, what="the orphaned mirror pod deleted")
    assert not harness.static.orphans


# -- through the Kubelet (once kubelet.py, sync.py and cluster.py are integrated) --


@contextlib.asynccontextmanager
async def kubelet_running(
    client: Client, runtime: Any, node: str, manifests: Path, root: Path
) -> AsyncIterator[Kubelet]:
    config = KubeletConfig(  # type: ignore[call-arg]
        node=NodeConfig(name=node, root_dir=root, status_interval=0.2),
        relist_interval=0.1,
        resync_interval=1.0,
        probes=False,
        pod_manifest_path=manifests,
        file_check_frequency=0.1,
    )
    kubelet = Kubelet(client, runtime, config)
    task = asyncio.create_task(kubelet.run())
    try:
        yield kubelet
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def mirror_of(client: Client, name: str, node: str) -> Obj | None:
    try:
        return await client.get(PODS, "default", f"{name}-{node}")
    except (errors.NotFound, OSError):
        return None


async def check_lifecycle(client: Client, runtime: Any, node: str, manifests: Path) -> None:
    """Add, delete the mirror, change, remove: what the issue asks of static pods."""

    async def shown(name: str) -> Obj | None:
        """The mirror pod, once it shows the static pod Running (and is not going)."""
        found = await mirror_of(client, name, node)
        if found is None or found.get("status", {}).get("phase") != "Running":
            return None
        return None if found["metadata"].get("deletionTimestamp") else found

    async def running() -> bool:
        return await shown("web") is not None

    write_yaml(manifests / "web.yaml", pod_doc("web"))
    await wait_until(running, within=60, what="mirror pod Running")
    first = await shown("web")
    assert first is not None
    old = first["metadata"]["annotations"][CONFIG_MIRROR]
    containers = {c.id for c in await runtime.containers(old)}
    assert containers

    await client.delete(PODS, "default", f"web-{node}")

    async def recreated() -> bool:
        found = await shown("web")
        return found is not None and found["metadata"]["uid"] != first["metadata"]["uid"]

    await wait_until(recreated, within=30, what="mirror pod recreated")
    assert {c.id for c in await runtime.containers(old)} == containers

    write_yaml(manifests / "web.yaml", pod_doc("web", command="sleep 7200"))

    async def replaced() -> bool:
        found = await shown("web")
        if found is None or found["metadata"]["annotations"][CONFIG_MIRROR] == old:
            return False
        return not await runtime.containers(old)

    await wait_until(replaced, within=60, what="new version running, old one gone")
    found = await shown("web")
    assert found is not None
    new = found["metadata"]["annotations"][CONFIG_MIRROR]

    (manifests / "web.yaml").unlink()

    async def removed() -> bool:
        return await mirror_of(client, "web", node) is None and not await runtime.containers(new)

    await wait_until(removed, within=60, what="containers and mirror pod gone")


async def test_kubelet_static_pod_lifecycle_simulated(api: Api, tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    runtime = SimulatedRuntime(NODE)
    async with kubelet_running(api.client, runtime, NODE, manifests, tmp_path / "kubelet"):
        await check_lifecycle(api.client, runtime, NODE, manifests)


@pytest.mark.docker
async def test_kubelet_static_pod_lifecycle_on_docker(tmp_path: Path) -> None:
    from minikube_py.kubelet.runtime.docker import DockerRuntime
    from tests.support.docker import containers, remove_node_containers, require_docker

    require_docker()
    node = f"ks-{uuid.uuid4().hex[:8]}"
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    runtime = DockerRuntime(node_name=node)
    try:
        async with (
            api_server(tmp_path) as running,
            kubelet_running(running.client, runtime, node, manifests, tmp_path / "kubelet"),
        ):
            write_yaml(manifests / "probe.yaml", pod_doc("probe"))

            async def in_docker() -> bool:
                names = " ".join(containers(f"label=io.minikube-py.node={node}"))
                return f"k8s_POD_probe-{node}_default_" in names and "k8s_main_probe-" in names

            await wait_until(in_docker, within=60, what="docker ps shows the static pod")
            (manifests / "probe.yaml").unlink()
            await check_lifecycle(running.client, runtime, node, manifests)
    finally:
        await runtime.close()
        remove_node_containers(node)


@pytest.mark.docker
async def test_static_pods_run_before_the_api_server_exists(tmp_path: Path) -> None:
    """A kubelet on HTTP with no API server yet: its static pod runs in Docker at once,
    and the mirror pod appears once an API server listens at that address."""
    from minikube_py.client.http import HttpClient
    from minikube_py.kubelet.runtime.docker import DockerRuntime
    from tests.support.docker import remove_node_containers, require_docker

    require_docker()
    node = f"ka-{uuid.uuid4().hex[:8]}"
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    write_yaml(manifests / "early.yaml", pod_doc("early"))
    port = free_port()
    client = HttpClient(f"http://127.0.0.1:{port}", timeout=2)
    runtime = DockerRuntime(node_name=node)
    try:
        async with kubelet_running(client, runtime, node, manifests, tmp_path / "kubelet"):

            async def running() -> bool:
                found = await runtime.containers()
                return any(c.state is ContainerState.RUNNING for c in found)

            await wait_until(running, within=60, what="the static pod running with no API server")
            async with api_server(tmp_path, port) as api:

                async def mirrored() -> bool:
                    found = await mirror_of(api.client, "early", node)
                    return found is not None and found.get("status", {}).get("phase") == "Running"

                await wait_until(mirrored, within=60, what="the mirror pod once the API is up")
    finally:
        await client.close()
        await runtime.close()
        remove_node_containers(node)
