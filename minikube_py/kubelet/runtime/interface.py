"""The ContainerRuntime seam, shaped after the CRI: sandboxes and containers of pods.

The kubelet decides *what* should run; a runtime only does what it is told and reports
what exists. Everything a runtime creates carries labels (pod uid, name, namespace,
container name, restart count...) so that state can be rebuilt from the runtime alone
after a restart: re-adopted, never duplicated.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

# Label keys on every sandbox and container (the Docker shim used the same).
POD_UID = "io.kubernetes.pod.uid"
POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
CONTAINER_NAME = "io.kubernetes.container.name"
RESTART_COUNT = "io.kubernetes.container.restartCount"
SANDBOX_ID = "io.kubernetes.sandbox.id"
CONTAINER_TYPE = "io.kubernetes.docker.type"  # "podsandbox" or "container"
MANAGED_BY = "io.minikube-py.managed"  # "true" on everything minikube-py created
NODE_NAME = "io.minikube-py.node"


class ContainerState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class PodRef:
    """Identity of the pod a sandbox or container belongs to."""

    uid: str
    name: str
    namespace: str


@dataclass(frozen=True)
class Mount:
    host_path: str
    container_path: str
    read_only: bool = False
    tmpfs: bool = False  # emptyDir medium: Memory
    sub_path: str = ""


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int = 0
    protocol: str = "TCP"
    host_ip: str = ""


@dataclass(frozen=True)
class SandboxConfig:
    pod: PodRef
    attempt: int
    hostname: str
    host_network: bool = False
    ports: tuple[PortMapping, ...] = ()
    dns_servers: tuple[str, ...] = ()
    dns_searches: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SandboxStatus:
    id: str
    pod: PodRef
    attempt: int
    ready: bool  # the sandbox (pause) process runs
    ip: str
    created_at: float


@dataclass(frozen=True)
class SecurityContext:
    run_as_user: int | None = None
    run_as_group: int | None = None
    privileged: bool = False
    read_only_root: bool = False
    add_capabilities: tuple[str, ...] = ()
    drop_capabilities: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContainerConfig:
    pod: PodRef
    name: str
    attempt: int  # the restart count this container starts with
    image: str
    command: tuple[str, ...] = ()  # replaces the image's entrypoint when non-empty
    args: tuple[str, ...] = ()  # replaces the image's cmd when non-empty (or command set)
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str = ""
    mounts: tuple[Mount, ...] = ()
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    memory_limit: int = 0  # bytes, 0 = none
    cpu_limit_millis: int = 0  # 0 = none
    cpu_shares: int = 0
    security: SecurityContext = field(default_factory=SecurityContext)
    termination_message_path: str = "/dev/termination-log"
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerStatus:
    id: str
    pod: PodRef
    name: str
    attempt: int
    image: str
    image_id: str
    state: ContainerState
    created_at: float
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    reason: str = ""  # OOMKilled, Error, Completed, ...
    message: str = ""


@dataclass(frozen=True)
class PodSnapshot:
    """All that the runtime holds of one pod, read at one moment: what a sync works from."""

    sandboxes: list[SandboxStatus]
    """Oldest first (as created)."""
    containers: list[ContainerStatus]


@dataclass(frozen=True)
class ItemState:
    """One sandbox or container as a cheap listing shows it: enough to see that something
    changed (a new id, a state or an IP that differs), never what.

    Exit codes, reasons and timestamps are left out on purpose: a Docker listing does not
    have them (a full inspect would), and the state going to EXITED already says "look".
    """

    id: str
    pod_uid: str
    sandbox: bool
    """A pod's sandbox (pause container); False: one of its containers."""
    state: ContainerState
    ip: str = ""
    """A running sandbox's IP ("" on the host network, and for containers)."""


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: bytes


STDOUT, STDERR = 1, 2
"""Stream numbers of a process's output, as Docker and the channel protocol number them."""


class StreamsUnsupported(RuntimeError):
    """This runtime cannot stream a process (simulated nodes have no processes)."""


