"""The Node object: what this machine offers, its health, and its Lease heartbeat.

Capacity comes from the real machine; conditions say Ready only while the runtime
answers (with the kubelet's grace for a daemon that is busy for a moment). Status is
written when it changes and at least every minute, and the Lease in ``kube-node-lease``
is renewed every 10 s, as the kubelet does.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import platform
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import structlog

from minikube_py import __version__, errors
from minikube_py.client.interface import Client
from minikube_py.kubelet.runtime.interface import ContainerRuntime, RuntimeUnavailable
from minikube_py.meta.objects import Obj, format_micro_time, format_time
from minikube_py.registry.kinds import catalog

log = structlog.get_logger(__name__)

_CATALOG = catalog()
NODES = _CATALOG.by_kind("", "Node").info  # type: ignore[union-attr]
LEASES = _CATALOG.by_kind("coordination.k8s.io", "Lease").info  # type: ignore[union-attr]
KUBELET_VERSION = "v1.32.0"
LEASE_SECONDS = 40
MAX_WAIT_FOR_CONTAINER_RUNTIME = 30.0
"""Seconds without a passing runtime check before the node says the runtime is down."""
VERSION_TIMEOUT = 5.0


@dataclass(frozen=True)
class NodeConfig:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Obj, ...] = ()
    max_pods: int = 110
    status_interval: float = 10.0
    lease_interval: float = 10.0
    root_dir: Path = Path("/var/lib/minikube-py")
    kubelet_port: int = 10250
    runtime_grace: float = MAX_WAIT_FOR_CONTAINER_RUNTIME


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _memory_kib() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _interface_ip(name: str) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        packed = struct.pack("256s", name[:15].encode())
        return socket.inet_ntoa(fcntl.ioctl(probe.fileno(), 0x8915, packed)[20:24])


def host_ip() -> str:
    """The address of the interface that holds the default route (no packet is sent)."""
    for line in _read("/proc/net/route").splitlines()[1:]:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000":
            try:
                return _interface_ip(fields[0])
            except OSError:
                break
    return "127.0.0.1"


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def _arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def capacity(config: NodeConfig) -> Obj:
    stats = os.statvfs(config.root_dir if config.root_dir.exists() else "/")
    return {
        "cpu": str(os.cpu_count() or 1),
        "memory": f"{_memory_kib()}Ki",
        "pods": str(config.max_pods),
        "ephemeral-storage": f"{stats.f_blocks * stats.f_frsize // 1024}Ki",
    }


def _condition(kind: str, ok: bool, reason: str, message: str, now: str, old: Obj | None) -> Obj:
    status = "True" if ok else "False"
    since = old["lastTransitionTime"] if old and old.get("status") == status else now
    return {
        "type": kind,
        "status": status,
        "lastHeartbeatTime": now,
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    }


@dataclass
class RuntimeHealth:
    """Whether the node may say Ready, from the runtime checks so far.

    As the kubelet's runtime state: until a check has passed the runtime is not known to
    be up; after that it counts as down only once no check has passed for ``grace``
    seconds, so a daemon that is slow for a moment does not flap the node (and start the
    eviction clock of every pod on it). The messages are the kubelet's, with the cause.
    """

    grace: float
    clock: Callable[[], float] = time.time
    last_ok: float | None = None
    cause: str = ""
    """Why the last check failed; empty when it passed."""

    def observe(self, error: str | None) -> None:
        if error is None:
            self.last_ok = self.clock()
        self.cause = error or ""

    def not_ready(self) -> str | None:
        """The Ready condition's message while the runtime is not up; None when it is."""
        if self.last_ok is None:
            return _because("container runtime status check may not have completed yet", self)
        if not self.cause or self.clock() - self.last_ok < self.grace:
            return None
        return _because("container runtime is down", self)


def _because(message: str, health: RuntimeHealth) -> str:
    return f"{message}: {health.cause}" if health.cause else message


def conditions(not_ready: str | None, now: str, previous: list[Obj]) -> list[Obj]:
    """The node's conditions; ``not_ready`` is why it is not Ready (None: it is)."""
    old = {c.get("type"): c for c in previous}
    ready = not_ready is None
    return [
        _condition(
            "MemoryPressure",
            False,
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            now,
            old.get("MemoryPressure"),
        ),
        _condition(
            "DiskPressure",
            False,
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
            now,
            old.get("DiskPressure"),
        ),
        _condition(
            "PIDPressure",
            False,
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            now,
            old.get("PIDPressure"),
        ),
        _condition(
            "Ready",
            ready,
            "KubeletReady" if ready else "KubeletNotReady",
            not_ready or "kubelet is posting ready status",
            now,
            old.get("Ready"),
        ),
    ]


