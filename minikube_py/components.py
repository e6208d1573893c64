"""Every component ``minikube-py up`` runs beside the API server and the kubelet.

Importing this module registers them in ``cluster.COMPONENTS``; ``ALL`` is the order
they start in.
"""

from __future__ import annotations

from minikube_py.controllers import core_component, workloads_component
from minikube_py.scheduler import component as scheduler_component

ALL: tuple[str, ...] = (
    scheduler_component.NAME,
    workloads_component.NAME,
    core_component.NAME,
)
