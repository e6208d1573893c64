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
BindFailed = Callable[[QueuedPod, str, Exception], None]


def scheduled_condition(pod: Obj) -> Obj | None:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "PodScheduled":
            return dict(condition)
    return None


def unschedulable_patch(pod: Obj, message: str, now: str) -> Obj | None:
    """A strategic merge patch setting PodScheduled=False, or None if already so.

    As kube's ``UpdatePodCondition``: an unchanged condition is not written again, and
    ``lastTransitionTime`` only moves when the status does. (No ``lastProbeTime: null``:
    in a merge patch a null deletes.)
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
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._ops: dict[str, collections.deque[Op]] = {}
        """Pending writes per pod; a key is in ``_ready`` or being written, never both."""

    def _ops_for(self, key: str) -> collections.deque[Op]:
        ops = self._ops.get(key)
        if ops is None:
            ops = self._ops[key] = collections.deque()
            self._ready.put_nowait(key)
        return ops

    def bind(self, key: str, node: str, queued: QueuedPod) -> None:
        ops = self._ops_for(key)
        while ops and isinstance(ops[-1], MarkUnschedulable):
            ops.pop()  # superseded: the pod is being placed
        ops.append(Bind(node, queued))

    def mark_unschedulable(self, key: str, message: str) -> None:
        ops = self._ops_for(key)
        if ops and isinstance(ops[-1], MarkUnschedulable):
            ops.pop()  # only the latest verdict matters
        ops.append(MarkUnschedulable(message))

    def pending(self) -> int:
        return len(self._ops)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for index in range(self.workers):
                group.create_task(self._work(), name=f"binder-{index}")

    async def _work(self) -> None:
        """Take a pod and write its pending ops in order, including any added meanwhile.

        The key stays in ``_ops`` until its deque is empty, so new ops for a pod being
        written join that deque instead of starting a second writer for it.
        """
        while True:
            key = await self._ready.get()
            ops = self._ops[key]
            while ops:
                op = ops.popleft()
                try:
                    if isinstance(op, Bind):
                        await self._bind(key, op)
                    else:
                        await self._mark(key, op.message)
                except Exception as exc:  # a bug here must not stop every later write
                    log.error("scheduler write failed", pod=key, error=f"{exc!r}")
            del self._ops[key]

    async def _bind(self, key: str, op: Bind) -> None:
        namespace, _, name = key.partition("/")
        try:
            await self.client.bind(namespace, name, op.node)
        except Exception as exc:  # API error or lost connection: either way not bound
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
