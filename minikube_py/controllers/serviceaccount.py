"""ServiceAccount controller: every active namespace has a ``default`` service account.

Pods default ``serviceAccountName`` to "default", so a namespace without it would leave
pods pointing at nothing. The account is created when a namespace appears and again if
someone deletes it, as kube-controller-manager's serviceaccount-controller does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from minikube_py import errors
from minikube_py.controllers.base import Controller, KeysFor, own_key, resource
from minikube_py.meta.objects import Obj, dig, name_of, namespace_of
from minikube_py.registry.resource import ResourceInfo

NAMESPACES = resource("", "Namespace")
SERVICE_ACCOUNTS = resource("", "ServiceAccount")
DEFAULT = "default"


def _default_account_gone(kind: str, obj: Obj, previous: Obj | None) -> Iterable[str]:
    if kind == "DELETED" and name_of(obj) == DEFAULT:
        return [namespace_of(obj)]
    return []


class ServiceAccountController(Controller):
    name = "serviceaccount"

    def watches(self) -> list[tuple[ResourceInfo, KeysFor]]:
        return [(NAMESPACES, own_key), (SERVICE_ACCOUNTS, _default_account_gone)]

    async def reconcile(self, key: str) -> float | None:
        namespace = self.informers.get(NAMESPACES).get(key)
        if namespace is None or dig(namespace, "metadata", "deletionTimestamp"):
            return None
        if self.informers.get(SERVICE_ACCOUNTS).get(f"{key}/{DEFAULT}") is not None:
            return None
        account = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": DEFAULT, "namespace": key},
        }
        # AlreadyExists: there already; Forbidden or NotFound: the namespace is going away.
        with contextlib.suppress(errors.AlreadyExists, errors.Forbidden, errors.NotFound):
            await self.client.create(SERVICE_ACCOUNTS, key, account)
        return None
