"""Liveness, readiness and startup probes, run as the kubelet 1.32's prober runs them.

One worker task per (pod uid, container name, probe kind) while that container runs, all
owned by the TaskGroup of ``ProbeManager.run()``, so probes stop with the kubelet and no task
outlives it. The kubelet tells the manager what runs after each sync (``update``); a worker
is bound to one container ID, so a restarted container starts from fresh results, as
upstream resets them on a new ID.

Semantics kept from upstream (pkg/kubelet/prober): a probe runs at once, then every
``periodSeconds``; nothing before ``initialDelaySeconds`` since the container started; a result
only changes after ``successThreshold``/``failureThreshold`` equal results in a row; until a
startup probe succeeds it alone runs; readiness starts "not ready" and liveness "healthy";
a liveness (or startup) failure puts the worker on hold and asks the kubelet to kill the
container; a check that could not be run is retried three times, then discarded (never
counted); on pod deletion liveness and startup stop and report success for a quiet shutdown.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import structlog

from minikube_py.kubelet.probe_checks import (
    CheckResult,
    Outcome,
    ProbeError,
    run_check,
)
from minikube_py.kubelet.runtime.interface import ContainerRuntime, ContainerState, ContainerStatus
from minikube_py.meta.objects import Obj, dig

log = structlog.get_logger(__name__)

MAX_RETRIES = 3  # attempts of a check that errors, within one probe
MIN_GRACE = 2.0  # the kubelet's minimumGracePeriodInSeconds

OnChange = Callable[[str], None]
"""``on_change(uid)``: readiness or startedness of one of the pod's containers changed."""
Kill = Callable[[str, str, str, float], Awaitable[None]]
"""``kill(uid, container_id, message, grace_seconds)``: stop a container that failed."""
Event = Callable[[Obj, str, str, str, str], None]
"""``event(pod, type, reason, message, field_path)``: EventRecorder.record's shape."""
Sleep = Callable[[float], Awaitable[None]]


class ProbeKind(enum.Enum):
    LIVENESS = "Liveness"
    READINESS = "Readiness"
    STARTUP = "Startup"

    @property
    def field(self) -> str:
        return f"{self.name.lower()}Probe"


