"""OpenAPI v3 component schemas for every kind we serve, derived from the protobuf field tables.

Why: kubectl reads these documents for three things. ``apply`` computes its three-way
strategic merge patch by walking them (a missing property is the "unable to find api field"
warning, and a missing ``x-kubernetes-patch-merge-key`` turns a merged list into a replaced
one); ``explain`` prints them; the PATCH operations tell it to hand validation to the server.
``protobuf_schema.MESSAGES`` already holds the full field structure of every kind, so the
schemas are derived from it instead of being written twice, and ``meta.patch.SCHEMA`` adds the
patch strategies (the same facts upstream publishes as ``x-kubernetes-patch-*``).

Shapes follow what kubectl's readers expect from kube-apiserver's documents: schema names
are Go package paths (``io.k8s.api.core.v1.Pod``); a message-typed property is a ``$ref``,
wrapped in ``allOf`` when it carries siblings (OpenAPI 3.0 ignores siblings of ``$ref``); list
extensions sit on the array property, not on ``items``; top-level kinds carry
``x-kubernetes-group-version-kind`` as a list. Descriptions are our own, one line, for kinds
and their spec/status only; nested fields carry none.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import Any

from minikube_py.apiserver.protobuf_schema import KINDS, MESSAGES
from minikube_py.meta import patch
from minikube_py.meta.objects import Obj
from minikube_py.registry.resource import ResourceInfo

REF = "#/components/schemas/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."

SPECIAL: dict[str, tuple[str, Obj]] = {
    "Time": (META + "Time", {"type": "string", "format": "date-time"}),
    "MicroTime": (META + "MicroTime", {"type": "string", "format": "date-time"}),
    "FieldsV1": (META + "FieldsV1", {"type": "object"}),
    "RawExtension": ("io.k8s.apimachinery.pkg.runtime.RawExtension", {"type": "object"}),
    # Upstream's v3 shapes for the two union types (kube-openapi's OpenAPIV3OneOfTypes): no
    # top-level type, so `kubectl explain` names them instead of calling them strings.
    "Quantity": (
        "io.k8s.apimachinery.pkg.api.resource.Quantity",
        {"oneOf": [{"type": "string"}, {"type": "number"}]},
    ),
    "IntOrString": (
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        {"format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]},
    ),
}

SCALARS: dict[str, Obj] = {
    "string": {"type": "string"},
    "bool": {"type": "boolean"},
    "int32": {"type": "integer", "format": "int32"},
    "int64": {"type": "integer", "format": "int64"},
    "double": {"type": "number", "format": "double"},
    "bytes": {"type": "string", "format": "byte"},
    "Duration": {"type": "string"},
    "StringList": {"type": "array", "items": {"type": "string"}},
}

LIST_MAP_KEYS: dict[tuple[str, str], list[str]] = {
    # Lists whose identity is more than their merge key (upstream +listMapKey markers).
    ("io.k8s.api.core.v1.Container", "ports"): ["containerPort", "protocol"],
    ("io.k8s.api.core.v1.EphemeralContainer", "ports"): ["containerPort", "protocol"],
    ("io.k8s.api.core.v1.ServiceSpec", "ports"): ["port", "protocol"],
    ("io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints"): [
        "topologyKey",
        "whenUnsatisfiable",
    ],
}

KIND_DESCRIPTIONS = {
    "ConfigMap": "Plain configuration data as key-value pairs, for pods to read as files or "
    "environment variables.",
    "Endpoints": "The addresses and ports behind a Service, grouped into subsets.",
    "Event": "A record of something that happened to an object, kept for a while for people "
    "and tools to read.",
    "Namespace": "A scope for names; namespaced objects live in exactly one of them.",
    "Node": "A machine, real or simulated, that runs pods for the cluster.",
    "Pod": "A group of containers that run together on one node and share its network and volumes.",
    "Secret": "Sensitive key-value data, base64-encoded, for pods and controllers to use.",
    "ServiceAccount": "An identity that processes in pods run as.",
    "Service": "A stable name and virtual address for the pods a label selector picks.",
    "Deployment": "Rolls a pod template out through ReplicaSets and keeps it at a replica count.",
    "ReplicaSet": "Keeps a number of pods matching a selector running.",
    "Job": "Runs pods until enough of them finish successfully.",
    "Lease": "A lock held by one holder and renewed in time: leader election and node heartbeats.",
    "EndpointSlice": "A slice of the endpoints behind a Service, with their conditions and ports.",
    "Binding": "Assigns a pod to a node; the scheduler writes these.",
    "Scale": "The replica count of a scalable object, as its scale subresource shows it.",
    "Eviction": "A request to evict a pod that respects its disruption budgets.",
}


def package(message: str) -> str:
    """``core.v1.Pod`` -> ``io.k8s.api.core.v1.Pod``; ``meta.v1.X`` lives in apimachinery."""
    if message.startswith("meta.v1."):
        return META + message.removeprefix("meta.v1.")
    return "io.k8s.api." + message


def type_name(info: ResourceInfo) -> str:
    """The component name of a served kind (the key kubectl and ``meta.patch`` use)."""
    return patch.kind_type_name(info.api_version, info.kind)


def _ref(name: str) -> Obj:
    return {"$ref": REF + name}


def field_schema(type_: str) -> Obj:
    """The schema of one field type of the tables: scalars inline, messages by reference."""
    if type_.startswith("[]"):
        return {"type": "array", "items": field_schema(type_[2:])}
    if type_.startswith("map[string]"):
        return {"type": "object", "additionalProperties": field_schema(type_[11:])}
    if type_ in SCALARS:
        return dict(SCALARS[type_])
    if type_ in SPECIAL:
        return _ref(SPECIAL[type_][0])
    if type_ in MESSAGES:
        return _ref(package(type_))
    raise ValueError(f"no OpenAPI form for field type {type_!r}")


def _extensions(owner: str, name: str, is_list: bool) -> Obj:
    """The x-kubernetes-* markers of one property, from the strategic merge facts."""
    rule = patch.field_strategy(owner, name)
    if not rule.strategy:
        return {}
    found: Obj = {"x-kubernetes-patch-strategy": rule.strategy}
    if rule.merge_key:
        found["x-kubernetes-patch-merge-key"] = rule.merge_key
    if is_list and rule.merges:
        if rule.merge_key:
            keys = LIST_MAP_KEYS.get((owner, name), [rule.merge_key])
            found["x-kubernetes-list-type"] = "map"
            found["x-kubernetes-list-map-keys"] = keys
        else:
            found["x-kubernetes-list-type"] = "set"
    return found


def _property(owner: str, name: str, type_: str, description: str = "") -> Obj:
    schema = field_schema(type_)
    extra = _extensions(owner, name, type_.startswith("[]"))
    if description:
        extra = {"description": description, **extra}
    if not extra:
        return schema
    if "$ref" in schema:
        schema = {"allOf": [schema]}
    return {**schema, **extra}


def _fields(message: str) -> Iterator[tuple[str, str, str]]:
    """(json name, type, flags) of a message, inline members merged in Go's order."""
    for name, type_, flags in MESSAGES[message].values():
        if "i" in flags:
            yield from _fields(type_)
        else:
            yield name, type_, flags


