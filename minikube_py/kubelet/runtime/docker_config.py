"""Pure translation between the runtime's dataclasses and Docker Engine API bodies.

Kept apart from ``docker.py`` (which does the I/O) so every rule here is testable without a
daemon: names and labels as the Docker shim wrote them, Kubernetes command/args semantics
over the image's ENTRYPOINT/CMD, resources, security; and back from ``GET
/containers/{id}/json`` to SandboxStatus/ContainerStatus.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from minikube_py.kubelet.runtime.interface import (
    CONTAINER_NAME,
    CONTAINER_TYPE,
    MANAGED_BY,
    NODE_NAME,
    POD_NAME,
    POD_NAMESPACE,
    POD_UID,
    RESTART_COUNT,
    SANDBOX_ID,
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    ItemState,
    PodRef,
    SandboxConfig,
    SandboxStatus,
)

Body = dict[str, Any]

DEFAULT_PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
TYPE_SANDBOX = "podsandbox"
TYPE_CONTAINER = "container"
# Recorded (as the Docker shim did) so the path is known from the runtime alone.
TERMINATION_MESSAGE_PATH = "io.kubernetes.container.terminationMessagePath"
# Docker has no annotations: the shim stored pod annotations as labels with this prefix.
ANNOTATION_PREFIX = "annotation."

CPU_PERIOD = 100_000  # µs: the CFS period the kubelet uses
MIN_CPU_QUOTA = 1_000  # µs: the kernel's minimum (the kubelet's MinQuotaPeriod)
MIN_CPU_SHARES = 2  # the kernel's minimum; Docker rejects less

_STATES = {
    "created": ContainerState.CREATED,
    "running": ContainerState.RUNNING,
    "paused": ContainerState.RUNNING,
    "restarting": ContainerState.RUNNING,
    "removing": ContainerState.EXITED,
    "exited": ContainerState.EXITED,
    "dead": ContainerState.EXITED,
}
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


# -- names and labels --


def sandbox_name(pod: PodRef, attempt: int) -> str:
    """``k8s_POD_<pod>_<namespace>_<uid>_<attempt>``: `docker ps` reads like under the shim."""
    return f"k8s_POD_{pod.name}_{pod.namespace}_{pod.uid}_{attempt}"


def container_name(config: ContainerConfig) -> str:
    """``k8s_<container>_<pod>_<namespace>_<uid>_<attempt>``; unique per restart."""
    pod = config.pod
    return f"k8s_{config.name}_{pod.name}_{pod.namespace}_{pod.uid}_{config.attempt}"


def _identity(pod: PodRef, node_name: str, kind: str) -> dict[str, str]:
    return {
        POD_UID: pod.uid,
        POD_NAME: pod.name,
        POD_NAMESPACE: pod.namespace,
        CONTAINER_TYPE: kind,
        MANAGED_BY: "true",
        NODE_NAME: node_name,
    }


def sandbox_labels(config: SandboxConfig, node_name: str) -> dict[str, str]:
    """Pod labels and annotations first, so they can never shadow the identity labels."""
    labels = dict(config.labels)
    labels.update({ANNOTATION_PREFIX + k: v for k, v in config.annotations.items()})
    labels.update(_identity(config.pod, node_name, TYPE_SANDBOX))
    return labels


def container_labels(config: ContainerConfig, sandbox_id: str, node_name: str) -> dict[str, str]:
    labels = dict(config.labels)
    labels.update(_identity(config.pod, node_name, TYPE_CONTAINER))
    labels[CONTAINER_NAME] = config.name
    labels[RESTART_COUNT] = str(config.attempt)
    labels[SANDBOX_ID] = sandbox_id
    labels[TERMINATION_MESSAGE_PATH] = config.termination_message_path
    return labels


def label_filters(node_name: str, kind: str | None, **match: str | None) -> dict[str, list[str]]:
    """A ``filters`` value for ``GET /containers/json``: ours, this node's, of one ``kind``
    (of both, sandboxes and containers, when ``kind`` is None).

    ``match`` adds label conditions by interface key name (``pod_uid=``, ``sandbox_id=``);
    None values are left out, so callers pass optional filters straight through.
    """
    keys = {"pod_uid": POD_UID, "sandbox_id": SANDBOX_ID}
    wanted = {MANAGED_BY: "true", NODE_NAME: node_name}
    if kind is not None:
        wanted[CONTAINER_TYPE] = kind
    wanted.update({keys[k]: v for k, v in match.items() if v is not None})
    return {"label": [f"{k}={v}" for k, v in wanted.items()]}


# -- create bodies --


def _port_key(container_port: int, protocol: str) -> str:
    return f"{container_port}/{protocol.lower() or 'tcp'}"


def sandbox_body(config: SandboxConfig, *, image: str, node_name: str) -> Body:
    """The pause container that holds the pod's network and IPC namespaces.

    Host ports are published here because app containers join this network namespace and
    Docker refuses port bindings on a ``container:`` network. Hostname and DNS are refused
    by Docker on the host network (the pod then has the node's), so they are left out there.
    """
    host: Body = {
        "NetworkMode": "host" if config.host_network else "bridge",
        "IpcMode": "shareable",  # so containers can join it with IpcMode container:<id>
        "RestartPolicy": {"Name": "no"},  # the kubelet decides about restarts
        "Init": False,
    }
    body: Body = {"Image": image, "Labels": sandbox_labels(config, node_name), "HostConfig": host}
    if config.host_network:
        return body
    body["Hostname"] = config.hostname
    if config.dns_servers:
        host["Dns"] = list(config.dns_servers)
    if config.dns_searches:
        host["DnsSearch"] = list(config.dns_searches)
    if config.ports:
        body["ExposedPorts"] = {_port_key(p.container_port, p.protocol): {} for p in config.ports}
        bindings: dict[str, list[dict[str, str]]] = {}
        for port in config.ports:
            if port.host_port > 0:
                binding = {"HostIp": port.host_ip, "HostPort": str(port.host_port)}
                bindings.setdefault(_port_key(port.container_port, port.protocol), []).append(
                    binding
                )
        host["PortBindings"] = bindings
    return body


def _user(config: ContainerConfig) -> str:
    """``uid`` or ``uid:gid``; a group without a user cannot be said to Docker (image user)."""
    sec = config.security
    if sec.run_as_user is None:
        return ""
    if sec.run_as_group is None:
        return str(sec.run_as_user)
    return f"{sec.run_as_user}:{sec.run_as_group}"


def _mounts(config: ContainerConfig, host: Body) -> None:
    """Bind mounts, and a tmpfs per container for a Memory emptyDir.

    ``host_path`` is the final source: the kubelet already resolved ``sub_path`` into it
    (``containers.mounts``), so ``sub_path`` is not applied a second time here. A tmpfs is
    private to its container (it is not shared with the pod's other containers).
    """
    binds = []
    tmpfs: dict[str, str] = {}
    for mount in config.mounts:
        if mount.tmpfs:
            tmpfs[mount.container_path] = "ro" if mount.read_only else "rw"
        else:
            suffix = ":ro" if mount.read_only else ""
            binds.append(f"{mount.host_path}:{mount.container_path}{suffix}")
    if binds:
        host["Binds"] = binds
    if tmpfs:
        host["Tmpfs"] = tmpfs


def _resources(config: ContainerConfig, host: Body) -> None:
    if config.memory_limit > 0:
        host["Memory"] = config.memory_limit
        host["MemorySwap"] = config.memory_limit  # no swap on top, as the kubelet does
    if config.cpu_limit_millis > 0:
        host["CpuPeriod"] = CPU_PERIOD
        host["CpuQuota"] = max(MIN_CPU_QUOTA, config.cpu_limit_millis * CPU_PERIOD // 1000)
    if config.cpu_shares > 0:
        host["CpuShares"] = max(MIN_CPU_SHARES, config.cpu_shares)


def container_body(config: ContainerConfig, *, sandbox_id: str, node_name: str) -> Body:
    """An app container inside the sandbox's network and IPC namespaces (own PID namespace).

    Command and args follow Kubernetes: ``command`` replaces the image's ENTRYPOINT (and
    then Docker drops the image's CMD too), ``args`` replace CMD. Keys are left out rather
    than sent empty: an empty Entrypoint list would *clear* the image's entrypoint.
    """
    sec = config.security
    host: Body = {
        "NetworkMode": f"container:{sandbox_id}",
        "IpcMode": f"container:{sandbox_id}",
        "RestartPolicy": {"Name": "no"},
        "Init": False,
        "Privileged": sec.privileged,
        "ReadonlyRootfs": sec.read_only_root,
    }
    if sec.add_capabilities:
        host["CapAdd"] = list(sec.add_capabilities)
    if sec.drop_capabilities:
        host["CapDrop"] = list(sec.drop_capabilities)
    _mounts(config, host)
    _resources(config, host)
    body: Body = {
        "Image": config.image,
        "Labels": container_labels(config, sandbox_id, node_name),
        "Env": [f"{name}={value}" for name, value in config.env],
        "OpenStdin": config.stdin,
        "StdinOnce": config.stdin_once,
        "Tty": config.tty,
        "HostConfig": host,
    }
    if config.command:
        body["Entrypoint"] = list(config.command)
    if config.args:
        body["Cmd"] = list(config.args)
    if config.working_dir:
        body["WorkingDir"] = config.working_dir
    if user := _user(config):
        body["User"] = user
    return body


# -- inspect results --


def parse_time(text: str | None) -> float:
    """Docker's RFC3339Nano (``2024-05-01T10:00:00.123456789Z``) as epoch seconds.

    Docker writes Go's zero time (year 1) for "never": that, empty and unparsable are 0.0,
    the interface's "unset".
    """
    match = _RFC3339.match(text or "")
    if match is None or match.group(1).startswith("0001-"):
        return 0.0
    base, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    seconds = dt.datetime.fromisoformat(base + zone).timestamp()
    return seconds + (float("0." + fraction) if fraction else 0.0)


def _labels(info: Mapping[str, Any]) -> dict[str, str]:
    return dict((info.get("Config") or {}).get("Labels") or {})


def pod_of(labels: Mapping[str, str]) -> PodRef:
    return PodRef(
        uid=labels.get(POD_UID, ""),
        name=labels.get(POD_NAME, ""),
        namespace=labels.get(POD_NAMESPACE, ""),
    )


def _attempt_from_name(name: str) -> int:
    """The sandbox attempt is the name's last field, as the shim parsed it."""
    _, _, last = name.rpartition("_")
    return int(last) if last.isdigit() else 0


def is_sandbox(labels: Mapping[str, str]) -> bool:
    return labels.get(CONTAINER_TYPE) == TYPE_SANDBOX


def _ip(info: Mapping[str, Any]) -> str:
    """The bridge IP; "" on the host network (the kubelet reports the node IP then)."""
    settings = info.get("NetworkSettings") or {}
    if settings.get("IPAddress"):
        return str(settings["IPAddress"])
    for network in (settings.get("Networks") or {}).values():
        if network and network.get("IPAddress"):
            return str(network["IPAddress"])
    return ""


def parse_sandbox(info: Mapping[str, Any]) -> SandboxStatus:
    state = info.get("State") or {}
    return SandboxStatus(
        id=str(info["Id"]),
        pod=pod_of(_labels(info)),
        attempt=_attempt_from_name(str(info.get("Name", ""))),
        ready=state.get("Status") == "running",
        ip=_ip(info) if state.get("Status") == "running" else "",
        created_at=parse_time(info.get("Created")),
    )


def _state_and_reason(state: Mapping[str, Any]) -> tuple[ContainerState, str]:
    """Docker's state as the CRI reports it, with the kubelet's reasons for exits.

    A container whose start failed stays "created" in Docker with ``Error`` set; it is
    reported exited (ContainerCannotRun) so that the kubelet restarts it with back-off
    instead of starting it again and again.
    """
    status = _STATES.get(str(state.get("Status", "")), ContainerState.UNKNOWN)
    if status is ContainerState.CREATED and state.get("Error"):
        return ContainerState.EXITED, "ContainerCannotRun"
    if status is not ContainerState.EXITED:
        return status, ""
    if state.get("OOMKilled"):
        return status, "OOMKilled"
    return status, "Completed" if int(state.get("ExitCode") or 0) == 0 else "Error"


def parse_container(info: Mapping[str, Any]) -> ContainerStatus:
    labels = _labels(info)
    state = info.get("State") or {}
    status, reason = _state_and_reason(state)
    count = labels.get(RESTART_COUNT, "0")
    started = parse_time(state.get("StartedAt"))
    finished = parse_time(state.get("FinishedAt"))
    return ContainerStatus(
        id=str(info["Id"]),
        pod=pod_of(labels),
        name=labels.get(CONTAINER_NAME, ""),
        attempt=int(count) if count.isdigit() else 0,
        image=str((info.get("Config") or {}).get("Image", "")),
        image_id=str(info.get("Image", "")),
        state=status,
        created_at=parse_time(info.get("Created")),
        started_at=started,
        # Docker may record a fast container's exit before its start (both set by the
        # daemon on different paths): never report finishing before starting.
        finished_at=max(finished, started) if finished else 0.0,
        exit_code=int(state.get("ExitCode") or 0),
        reason=reason,
        message=str(state.get("Error") or ""),
    )


# -- list results --


def parse_listed(entry: Mapping[str, Any]) -> ItemState:
    """One entry of ``GET /containers/json`` (not an inspect): id, pod, kind, state, IP.

    The listing's ``State`` is the same word as an inspect's ``State.Status``; its
    ``NetworkSettings.Networks`` carries the same IPs.
    """
    labels = entry.get("Labels") or {}
    sandbox = is_sandbox(labels)
    word = str(entry.get("State", ""))
    running = word == "running"
    return ItemState(
        id=str(entry["Id"]),
        pod_uid=str(labels.get(POD_UID, "")),
        sandbox=sandbox,
        state=_STATES.get(word, ContainerState.UNKNOWN),
        ip=_ip(entry) if sandbox and running else "",
    )
