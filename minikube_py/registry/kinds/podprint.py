"""How ``kubectl get pods`` prints a pod: READY, STATUS and RESTARTS as kubectl computes them."""

from __future__ import annotations

from typing import Any

from minikube_py.meta.objects import Obj, dig
from minikube_py.registry.strategy import human_age


def _terminated_reason(state: Obj, prefix: str = "") -> str:
    if state.get("reason"):
        return prefix + str(state["reason"])
    if state.get("signal"):
        return f"{prefix}Signal:{state['signal']}"
    return f"{prefix}ExitCode:{state.get('exitCode', 0)}"


def _condition_true(status: Obj, kind: str) -> bool:
    conditions = status.get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def _init_reason(spec: Obj, status: Obj) -> tuple[str | None, int]:
    """The Init:... status while init containers run, and their restarts."""
    restarts = 0
    statuses = status.get("initContainerStatuses")
    if not statuses:
        return None, 0
    total = len(spec.get("initContainers") or [])
    for index, status in enumerate(statuses):
        restarts += int(status.get("restartCount") or 0)
        state = status.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and terminated.get("exitCode") == 0:
            continue
        if state.get("running") is not None and status.get("started"):
            continue  # a sidecar that keeps running
        if terminated is not None:
            return _terminated_reason(terminated, "Init:"), restarts
        if waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            return f"Init:{waiting['reason']}", restarts
        return f"Init:{index}/{total}", restarts
    return None, restarts


def pod_columns(obj: Obj, now: float) -> tuple[str, str, str]:
    """(READY, STATUS, RESTARTS) exactly as kubectl's pod printer derives them."""
    status = obj.get("status") or {}
    spec = obj.get("spec") or {}
    total = len(spec.get("containers") or [])
    reason = str(status.get("reason") or status.get("phase") or "")
    init, restarts = _init_reason(spec, status)
    ready = 0
    last_restart: str | None = None
    if init is not None and not _condition_true(status, "Initialized"):
        reason = init
    else:
        restarts, has_running = 0, False
        for container in reversed(status.get("containerStatuses") or []):
            restarts += int(container.get("restartCount") or 0)
            finished = dig(container, "lastState", "terminated", "finishedAt")
            if finished and (last_restart is None or finished > last_restart):
                last_restart = finished
            state = container.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None:
                reason = _terminated_reason(terminated)
            elif container.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status, "Ready") else "NotReady"
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    shown = str(restarts)
    if restarts and last_restart:
        shown += f" ({human_age(last_restart, now)} ago)"
    return f"{ready}/{total}", reason, shown


def readiness_gates(obj: Obj) -> str:
    gates = dig(obj, "spec", "readinessGates") or []
    if not gates:
        return "<none>"
    status = obj.get("status") or {}
    met = sum(1 for g in gates if _condition_true(status, g.get("conditionType", "")))
    return f"{met}/{len(gates)}"


def wide_cells(obj: Obj) -> list[Any]:
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    return [
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        readiness_gates(obj) if spec.get("readinessGates") else "<none>",
    ]
