"""The Node object: what this machine offers, its health, and its Lease heartbeat.

Capacity comes from the real machine; conditions say Ready only while the runtime
answers. Status is written when it changes and at least every minute, and the Lease in
``kube-node-lease`` is renewed every 10 s, as the kubelet does.
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


def conditions(runtime_error: str | None, now: str, previous: list[Obj]) -> list[Obj]:
    old = {c.get("type"): c for c in previous}
    ready = runtime_error is None
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
            "kubelet is posting ready status"
            if ready
            else f"container runtime is down: {runtime_error}",
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
    ) -> None:
        self.client = client
        self.runtime = runtime
        self.config = config
        self.clock = clock
        self.ip = host_ip()
        self.registered = asyncio.Event()
        self.ready = asyncio.Event()
        self._runtime_version = "docker://unknown"
        self._last_write = 0.0

    def _node(self, runtime_error: str | None) -> Obj:
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
            "status": self._status(runtime_error, []),
        }

    def _status(self, runtime_error: str | None, previous: list[Obj]) -> Obj:
        now = format_time(self.clock())
        total = capacity(self.config)
        return {
            "capacity": total,
            "allocatable": dict(total),
            "conditions": conditions(runtime_error, now, previous),
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
        with contextlib.suppress(RuntimeUnavailable):
            self._runtime_version = await self.runtime.version()
        wanted = self._node(await self._runtime_error())
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
            error = await self._runtime_error()
            try:
                await self._write_status(error, force=(error is None) != last_ready)
                last_ready = error is None
                if last_ready:
                    self.ready.set()
                else:
                    self.ready.clear()
            except (errors.APIError, OSError, aiohttp.ClientError) as exc:
                log.warning("node status update failed", error=str(exc))
            await asyncio.sleep(self.config.status_interval)

    async def _runtime_error(self) -> str | None:
        try:
            await self.runtime.ping()
        except RuntimeUnavailable as exc:
            return str(exc)
        return None

    async def _write_status(self, runtime_error: str | None, *, force: bool) -> None:
        """Write on change, every minute, and whenever the stored Ready differs from ours
        (the node controller may have set it Unknown while we were away)."""
        now = self.clock()
        node = await self.client.get(NODES, "", self.config.name)
        previous = (node.get("status") or {}).get("conditions") or []
        stored = next((c.get("status") for c in previous if c.get("type") == "Ready"), None)
        wanted = "True" if runtime_error is None else "False"
        if not force and stored == wanted and now - self._last_write < 60:
            return
        node["status"] = self._status(runtime_error, previous)
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
