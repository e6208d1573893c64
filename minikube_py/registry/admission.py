"""Admission: checks and mutations that need more than the object itself.

kube-apiserver runs these as admission plugins after validation: NamespaceLifecycle
(no new content in a missing or terminating namespace) and the service IP and node-port
allocators. Each plugin names the resources it applies to, so the pipeline stays generic.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable, Iterable

import orjson

from minikube_py import errors
from minikube_py.errors import Target
from minikube_py.meta.objects import Obj, dig, metadata
from minikube_py.registry.strategy import Strategy
from minikube_py.storage.interface import KeyNotFound, Store

Plugin = Callable[[str, Strategy, Obj, Obj | None], Awaitable[None]]


class NamespaceLifecycle:
    """Refuse creates in namespaces that do not exist or are being deleted."""

    EXEMPT = frozenset({"namespaces", "events"})

    def __init__(self, store: Store, known: Callable[[str], Obj | None] | None = None) -> None:
        self.store = store
        self.known = known

    async def _namespace(self, name: str) -> Obj:
        """From the watch cache when it has it (as upstream's lister), else the store."""
        cached = self.known(name) if self.known is not None else None
        if cached is not None:
            return cached
        try:
            kv = await self.store.get(f"/registry/namespaces/{name}")
        except KeyNotFound:
            raise errors.NotFound.of(Target("namespaces", "", name)) from None
        found: Obj = orjson.loads(kv.value)
        return found

    async def __call__(self, operation: str, strategy: Strategy, new: Obj, old: Obj | None) -> None:
        info = strategy.info
        if operation != "CREATE" or not info.namespaced or info.plural in self.EXEMPT:
            return
        namespace = str(metadata(new).get("namespace", ""))
        ns = await self._namespace(namespace)
        if dig(ns, "metadata", "deletionTimestamp") or dig(ns, "status", "phase") == "Terminating":
            name = str(metadata(new).get("name", ""))
            target = Target(info.plural, info.group, name)
            raise errors.Forbidden(
                f'{target.qualified} "{name}" is forbidden: unable to create new content in'
                f" namespace {namespace} because it is being terminated",
                target=target,
                causes=[
                    {
                        "reason": "NamespaceTerminating",
                        "message": f"namespace {namespace} is being terminated",
                        "field": "metadata.namespace",
                    }
                ],
            )


class ServiceAllocator:
    """Cluster IPs from the service range and node ports from the node-port range.

    Allocation state is derived from the stored services, under one lock: only this API
    server allocates, so a scan plus the lock is enough and nothing can leak on delete.
    """

    def __init__(self, store: Store, ip_range: str, port_range: str) -> None:
        self.store = store
        self.network = ipaddress.ip_network(ip_range)
        low, _, high = port_range.partition("-")
        self.ports = range(int(low), int(high) + 1)
        self.lock = asyncio.Lock()

    async def __call__(self, operation: str, strategy: Strategy, new: Obj, old: Obj | None) -> None:
        if strategy.info.plural != "services" or operation not in ("CREATE", "UPDATE"):
            return
        async with self.lock:
            used_ips, used_ports = await self._in_use(new)
            spec = new.setdefault("spec", {})
            if spec.get("type") == "ExternalName":
                spec.pop("clusterIP", None)
                return
            if operation == "CREATE" or not spec.get("clusterIP"):
                self._cluster_ip(spec, used_ips, new)
            if spec.get("type") in ("NodePort", "LoadBalancer"):
                self._node_ports(spec, used_ports, new)

    async def _in_use(self, current: Obj) -> tuple[set[str], set[int]]:
        listed = await self.store.list("/registry/services/specs/")
        ips: set[str] = set()
        ports: set[int] = set()
        uid = metadata(current).get("uid")
        for kv in listed.items:
            service = orjson.loads(kv.value)
            if dig(service, "metadata", "uid") == uid:
                continue
            ips.update(dig(service, "spec", "clusterIPs") or [])
            ports.update(
                p["nodePort"] for p in dig(service, "spec", "ports") or [] if p.get("nodePort")
            )
        return ips, ports

    def _invalid(self, obj: Obj, path: str, value: object, detail: str) -> errors.Invalid:
        target = Target("services", "", str(metadata(obj).get("name", "")), "Service")
        return errors.Invalid(target, [errors.invalid(path, value, detail)])

    def _cluster_ip(self, spec: Obj, used: set[str], obj: Obj) -> None:
        wanted = spec.get("clusterIP")
        if wanted == "None":
            spec["clusterIPs"] = ["None"]
            return
        if wanted:
            try:
                address = ipaddress.ip_address(wanted)
            except ValueError:
                raise self._invalid(
                    obj, "spec.clusterIPs[0]", wanted, "must be a valid IP address"
                ) from None
            if address not in self.network:
                raise self._invalid(
                    obj,
                    "spec.clusterIPs",
                    [wanted],
                    f"failed to allocate IP {wanted}: provided IP is not in the valid range."
                    f" The range of valid IPs is {self.network}",
                )
            if wanted in used:
                raise self._invalid(
                    obj,
                    "spec.clusterIPs",
                    [wanted],
                    f"failed to allocate IP {wanted}: provided IP is already allocated",
                )
        else:
            wanted = self._free_ip(used, obj)
        spec["clusterIP"] = wanted
        spec["clusterIPs"] = [wanted]

    def _free_ip(self, used: set[str], obj: Obj) -> str:
        hosts: Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address] = self.network.hosts()
        first = True
        for address in hosts:
            if first:  # the first address is the kubernetes service's, given out by name
                first = False
                if not (
                    obj["metadata"].get("name") == "kubernetes"
                    and obj["metadata"].get("namespace") == "default"
                ):
                    continue
            if str(address) not in used:
                return str(address)
        raise errors.InternalError("failed to allocate a serviceIP: range is full")

    def _node_ports(self, spec: Obj, used: set[int], obj: Obj) -> None:
        taken = set(used)
        for index, port in enumerate(spec.get("ports") or []):
            wanted = port.get("nodePort")
            if wanted:
                if wanted not in self.ports:
                    raise self._invalid(
                        obj,
                        f"spec.ports[{index}].nodePort",
                        wanted,
                        f"provided port is not in the valid range. The range of valid ports is"
                        f" {self.ports.start}-{self.ports.stop - 1}",
                    )
                if wanted in taken:
                    raise self._invalid(
                        obj,
                        f"spec.ports[{index}].nodePort",
                        wanted,
                        "provided port is already allocated",
                    )
            else:
                wanted = next((p for p in self.ports if p not in taken), None)
                if wanted is None:
                    raise errors.InternalError("failed to allocate a nodePort: range is full")
                port["nodePort"] = wanted
            taken.add(wanted)


def chain(plugins: list[Plugin]) -> Plugin:
    async def admit(operation: str, strategy: Strategy, new: Obj, old: Obj | None) -> None:
        for plugin in plugins:
            await plugin(operation, strategy, new, old)

    return admit
