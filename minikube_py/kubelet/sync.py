"""One pod's sync: make the runtime match the pod's spec, then report its status.

Called by the kubelet's work queue for a pod uid whenever the pod or its containers
change. Idempotent: it compares what the runtime holds (found by labels) with what the
spec wants and does the next steps; it never assumes what an earlier call did.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from minikube_py import errors
from minikube_py.client.events import EventRecorder
from minikube_py.client.interface import Client
from minikube_py.kubelet import lifecycle, podstatus, volumes
from minikube_py.kubelet.containers import container_config
from minikube_py.kubelet.probes import ProbeManager, probed_containers
from minikube_py.kubelet.runtime.interface import (
    ContainerRuntime,
    ContainerState,
    ContainerStatus,
    ImagePullError,
    ImageResult,
    PodRef,
    PodSnapshot,
    PortMapping,
    SandboxConfig,
    SandboxStatus,
)
from minikube_py.kubelet.static import MirrorPods, is_static
from minikube_py.kubelet.volumes import MountFailed, VolumeError
from minikube_py.meta import durations
from minikube_py.meta.objects import Obj, dig
from minikube_py.registry.kinds import catalog

log = structlog.get_logger(__name__)

_CATALOG = catalog()
PODS = _CATALOG.by_kind("", "Pod").info  # type: ignore[union-attr]
KINDS = {
    "ConfigMap": _CATALOG.by_kind("", "ConfigMap").info,  # type: ignore[union-attr]
    "Secret": _CATALOG.by_kind("", "Secret").info,  # type: ignore[union-attr]
}


BACKOFF_RESET = 600.0
"""A container that ran this long before exiting restarts without back-off (10 minutes)."""
SANDBOX_CHANGED = "Pod sandbox changed, it will be killed and re-created."


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String`` cut to milliseconds, as the kubelet's messages show
    durations: ``523ms``, ``1.234s``, ``1m20s``, ``5m0s``."""
    return durations.go_duration(int(seconds * 1000) * 1_000_000)


def field_path(pod: Obj, name: str) -> str:
    """The events' ``involvedObject.fieldPath`` for container ``name`` of ``pod``."""
    inits = {str(c.get("name")) for c in dig(pod, "spec", "initContainers") or []}
    key = "initContainers" if name in inits else "containers"
    return f"spec.{key}{{{name}}}"


def pod_label(pod: Obj) -> str:
    """``name_namespace(uid)``: how the kubelet names a pod in its messages."""
    meta = pod["metadata"]
    return f"{meta['name']}_{meta.get('namespace')}({meta['uid']})"


@dataclass
class Backoff:
    """CrashLoopBackOff and ImagePullBackOff: 10 s doubling to 5 min, per container."""

    base: float = 10.0
    cap: float = 300.0
    entries: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)

    def blocked_for(self, key: tuple[str, str], now: float) -> float:
        until, _ = self.entries.get(key, (0.0, 0.0))
        return max(0.0, until - now)

    def hit(self, key: tuple[str, str], now: float) -> None:
        _, delay = self.entries.get(key, (0.0, 0.0))
        delay = self.base if delay == 0 else min(delay * 2, self.cap)
        self.entries[key] = (now + delay, delay)

    def forget_pod(self, uid: str) -> None:
        for key in [k for k in self.entries if k[0] == uid]:
            del self.entries[key]


def should_restart(policy: str, status: ContainerStatus) -> bool:
    if policy == "Always":
        return True
    return policy == "OnFailure" and status.exit_code != 0


def newest(
    containers: list[ContainerStatus],
) -> tuple[dict[str, ContainerStatus], dict[str, ContainerStatus]]:
    """Per container name: the newest attempt and the one before it."""
    latest: dict[str, ContainerStatus] = {}
    previous: dict[str, ContainerStatus] = {}
    for status in sorted(containers, key=lambda c: (c.attempt, c.created_at)):
        if status.name in latest:
            previous[status.name] = latest[status.name]
        latest[status.name] = status
    return latest, previous