class ExecSession(Protocol):
    """A process's standard streams, live: an exec'd command, or a container attached to.

    Output comes as it is written, never gathered whole; ``write`` waits while the process
    does not read (flow control both ways). Always ``close()`` it.
    """

    async def read(self) -> tuple[int, bytes] | None:
        """(STDOUT or STDERR, bytes) as written (a TTY has only STDOUT); None at the end."""
        ...

    async def write(self, data: bytes) -> None:
        """Feed stdin; raises once the process is gone."""
        ...

    async def close_stdin(self) -> None:
        """EOF on stdin; output goes on until the process ends."""
        ...

    async def resize(self, width: int, height: int) -> None:
        """The TTY's new size in columns and rows (ignored without a TTY)."""
        ...

    async def exit_code(self) -> int | None:
        """After ``read`` returned None: an exec's exit code; None for an attach."""
        ...

    async def close(self) -> None:
        """Detach (an exec'd command may run on: Docker cannot kill it)."""
        ...


class RuntimeUnavailable(Exception):
    """The runtime cannot be reached (Docker down): the node turns NotReady."""


class ImagePullError(Exception):
    """The image could not be pulled (ErrImagePull / ImagePullBackOff), or is missing with
    pull policy Never (ErrImageNeverPull).

    ``str()`` is the whole sentence; ``detail`` the runtime's own words about the failure,
    which the kubelet puts in the waiting message and its events.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message


@dataclass(frozen=True)
class ImageResult:
    """What ``ensure_image`` found or did, so the kubelet's events can tell it: ``Pulled``
    with how long the pull took and the image's size, or "already present on machine"."""

    id: str
    """The image's ``sha256:`` ID."""
    pulled: bool = False
    """False: no pull was needed (or the one tried failed, see ``pull_error``)."""
    pull_seconds: float = 0.0
    """How long the registry pull itself took."""
    size: int = 0
    """The image's size in bytes, as the runtime reports it."""
    pull_error: str = ""
    """A pull was tried and failed, and the copy already present is used instead."""


PullStarting = Callable[[], None]
"""Called by ``ensure_image`` right before it pulls: the kubelet's ``Pulling`` moment."""


class ContainerRuntime(Protocol):
    """What the kubelet needs from a runtime. All methods are safe to retry."""

    async def version(self) -> str:
        """``docker://28.2.2`` style, for nodeInfo.containerRuntimeVersion."""
        ...

    async def ping(self) -> None:
        """Raise RuntimeUnavailable when the runtime does not answer."""
        ...

    async def ensure_image(
        self, image: str, policy: str, *, on_pull: PullStarting | None = None
    ) -> ImageResult:
        """Make ``image`` present per pull policy (Always, IfNotPresent, Never).

        ``on_pull`` is called just before a pull starts (never when none is needed).
        Raises ImagePullError when the image cannot be had.
        """
        ...

    async def run_sandbox(self, config: SandboxConfig) -> SandboxStatus:
        """Create and start the pod's sandbox (pause container); its status once started
        (with its IP), so the kubelet need not list the pod again to learn it."""
        ...

    async def stop_sandbox(self, sandbox_id: str, grace_seconds: float) -> None: ...

    async def remove_sandbox(self, sandbox_id: str) -> None: ...

    async def sandboxes(self, pod_uid: str | None = None) -> list[SandboxStatus]:
        """Sandboxes this node's runtime holds (all, or of one pod)."""
        ...

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str: ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        """SIGTERM, then SIGKILL after ``grace_seconds``."""
        ...

    async def remove_container(self, container_id: str) -> None: ...

    async def containers(self, pod_uid: str | None = None) -> list[ContainerStatus]: ...

    async def container_status(self, container_id: str) -> ContainerStatus | None:
        """One container's status now (after the kubelet created or started it); None if gone."""
        ...

    async def snapshot(self, pod_uid: str) -> PodSnapshot:
        """The pod's sandboxes and containers together, in as few runtime calls as it takes."""
        ...

    async def states(self) -> list[ItemState]:
        """Every sandbox and container of this node in one cheap call: the PLEG's relist.

        Cheap is the point: it runs every second whatever the number of pods, so it must
        not look at each container on its own.
        """
        ...

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
    ) -> AsyncIterator[bytes]: ...

    async def exec(self, container_id: str, command: list[str], limit_seconds: float) -> ExecResult:
        """Run a command to completion (probes); output is stdout and stderr together."""
        ...

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
        """Start ``command`` in the container with the streams asked for (``kubectl exec``)."""
        ...

    async def attach(
        self, container_id: str, *, stdin: bool, stdout: bool, stderr: bool
    ) -> ExecSession:
        """The container's own streams from now on (``kubectl attach``); its TTY is its own."""
        ...

    async def close(self) -> None: ...