class Result(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


# What a new container's probe reports before its first verdict (upstream initialValue).
INITIAL = {
    ProbeKind.READINESS: Result.FAILURE,
    ProbeKind.LIVENESS: Result.SUCCESS,
    ProbeKind.STARTUP: Result.UNKNOWN,
}


def _count(value: object, default: int) -> int:
    """A probe field the API defaults; zero or absent means the default."""
    return int(value) if isinstance(value, int | float) and value > 0 else default


@dataclass(frozen=True)
class ProbeSpec:
    kind: ProbeKind
    probe: Obj  # the handler (exec, httpGet, tcpSocket or grpc) and the raw fields
    initial_delay: int = 0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def parse(cls, kind: ProbeKind, probe: Obj) -> ProbeSpec:
        """Fields with the API's defaults; successThreshold is 1 but for readiness."""
        success = _count(probe.get("successThreshold"), 1)
        return cls(
            kind=kind,
            probe=probe,
            initial_delay=int(probe.get("initialDelaySeconds") or 0),
            period=float(_count(probe.get("periodSeconds"), 10)),
            timeout=float(_count(probe.get("timeoutSeconds"), 1)),
            success_threshold=success if kind is ProbeKind.READINESS else 1,
            failure_threshold=_count(probe.get("failureThreshold"), 3),
        )


@dataclass
class _Target:
    """The running container a pod's probes look at (replaced when its ID changes)."""

    pod: Obj
    container: Obj
    container_id: str
    started_at: float
    pod_ip: str
    sidecar: bool  # a restartable init container: restarted whatever the pod's policy


@dataclass(eq=False)
class _Worker:
    uid: str
    name: str
    spec: ProbeSpec
    target: _Target
    last: Result | None = None
    run_length: int = 0
    on_hold: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def key(self) -> tuple[str, str, ProbeKind]:
        return (self.uid, self.name, self.spec.kind)


def probed_containers(pod: Obj) -> dict[str, tuple[Obj, bool]]:
    """Containers that can have probes: regular ones and restartable init (sidecar) ones."""
    spec = pod.get("spec") or {}
    found = {str(c.get("name")): (c, False) for c in spec.get("containers") or []}
    for init in spec.get("initContainers") or []:
        if init.get("restartPolicy") == "Always":
            found[str(init.get("name"))] = (init, True)
    return found


def kill_grace(pod: Obj, probe: Obj) -> float:
    """Grace for a probe kill: deletion's, else the probe's own, else the pod's (upstream)."""
    deletion = dig(pod, "metadata", "deletionGracePeriodSeconds")
    if deletion is not None:
        return float(deletion)
    pod_grace = dig(pod, "spec", "terminationGracePeriodSeconds")
    if pod_grace is None:
        return MIN_GRACE
    own = probe.get("terminationGracePeriodSeconds")
    return float(own if own is not None else pod_grace)


def _field_path(target: _Target, name: str) -> str:
    return f"spec.{'initContainers' if target.sidecar else 'containers'}{{{name}}}"


class ProbeManager:
    """Runs probes for the pods of one kubelet and remembers their latest verdicts."""

    def __init__(
        self,
        runtime: ContainerRuntime,
        *,
        kill: Kill,
        on_change: OnChange = lambda uid: None,
        event: Event = lambda pod, type_, reason, message, field_path: None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.runtime = runtime
        self.kill = kill
        self.on_change = on_change
        self.event = event
        self.clock = clock  # wall time, comparable with ContainerStatus.started_at
        self.sleep = sleep
        self._targets: dict[tuple[str, str], _Target] = {}
        self._workers: dict[tuple[str, str, ProbeKind], _Worker] = {}
        self._results: dict[tuple[str, str, ProbeKind], tuple[str, Result]] = {}
        self._group: asyncio.TaskGroup | None = None

    # -- lifetime --

    async def run(self) -> None:
        """Own every worker (and kill) task until cancelled; workers added earlier start now."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            try:
                for worker in self._workers.values():
                    self._start(worker)
                await asyncio.get_running_loop().create_future()  # until cancelled
            finally:
                self._group = None
                for worker in self._workers.values():
                    worker.task = None  # cancelled with the group; a new run() restarts them

    def _start(self, worker: _Worker) -> None:
        if self._group is not None and worker.task is None:
            kind = worker.spec.kind.value.lower()
            worker.task = self._group.create_task(
                self._work(worker), name=f"probe-{kind}-{worker.uid}-{worker.name}"
            )

    def _stop(self, key: tuple[str, str, ProbeKind]) -> None:
        worker = self._workers.pop(key, None)
        if worker is not None and worker.task is not None:
            worker.task.cancel()

    # -- what the kubelet tells us --

    def update(self, pod: Obj, containers: Mapping[str, ContainerStatus], *, pod_ip: str) -> None:
        """After a sync: start workers for newly running containers, stop the others'.

        ``containers`` is the newest runtime status per container name (sync's ``newest``).
        Call it before computing the pod's status, so that ``readiness``/``started`` know
        which probes the pod has from its first report on.
        """
        uid = str(pod["metadata"]["uid"])
        if dig(pod, "status", "phase") in ("Succeeded", "Failed"):
            self.remove_pod(uid)
            return
        probed = probed_containers(pod)
        for gone in [k for k in self._targets if k[0] == uid and k[1] not in probed]:
            self._drop(*gone)
        for name, (container, sidecar) in probed.items():
            status = containers.get(name)
            if status is None or status.state is not ContainerState.RUNNING:
                self._drop(uid, name)
                continue
            target = self._targets.get((uid, name))
            if target is None or target.container_id != status.id:
                self._drop(uid, name)
                target = _Target(pod, container, status.id, status.started_at, pod_ip, sidecar)
                self._targets[(uid, name)] = target
                self._add_workers(uid, name, target)
            target.pod, target.pod_ip = pod, pod_ip or target.pod_ip
            if pod["metadata"].get("deletionTimestamp"):
                self._quiesce(uid, name, target)

    def _add_workers(self, uid: str, name: str, target: _Target) -> None:
        for kind in ProbeKind:
            probe = target.container.get(kind.field)
            if not probe:
                continue
            worker = _Worker(uid, name, ProbeSpec.parse(kind, probe), target)
            self._workers[worker.key] = worker
            self._results[worker.key] = (target.container_id, INITIAL[kind])
            self._start(worker)

    def _quiesce(self, uid: str, name: str, target: _Target) -> None:
        """The pod is terminating: liveness and startup report success and stop (upstream)."""
        for kind in (ProbeKind.LIVENESS, ProbeKind.STARTUP):
            if (uid, name, kind) in self._workers:
                self._stop((uid, name, kind))
                self._store((uid, name, kind), target.container_id, Result.SUCCESS)

    def _drop(self, uid: str, name: str) -> None:
        """Forget a container's target, workers and results (it stopped or was replaced)."""
        self._targets.pop((uid, name), None)
        for kind in ProbeKind:
            self._stop((uid, name, kind))
            self._results.pop((uid, name, kind), None)

    def remove_pod(self, uid: str) -> None:
        """The pod is gone or finished: stop its workers and forget its results."""
        for key in [k for k in self._targets if k[0] == uid]:
            self._drop(*key)

    # -- what the kubelet asks --

    def _result(self, uid: str, name: str, kind: ProbeKind) -> Result | None:
        target = self._targets.get((uid, name))
        stored = self._results.get((uid, name, kind))
        if target is None or stored is None or stored[0] != target.container_id:
            return None
        return stored[1]

    def started(self, uid: str, name: str) -> bool:
        """Running, and its startup probe (if any) has succeeded."""
        target = self._targets.get((uid, name))
        if target is None:
            return False
        if not target.container.get(ProbeKind.STARTUP.field):
            return True
        return self._result(uid, name, ProbeKind.STARTUP) is Result.SUCCESS

    def readiness(self, uid: str, name: str) -> bool:
        """Started, and its readiness probe (if any) has succeeded.

        When the probe has not succeeded yet, this also wakes its worker to probe at once,
        as upstream's UpdatePodStatus does: a pod's readiness is asked for when its status
        is written, and that is when a fresh answer is worth most.
        """
        target = self._targets.get((uid, name))
        if target is None or not self.started(uid, name):
            return False
        if not target.container.get(ProbeKind.READINESS.field):
            return True
        if self._result(uid, name, ProbeKind.READINESS) is Result.SUCCESS:
            return True
        worker = self._workers.get((uid, name, ProbeKind.READINESS))
        if worker is not None:
            worker.wake.set()
        return False

    def active(self, uid: str) -> set[tuple[str, ProbeKind]]:
        """The (container, kind) pairs of ``uid`` that have a worker: for tests and debugging."""
        return {(name, kind) for (u, name, kind) in self._workers if u == uid}

    # -- the workers --

    async def _work(self, worker: _Worker) -> None:
        """Probe at once, then every period or when woken, until cancelled."""
        while True:
            worker.wake.clear()
            try:
                await self._probe_once(worker)
            except Exception:  # a bug here must not take the kubelet's TaskGroup down
                log.exception("probe worker failed", uid=worker.uid, container=worker.name)
            await self._pause(worker)

    async def _pause(self, worker: _Worker) -> None:
        if worker.wake.is_set():
            return
        napping = asyncio.ensure_future(self.sleep(worker.spec.period))
        woken = asyncio.ensure_future(worker.wake.wait())
        try:
            await asyncio.wait((napping, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            napping.cancel()
            woken.cancel()
            await asyncio.gather(napping, woken, return_exceptions=True)

    async def _probe_once(self, worker: _Worker) -> None:
        """One tick of upstream's ``doProbe``."""
        spec, target = worker.spec, worker.target
        if worker.on_hold:  # a kill is on its way; a new container gets a new worker
            return
        if int(self.clock() - target.started_at) < spec.initial_delay:
            return
        started = self.started(worker.uid, worker.name)
        if spec.kind is ProbeKind.STARTUP and started:
            return  # its job is done; it idles until the container goes
        if spec.kind is not ProbeKind.STARTUP and not started:
            return  # gated until the startup probe succeeds
        try:
            check = await self._check(worker)
        except ProbeError as exc:
            self._emit(
                worker,
                "Unhealthy",
                f"{spec.kind.value} probe errored and resulted in {exc.outcome.value} state: {exc}",
            )
            return
        self._record(worker, self._verdict(worker, check))

    async def _check(self, worker: _Worker) -> CheckResult:
        """Run the check, again at once if it could not be run, up to three times."""
        target = worker.target
        for attempt in range(MAX_RETRIES):
            try:
                return await run_check(
                    worker.spec.probe,
                    runtime=self.runtime,
                    container=target.container,
                    container_id=target.container_id,
                    pod_ip=target.pod_ip,
                    limit_seconds=worker.spec.timeout,
                )
            except ProbeError:
                if attempt == MAX_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _verdict(self, worker: _Worker, check: CheckResult) -> Result:
        kind = worker.spec.kind.value
        if check.outcome is Outcome.SUCCESS:
            return Result.SUCCESS
        if check.outcome is Outcome.WARNING:
            self._emit(worker, "ProbeWarning", f"{kind} probe warning: {check.output}")
            return Result.SUCCESS
        if check.outcome is Outcome.FAILURE:
            self._emit(worker, "Unhealthy", f"{kind} probe failed: {check.output}")
        return Result.FAILURE

    def _record(self, worker: _Worker, result: Result) -> None:
        """Count equal results in a row; past the threshold, that is the new verdict."""
        if worker.last is result:
            worker.run_length += 1
        else:
            worker.last, worker.run_length = result, 1
        spec = worker.spec
        needed = spec.failure_threshold if result is Result.FAILURE else spec.success_threshold
        if worker.run_length < needed:
            return
        self._store(worker.key, worker.target.container_id, result)
        if result is Result.FAILURE and spec.kind is not ProbeKind.READINESS:
            worker.on_hold, worker.run_length = True, 0
            self._kill(worker)

    def _store(self, key: tuple[str, str, ProbeKind], container_id: str, result: Result) -> None:
        if self._results.get(key) == (container_id, result):
            return
        self._results[key] = (container_id, result)
        uid, name, kind = key
        if kind is ProbeKind.STARTUP and result is Result.SUCCESS:
            readiness = self._workers.get((uid, name, ProbeKind.READINESS))
            if readiness is not None:
                readiness.wake.set()  # no need to wait a period to become ready
        self._notify(uid)

    def _notify(self, uid: str) -> None:
        try:
            self.on_change(uid)
        except Exception:
            log.exception("probe on_change callback failed", uid=uid)

    def _emit(self, worker: _Worker, reason: str, message: str) -> None:
        target = worker.target
        try:
            self.event(target.pod, "Warning", reason, message, _field_path(target, worker.name))
        except Exception:
            log.exception("probe event callback failed", uid=worker.uid, reason=reason)

    # -- kills --

    def _kill(self, worker: _Worker) -> None:
        target = worker.target
        what = "liveness" if worker.spec.kind is ProbeKind.LIVENESS else "startup"
        message = f"Container {worker.name} failed {what} probe"
        if target.sidecar or dig(target.pod, "spec", "restartPolicy") != "Never":
            message += ", will be restarted"
        grace = kill_grace(target.pod, worker.spec.probe)
        if self._group is None:  # pragma: no cover - workers only run inside run()
            return
        # Its own task: the worker may be cancelled (the container stops) while it kills.
        self._group.create_task(
            self._kill_now(worker, message, grace), name=f"probe-kill-{worker.uid}-{worker.name}"
        )

    async def _kill_now(self, worker: _Worker, message: str, grace: float) -> None:
        container_id = worker.target.container_id
        log.info("killing container that failed its probe", uid=worker.uid, message=message)
        try:
            await self.kill(worker.uid, container_id, message, grace)
        except Exception:
            # The container runs on: probe again, and ask again after failureThreshold more.
            log.exception("probe kill failed", uid=worker.uid, container=worker.name)
            worker.on_hold = False
            return
        self._notify(worker.uid)