class NodeAgent:
    def __init__(
        self,
        client: Client,
        runtime: ContainerRuntime,
        config: NodeConfig,
        *,
        clock: Callable[[], float] = time.time,
        on_runtime_up: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.runtime = runtime
        self.config = config
        self.clock = clock
        self.ip = host_ip()
        self.registered = asyncio.Event()
        self.ready = asyncio.Event()
        self.health = RuntimeHealth(config.runtime_grace, clock)
        self._on_runtime_up = on_runtime_up
        """Called when the runtime is up again after being down (not at the first check)."""
        self._runtime_up: bool | None = None  # as the node last reported it
        self._runtime_version = "docker://unknown"
        self._last_write = 0.0

    @property
    def runtime_failing(self) -> bool:
        """The last runtime check failed (the outage is logged here, once)."""
        return bool(self.health.cause)

    def _node(self, not_ready: str | None) -> Obj:
        name = self.config.name
        labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": _arch(),
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": _arch(),
            **self.config.labels,
        }
        spec: Obj = {}
        if self.config.taints:
            spec["taints"] = list(self.config.taints)
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
            },
            "spec": spec,
            "status": self._status(not_ready, []),
        }

    def _status(self, not_ready: str | None, previous: list[Obj]) -> Obj:
        now = format_time(self.clock())
        total = capacity(self.config)
        return {
            "capacity": total,
            "allocatable": dict(total),
            "conditions": conditions(not_ready, now, previous),
            "addresses": [
                {"type": "InternalIP", "address": self.ip},
                {"type": "Hostname", "address": self.config.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.config.kubelet_port}},
            "nodeInfo": {
                "machineID": _read("/etc/machine-id"),
                "systemUUID": _read("/sys/class/dmi/id/product_uuid") or _read("/etc/machine-id"),
                "bootID": _read("/proc/sys/kernel/random/boot_id"),
                "kernelVersion": platform.release(),
                "osImage": _os_image(),
                "containerRuntimeVersion": self._runtime_version,
                "kubeletVersion": f"{KUBELET_VERSION}+minikube-py-{__version__}",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": _arch(),
            },
        }

    async def register(self) -> None:
        wanted = self._node(await self.check_runtime())
        try:
            await self.client.create(NODES, "", wanted)
            log.info("node registered", node=self.config.name)
        except errors.AlreadyExists:
            current = await self.client.get(NODES, "", self.config.name)
            current["metadata"]["labels"] = {
                **current["metadata"].get("labels", {}),
                **wanted["metadata"]["labels"],
            }
            await self.client.update(NODES, "", current)
            log.info("node re-registered", node=self.config.name)
        await self._renew()  # a registered node always has its Lease
        self.registered.set()

    async def run_status(self) -> None:
        """Write status on change, and at least every minute (lastHeartbeatTime)."""
        last_ready: bool | None = None
        while True:
            not_ready = await self.check_runtime()
            try:
                await self._write_status(not_ready, force=(not_ready is None) != last_ready)
                last_ready = not_ready is None
                if last_ready:
                    self.ready.set()
                else:
                    self.ready.clear()
            except (errors.APIError, OSError, aiohttp.ClientError) as exc:
                log.warning("node status update failed", error=str(exc))
            await asyncio.sleep(self.config.status_interval)

    async def check_runtime(self) -> str | None:
        """Ping the runtime and act on a change; why the node is not Ready, or None."""
        try:
            await self.runtime.ping()
        except RuntimeUnavailable as exc:
            if not self.runtime_failing:
                log.warning("container runtime does not answer", error=str(exc))
            self.health.observe(str(exc))
        else:
            self.health.observe(None)
        not_ready = self.health.not_ready()
        up = not_ready is None
        if up != self._runtime_up:
            await self._runtime_changed(up, not_ready)
        return not_ready

    async def _runtime_changed(self, up: bool, not_ready: str | None) -> None:
        was_down = self._runtime_up is False
        self._runtime_up = up
        if not up:
            log.warning("node not ready", node=self.config.name, reason=not_ready)
            return
        with contextlib.suppress(RuntimeUnavailable, TimeoutError):  # maybe a new version
            async with asyncio.timeout(VERSION_TIMEOUT):  # a hang here must not stop status
                self._runtime_version = await self.runtime.version()
        if was_down:
            log.info("container runtime is back", node=self.config.name)
            if self._on_runtime_up is not None:
                self._on_runtime_up()

    async def _write_status(self, not_ready: str | None, *, force: bool) -> None:
        """Write on change, every minute, and whenever the stored Ready differs from ours
        (the node controller may have set it Unknown while we were away)."""
        now = self.clock()
        node = await self.client.get(NODES, "", self.config.name)
        previous = (node.get("status") or {}).get("conditions") or []
        stored = next((c.get("status") for c in previous if c.get("type") == "Ready"), None)
        wanted = "True" if not_ready is None else "False"
        if not force and stored == wanted and now - self._last_write < 60:
            return
        node["status"] = self._status(not_ready, previous)
        await self.client.update(NODES, "", node, subresource="status")
        self._last_write = now

    async def run_lease(self) -> None:
        while True:
            try:
                await self._renew()
            except (errors.APIError, OSError, aiohttp.ClientError) as exc:
                log.warning("node lease renewal failed", error=str(exc))
            await asyncio.sleep(self.config.lease_interval)

    async def _renew(self) -> None:
        name = self.config.name
        now = format_micro_time(self.clock())
        try:
            lease = await self.client.get(LEASES, "kube-node-lease", name)
        except errors.NotFound:
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-node-lease"},
                "spec": {
                    "holderIdentity": name,
                    "leaseDurationSeconds": LEASE_SECONDS,
                    "renewTime": now,
                },
            }
            await self.client.create(LEASES, "kube-node-lease", lease)
            return
        lease["spec"] = {
            **lease.get("spec", {}),
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": now,
        }
        await self.client.update(LEASES, "kube-node-lease", lease)
