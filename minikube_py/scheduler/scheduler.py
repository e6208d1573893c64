"""The scheduler: watches pods and nodes, decides one pod at a time, binds in the background.

Informers keep the cache (nodes, and pods on them) and the queue (pending pods with
``schedulerName: default-scheduler``) current from watches; nothing polls. The loop pops
the next pod, decides synchronously over the cache, assumes the pod on the chosen node and
hands the binding to the writer; a pod that fits nowhere gets PodScheduled=False with
kube's message, a FailedScheduling event, and waits in the queue for a change in the
cluster that could help.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from minikube_py.client.events import EventRecorder
from minikube_py.client.informer import Informer
from minikube_py.client.informers import SharedInformers
from minikube_py.client.interface import Client
from minikube_py.meta.objects import Obj
from minikube_py.registry.kinds import catalog
from minikube_py.scheduler import fiterror
from minikube_py.scheduler.algorithm import Algorithm
from minikube_py.scheduler.cache import Cache
from minikube_py.scheduler.podinfo import (
    DEFAULT_SCHEDULER,
    is_terminal,
    node_name,
    pod_info,
    pod_key,
    wants_scheduling,
)
from minikube_py.scheduler.queue import QueuedPod, SchedulingQueue
from minikube_py.scheduler.writer import PODS, PodWriter

log = structlog.get_logger(__name__)
NODES = catalog().by_kind("", "Node").info  # type: ignore[union-attr]


@dataclass(frozen=True)
class SchedulerConfig:
    name: str = DEFAULT_SCHEDULER
    percentage_of_nodes_to_score: int = 0
    """0: kube's adaptive default (see ``algorithm.nodes_to_find``)."""
    bind_workers: int = 64
    initial_backoff: float = 1.0
    max_backoff: float = 10.0
    unschedulable_timeout: float = 300.0


@dataclass
class Stats:
    """Counters for logs, tests and the benchmark."""

    attempts: int = 0
    unschedulable: int = 0
    bound: int = 0
    bind_errors: int = 0
    first_bound: float = 0.0
    last_bound: float = 0.0
    bound_event: asyncio.Event = field(default_factory=asyncio.Event)


class Scheduler:
    def __init__(
        self,
        client: Client,
        informers: SharedInformers,
        config: SchedulerConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.config = config = config or SchedulerConfig()
        self.clock = clock
        self.cache = Cache()
        self.queue = SchedulingQueue(
            clock=clock,
            initial_backoff=config.initial_backoff,
            max_backoff=config.max_backoff,
            unschedulable_timeout=config.unschedulable_timeout,
        )
        self.algorithm = Algorithm(
            self.cache, percentage=config.percentage_of_nodes_to_score, rng=rng
        )
        self.events = EventRecorder(client, config.name)
        self.pods: Informer = informers.get(PODS)
        self.nodes: Informer = informers.get(NODES)
        self.writer = PodWriter(
            client,
            lookup=self.pods.get,
            bound=self._bound,
            bind_failed=self._bind_failed,
            workers=config.bind_workers,
            clock=time.time,
        )
        self.stats = Stats()
        self._watch(self.nodes, self._on_node)
        self._watch(self.pods, self._on_pod)

    @staticmethod
    def _watch(informer: Informer, handler: Callable[[str, Obj, Obj | None], None]) -> None:
        """Subscribe, and see what the (shared) informer already holds exactly once."""
        informer.on_change(handler)
        for obj in list(informer.objects.values()):
            handler("ADDED", obj, None)

    async def run(self) -> None:
        await self.nodes.synced.wait()
        await self.pods.synced.wait()
        log.info("scheduler started", nodes=len(self.cache.nodes), pending=len(self.queue))
        async with asyncio.TaskGroup() as group:
            group.create_task(self.events.run(), name="scheduler-events")
            group.create_task(self.writer.run(), name="scheduler-writer")
            group.create_task(self._loop(), name="scheduler-loop")

    async def _loop(self) -> None:
        while True:
            queued = await self.queue.pop()
            self.schedule_one(queued)
            await asyncio.sleep(0)  # let bindings and watch events run between decisions

    # -- one decision --

    def schedule_one(self, queued: QueuedPod) -> None:
        key = queued.info.key
        current = self.pods.get(key)
        if current is None or not wants_scheduling(current, self.config.name):
            self.queue.delete(key)
            return
        if self.cache.has_pod(key):
            self.queue.delete(key)  # assumed already (a relist re-announced it)
            return
        self.stats.attempts += 1
        decision = self.algorithm.schedule(queued.info)
        if decision.node is not None:
            self.cache.assume(queued.info, decision.node)
            self.queue.done(key)
            self.writer.bind(key, decision.node, queued)
            return
        assert decision.diagnosis is not None
        message = fiterror.message(
            queued.info, decision.diagnosis, self.cache.infos, decision.filters
        )
        self.stats.unschedulable += 1
        self.queue.unschedulable(queued)
        self.events.record(current, "Warning", "FailedScheduling", fiterror.truncate(message))
        self.writer.mark_unschedulable(key, message)

    # -- binding outcomes (from the writer) --

    def _bound(self, queued: QueuedPod, node: str) -> None:
        now = self.clock()
        stats = self.stats
        stats.first_bound = stats.first_bound or now
        stats.last_bound = now
        stats.bound += 1
        stats.bound_event.set()
        info = queued.info
        self.events.record(
            info.obj,
            "Normal",
            "Scheduled",
            f"Successfully assigned {info.namespace}/{info.name} to {node}",
        )

    def _bind_failed(self, queued: QueuedPod, node: str, exc: Exception) -> None:
        """Give back the assumed room; retry the pod if it is still ours to place."""
        self.stats.bind_errors += 1
        key = queued.info.key
        log.info("binding failed", pod=key, node=node, error=f"{type(exc).__name__}: {exc}")
        if self.cache.forget(key):
            self.queue.move_all()
        current = self.pods.get(key)
        if current is not None and wants_scheduling(current, self.config.name):
            queued.info = pod_info(current)  # updates were ignored while it was assumed
            self.queue.failed(queued)

    # -- watch events --

    def _on_node(self, kind: str, obj: Obj, previous: Obj | None) -> None:
        if kind == "DELETED":
            self.cache.remove_node(str(obj["metadata"]["name"]))
        elif self.cache.set_node(obj):
            self.queue.move_all()

    def _on_pod(self, kind: str, obj: Obj, previous: Obj | None) -> None:
        key = pod_key(obj)
        node = node_name(obj)
        if kind == "DELETED" or (node and is_terminal(obj)):
            self.queue.delete(key)
            if self.cache.remove_pod(key):
                self.queue.move_all()  # its room is free again
            return
        if node:
            self.queue.delete(key)
            if not self.cache.confirm(key, node):
                self.cache.add_pod(pod_info(obj), node)
            return
        if self.cache.has_pod(key):
            return  # assumed; the binding is on its way
        if wants_scheduling(obj, self.config.name):
            self.queue.add(pod_info(obj))
        else:
            self.queue.delete(key)