def pod_ref(pod: Obj) -> PodRef:
    meta = pod["metadata"]
    return PodRef(str(meta["uid"]), str(meta["name"]), str(meta.get("namespace", "")))


@dataclass
class Held:
    """What the runtime holds of one pod: read once as a sync begins, then kept up to date
    by that sync's own writes instead of being read again after each of them.

    Safe because a pod is synced by one worker at a time (its uid is one work-queue key)
    and only its sync creates or removes its containers. A container that changes on its
    own meanwhile (exits, is killed by a probe) is seen by the next relist, which syncs
    the pod again.
    """

    sandboxes: list[SandboxStatus]
    containers: list[ContainerStatus]

    @classmethod
    def of(cls, snapshot: PodSnapshot) -> Held:
        return cls(list(snapshot.sandboxes), list(snapshot.containers))

    def put(self, status: ContainerStatus | None) -> None:
        """A container as the runtime reports it after this sync created or started it."""
        if status is not None:
            self.drop(status.id)
            self.containers.append(status)

    def drop(self, container_id: str) -> None:
        self.containers = [c for c in self.containers if c.id != container_id]


@dataclass(frozen=True)
class PodSetup:
    """What a pod's containers are created with, made ready once per sync."""

    sandbox: SandboxStatus
    host_volumes: dict[str, volumes.HostVolume]
    fetch: volumes.Fetch
    hosts_file: str
    """The managed ``/etc/hosts`` on the host; "" while the pod has no IP (not mounted)."""


