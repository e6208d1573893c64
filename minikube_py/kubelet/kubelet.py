"""The kubelet: register the node, then keep this node's pods in step with the runtime.

Pods come from an informer on ``spec.nodeName=<node>``; a PLEG-like relist of the
runtime every second notices containers that changed on their own (exits, crashes)
and containers of pods the API no longer has (orphans, removed). Each pod uid is a key
in one work queue, so a pod is never synced twice at once.

While the runtime is down, syncs fail and back off (nothing is decided from a runtime
that does not answer); when it is back, the node agent says so and every pod is synced
at once, instead of whenever its back-off would have ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

import structlog

from minikube_py import errors
from minikube_py.client.events import EventRecorder
from minikube_py.client.informer import Informer
from minikube_py.client.interface import Client, Selection
from minikube_py.client.workqueue import WorkQueue, work
from minikube_py.kubelet.node import NodeAgent, NodeConfig
from minikube_py.kubelet.probes import ProbeManager
from minikube_py.kubelet.runtime.interface import ContainerRuntime, ItemState, RuntimeUnavailable
from minikube_py.kubelet.server import LogService, kubelet_app, serve
from minikube_py.kubelet.static import (
    API_ERRORS,
    FILE_CHECK_FREQUENCY,
    MirrorPods,
    StaticPods,
    StaticPodSource,
    is_mirror,
)
from minikube_py.kubelet.streams import StreamService
from minikube_py.kubelet.sync import PODS, Backoff, PodSyncer
from minikube_py.meta.objects import Obj

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class KubeletConfig:
    node: NodeConfig
    workers: int = 16
    """Pods synced at once; a burst of new pods starts this many in parallel."""
    relist_interval: float = 1.0
    crash_backoff: float = 10.0
    resync_interval: float = 60.0
    """Every pod is synced at least this often (the kubelet's --sync-frequency): config
    map and secret volumes pick up changes this way."""
    probes: bool = True
    """Run liveness/readiness/startup probes (off for simulated nodes, as kwok does)."""
    port: int = 0
    """The kubelet's own HTTP endpoint (10250 for ``minikube-py kubelet``); 0: in-process only."""
    address: str = ""
    pod_manifest_path: Path | None = None
    """Static pods: manifests read from here (--pod-manifest-path); None: no static pods."""
    file_check_frequency: float = FILE_CHECK_FREQUENCY


class Kubelet:
    def __init__(self, client: Client, runtime: ContainerRuntime, config: KubeletConfig) -> None:
        self.client = client
        self.runtime = runtime
        self.config = config
        self.node = NodeAgent(client, runtime, config.node, on_runtime_up=self._runtime_back)
        self.queue = WorkQueue()
        self.pods = Informer(
            client, PODS, Selection(field_selector=f"spec.nodeName={config.node.name}")
        )
        self.by_uid: dict[str, Obj] = {}
        self.events = EventRecorder(client, "kubelet", config.node.name)
        self.probes = (
            ProbeManager(
                runtime, kill=self._probe_kill, on_change=self.queue.add, event=self.events.record
            )
            if config.probes
            else None
        )
        self.mirrors = MirrorPods(client, config.node.name)
        self.syncer = PodSyncer(
            runtime,
            client,
            root_dir=config.node.root_dir,
            host_ip=self.node.ip,
            backoff=Backoff(base=config.crash_backoff),
            probes=self.probes,
            events=self.events,
            mirrors=self.mirrors,
        )
        self.static = StaticPods(
            StaticPodSource(
                config.pod_manifest_path,
                config.node.name,
                period=config.file_check_frequency,
                on_change=self.queue.add,
            ),
            self.mirrors,
            self.syncer,
            resync_interval=config.resync_interval,
        )
        self.logs = LogService(runtime, self._known_pod)
        self.streams = StreamService(runtime, self._known_pod)
        self._fingerprints: dict[str, tuple[tuple[str, bool, str, str], ...]] = {}
        self.pods.on_change(self._pod_changed)

    def _known_pod(self, namespace: str, name: str) -> Obj | None:
        """The pod as this kubelet knows it, with the status it reported (for logs)."""
        return self.pods.get(f"{namespace}/{name}")

    async def _probe_kill(self, uid: str, container_id: str, reason: str, grace: float) -> None:
        """A liveness/startup probe failed: stop the container; the next sync restarts it."""
        pod = self.by_uid.get(uid)
        if pod is not None:
            self.events.record(pod, "Normal", "Killing", reason)
        await self.runtime.stop_container(container_id, grace)
        self.syncer.probe_killed.add(container_id)
        self.queue.add(uid)

    def _runtime_back(self) -> None:
        for uid in (*self.by_uid, *self.static.source.pods, *self.static.source.terminating):
            self.queue.add(uid)

    def _pod_changed(self, kind: str, pod: Obj, previous: Obj | None) -> None:
        if is_mirror(pod):  # the API's view of a static pod: never run, kept in step
            key = self.static.mirror_changed(kind, pod)
            if key is not None:
                self.queue.add(key)
            return
        uid = str(pod["metadata"]["uid"])
        if kind == "DELETED":
            self.by_uid.pop(uid, None)
        else:
            self.by_uid[uid] = pod
        if kind == "MODIFIED" and previous is not None and status_only(previous, pod):
            return  # most often our own status write coming back: nothing to do for it
        self.queue.add(uid)

    async def run(self) -> None:
        """Static pods start first and need no API server; the rest follows it."""
        self.config.node.root_dir.mkdir(parents=True, exist_ok=True)
        async with asyncio.TaskGroup() as group:
            group.create_task(self.static.run(), name="static-pods")
            await self.static.synced.wait()
            for index in range(self.config.workers):
                group.create_task(
                    work(self.queue, self._sync, on_error=self._failed), name=f"pod-worker-{index}"
                )
            group.create_task(self._node_loop(), name="node")
            group.create_task(self.pods.run(), name="pod-informer")
            group.create_task(self.events.run(), name="kubelet-events")
            if self.probes is not None:
                group.create_task(self.probes.run(), name="probes")
            if self.config.port:
                address = self.config.address or self.node.ip
                app = kubelet_app(self.logs, streams=self.streams)
                group.create_task(serve(app, address, self.config.port), name="kubelet-server")
            await self.pods.synced.wait()  # before it, a pod unknown to us may still exist
            group.create_task(self._relist(), name="pleg")

    async def _node_loop(self) -> None:
        """Register (retried while the API server is unreachable), then heartbeat."""
        delay = 0.5
        while True:
            try:
                await self.node.register()
                break
            except API_ERRORS as exc:
                log.warning("node registration failed; retrying", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        async with asyncio.TaskGroup() as group:
            group.create_task(self.node.run_lease(), name="node-lease")
            group.create_task(self.node.run_status(), name="node-status")

    async def _sync(self, uid: str) -> float | None:
        if self.static.owns(uid):
            return await self.static.sync(uid)
        pod = self.by_uid.get(uid)
        if pod is not None:
            fresh = self.pods.get(f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}")
            if fresh is not None and fresh["metadata"].get("uid") == uid:
                pod = fresh
        again = await self.syncer.sync(uid, pod)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return again
        return (
            min(again, self.config.resync_interval)
            if again is not None
            else self.config.resync_interval
        )

    def _failed(self, uid: str, exc: Exception) -> None:
        if isinstance(exc, errors.Conflict):  # a status write raced another writer: retried
            log.debug("pod status conflict", uid=uid)
            return
        if isinstance(exc, RuntimeUnavailable) and self.node.runtime_failing:
            log.debug("pod sync waits for the runtime", uid=uid)  # the node logged the outage
            return
        log.warning("pod sync failed", uid=uid, error=f"{type(exc).__name__}: {exc}")

    async def _relist(self) -> None:
        """Enqueue pods whose runtime state changed, and orphans, once per interval.

        One cheap listing (``states``) a round, whatever the number of pods: a new or gone
        id, a state or sandbox IP that changed is enough to sync the pod, and the sync
        looks closely (exit codes and all) at what it finds.
        """
        while True:
            with contextlib.suppress(RuntimeUnavailable):  # the node agent tells of outages
                self._notice(await self.runtime.states())
            await asyncio.sleep(self.config.relist_interval)

    def _notice(self, items: list[ItemState]) -> None:
        """Enqueue each pod whose listing differs from the last round's, orphans, and known
        pods whose every sandbox and container is gone."""
        seen: dict[str, list[tuple[str, bool, str, str]]] = {}
        for item in items:
            seen.setdefault(item.pod_uid, []).append(
                (item.id, item.sandbox, item.state.value, item.ip)
            )
        for uid, parts in seen.items():
            fingerprint = tuple(sorted(parts))
            known = uid in self.by_uid or self.static.owns(uid)
            if self._fingerprints.get(uid) != fingerprint or not known:
                self._fingerprints[uid] = fingerprint
                self.queue.add(uid)
        for uid in set(self._fingerprints) - set(seen):  # all of it gone
            del self._fingerprints[uid]
            if uid in self.by_uid or self.static.owns(uid):  # removed behind our back
                self.queue.add(uid)


_WRITE_BOOKKEEPING = frozenset({"resourceVersion", "managedFields"})


def status_only(before: Obj, after: Obj) -> bool:
    """Whether a pod update changed nothing but its status (and what every write changes).

    The kubelet's own status writes come back this way; like the real kubelet's pod config,
    which passes such updates over, no sync is made for them: the pod's spec, labels,
    annotations and deletion are what a sync acts on, and the runtime's changes come
    through the relist.
    """

    def rest(pod: Obj) -> Obj:
        meta = {k: v for k, v in (pod.get("metadata") or {}).items() if k not in _WRITE_BOOKKEEPING}
        return {**{k: v for k, v in pod.items() if k != "status"}, "metadata": meta}

    return rest(before) == rest(after)


def default_root(data_dir: Path) -> Path:
    return data_dir / "kubelet"
