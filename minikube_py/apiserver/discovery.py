"""Discovery documents: legacy (APIVersions, APIGroupList, APIResourceList) and aggregated.

kubectl 1.32 asks /api and /apis for the aggregated form (apidiscovery.k8s.io v2, or
v2beta1) and falls back to the legacy documents per group-version; both are built from
the same catalog so they can never disagree.
"""

from __future__ import annotations

import base64
import hashlib

from minikube_py.apiserver.negotiation import parse_accept
from minikube_py.meta.objects import Obj
from minikube_py.registry.catalog import Catalog
from minikube_py.registry.resource import ResourceInfo

AGGREGATED_VERSIONS = ("v2", "v2beta1")


def aggregated_version(accept: str) -> str | None:
    """The apidiscovery version the client asked for first, if any."""
    for media in parse_accept(accept):
        p = media.params
        if p.get("g") == "apidiscovery.k8s.io" and p.get("as") == "APIGroupDiscoveryList":
            if p.get("v") in AGGREGATED_VERSIONS:
                return p["v"]
        elif media.type in ("application/json", "*/*", "application/*"):
            return None
    return None


def aggregated_content_type(version: str) -> str:
    return f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"


def _scope(info: ResourceInfo) -> str:
    return "Namespaced" if info.namespaced else "Cluster"


def _storage_hash(info: ResourceInfo) -> str:
    digest = hashlib.sha256(f"{info.api_version}/{info.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def aggregated(catalog: Catalog, *, core: bool, version: str) -> Obj:
    items = []
    groups: dict[str, list[str]] = {}
    for group, ver in catalog.group_versions():
        if (group == "") == core:
            groups.setdefault(group, []).append(ver)
    for group, versions in groups.items():
        entry_versions = []
        for ver in versions:
            resources = [_aggregated_resource(info) for info in catalog.resources(group, ver)]
            entry_versions.append({"version": ver, "resources": resources, "freshness": "Current"})
        items.append(
            {"metadata": {"name": group, "creationTimestamp": None}, "versions": entry_versions}
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{version}",
        "metadata": {},
        "items": items,
    }


def _aggregated_resource(info: ResourceInfo) -> Obj:
    entry: Obj = {
        "resource": info.plural,
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "scope": _scope(info),
        "singularResource": info.singular_name,
        "verbs": sorted(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    if info.subresources:
        entry["subresources"] = [
            {
                "subresource": sub.name,
                "responseKind": {"group": sub.group, "version": sub.version, "kind": sub.kind},
                "verbs": sorted(sub.verbs),
            }
            for sub in info.subresources
        ]
    return entry


def api_versions(address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def _group(group: str, versions: list[str]) -> Obj:
    listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": listed, "preferredVersion": listed[0]}


def api_group_list(catalog: Catalog) -> Obj:
    groups: dict[str, list[str]] = {}
    for group, version in catalog.group_versions():
        if group:
            groups.setdefault(group, []).append(version)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(g, vs) for g, vs in groups.items()],
    }


def api_group(catalog: Catalog, group: str) -> Obj | None:
    versions = [v for g, v in catalog.group_versions() if g == group]
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


def api_resource_list(catalog: Catalog, group: str, version: str) -> Obj | None:
    infos = catalog.resources(group, version)
    if not infos:
        return None
    resources: list[Obj] = []
    for info in infos:
        entry: Obj = {
            "name": info.plural,
            "singularName": info.singular_name,
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": sorted(info.verbs),
            "storageVersionHash": _storage_hash(info),
        }
        if info.short_names:
            entry["shortNames"] = list(info.short_names)
        if info.categories:
            entry["categories"] = list(info.categories)
        resources.append(entry)
        for sub in info.subresources:
            sub_entry: Obj = {
                "name": f"{info.plural}/{sub.name}",
                "singularName": "",
                "namespaced": info.namespaced,
                "kind": sub.kind,
                "verbs": sorted(sub.verbs),
            }
            if sub.group:
                sub_entry["group"], sub_entry["version"] = sub.group, sub.version
            resources.append(sub_entry)
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }
