"""The ``workload-controllers`` component: ReplicaSet and Deployment controllers together.

They share the cluster's informers (one pod and one ReplicaSet watch for both); each
has its own event recorder so ``kubectl describe`` names the controller that acted, as
kube-controller-manager's ``replicaset-controller`` and ``deployment-controller`` do.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from minikube_py.client.events import EventRecorder
from minikube_py.cluster import COMPONENTS
from minikube_py.controllers.base import Controller
from minikube_py.controllers.deployment import DeploymentController
from minikube_py.controllers.replicaset import ReplicaSetController

if TYPE_CHECKING:
    from minikube_py.cluster import Cluster

CONTROLLERS: tuple[type[Controller], ...] = (ReplicaSetController, DeploymentController)


async def run_workload_controllers(cluster: Cluster) -> None:
    """Run every workload controller (and its event recorder) until cancelled."""
    async with asyncio.TaskGroup() as group:
        for kind in CONTROLLERS:
            recorder = EventRecorder(cluster.client, kind.name)
            controller = kind(cluster.client, cluster.informers, recorder)
            group.create_task(recorder.run(), name=f"{kind.name}-events")
            group.create_task(controller.run(), name=kind.name)


COMPONENTS["workload-controllers"] = run_workload_controllers