def _top_level() -> dict[str, tuple[str, str]]:
    """Message name -> (group, version) of every top-level kind in the tables."""
    found: dict[str, tuple[str, str]] = {}
    for api_version, (prefix, kinds) in KINDS.items():
        group, _, version = api_version.rpartition("/")
        for kind in kinds:
            found.setdefault(f"{prefix}.{kind}", (group, version))
    return found


def _descriptions(kind: str) -> dict[str, str]:
    return {
        "apiVersion": "The group/version of the schema this object is written in, e.g. apps/v1.",
        "kind": f"The type of this object: {kind}.",
        "metadata": "Name, namespace, labels, annotations and the other metadata every object has.",
        "spec": f"The desired state of this {kind}, as its owner declares it.",
        "status": f"The most recently observed state of this {kind}, written by the system.",
    }


def _message_schema(message: str, gvk: tuple[str, str] | None) -> Obj:
    owner = package(message)
    kind = message.rsplit(".", 1)[1]
    notes = _descriptions(kind) if gvk else {}
    properties: Obj = {}
    if gvk:
        properties["apiVersion"] = {"type": "string", "description": notes["apiVersion"]}
        properties["kind"] = {"type": "string", "description": notes["kind"]}
    required = []
    for name, type_, flags in _fields(message):
        properties[name] = _property(owner, name, type_, notes.get(name, ""))
        if "o" not in flags:
            required.append(name)
    schema: Obj = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if gvk:
        group, version = gvk
        description = KIND_DESCRIPTIONS.get(kind, f"{kind} is a {group or 'core'}/{version} kind.")
        schema = {"description": description, **schema}
        schema["x-kubernetes-group-version-kind"] = [
            {"group": group, "version": version, "kind": kind}
        ]
    return schema


