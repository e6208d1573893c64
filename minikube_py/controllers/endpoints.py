"""Endpoints and EndpointSlices for Services, built from the pods they select.

One reconcile per Service keeps both views in step, as kube-controller-manager's
endpoint and endpointslice controllers do:

- ``Endpoints``: ready pods in ``addresses``, the others in ``notReadyAddresses``
  (everything ready with ``publishNotReadyAddresses``); terminating and finished pods
  left out; pods whose named ``targetPort`` resolves to different numbers land in
  different subsets.
- ``EndpointSlice``: the same pods with ``ready``/``serving``/``terminating`` conditions
  (terminating pods stay, not ready), at most 100 per slice, labelled
  ``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by``, owned by
  the Service. Slices are listed live before writing: a slice created a moment ago may not
  be in an informer yet, and a second one for the same pods would double the endpoints.
- ``default/kubernetes`` has no selector; its Endpoints and slice name the API server's
  own address, which kube-apiserver itself maintains upstream.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterable

from minikube_py import errors
from minikube_py.client.events import EventRecorder
from minikube_py.client.informers import SharedInformers
from minikube_py.client.interface import Client, Selection
from minikube_py.controllers.base import Controller, KeysFor, own_key, resource, split_key
from minikube_py.meta import labels
from minikube_py.meta.objects import Obj, dig, labels_of, metadata, name_of, namespace_of
from minikube_py.registry.resource import ResourceInfo

SERVICES = resource("", "Service")
PODS = resource("", "Pod")
ENDPOINTS = resource("", "Endpoints")
SLICES = resource("discovery.k8s.io", "EndpointSlice")
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "endpointslice-controller.k8s.io"
HEADLESS = "service.kubernetes.io/headless"
SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
MAX_PER_SLICE = 100
APISERVER_SERVICE = "default/kubernetes"

PortKey = tuple[tuple[str, int, str, str], ...]
"""A pod's resolved ports: (name, port, protocol, appProtocol) per Service port."""


def advertise_address(bind_address: str) -> str:
    """The API server's address for its Endpoints: the bind address, or this host's
    outbound address when it binds every interface (no packet is sent)."""
    if not ipaddress.ip_address(bind_address).is_unspecified:
        return bind_address
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))
            found: str = probe.getsockname()[0]
            return found
    except OSError:
        return "127.0.0.1"


def pod_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in dig(pod, "status", "conditions") or []
    )


def serves(pod: Obj, *, include_terminating: bool) -> bool:
    """kube's ShouldPodBeInEndpoints: an IP, not finished for good, maybe not terminating."""
    if not dig(pod, "status", "podIP"):
        return False
    if not include_terminating and dig(pod, "metadata", "deletionTimestamp"):
        return False
    phase = str(dig(pod, "status", "phase") or "")
    policy = dig(pod, "spec", "restartPolicy") or "Always"
    if policy == "Never":
        return phase not in ("Succeeded", "Failed")
    if policy == "OnFailure":
        return phase != "Succeeded"
    return True


def resolve_port(service_port: Obj, pod: Obj) -> int | None:
    """A numbered targetPort as is; a named one from the pod's container ports."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol", "TCP")
    for container in dig(pod, "spec", "containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and port.get("protocol", "TCP") == protocol:
                number = port.get("containerPort")
                return number if isinstance(number, int) else None
    return None


def pod_ports(service: Obj, pod: Obj) -> PortKey:
    found = []
    for port in dig(service, "spec", "ports") or []:
        number = resolve_port(port, pod)
        if number is not None:
            found.append(
                (
                    str(port.get("name") or ""),
                    number,
                    str(port.get("protocol") or "TCP"),
                    str(port.get("appProtocol") or ""),
                )
            )
    return tuple(sorted(found))


def _target_ref(pod: Obj) -> Obj:
    meta = metadata(pod)
    return {
        "kind": "Pod",
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
    }


def _hostname(service: Obj, pod: Obj) -> str:
    """A pod's hostname is published when its subdomain names this Service."""
    hostname = dig(pod, "spec", "hostname")
    if hostname and dig(pod, "spec", "subdomain") == name_of(service):
        return str(hostname)
    return ""


