"""Pod status from what the runtime reports: phase, conditions and container statuses.

Pure functions, as the kubelet's ``generateAPIPodStatus``: given the pod's spec, the
sandbox and the newest runtime container per spec container (and the one before it, for
``lastState``), say what the API should show. No I/O, so every rule is testable alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from minikube_py.kubelet.runtime.interface import ContainerState, ContainerStatus, SandboxStatus
from minikube_py.meta.objects import Obj, format_time


@dataclass(frozen=True)
class Observed:
    """What the runtime holds for one pod, plus the kubelet's own waiting reasons."""

    sandbox: SandboxStatus | None
    latest: Mapping[str, ContainerStatus]  # container name → newest attempt
    previous: Mapping[str, ContainerStatus]  # container name → the attempt before it
    waiting: Mapping[str, tuple[str, str]]  # container name → (reason, message)
    ready: Mapping[str, bool]  # container name → readiness (probe or running)
    host_ip: str = ""
    start_time: float = 0.0


def _time(moment: float) -> str | None:
    return format_time(moment) if moment else None


def container_state(status: ContainerStatus | None, waiting: tuple[str, str] | None) -> Obj:
    if status is None or status.state in (ContainerState.CREATED, ContainerState.UNKNOWN):
        reason, message = waiting or ("ContainerCreating", "")
        state: Obj = {"reason": reason}
        if message:
            state["message"] = message
        return {"waiting": state}
    if status.state is ContainerState.RUNNING:
        return {"running": {"startedAt": _time(status.started_at)}}
    if waiting is not None:  # exited, and held back (CrashLoopBackOff)
        return {"waiting": {"reason": waiting[0], "message": waiting[1]}}
    return {"terminated": terminated(status)}


def terminated(status: ContainerStatus) -> Obj:
    state: Obj = {
        "exitCode": status.exit_code,
        "reason": status.reason or ("Completed" if status.exit_code == 0 else "Error"),
        "startedAt": _time(status.started_at),
        "finishedAt": _time(status.finished_at),
        "containerID": f"docker://{status.id}",
    }
    if status.message:
        state["message"] = status.message
    return state


def container_status(spec: Obj, observed: Observed) -> Obj:
    name = str(spec.get("name", ""))
    latest = observed.latest.get(name)
    waiting = observed.waiting.get(name)
    state = container_state(latest, waiting)
    result: Obj = {
        "name": name,
        "state": state,
        "lastState": {},
        "ready": bool(observed.ready.get(name)) and "running" in state,
        "restartCount": latest.attempt if latest else 0,
        "image": spec.get("image", ""),
        "imageID": latest.image_id if latest else "",
        "started": "running" in state,
    }
    if latest is not None:
        result["containerID"] = f"docker://{latest.id}"
    previous = observed.previous.get(name)
    if "waiting" in state and latest is not None and latest.state is ContainerState.EXITED:
        result["lastState"] = {"terminated": terminated(latest)}
    elif previous is not None and previous.state is ContainerState.EXITED:
        result["lastState"] = {"terminated": terminated(previous)}
    return result


def _init_done(spec: Obj, observed: Observed) -> bool:
    for container in spec.get("initContainers") or []:
        status = observed.latest.get(str(container.get("name")))
        if status is None or status.state is not ContainerState.EXITED or status.exit_code:
            return False
    return True


def phase(spec: Obj, observed: Observed) -> str:
    """Pending until every container started; Succeeded/Failed once all are done for good."""
    policy = spec.get("restartPolicy", "Always")
    init = spec.get("initContainers") or []
    if init and not _init_done(spec, observed):
        failed_init = any(
            (s := observed.latest.get(str(c.get("name")))) is not None
            and s.state is ContainerState.EXITED
            and s.exit_code != 0
            for c in init
        )
        return "Failed" if failed_init and policy == "Never" else "Pending"
    states = [observed.latest.get(str(c.get("name"))) for c in spec.get("containers") or []]
    if any(
        s is None or s.state in (ContainerState.CREATED, ContainerState.UNKNOWN) for s in states
    ):
        return "Pending"
    running = [s for s in states if s is not None and s.state is ContainerState.RUNNING]
    if running:
        return "Running"
    exited = [s for s in states if s is not None]
    if policy == "Always":
        return "Running"  # all exited, about to be restarted
    failed = [s for s in exited if s.exit_code != 0]
    if not failed:
        return "Succeeded"
    return "Failed" if policy == "Never" else "Running"


def _condition(kind: str, ok: bool, now: str, previous: Obj, reason: str = "") -> Obj:
    """A condition keeping its lastTransitionTime while its status holds."""
    status = "True" if ok else "False"
    old = next((c for c in previous.get("conditions") or [] if c.get("type") == kind), None)
    since = old["lastTransitionTime"] if old and old.get("status") == status else now
    condition: Obj = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": since,
    }
    if reason and not ok:
        condition["reason"] = reason
    return condition


def pod_status(pod: Obj, observed: Observed, now: float) -> Obj:
    """The complete status the kubelet writes for ``pod``."""
    spec = pod.get("spec") or {}
    previous = pod.get("status") or {}
    stamp = format_time(now)
    containers = [container_status(c, observed) for c in spec.get("containers") or []]
    init = [container_status(c, observed) for c in spec.get("initContainers") or []]
    current_phase = phase(spec, observed)
    initialized = _init_done(spec, observed)
    all_ready = bool(containers) and all(c["ready"] for c in containers)
    done = current_phase in ("Succeeded", "Failed")
    status: Obj = {
        "phase": current_phase,
        "conditions": [
            _condition(
                "PodReadyToStartContainers",
                observed.sandbox is not None and observed.sandbox.ready,
                stamp,
                previous,
            ),
            _condition("Initialized", initialized, stamp, previous, "ContainersNotInitialized"),
            _condition(
                "Ready",
                all_ready and not done,
                stamp,
                previous,
                "PodCompleted" if done else "ContainersNotReady",
            ),
            _condition(
                "ContainersReady",
                all_ready and not done,
                stamp,
                previous,
                "PodCompleted" if done else "ContainersNotReady",
            ),
            _condition("PodScheduled", True, stamp, previous),
        ],
        "hostIP": observed.host_ip,
        "hostIPs": [{"ip": observed.host_ip}] if observed.host_ip else [],
        "startTime": _time(observed.start_time) or previous.get("startTime"),
        "containerStatuses": containers,
        "qosClass": previous.get("qosClass", "BestEffort"),
    }
    if init:
        status["initContainerStatuses"] = init
    ip = observed.sandbox.ip if observed.sandbox is not None else ""
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return status
