"""Parse a request path into what it addresses: discovery, a collection, an object, a subresource.

One catch-all route feeds this parser instead of hundreds of aiohttp routes: the shape
of Kubernetes paths depends on which resources exist (``namespaces/x/status`` is a
subresource, ``namespaces/x/pods`` a collection), which only the catalog knows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from minikube_py.errors import NotFound
from minikube_py.registry.resource import ResourceInfo

Lookup = Callable[[str, str, str], ResourceInfo | None]
"""(group, version, plural) → the resource, or None."""


@dataclass(frozen=True)
class ResourcePath:
    """A request for a resource: collection when ``name`` is empty."""

    info: ResourceInfo
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    legacy_watch: bool = False


@dataclass(frozen=True)
class DiscoveryPath:
    """``/api``, ``/apis``, ``/api/v1``, ``/apis/<group>`` or ``/apis/<group>/<version>``."""

    prefix: str  # "api" or "apis"
    group: str = ""
    version: str = ""


def _not_found(path: str) -> NotFound:
    return NotFound("the server could not find the requested resource")


def parse(path: str, lookup: Lookup) -> ResourcePath | DiscoveryPath:
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        raise _not_found(path)
    if parts[0] == "api":
        if len(parts) == 1:
            return DiscoveryPath("api")
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) <= 2:
            return DiscoveryPath("apis", *parts[1:2])
        group, version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        return DiscoveryPath(parts[0], group, version)
    return _resource(path, group, version, rest, lookup)


def _resource(path: str, group: str, version: str, rest: list[str], lookup: Lookup) -> ResourcePath:
    legacy_watch = rest[0] == "watch"
    if legacy_watch:
        rest = rest[1:]
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        candidate = lookup(group, version, rest[2])
        if candidate is not None and candidate.namespaced:
            namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise _not_found(path)
    info = lookup(group, version, rest[0])
    if info is None:
        raise _not_found(path)
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if subresource and info.subresource(subresource) is None:
        raise _not_found(path)
    return ResourcePath(info, namespace, name, subresource, legacy_watch)
