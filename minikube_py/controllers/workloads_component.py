"""The ``workload-controllers`` component: ReplicaSet and Deployment controllers together.

They share the informers they are given (one pod and one ReplicaSet watch for both);
each has its own event recorder so ``kubectl describe`` names the controller that
acted, as kube-controller-manager's ``replicaset-controller`` and
``deployment-controller`` do. ``run_controllers`` needs only a client and informers, so
a standalone controller manager (``HttpClient``) can run the same thing.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from minikube_py.client.events import EventRecorder
from minikube_py.client.informers import SharedInformers
from minikube_py.client.interface import Client
from minikube_py.cluster import COMPONENTS
from minikube_py.controllers.base import Controller
from minikube_py.controllers.deployment import DeploymentController
from minikube_py.controllers.replicaset import ReplicaSetController

if TYPE_CHECKING:
    from minikube_py.cluster import Cluster

NAME = "workload-controllers"
CONTROLLERS: tuple[type[Controller], ...] = (ReplicaSetController, DeploymentController)


async def run_controllers(client: Client, informers: SharedInformers) -> None:
    """Run every workload controller (and its event recorder) until cancelled.

    The informers must be run by the caller (``SharedInformers.run``), as the cluster does.
    """
    async with asyncio.TaskGroup() as group:
        for kind in CONTROLLERS:
            recorder = EventRecorder(client, kind.name)
            controller = kind(client, informers, recorder)
            group.create_task(recorder.run(), name=f"{kind.name}-events")
            group.create_task(controller.run(), name=kind.name)


async def run_workload_controllers(cluster: Cluster) -> None:
    await run_controllers(cluster.client, cluster.informers)


COMPONENTS[NAME] = run_workload_controllers