class PodSyncer:
    def __init__(
        self,
        runtime: ContainerRuntime,
        client: Client,
        *,
        root_dir: Path,
        host_ip: str,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
        probes: ProbeManager | None = None,
        events: EventRecorder | None = None,
        mirrors: MirrorPods | None = None,
        node_hosts: Path = volumes.NODE_HOSTS,
    ) -> None:
        self.runtime = runtime
        self.client = client
        self.root_dir = root_dir
        self.host_ip = host_ip
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.started: dict[str, float] = {}
        self.reported: dict[str, tuple[str, Obj]] = {}
        """Per pod: the resourceVersion a status write was based on, and the status written.
        A sync that follows at once may still see the pod as it was before that write (the
        write comes back through the informer a moment later): saying the same again would
        only be refused as a conflict."""
        self.probes = probes
        self.events = events
        self.mirrors = mirrors
        """Where a static pod's status goes (its mirror pod), instead of the API pod."""
        self.probe_killed: set[str] = set()
        """Containers a failed liveness probe stopped: they restart whatever the policy."""
        self.pull_errors: dict[tuple[str, str], str] = {}
        """The last failed pull per back-off key, told again while backing off."""
        self.node_hosts = node_hosts
        """The node's hosts file, copied for host-network pods."""

    # -- tear down --

    async def teardown(self, uid: str, grace: float, pod: Obj | None = None) -> None:
        """Stop and remove everything of pod ``uid`` (containers first, then the sandbox).

        With the pod at hand, each running container's preStop hook runs first, inside
        the grace period, as the kubelet does.
        """
        if self.probes is not None:
            self.probes.remove_pod(uid)
        held = await self.runtime.snapshot(uid)
        running = [c for c in held.containers if c.state is ContainerState.RUNNING]
        await asyncio.gather(*(self._stop(pod, c, grace) for c in running))
        for container in held.containers:
            await self.runtime.remove_container(container.id)
        for sandbox in held.sandboxes:
            await self.runtime.stop_sandbox(sandbox.id, 0)
            await self.runtime.remove_sandbox(sandbox.id)
        volumes.cleanup(self.root_dir, uid)
        self.backoff.forget_pod(uid)
        for key in [k for k in self.pull_errors if k[0] == uid]:
            del self.pull_errors[key]
        self.started.pop(uid, None)
        self.reported.pop(uid, None)

    # -- the sync --

    async def sync(self, uid: str, pod: Obj | None) -> float | None:
        """Bring pod ``uid`` to its desired state; seconds until it wants another look."""
        if pod is None:
            await self.teardown(uid, 0)
            return None
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            await self.teardown(uid, float(meta.get("deletionGracePeriodSeconds") or 0), pod)
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                await self.client.delete(
                    PODS, meta["namespace"], meta["name"], grace_period=0, uid=uid
                )
            return None
        if dig(pod, "status", "phase") in ("Succeeded", "Failed"):
            if self.probes is not None:
                self.probes.remove_pod(uid)
            return None
        left = lifecycle.deadline_left(pod, self.clock())
        if left is not None and left <= 0:
            await self._past_deadline(pod)
            return None
        waiting: dict[str, tuple[str, str]] = {}
        held = Held.of(await self.runtime.snapshot(str(meta["uid"])))
        requeue = await self._converge(pod, held, waiting)
        await self._report(pod, held, waiting)
        if left is not None:
            requeue = min(requeue, left) if requeue is not None else left
        return requeue

    async def _status(self, pod: Obj, held: Held, waiting: dict[str, tuple[str, str]]) -> Obj:
        """The pod's status from what the runtime holds (probes and messages included)."""
        uid = str(pod["metadata"]["uid"])
        sandboxes = sorted(held.sandboxes, key=lambda s: s.attempt)
        latest, previous = newest(await self._with_messages(pod, held.containers))
        sandbox = sandboxes[-1] if sandboxes else None
        ready = {name: status.state is ContainerState.RUNNING for name, status in latest.items()}
        if self.probes is not None:
            self.probes.update(pod, latest, pod_ip=sandbox.ip if sandbox else "")
            probed = probed_containers(pod)
            ready = {
                name: self.probes.readiness(uid, name)
                if name in probed
                else status.state is ContainerState.EXITED and status.exit_code == 0
                for name, status in latest.items()
            }
        observed = podstatus.Observed(
            sandbox=sandbox,
            latest=latest,
            previous=previous,
            waiting=waiting,
            ready=ready,
            host_ip=self.host_ip,
            start_time=self.started.get(uid, 0.0),
        )
        return podstatus.pod_status(pod, observed, self.clock())

    async def _with_messages(
        self, pod: Obj, containers: list[ContainerStatus]
    ) -> list[ContainerStatus]:
        specs = {
            str(c.get("name")): c
            for key in ("initContainers", "containers")
            for c in dig(pod, "spec", key) or []
        }
        found = []
        for status in containers:
            if status.state is ContainerState.EXITED:
                status = await lifecycle.with_message(
                    self.runtime, self.root_dir, specs.get(status.name), status
                )
            found.append(status)
        return found

    async def _past_deadline(self, pod: Obj) -> None:
        """activeDeadlineSeconds ran out: stop the containers, the pod Failed for good."""
        grace = float(dig(pod, "spec", "terminationGracePeriodSeconds") or 30)
        uid = str(pod["metadata"]["uid"])
        held = await self.runtime.snapshot(uid)
        running = [c for c in held.containers if c.state is ContainerState.RUNNING]
        await asyncio.gather(*(self._stop(pod, c, grace) for c in running))
        self._event(pod, "Normal", "DeadlineExceeded", lifecycle.DEADLINE_MESSAGE)
        waiting: dict[str, tuple[str, str]] = {}
        status = await self._status(pod, Held.of(await self.runtime.snapshot(uid)), waiting)
        status.update(phase="Failed", reason="DeadlineExceeded", message=lifecycle.DEADLINE_MESSAGE)
        await self.client.update(
            PODS, pod["metadata"]["namespace"], {**pod, "status": status}, subresource="status"
        )

    async def _fetch(self, namespace: str) -> volumes.Fetch:
        async def fetch(kind: str, name: str) -> Obj | None:
            try:
                return await self.client.get(KINDS[kind], namespace, name)
            except errors.NotFound:
                return None

        return fetch

    async def _converge(
        self, pod: Obj, held: Held, waiting: dict[str, tuple[str, str]]
    ) -> float | None:
        uid = str(pod["metadata"]["uid"])
        fetch = await self._fetch(str(pod["metadata"].get("namespace", "")))
        try:
            host_volumes = await volumes.prepare(self.root_dir, pod, fetch)
        except MountFailed as exc:
            for failure in exc.failures:
                message = f'MountVolume.SetUp failed for volume "{failure.volume}" : {failure}'
                self._event(pod, "Warning", "FailedMount", message)
            return 2.0
        sandbox = await self._ensure_sandbox(pod, held)
        self.started.setdefault(uid, self.clock())
        setup = PodSetup(sandbox, host_volumes, fetch, self._hosts_file(pod, sandbox))
        current = [c for c in held.containers if c.attempt >= 0]
        latest, _ = newest(current)
        spec = pod.get("spec") or {}
        for init in spec.get("initContainers") or []:
            status = latest.get(str(init["name"]))
            if (
                status is not None
                and status.state is ContainerState.EXITED
                and status.exit_code == 0
            ):
                continue
            return await self._advance(pod, init, status, setup, held, waiting)
        delays = []
        for container in spec.get("containers") or []:
            status = latest.get(str(container["name"]))
            delay = await self._advance(pod, container, status, setup, held, waiting)
            if delay is not None:
                delays.append(delay)
        return min(delays) if delays else None

    def _hosts_file(self, pod: Obj, sandbox: SandboxStatus) -> str:
        """Write the pod's managed hosts file once its IP is known; its path ("" if not).

        Rewritten on every sync as the kubelet rewrites it at every container start (it
        only changes on disk when its content does).
        """
        host_network = bool(dig(pod, "spec", "hostNetwork"))
        if not host_network and not sandbox.ip:
            return ""
        ips = [self.host_ip] if host_network else [sandbox.ip]
        return str(volumes.write_hosts_file(self.root_dir, pod, ips, node_hosts=self.node_hosts))

    async def _ensure_sandbox(self, pod: Obj, held: Held) -> SandboxStatus:
        ref = pod_ref(pod)
        sandboxes = sorted(held.sandboxes, key=lambda s: s.attempt)
        if sandboxes and sandboxes[-1].ready:
            return sandboxes[-1]
        attempt = sandboxes[-1].attempt + 1 if sandboxes else 0
        if sandboxes:  # a dead sandbox takes its containers with it
            self._event(pod, "Normal", "SandboxChanged", SANDBOX_CHANGED)
            await self.teardown_containers(held.containers)
            for old in sandboxes:
                await self.runtime.remove_sandbox(old.id)
            held.containers = []
        spec = pod.get("spec") or {}
        ports = tuple(
            PortMapping(
                int(p["containerPort"]),
                int(p.get("hostPort") or 0),
                str(p.get("protocol", "TCP")),
                str(p.get("hostIP") or ""),
            )
            for c in spec.get("containers") or []
            for p in c.get("ports") or []
            if p.get("hostPort")
        )
        hostname, domain = volumes.pod_hostname(pod)
        if spec.get("setHostnameAsFQDN") and domain:
            hostname = f"{hostname}.{domain}"
        config = SandboxConfig(
            pod=ref,
            attempt=attempt,
            hostname=hostname,
            host_network=bool(spec.get("hostNetwork")),
            ports=ports,
        )
        sandbox = await self.runtime.run_sandbox(config)
        held.sandboxes = [sandbox]
        return sandbox

    async def _stop(self, pod: Obj | None, status: ContainerStatus, grace: float) -> None:
        started = self.clock()
        if pod is not None:
            await lifecycle.run_pre_stop(self.runtime, pod, status, grace)
        if pod is not None:
            self._event(
                pod,
                "Normal",
                "Killing",
                f"Stopping container {status.name}",
                field_path(pod, status.name),
            )
        await self.runtime.stop_container(status.id, max(grace - (self.clock() - started), 0.0))

    async def teardown_containers(self, containers: list[ContainerStatus]) -> None:
        for container in containers:
            await self.runtime.stop_container(container.id, 0)
            await self.runtime.remove_container(container.id)

    async def _advance(
        self,
        pod: Obj,
        container: Obj,
        status: ContainerStatus | None,
        setup: PodSetup,
        held: Held,
        waiting: dict[str, tuple[str, str]],
    ) -> float | None:
        """One container's next step; returns when to look again, if not on an event."""
        name = str(container["name"])
        uid = str(pod["metadata"]["uid"])
        policy = str((pod.get("spec") or {}).get("restartPolicy", "Always"))
        if status is not None and status.state is ContainerState.RUNNING:
            return None
        if status is not None and status.state is ContainerState.CREATED:
            await self.runtime.start_container(status.id)
            held.put(await self.runtime.container_status(status.id))
            return None
        killed = status is not None and status.id in self.probe_killed
        if status is not None and not killed and not should_restart(policy, status):
            return None
        if status is not None and killed and policy == "Never":
            return None
        now = self.clock()
        key = (uid, name)
        field = field_path(pod, name)
        if status is not None:
            if status.finished_at - status.started_at >= BACKOFF_RESET:
                self.backoff.entries.pop(key, None)  # it ran long enough to start afresh
            blocked = self.backoff.blocked_for(key, now)
            if blocked > 0:
                label = pod_label(pod)
                message = f"Back-off restarting failed container {name} in pod {label}"
                self._event(pod, "Warning", "BackOff", message, field)
                delay = go_duration(self.backoff.entries[key][1])
                waiting[name] = (
                    "CrashLoopBackOff",
                    f"back-off {delay} restarting failed container={name} pod={label}",
                )
                return blocked
        attempt = status.attempt + 1 if status is not None else 0
        pulled = await self._pull(pod, container, waiting, now)
        if pulled is not None:
            return pulled
        try:
            config = await container_config(
                pod,
                container,
                attempt,
                setup.host_volumes,
                setup.fetch,
                hosts_file=setup.hosts_file,
            )
        except VolumeError as exc:
            waiting[name] = ("CreateContainerConfigError", str(exc))
            self._event(pod, "Warning", "Failed", f"Error: {exc}", field)
            return 2.0
        termination = lifecycle.message_mount(self.root_dir, uid, container, attempt)
        config = dataclasses.replace(config, mounts=(*config.mounts, termination))
        container_id = await self.runtime.create_container(setup.sandbox.id, config)
        self._event(pod, "Normal", "Created", f"Created container {name}", field)
        await self.runtime.start_container(container_id)
        self._event(pod, "Normal", "Started", f"Started container {name}", field)
        held.put(await self.runtime.container_status(container_id))
        if status is not None:
            self.probe_killed.discard(status.id)
            self.backoff.hit(key, now)
            await self._prune(held, name, keep=status.id)
        return None

    async def _pull(
        self, pod: Obj, container: Obj, waiting: dict[str, tuple[str, str]], now: float
    ) -> float | None:
        """Make the image present; on failure the waiting reason and when to try again.

        As the kubelet: ErrImagePull on a failed pull, ImagePullBackOff while waiting to
        retry (10 s doubling to 5 min), ErrImageNeverPull for a missing image with policy
        Never; each with its events, and ``Error: <reason>`` as the kubelet's ``Failed``.
        """
        name, image = str(container["name"]), str(container.get("image", ""))
        policy = str(container.get("imagePullPolicy", "IfNotPresent"))
        key = (str(pod["metadata"]["uid"]), f"{name}/pull")
        field = field_path(pod, name)
        blocked = self.backoff.blocked_for(key, now)
        if blocked > 0:
            message = f'Back-off pulling image "{image}"'
            self._event(pod, "Normal", "BackOff", message, field)
            self._event(pod, "Warning", "Failed", "Error: ImagePullBackOff", field)
            last = self.pull_errors.get(key)
            waiting[name] = ("ImagePullBackOff", f"{message}: {last}" if last else message)
            return blocked
        began: list[float] = []

        def pulling() -> None:
            began.append(time.monotonic())
            self._event(pod, "Normal", "Pulling", f'Pulling image "{image}"', field)

        try:
            result = await self.runtime.ensure_image(image, policy, on_pull=pulling)
        except ImagePullError as exc:
            if policy == "Never":
                self._event(pod, "Warning", "ErrImageNeverPull", str(exc), field)
                self._event(pod, "Warning", "Failed", "Error: ErrImageNeverPull", field)
                waiting[name] = ("ErrImageNeverPull", exc.detail)
                return 10.0
            failed = f'Failed to pull image "{image}": {exc.detail}'
            self._event(pod, "Warning", "Failed", failed, field)
            self._event(pod, "Warning", "Failed", "Error: ErrImagePull", field)
            waiting[name] = ("ErrImagePull", exc.detail)
            self.pull_errors[key] = f"ErrImagePull: {exc.detail}"
            self.backoff.hit(key, now)
            return self.backoff.blocked_for(key, now)
        self.backoff.entries.pop(key, None)
        self.pull_errors.pop(key, None)
        waited = time.monotonic() - began[0] if began else result.pull_seconds
        self._pulled(pod, image, result, waited, field)
        return None

    def _pulled(self, pod: Obj, image: str, result: ImageResult, waited: float, field: str) -> None:
        """The kubelet's ``Pulled``: how long and how big, or that no pull was needed."""
        if result.pulled:
            took = go_duration(result.pull_seconds)
            message = (
                f'Successfully pulled image "{image}" in {took} ({go_duration(waited)}'
                f" including waiting). Image size: {result.size} bytes."
            )
            self._event(pod, "Normal", "Pulled", message, field)
            return
        if result.pull_error:  # Always, but only a local copy: say the pull failed
            failed = f'Failed to pull image "{image}": {result.pull_error}'
            self._event(pod, "Warning", "Failed", failed, field)
        message = f'Container image "{image}" already present on machine'
        self._event(pod, "Normal", "Pulled", message, field)

    def _event(self, pod: Obj, kind: str, reason: str, message: str, field: str = "") -> None:
        if self.events is not None:
            self.events.record(
                {"kind": "Pod", "apiVersion": "v1", **pod}, kind, reason, message, field
            )

    async def _prune(self, held: Held, name: str, keep: str) -> None:
        """Keep the newest and the previous attempt of a container; remove older ones."""
        attempts = sorted((c for c in held.containers if c.name == name), key=lambda c: c.attempt)
        for old in attempts[:-2]:
            if old.id != keep:
                await self.runtime.remove_container(old.id)
                held.drop(old.id)

    async def _report(self, pod: Obj, held: Held, waiting: dict[str, tuple[str, str]]) -> None:
        status = await self._status(pod, held, waiting)
        if self.mirrors is not None and is_static(pod):
            self.mirrors.remember(pod, status)  # StaticPods writes it onto the mirror pod
            return
        if status == pod.get("status"):
            return
        uid, base = str(pod["metadata"]["uid"]), str(pod["metadata"].get("resourceVersion"))
        if self.reported.get(uid) == (base, status):  # written already; not seen back yet
            return
        await self.client.update(
            PODS, pod["metadata"]["namespace"], {**pod, "status": status}, subresource="status"
        )
        self.reported[uid] = (base, status)