def endpoint_ports(key: PortKey, *, for_slice: bool) -> list[Obj]:
    shown = []
    for name, port, protocol, app in key:
        entry: Obj = {"port": port, "protocol": protocol}
        if name or for_slice:
            entry["name"] = name
        if app:
            entry["appProtocol"] = app
        shown.append(entry)
    return shown


def _groups(
    service: Obj, pods: Iterable[Obj], *, include_terminating: bool
) -> dict[PortKey, list[Obj]]:
    groups: dict[PortKey, list[Obj]] = {}
    has_ports = bool(dig(service, "spec", "ports"))
    for pod in sorted(pods, key=lambda p: str(dig(p, "status", "podIP"))):
        if not serves(pod, include_terminating=include_terminating):
            continue
        ports = pod_ports(service, pod)
        if has_ports and not ports:
            continue
        groups.setdefault(ports, []).append(pod)
    return groups


def build_subsets(service: Obj, pods: Iterable[Obj]) -> list[Obj]:
    publish_all = bool(dig(service, "spec", "publishNotReadyAddresses"))
    subsets = []
    for key, members in sorted(_groups(service, pods, include_terminating=False).items()):
        ready: list[Obj] = []
        not_ready: list[Obj] = []
        for pod in members:
            address: Obj = {"ip": dig(pod, "status", "podIP"), "targetRef": _target_ref(pod)}
            if dig(pod, "spec", "nodeName"):
                address["nodeName"] = dig(pod, "spec", "nodeName")
            if hostname := _hostname(service, pod):
                address["hostname"] = hostname
            (ready if publish_all or pod_ready(pod) else not_ready).append(address)
        subset: Obj = {}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        if key:
            subset["ports"] = endpoint_ports(key, for_slice=False)
        subsets.append(subset)
    return subsets


def slice_endpoint(service: Obj, pod: Obj) -> Obj:
    terminating = bool(dig(pod, "metadata", "deletionTimestamp"))
    ready = bool(dig(service, "spec", "publishNotReadyAddresses")) or pod_ready(pod)
    endpoint: Obj = {
        "addresses": [dig(pod, "status", "podIP")],
        "conditions": {
            "ready": ready and not terminating,
            "serving": ready,
            "terminating": terminating,
        },
        "targetRef": _target_ref(pod),
    }
    if dig(pod, "spec", "nodeName"):
        endpoint["nodeName"] = dig(pod, "spec", "nodeName")
    if hostname := _hostname(service, pod):
        endpoint["hostname"] = hostname
    return endpoint


def build_slices(service: Obj, pods: Iterable[Obj]) -> list[tuple[list[Obj], list[Obj]]]:
    """(ports, endpoints) per wanted slice; one empty placeholder when nothing serves."""
    wanted = []
    for key, members in sorted(_groups(service, pods, include_terminating=True).items()):
        endpoints = [slice_endpoint(service, pod) for pod in members]
        for start in range(0, len(endpoints), MAX_PER_SLICE):
            wanted.append(
                (endpoint_ports(key, for_slice=True), endpoints[start : start + MAX_PER_SLICE])
            )
    return wanted or [([], [])]


def _object_labels(service: Obj) -> dict[str, str]:
    found = dict(labels_of(service))
    if dig(service, "spec", "clusterIP") == "None":
        found[HEADLESS] = ""
    return found


