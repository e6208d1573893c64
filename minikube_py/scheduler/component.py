"""The scheduler as a component of the in-process cluster (``cluster.COMPONENTS``).

Importing this module registers it; ``ClusterConfig.extra["scheduler"]`` may hold a
``SchedulerConfig`` (tests shorten the backoff with it).
"""

from __future__ import annotations

from minikube_py.cluster import COMPONENTS, Cluster
from minikube_py.scheduler.scheduler import Scheduler, SchedulerConfig

NAME = "scheduler"


def config_of(cluster: Cluster) -> SchedulerConfig:
    given = cluster.config.extra.get(NAME)
    return given if isinstance(given, SchedulerConfig) else SchedulerConfig()


async def run(cluster: Cluster) -> None:
    """Schedule with the cluster's client and shared informers until cancelled."""
    await Scheduler(cluster.client, cluster.informers, config_of(cluster)).run()


COMPONENTS[NAME] = run
