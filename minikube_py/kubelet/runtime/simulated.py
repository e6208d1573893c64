"""A simulated runtime (kwok-like): pods "run" without any process, for simulated nodes.

Useful to see the scheduler and controllers at scale on one machine: sandboxes get an
IP from a private range, containers start at once and keep running until stopped.
It is a product feature for simulated nodes, never a stand-in for testing Docker.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from minikube_py.kubelet.runtime.interface import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    ExecResult,
    SandboxConfig,
    SandboxStatus,
)

_ips = itertools.count(2)


@dataclass
class _Sandbox:
    status: SandboxStatus


class SimulatedRuntime:
    def __init__(self, node_name: str, *, subnet: int = 0) -> None:
        self.node_name = node_name
        self.subnet = subnet
        self._sandboxes: dict[str, SandboxStatus] = {}
        self._containers: dict[str, ContainerStatus] = {}
        self._ids = itertools.count(1)

    def _id(self) -> str:
        return f"sim{self.subnet:03d}{next(self._ids):012d}"

    async def version(self) -> str:
        return "simulated://1.0"

    async def ping(self) -> None:
        return None

    async def ensure_image(self, image: str, policy: str) -> str:
        return f"sha256:simulated-{image}"

    async def run_sandbox(self, config: SandboxConfig) -> str:
        number = next(_ips)
        ip = f"10.{244 + self.subnet // 256}.{(number // 250) % 256}.{number % 250 + 2}"
        sandbox_id = self._id()
        self._sandboxes[sandbox_id] = SandboxStatus(
            sandbox_id, config.pod, config.attempt, True, ip, time.time()
        )
        return sandbox_id

    async def stop_sandbox(self, sandbox_id: str, grace_seconds: float) -> None:
        found = self._sandboxes.get(sandbox_id)
        if found is not None:
            self._sandboxes[sandbox_id] = replace(found, ready=False)

    async def remove_sandbox(self, sandbox_id: str) -> None:
        self._sandboxes.pop(sandbox_id, None)

    async def sandboxes(self, pod_uid: str | None = None) -> list[SandboxStatus]:
        return [s for s in self._sandboxes.values() if pod_uid in (None, s.pod.uid)]

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        container_id = self._id()
        self._containers[container_id] = ContainerStatus(
            container_id,
            config.pod,
            config.name,
            config.attempt,
            config.image,
            f"sha256:simulated-{config.image}",
            ContainerState.CREATED,
            time.time(),
        )
        return container_id

    async def start_container(self, container_id: str) -> None:
        found = self._containers[container_id]
        self._containers[container_id] = replace(
            found, state=ContainerState.RUNNING, started_at=time.time()
        )

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        found = self._containers.get(container_id)
        if found is not None and found.state is ContainerState.RUNNING:
            self._containers[container_id] = replace(
                found,
                state=ContainerState.EXITED,
                finished_at=time.time(),
                exit_code=0,
                reason="Completed",
            )

    async def remove_container(self, container_id: str) -> None:
        self._containers.pop(container_id, None)

    async def containers(self, pod_uid: str | None = None) -> list[ContainerStatus]:
        return [c for c in self._containers.values() if pod_uid in (None, c.pod.uid)]

    async def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
    ) -> AsyncIterator[bytes]:
        if False:  # pragma: no cover - a simulated container writes nothing
            yield b""

    async def exec(self, container_id: str, command: list[str], limit_seconds: float) -> ExecResult:
        return ExecResult(0, b"")

    async def close(self) -> None:
        return None