class EndpointsController(Controller):
    name = "endpoints"

    def __init__(
        self,
        client: Client,
        informers: SharedInformers,
        events: EventRecorder,
        *,
        apiserver: tuple[str, int] | None = None,
    ) -> None:
        self.apiserver = apiserver
        self.services_by_namespace: dict[str, set[str]] = {}
        self.pods_by_namespace: dict[str, set[str]] = {}
        super().__init__(client, informers, events)
        self.services = informers.get(SERVICES)
        self.pods = informers.get(PODS)
        self.endpoints = informers.get(ENDPOINTS)

    def watches(self) -> list[tuple[ResourceInfo, KeysFor]]:
        return [
            (SERVICES, self._service_changed),
            (PODS, self._pod_changed),
            (ENDPOINTS, _endpoints_deleted),
            (SLICES, self._slice_changed),
        ]

    @staticmethod
    def _index(index: dict[str, set[str]], kind: str, obj: Obj) -> None:
        namespace, name = namespace_of(obj), name_of(obj)
        if kind == "DELETED":
            index.get(namespace, set()).discard(name)
        else:
            index.setdefault(namespace, set()).add(name)

    def _service_changed(self, kind: str, obj: Obj, previous: Obj | None) -> Iterable[str]:
        self._index(self.services_by_namespace, kind, obj)
        return own_key(kind, obj, previous)

    def _pod_changed(self, kind: str, obj: Obj, previous: Obj | None) -> Iterable[str]:
        """Services in the pod's namespace that select it now or selected it before."""
        self._index(self.pods_by_namespace, kind, obj)
        namespace = namespace_of(obj)
        seen = [labels_of(obj)] + ([labels_of(previous)] if previous else [])
        keys = []
        for name in self.services_by_namespace.get(namespace, ()):
            service = self.services.get(f"{namespace}/{name}")
            selector = labels.selector_from_map(dig(service, "spec", "selector"))
            if any(selector.matches(found) for found in seen):
                keys.append(f"{namespace}/{name}")
        return keys

    @staticmethod
    def _slice_changed(kind: str, obj: Obj, previous: Obj | None) -> Iterable[str]:
        """A managed slice changed by someone else is put right; a deleted one recreated."""
        found = labels_of(obj)
        service = found.get(SERVICE_NAME)
        if not service or (found.get(MANAGED_BY) != CONTROLLER and kind != "DELETED"):
            return []
        return [f"{namespace_of(obj)}/{service}"]

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        service = self.services.get(key)
        if service is None:
            await self._remove(namespace, name)
            return None
        if key == APISERVER_SERVICE and self.apiserver is not None:
            await self._write_apiserver(service)
            return None
        selector = dig(service, "spec", "selector")
        if not selector or dig(service, "spec", "type") == "ExternalName":
            return None  # Endpoints of a selector-less Service belong to its user
        chosen = labels.selector_from_map(selector)
        pods = [
            pod
            for pod_name in self.pods_by_namespace.get(namespace, ())
            if (pod := self.pods.get(f"{namespace}/{pod_name}")) is not None
            and chosen.matches(labels_of(pod))
        ]
        await self._write_endpoints(service, build_subsets(service, pods), _object_labels(service))
        await self._write_slices(service, build_slices(service, pods), managed=True)
        return None

    async def _remove(self, namespace: str, name: str) -> None:
        with contextlib.suppress(errors.NotFound):
            await self.client.delete(ENDPOINTS, namespace, name)
        for found in await self._slices_of(namespace, name):
            if labels_of(found).get(MANAGED_BY) == CONTROLLER:
                await self._delete_slice(found)

    # -- Endpoints --

    async def _write_endpoints(
        self, service: Obj, subsets: list[Obj], wanted_labels: dict[str, str]
    ) -> None:
        namespace, name = namespace_of(service), name_of(service)
        current = self.endpoints.get(f"{namespace}/{name}")
        if (
            current is not None
            and (current.get("subsets") or []) == subsets
            and labels_of(current) == wanted_labels
        ):
            return
        meta: Obj = {"name": name, "namespace": namespace, "labels": wanted_labels}
        if current is not None:
            meta["resourceVersion"] = metadata(current).get("resourceVersion")
            meta["annotations"] = metadata(current).get("annotations") or {}
        body: Obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta}
        if subsets:
            body["subsets"] = subsets
        await self.client.update(ENDPOINTS, namespace, body)

    # -- EndpointSlices --

    async def _slices_of(self, namespace: str, service: str) -> list[Obj]:
        listed = await self.client.list(
            SLICES, Selection(namespace=namespace, label_selector=f"{SERVICE_NAME}={service}")
        )
        return listed.items

    async def _write_slices(
        self, service: Obj, wanted: list[tuple[list[Obj], list[Obj]]], *, managed: bool
    ) -> None:
        namespace, name = namespace_of(service), name_of(service)
        existing = [
            s
            for s in await self._slices_of(namespace, name)
            if s.get("addressType") == "IPv4"
            and (labels_of(s).get(MANAGED_BY) == CONTROLLER) == managed
        ]
        for ports, endpoints in wanted:
            match = _best_match(existing, ports, endpoints)
            body = self._slice(service, ports, endpoints, managed=managed)
            if match is None:
                await self.client.create(SLICES, namespace, body)
                continue
            existing.remove(match)
            if _same_slice(match, body):
                continue
            body["metadata"] = {**metadata(match), "labels": body["metadata"]["labels"]}
            body["metadata"]["ownerReferences"] = metadata(match).get("ownerReferences")
            await self.client.update(SLICES, namespace, body)
        for leftover in existing:
            await self._delete_slice(leftover)

    def _slice(self, service: Obj, ports: list[Obj], endpoints: list[Obj], *, managed: bool) -> Obj:
        name = name_of(service)
        slice_labels = {SERVICE_NAME: name}
        meta: Obj = {"namespace": namespace_of(service), "labels": slice_labels}
        if managed:
            slice_labels.update({**_object_labels(service), SERVICE_NAME: name})
            slice_labels[MANAGED_BY] = CONTROLLER
            meta["generateName"] = f"{name}-"
            meta["ownerReferences"] = [
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "name": name,
                    "uid": metadata(service).get("uid", ""),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
        else:
            meta["name"] = name
        return {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": meta,
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": ports,
        }

    async def _delete_slice(self, found: Obj) -> None:
        meta = metadata(found)
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            await self.client.delete(
                SLICES, str(meta["namespace"]), str(meta["name"]), uid=str(meta.get("uid", ""))
            )

    # -- the API server's own Service --

    async def _write_apiserver(self, service: Obj) -> None:
        assert self.apiserver is not None
        address, port = self.apiserver
        ports = [
            {
                "name": str(p.get("name") or ""),
                "port": port,
                "protocol": str(p.get("protocol") or "TCP"),
            }
            for p in dig(service, "spec", "ports") or []
        ]
        subsets = [
            {
                "addresses": [{"ip": address}],
                "ports": [{k: v for k, v in p.items() if v != ""} for p in ports],
            }
        ]
        await self._write_endpoints(service, subsets, {SKIP_MIRROR: "true"})
        endpoint = {"addresses": [address], "conditions": {"ready": True}}
        await self._write_slices(service, [(ports, [endpoint])], managed=False)


def _endpoints_deleted(kind: str, obj: Obj, previous: Obj | None) -> Iterable[str]:
    """Deleted Endpoints come back if their Service still selects pods (as upstream)."""
    return own_key(kind, obj, previous) if kind == "DELETED" else []


def _same_slice(current: Obj, wanted: Obj) -> bool:
    same: bool = (
        (current.get("endpoints") or []) == wanted["endpoints"]
        and (current.get("ports") or []) == wanted["ports"]
        and labels_of(current) == wanted["metadata"]["labels"]
    )
    return same


def _best_match(existing: list[Obj], ports: list[Obj], endpoints: list[Obj]) -> Obj | None:
    """Reuse a slice with the same content, else one with the same ports, else any."""
    same_ports = [s for s in existing if (s.get("ports") or []) == ports]
    for candidate in same_ports:
        if (candidate.get("endpoints") or []) == endpoints:
            return candidate
    if same_ports:
        return same_ports[0]
    return existing[0] if existing else None
