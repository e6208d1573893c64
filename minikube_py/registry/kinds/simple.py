"""Kinds with little behaviour beyond ObjectMeta: config maps, secrets, service accounts..."""

from __future__ import annotations

import base64
import binascii
from typing import Any, ClassVar

from minikube_py import errors
from minikube_py.errors import FieldError
from minikube_py.meta.objects import Obj, dig
from minikube_py.registry.kinds.base import ObjectStrategy, info
from minikube_py.registry.strategy import AGE, NAME, Column


def _count(obj: Obj, key: str) -> int:
    value = obj.get(key)
    return len(value) if isinstance(value, dict | list) else 0


class ConfigMaps(ObjectStrategy):
    info = info("ConfigMap", "configmaps", short=("cm",))
    columns = (NAME, Column("Data", "integer", description="Number of keys."), AGE)

    def row(self, obj: Obj, now: float) -> list[Any]:
        return [
            obj["metadata"]["name"],
            _count(obj, "data") + _count(obj, "binaryData"),
            self.age(obj, now),
        ]

    def validate_spec(self, obj: Obj) -> list[FieldError]:
        return _data_keys(obj, "data") + _data_keys(obj, "binaryData")


def _data_keys(obj: Obj, field: str) -> list[FieldError]:
    data = obj.get(field)
    if data is None:
        return []
    if not isinstance(data, dict):
        return [errors.invalid(field, data, "must be a map")]
    problems = []
    for key in data:
        if not key or not all(c.isalnum() or c in "-._" for c in key):
            problems.append(
                errors.invalid(
                    f"{field}[{key}]",
                    key,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or"
                    " '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for"
                    " validation is '[-._a-zA-Z0-9]+')",
                )
            )
    return problems


class Secrets(ObjectStrategy):
    info = info("Secret", "secrets")
    columns = (
        NAME,
        Column("Type", description="The type of the secret"),
        Column("Data", "string", description="The number of keys in the secret"),
        AGE,
    )

    def default(self, obj: Obj) -> None:
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()

    def row(self, obj: Obj, now: float) -> list[Any]:
        return [
            obj["metadata"]["name"],
            obj.get("type", ""),
            _count(obj, "data"),
            self.age(obj, now),
        ]

    def validate_spec(self, obj: Obj) -> list[FieldError]:
        problems = _data_keys(obj, "data")
        for key, value in (obj.get("data") or {}).items():
            try:
                base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                problems.append(
                    errors.invalid(
                        f"data[{key}]", "<secret contents redacted>", "illegal base64 data"
                    )
                )
        return problems


class ServiceAccounts(ObjectStrategy):
    info = info("ServiceAccount", "serviceaccounts", short=("sa",))
    columns = (
        NAME,
        Column(
            "Secrets",
            "string",
            description="Secrets allowed to be used by pods running as this ServiceAccount.",
        ),
        AGE,
    )

    def row(self, obj: Obj, now: float) -> list[Any]:
        return [obj["metadata"]["name"], _count(obj, "secrets"), self.age(obj, now)]


class Endpoints(ObjectStrategy):
    info = info("Endpoints", "endpoints", short=("ep",), storage_name="services/endpoints")
    allow_create_on_update = True
    columns = (NAME, Column("Endpoints", description="Endpoints of the service"), AGE)

    def row(self, obj: Obj, now: float) -> list[Any]:
        found: list[str] = []
        for subset in obj.get("subsets") or []:
            ports = [p.get("port") for p in subset.get("ports") or []] or [None]
            for address in subset.get("addresses") or []:
                for port in ports:
                    ip = address.get("ip", "")
                    found.append(f"{ip}:{port}" if port is not None else ip)
        shown = ",".join(found[:3]) + (f" + {len(found) - 3} more..." if len(found) > 3 else "")
        return [obj["metadata"]["name"], shown or "<none>", self.age(obj, now)]


class Events(ObjectStrategy):
    info = info("Event", "events", short=("ev",))
    allow_create_on_update = True
    columns: ClassVar[tuple[Column, ...]] = (
        Column("Last Seen", description="Time when last instance of this event was observed"),
        Column("Type", description="Type of this event (Normal, Warning)"),
        Column(
            "Reason",
            description="Short, machine understandable string that gives the reason for this event",
        ),
        Column("Object", description="Object this event is about"),
        Column("Subobject", priority=1, description="Subobject"),
        Column("Source", priority=1, description="Component reporting this event"),
        Column("Message", description="Message"),
        Column("First Seen", priority=1, description="First time this event was observed"),
        Column("Count", priority=1, description="Number of times this event has occurred"),
        Column("Name", format="name", priority=1, description="Name"),
    )

    def row(self, obj: Obj, now: float) -> list[Any]:
        from minikube_py.registry.strategy import human_age

        last = (
            obj.get("lastTimestamp")
            or obj.get("eventTime")
            or dig(obj, "metadata", "creationTimestamp")
        )
        first = obj.get("firstTimestamp") or obj.get("eventTime") or last
        involved = obj.get("involvedObject") or {}
        kind = str(involved.get("kind", "")).lower()
        source = obj.get("source") or {}
        source_text = ", ".join(v for v in (source.get("component"), source.get("host")) if v)
        return [
            human_age(last, now),
            obj.get("type", ""),
            obj.get("reason", ""),
            f"{kind}/{involved.get('name', '')}",
            involved.get("fieldPath", ""),
            source_text or obj.get("reportingComponent", ""),
            str(obj.get("message", "")).strip(),
            human_age(first, now),
            int(obj.get("count") or 1),
            obj["metadata"]["name"],
        ]

    def validate_spec(self, obj: Obj) -> list[FieldError]:
        if not obj.get("involvedObject"):
            return [errors.required("involvedObject")]
        return []


class Leases(ObjectStrategy):
    info = info("Lease", "leases", group="coordination.k8s.io")
    allow_create_on_update = True
    columns = (NAME, Column("Holder", description="The holder of the lease"), AGE)

    def row(self, obj: Obj, now: float) -> list[Any]:
        return [
            obj["metadata"]["name"],
            dig(obj, "spec", "holderIdentity") or "",
            self.age(obj, now),
        ]
