"""What the API knows about each resource type: names, scope, verbs, subresources.

This is data, read by discovery, routing, storage keys and printing alike, so that adding
a kind means adding one entry, not touching every layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

READ_VERBS = ("get", "list", "watch")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Subresource:
    """``pods/status``, ``deployments/scale``, ``pods/log``: served under the parent's path."""

    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str = ""
    version: str = "v1"


@dataclass(frozen=True)
class ResourceInfo:
    """One resource of one group-version, as discovery describes it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[Subresource, ...] = ()
    storage_name: str = ""
    """The kube-apiserver etcd directory, when it differs from the plural (nodes: minions)."""
    singular: str = field(default="")

    def __hash__(self) -> int:
        """By the three fields that name a resource (equal infos share them, as a hash
        requires): registries look a resource up by its info on every request, and the
        generated hash would hash every field, subresources and all, each time."""
        return hash((self.group, self.version, self.plural))

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def qualified(self) -> str:
        """``pods`` or ``deployments.apps``: how errors name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def key_root(self) -> str:
        return f"/registry/{self.storage_name or self.plural}/"

    def key(self, namespace: str, name: str) -> str:
        if self.namespaced:
            return f"{self.key_root}{namespace}/{name}"
        return f"{self.key_root}{name}"

    def prefix(self, namespace: str = "") -> str:
        """Storage prefix for a list: one namespace, or all of them."""
        if self.namespaced and namespace:
            return f"{self.key_root}{namespace}/"
        return self.key_root

    def subresource(self, name: str) -> Subresource | None:
        return next((s for s in self.subresources if s.name == name), None)

    def path(self, namespace: str = "", name: str = "") -> str:
        """The URL path of a collection or an object (``selfLink`` in the seed's output)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base
