"""The catalog: every served resource type and its strategy, looked up by path or kind."""

from __future__ import annotations

from collections.abc import Iterable

from minikube_py.registry.resource import ResourceInfo
from minikube_py.registry.strategy import Strategy


class Catalog:
    def __init__(self, strategies: Iterable[Strategy]) -> None:
        self.strategies: list[Strategy] = list(strategies)
        self._by_path = {(s.info.group, s.info.version, s.info.plural): s for s in self.strategies}
        self._by_kind = {(s.info.group, s.info.kind): s for s in self.strategies}

    def lookup(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        strategy = self._by_path.get((group, version, plural))
        return strategy.info if strategy else None

    def strategy(self, info: ResourceInfo) -> Strategy:
        return self._by_path[(info.group, info.version, info.plural)]

    def by_kind(self, group: str, kind: str) -> Strategy | None:
        return self._by_kind.get((group, kind))

    def infos(self) -> list[ResourceInfo]:
        return [s.info for s in self.strategies]

    def group_versions(self) -> list[tuple[str, str]]:
        """(group, version) pairs in first-seen order; the core group is ``""``."""
        seen: dict[tuple[str, str], None] = {}
        for s in self.strategies:
            seen.setdefault((s.info.group, s.info.version), None)
        return list(seen)

    def resources(self, group: str, version: str) -> list[ResourceInfo]:
        return [
            s.info for s in self.strategies if (s.info.group, s.info.version) == (group, version)
        ]
