"""The ``core-controllers`` component: namespaces, garbage collection, Jobs, endpoints,
service accounts, pod GC and node lifecycle, under one TaskGroup.

They share the cluster's informers (one watch per kind for all of them, the GC's graph
included). Each controller has its own event recorder, so ``kubectl describe`` names the
controller that acted, as kube-controller-manager's do.

Timings come from ``ClusterConfig.extra`` under kube-controller-manager's flag names, so
tests can shorten them (seconds unless said otherwise):

=================================  =======  =====================================================
key                                default  meaning
=================================  =======  =====================================================
``node-monitor-grace-period``      50       a node whose Lease is not renewed this long is Unknown
``node-startup-grace-period``      60       the same, for a node that never reported Ready
``terminated-pod-gc-threshold``    12500    finished pods kept before the oldest go (0: keep all)
``pod-gc-period``                  20       how often the pod GC looks
``orphaned-pod-quarantine``        40       how long a node must be gone before its pods are
``job-backoff-base``               10       first delay before a failed Job pod is replaced
=================================  =======  =====================================================
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from minikube_py.client.events import EventRecorder
from minikube_py.client.informers import SharedInformers
from minikube_py.client.interface import Client
from minikube_py.cluster import COMPONENTS
from minikube_py.controllers.base import Controller
from minikube_py.controllers.endpoints import EndpointsController, advertise_address
from minikube_py.controllers.garbagecollector import GarbageCollector
from minikube_py.controllers.job import JobController
from minikube_py.controllers.namespace import NamespaceController
from minikube_py.controllers.nodelifecycle import NodeLifecycleController
from minikube_py.controllers.podgc import PodGCController
from minikube_py.controllers.serviceaccount import ServiceAccountController

if TYPE_CHECKING:
    from minikube_py.cluster import Cluster

NAME = "core-controllers"

Factory = Callable[[Client, SharedInformers, EventRecorder], Controller]


@dataclass(frozen=True)
class CoreSettings:
    node_monitor_grace_period: float = 50.0
    node_startup_grace_period: float = 60.0
    terminated_pod_gc_threshold: int = 12500
    pod_gc_period: float = 20.0
    orphaned_pod_quarantine: float = 40.0
    job_backoff_base: float = 10.0

    @classmethod
    def from_extra(cls, extra: Mapping[str, object]) -> CoreSettings:
        """Settings from ``extra`` (flag-style keys); unknown keys belong to others."""
        chosen: dict[str, float | int] = {}
        for field in dataclasses.fields(cls):
            key = field.name.replace("_", "-")
            if key in extra:
                chosen[field.name] = _number(key, extra[key], integer=field.type == "int")
        return cls(**chosen)  # type: ignore[arg-type]


def _number(key: str, value: object, *, integer: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{key}: expected a number, got {value!r}")
    try:
        return int(value) if integer else float(value)
    except ValueError:
        raise ValueError(f"{key}: expected a number, got {value!r}") from None


def core_controllers(
    settings: CoreSettings, apiserver: tuple[str, int] | None
) -> list[tuple[str, Factory]]:
    """(event source component, factory) per controller; ``apiserver`` is the address
    the ``kubernetes`` Service's Endpoints name (None: leave them alone)."""
    return [
        ("namespace-controller", NamespaceController),
        ("garbage-collector-controller", GarbageCollector),
        (
            "job-controller",
            functools.partial(JobController, backoff_base=settings.job_backoff_base),
        ),
        ("endpoint-controller", functools.partial(EndpointsController, apiserver=apiserver)),
        ("service-account-controller", ServiceAccountController),
        (
            "pod-garbage-collector",
            functools.partial(
                PodGCController,
                threshold=settings.terminated_pod_gc_threshold,
                period=settings.pod_gc_period,
                quarantine=settings.orphaned_pod_quarantine,
            ),
        ),
        (
            "node-controller",
            functools.partial(
                NodeLifecycleController,
                grace=settings.node_monitor_grace_period,
                startup_grace=settings.node_startup_grace_period,
            ),
        ),
    ]


async def run_controllers(
    client: Client, informers: SharedInformers, factories: list[tuple[str, Factory]]
) -> None:
    """Build each controller with its own event recorder and run them all until cancelled."""
    async with asyncio.TaskGroup() as group:
        for component, factory in factories:
            recorder = EventRecorder(client, component)
            controller = factory(client, informers, recorder)
            group.create_task(recorder.run(), name=f"{component}-events")
            group.create_task(controller.run(), name=component)


async def run_core_controllers(cluster: Cluster) -> None:
    settings = CoreSettings.from_extra(cluster.config.extra)
    api = cluster.config.apiserver
    apiserver = (advertise_address(api.bind_address), api.port)
    await run_controllers(cluster.client, cluster.informers, core_controllers(settings, apiserver))


COMPONENTS[NAME] = run_core_controllers
