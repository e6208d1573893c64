"""Stored bytes ⇄ API objects. The store keeps JSON without resourceVersion; reads add it."""

from __future__ import annotations

import orjson

from minikube_py.meta.objects import Obj
from minikube_py.storage.interface import KeyValue


def encode(obj: Obj) -> bytes:
    """Serialize for storage; resourceVersion is the store's revision, never stored."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "resourceVersion" in meta:
        trimmed = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
        return orjson.dumps(trimmed)
    return orjson.dumps(obj)


def decode(value: bytes, revision: int) -> Obj:
    obj: Obj = orjson.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return obj


def decode_kv(kv: KeyValue) -> Obj:
    return decode(kv.value, kv.mod_revision)
