"""Accessors for API objects held as plain JSON dicts, and the time format they use."""

from __future__ import annotations

import datetime as dt
import functools
import os
import time
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
    """A random (version 4) UUID in its 8-4-4-4-12 text form, as every object's uid.

    Formatted straight from 16 random bytes: ``str(uuid.uuid4())`` gives the same text but
    goes through a UUID object and 128-bit integer arithmetic, over twice the cost on a path
    every create takes.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def format_time(moment: float) -> str:
    """RFC 3339 with second precision and a Z, as metav1.Time marshals."""
    return _format_second(int(moment))


@functools.lru_cache(maxsize=256)
def _format_second(second: int) -> str:
    """Cached: timestamps are nearly always "now", so a busy second formats once."""
    return dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
