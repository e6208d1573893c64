"""Accessors for API objects held as plain JSON dicts, and the time format they use."""

from __future__ import annotations

import datetime as dt
import functools
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

Obj = dict[str, Any]


def metadata(obj: Obj) -> Obj:
    """The object's metadata map, created if absent (callers may write into it)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


def name_of(obj: Obj) -> str:
    return str(metadata(obj).get("name") or "")


def namespace_of(obj: Obj) -> str:
    return str(metadata(obj).get("namespace") or "")


def labels_of(obj: Obj) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def annotations_of(obj: Obj) -> dict[str, str]:
    annotations = (obj.get("metadata") or {}).get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def resource_version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def deep_copy(obj: Obj) -> Obj:
    """A fast deep copy of JSON data (orjson round trip beats copy.deepcopy by far)."""
    copied: Obj = orjson.loads(orjson.dumps(obj))
    return copied


def dig(obj: Any, *path: str | int) -> Any:
    """``obj[p0][p1]...`` or None when any step is missing or of the wrong type.

    Hot (printers, selectors and strategies call it per object), hence the plain-dict
    fast path before the general checks.
    """
    for step in path:
        if type(obj) is dict and type(step) is str:
            obj = obj.get(step)
        elif isinstance(step, int):
            if not isinstance(obj, list) or not -len(obj) <= step < len(obj):
                return None
            obj = obj[step]
        elif isinstance(obj, dict):
            obj = obj.get(step)
        else:
            return None
    return obj


def new_uid() -> str:
    return str(uuid.uuid4())


def format_time(moment: float) -> str:
    """RFC 3339 with second precision and a Z, as metav1.Time marshals."""
    return dt.datetime.fromtimestamp(int(moment), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(moment: float) -> str:
    """RFC 3339 with microseconds, as metav1.MicroTime marshals (leases, events)."""
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.lru_cache(maxsize=4096)
def parse_time(text: str) -> float:
    """Seconds since the epoch from an RFC 3339 timestamp (Z or offset).

    Cached: a Table of thousands of objects parses the same few creation seconds over
    and over.
    """
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


Clock = Callable[[], float]
"""Seconds since the epoch; injected wherever behaviour depends on time."""

system_clock: Clock = time.time
