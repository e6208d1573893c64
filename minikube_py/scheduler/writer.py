"""The scheduler's writes, off the decision path: bindings and "Unschedulable" statuses.

Decisions are taken one at a time and take microseconds; writes take a store round trip.
So decisions only enqueue here, and a pool of workers writes concurrently (the SQLite store
commits concurrent writes together, so more writers in flight means more bindings per
COMMIT). Writes for one pod stay in order, one at a time: a pod's status write that is
still queued when the pod is bound is dropped, and one already running finishes before
the binding starts, so a bound pod never ends up marked Unschedulable.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from minikube_py import errors
from minikube_py.client.interface import Client
from minikube_py.client.workqueue import WorkQueue, work
from minikube_py.meta.objects import Obj, format_time
from minikube_py.registry.kinds import catalog
from minikube_py.scheduler.queue import QueuedPod

log = structlog.get_logger(__name__)
PODS = catalog().by_kind("", "Pod").info  # type: ignore[union-attr]


@dataclass(frozen=True, slots=True)
class Bind:
    node: str
    queued: QueuedPod


@dataclass(frozen=True, slots=True)
class MarkUnschedulable:
    message: str


Op = Bind | MarkUnschedulable
BindDone = Callable[[QueuedPod, str], None]
BindFailed = Callable[[QueuedPod, str, errors.APIError], None]


def scheduled_condition(pod: Obj) -> Obj | None:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "PodScheduled":
            return dict(condition)
    return None


def unschedulable_patch(pod: Obj, message: str, now: str) -> Obj | None:
    """A strategic merge patch setting PodScheduled=False, or None if already so.

    As kube's ``UpdatePodCondition``: an unchanged condition is not written again, and
    ``lastTransitionTime`` only moves when the status does.
    """
    current = scheduled_condition(pod) or {}
    if (current.get("status"), current.get("reason"), current.get("message")) == (
        "False",
        "Unschedulable",
        message,
    ):
        return None
    since = current.get("lastTransitionTime") if current.get("status") == "False" else None
    condition = {
        "type": "PodScheduled",
        "status": "False",
        "lastProbeTime": None,
        "lastTransitionTime": since or now,
        "reason": "Unschedulable",
        "message": message,
    }
    return {"status": {"conditions": [condition]}}


class PodWriter:
    def __init__(
        self,
        client: Client,
        *,
        lookup: Callable[[str], Obj | None],
        bound: BindDone,
        bind_failed: BindFailed,
        workers: int = 64,
        clock: Callable[[], float],
    ) -> None:
        self.client = client
        self.lookup = lookup
        self.bound = bound
        self.bind_failed = bind_failed
        self.workers = workers
        self.clock = clock
        self.queue = WorkQueue()
        self._ops: dict[str, collections.deque[Op]] = {}

    def bind(self, key: str, node: str, queued: QueuedPod) -> None:
        ops = self._ops.setdefault(key, collections.deque())
        while ops and isinstance(ops[-1], MarkUnschedulable):
            ops.pop()  # superseded: the pod is being placed
        ops.append(Bind(node, queued))
        self.queue.add(key)

    def mark_unschedulable(self, key: str, message: str) -> None:
        ops = self._ops.setdefault(key, collections.deque())
        if ops and isinstance(ops[-1], MarkUnschedulable):
            ops.pop()  # only the latest verdict matters
        ops.append(MarkUnschedulable(message))
        self.queue.add(key)

    def pending(self) -> int:
        return sum(len(ops) for ops in self._ops.values())

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for index in range(self.workers):
                group.create_task(
                    work(self.queue, self._process, on_error=self._failed), name=f"binder-{index}"
                )

    async def _process(self, key: str) -> None:
        ops = self._ops.pop(key, None)
        while ops:
            op = ops.popleft()
            if isinstance(op, Bind):
                await self._bind(key, op)
            else:
                await self._mark(key, op.message)
        return None

    async def _bind(self, key: str, op: Bind) -> None:
        namespace, _, name = key.partition("/")
        try:
            await self.client.bind(namespace, name, op.node)
        except errors.APIError as exc:
            self.bind_failed(op.queued, op.node, exc)
        else:
            self.bound(op.queued, op.node)

    async def _mark(self, key: str, message: str) -> None:
        pod = self.lookup(key)
        if pod is None or (pod.get("spec") or {}).get("nodeName"):
            return
        patch = unschedulable_patch(pod, message, format_time(self.clock()))
        if patch is None:
            return
        namespace, _, name = key.partition("/")
        try:
            await self.client.patch(
                PODS, namespace, name, patch, flavour="strategic", subresource="status"
            )
        except errors.NotFound:
            return
        except errors.APIError as exc:
            log.warning("pod status not written", pod=key, error=str(exc))

    def _failed(self, key: str, exc: Exception) -> None:
        log.error("scheduler write failed", pod=key, error=f"{type(exc).__name__}: {exc}")