def _list_meta() -> Obj:
    return {
        "type": "object",
        "properties": {
            "continue": {"type": "string"},
            "remainingItemCount": {"type": "integer", "format": "int64"},
            "resourceVersion": {"type": "string"},
            "selfLink": {"type": "string"},
        },
    }


def _list_schema(name: str, group: str, version: str, kind: str) -> Obj:
    return {
        "description": f"A page of {kind} objects.",
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": _ref(META + "ListMeta"),
            "items": {"type": "array", "items": _ref(name)},
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": [
            {"group": group, "version": version, "kind": kind + "List"}
        ],
    }


@functools.cache
def library() -> dict[str, Obj]:
    """Every component schema we can publish, by name; built once."""
    tops = _top_level()
    schemas: dict[str, Obj] = {name: dict(schema) for name, schema in SPECIAL.values()}
    schemas[META + "ListMeta"] = _list_meta()
    for message in MESSAGES:
        schemas[package(message)] = _message_schema(message, tops.get(message))
    for message, (group, version) in tops.items():
        name = package(message)
        kind = message.rsplit(".", 1)[1]
        schemas[name + "List"] = _list_schema(name, group, version, kind)
    return schemas


def refs(value: Any) -> Iterator[str]:
    """Names of the schemas a document fragment refers to."""
    if isinstance(value, dict):
        target = value.get("$ref")
        if isinstance(target, str) and target.startswith(REF):
            yield target.removeprefix(REF)
        for item in value.values():
            yield from refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs(item)


def closure(names: Iterable[str], known: dict[str, Obj] | None = None) -> dict[str, Obj]:
    """The named schemas and every schema they reach through ``$ref``."""
    known = library() if known is None else known
    found: dict[str, Obj] = {}
    pending = [name for name in names if name in known]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found[name] = known[name]
        pending.extend(target for target in refs(known[name]) if target not in found)
    return found


def _fallback(info: ResourceInfo) -> Obj:
    """A kind the tables do not describe: its envelope, so discovery-driven tools still work."""
    notes = _descriptions(info.kind)
    return {
        "description": KIND_DESCRIPTIONS.get(info.kind, f"{info.kind} ({info.api_version})."),
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string", "description": notes["apiVersion"]},
            "kind": {"type": "string", "description": notes["kind"]},
            "metadata": {"allOf": [_ref(META + "ObjectMeta")], "description": notes["metadata"]},
            "spec": {"type": "object", "description": notes["spec"]},
            "status": {"type": "object", "description": notes["status"]},
        },
        "x-kubernetes-group-version-kind": [
            {"group": info.group, "version": info.version, "kind": info.kind}
        ],
    }


def schema_source(info: ResourceInfo) -> tuple[dict[str, Obj], str]:
    """``openapi.SchemaSource``: the kind's schema, its list, and all they refer to."""
    name = type_name(info)
    known = library()
    if name not in known:
        known = {**known, name: _fallback(info)}
    return closure([name, name + "List"], known), name
