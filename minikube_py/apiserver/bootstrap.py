"""What kube-apiserver creates for itself at start-up: the system namespaces."""

from __future__ import annotations

import contextlib

import structlog

from minikube_py import errors
from minikube_py.registry.registries import Registries

log = structlog.get_logger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def ensure_system_objects(registries: Registries, port: int) -> None:
    namespaces = registries.by_kind("", "Namespace").registry
    for name in SYSTEM_NAMESPACES:
        try:
            await namespaces.create("", {"metadata": {"name": name}})
            log.info("created namespace", name=name)
        except errors.AlreadyExists:
            pass
    service = {
        "metadata": {
            "name": "kubernetes",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
    }
    with contextlib.suppress(errors.AlreadyExists):
        await registries.by_kind("", "Service").registry.create("default", service)
