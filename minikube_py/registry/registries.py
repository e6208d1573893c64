"""All registries of one API server: CRUD plus LIST/WATCH per resource, over one store."""

from __future__ import annotations

from dataclasses import dataclass

from minikube_py.meta.objects import Clock
from minikube_py.registry.cache import WatchCache
from minikube_py.registry.catalog import Catalog
from minikube_py.registry.generic import Admit, Registry, _admit_nothing
from minikube_py.registry.listing import Lister
from minikube_py.registry.resource import ResourceInfo
from minikube_py.registry.strategy import Strategy
from minikube_py.storage.interface import Store


@dataclass
class Resource:
    """Everything the API server does with one resource type."""

    strategy: Strategy
    registry: Registry
    lister: Lister

    @property
    def info(self) -> ResourceInfo:
        return self.strategy.info


class Registries:
    def __init__(
        self, catalog: Catalog, store: Store, *, clock: Clock, admit: Admit = _admit_nothing
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.cache = WatchCache(store, catalog.infos())
        self._resources = {
            s.info: Resource(
                s, Registry(s, store, clock=clock, admit=admit), Lister(s.info, self.cache, store)
            )
            for s in catalog.strategies
        }

    def __getitem__(self, info: ResourceInfo) -> Resource:
        return self._resources[info]

    def by_kind(self, group: str, kind: str) -> Resource:
        strategy = self.catalog.by_kind(group, kind)
        if strategy is None:
            raise KeyError(f"{kind}.{group}")
        return self._resources[strategy.info]
