"""Every kind the API server serves, one strategy each, in discovery order."""

from __future__ import annotations

from minikube_py.registry.catalog import Catalog
from minikube_py.registry.kinds.cluster import Namespaces, Nodes
from minikube_py.registry.kinds.pods import Pods
from minikube_py.registry.kinds.services import Services
from minikube_py.registry.kinds.simple import (
    ConfigMaps,
    Endpoints,
    Events,
    Leases,
    Secrets,
    ServiceAccounts,
)
from minikube_py.registry.kinds.workloads import Deployments, EndpointSlices, Jobs, ReplicaSets


def catalog() -> Catalog:
    return Catalog(
        [
            ConfigMaps(),
            Endpoints(),
            Events(),
            Namespaces(),
            Nodes(),
            Pods(),
            Secrets(),
            ServiceAccounts(),
            Services(),
            Deployments(),
            ReplicaSets(),
            Jobs(),
            Leases(),
            EndpointSlices(),
        ]
    )
