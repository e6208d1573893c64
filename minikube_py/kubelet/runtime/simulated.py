"""A simulated runtime (kwok-like): pods "run" without any process, for simulated nodes.

Useful to see the scheduler and controllers at scale on one machine: sandboxes get an
IP from a private range and containers start at once. A container keeps running until
stopped, unless its command says it ends (on the injected clock):
``true`` → exit 0, ``false`` → exit 1, ``sleep S`` → exit 0 after S seconds, and a shell
script (``sh -c "..."``) ending in ``exit N`` → exit N (after any leading ``sleep S;``).
It is a product feature for simulated nodes, never a stand-in for testing Docker.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from minikube_py.kubelet.runtime.interface import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    ExecResult,
    ExecSession,
    ImageResult,
    ItemState,
    PodSnapshot,
    PullStarting,
    SandboxConfig,
    SandboxStatus,
    StreamsUnsupported,
)

_ips = itertools.count(2)
_SLEEP = re.compile(r"^\s*sleep\s+(\d+(?:\.\d+)?)\s*(?:;|&&|$)")
_EXIT = re.compile(r"(?:^|;|&&)\s*exit\s+(\d+)\s*;?\s*$")


def planned_exit(command: tuple[str, ...]) -> tuple[float, int] | None:
    """(seconds until exit, exit code) for commands whose end is knowable, else None."""
    if not command:
        return None
    program = command[0].rsplit("/", 1)[-1]
    if program in ("true", "false") and len(command) == 1:
        return 0.0, 0 if program == "true" else 1
    if program == "sleep" and len(command) == 2:
        seconds = command[1]
        return (float(seconds), 0) if re.fullmatch(r"\d+(\.\d+)?", seconds) else None
    if program in ("sh", "bash", "ash") and len(command) >= 3 and command[1] == "-c":
        script = command[2].strip()
        ending = _EXIT.search(script)
        if ending is None:
            return (0.0, 0) if script in ("true", ":") else None
        delay = _SLEEP.match(script)
        return (float(delay.group(1)) if delay else 0.0), int(ending.group(1))
    return None


def _state(ready: bool) -> ContainerState:
    return ContainerState.RUNNING if ready else ContainerState.EXITED


class SimulatedRuntime:
    def __init__(
        self, node_name: str, *, subnet: int = 0, clock: Callable[[], float] = time.time
    ) -> None:
        self.node_name = node_name
        self.subnet = subnet
        self.clock = clock
        self._exits: dict[str, tuple[float, int]] = {}
        self._sandboxes: dict[str, SandboxStatus] = {}
        self._containers: dict[str, ContainerStatus] = {}
        self._ids = itertools.count(1)

    def _id(self) -> str:
        return f"sim{self.subnet:03d}{next(self._ids):012d}"

    async def version(self) -> str:
        return "simulated://1.0"

    async def ping(self) -> None:
        return None

    async def ensure_image(
        self, image: str, policy: str, *, on_pull: PullStarting | None = None
    ) -> ImageResult:
        """Every image is "already present" on a simulated node: nothing is ever pulled."""
        return ImageResult(id=f"sha256:simulated-{image}")

    async def run_sandbox(self, config: SandboxConfig) -> SandboxStatus:
        number = next(_ips)
        ip = f"10.{244 + self.subnet // 256}.{(number // 250) % 256}.{number % 250 + 2}"
        sandbox_id = self._id()
        status = SandboxStatus(sandbox_id, config.pod, config.attempt, True, ip, self.clock())
        self._sandboxes[sandbox_id] = status
        return status

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
        plan = planned_exit(config.command + config.args if config.command else config.args)
        if plan is not None:
            self._exits[container_id] = plan
        self._containers[container_id] = ContainerStatus(
            container_id,
            config.pod,
            config.name,
            config.attempt,
            config.image,
            f"sha256:simulated-{config.image}",
            ContainerState.CREATED,
            self.clock(),
        )
        return container_id

    async def start_container(self, container_id: str) -> None:
        found = self._containers[container_id]
        now = self.clock()
        self._containers[container_id] = replace(
            found, state=ContainerState.RUNNING, started_at=now
        )
        plan = self._exits.pop(container_id, None)
        if plan is not None:
            self._exits[container_id] = (now + plan[0], plan[1])

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        found = self._containers.get(container_id)
        if found is not None and found.state is ContainerState.RUNNING:
            self._containers[container_id] = replace(
                found,
                state=ContainerState.EXITED,
                finished_at=self.clock(),
                exit_code=0,
                reason="Completed",
            )

    async def remove_container(self, container_id: str) -> None:
        self._containers.pop(container_id, None)

    async def containers(self, pod_uid: str | None = None) -> list[ContainerStatus]:
        self._finish_due()
        return [c for c in self._containers.values() if pod_uid in (None, c.pod.uid)]

    async def container_status(self, container_id: str) -> ContainerStatus | None:
        self._finish_due()
        return self._containers.get(container_id)

    async def snapshot(self, pod_uid: str) -> PodSnapshot:
        return PodSnapshot(await self.sandboxes(pod_uid), await self.containers(pod_uid))

    async def states(self) -> list[ItemState]:
        """What the relist needs, from the same tables (the simulation is cheap anyway)."""
        self._finish_due()
        sandboxes = [
            ItemState(s.id, s.pod.uid, True, _state(s.ready), s.ip if s.ready else "")
            for s in self._sandboxes.values()
        ]
        containers = [ItemState(c.id, c.pod.uid, False, c.state) for c in self._containers.values()]
        return sandboxes + containers

    def _finish_due(self) -> None:
        now = self.clock()
        for container_id, (at, code) in list(self._exits.items()):
            found = self._containers.get(container_id)
            if found is None:
                del self._exits[container_id]
            elif found.state is ContainerState.RUNNING and now >= at:
                del self._exits[container_id]
                self._containers[container_id] = replace(
                    found,
                    state=ContainerState.EXITED,
                    finished_at=now,
                    exit_code=code,
                    reason="Completed" if code == 0 else "Error",
                )

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

    async def exec_stream(
        self,
        container_id: str,
        command: list[str],
        *,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        tty: bool,
    ) -> ExecSession:
        """There is no process to run a command beside: the session reports an error."""
        raise StreamsUnsupported(f"exec is not supported on simulated node {self.node_name}")

    async def attach(
        self, container_id: str, *, stdin: bool, stdout: bool, stderr: bool
    ) -> ExecSession:
        raise StreamsUnsupported(f"attach is not supported on simulated node {self.node_name}")

    async def close(self) -> None:
        return None
