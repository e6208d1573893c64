"""Recording Events as Kubernetes' event recorder does: repeats aggregated into one object.

The same (object, type, reason, message, source) seen again bumps ``count`` and
``lastTimestamp`` of the existing Event instead of creating another, so that
``kubectl describe`` shows ``x3 over 2m``. Writes happen off the caller's path.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import structlog

from minikube_py import errors
from minikube_py.client.interface import Client
from minikube_py.meta.objects import Obj, format_micro_time, format_time
from minikube_py.registry.kinds import catalog

log = structlog.get_logger(__name__)
EVENTS = catalog().by_kind("", "Event").info  # type: ignore[union-attr]
MAX_PENDING = 1000


@dataclass(frozen=True)
class _Record:
    involved: Obj
    type: str
    reason: str
    message: str
    at: float


class EventRecorder:
    def __init__(
        self,
        client: Client,
        component: str,
        host: str = "",
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.clock = clock
        self._queue: asyncio.Queue[_Record] = asyncio.Queue(MAX_PENDING)
        self._known: dict[tuple[str, ...], tuple[str, str, int]] = {}

    def record(self, obj: Obj, type_: str, reason: str, message: str, field_path: str = "") -> None:
        """Queue an event about ``obj`` (Normal or Warning); dropped if the queue is full."""
        meta = obj.get("metadata") or {}
        involved = {
            "kind": obj.get("kind", ""),
            "namespace": meta.get("namespace", ""),
            "name": meta.get("name", ""),
            "uid": meta.get("uid", ""),
            "apiVersion": obj.get("apiVersion", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        if field_path:
            involved["fieldPath"] = field_path
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_Record(involved, type_, reason, message, self.clock()))

    async def run(self) -> None:
        while True:
            record = await self._queue.get()
            try:
                await self._write(record)
            except (errors.APIError, OSError, aiohttp.ClientError) as exc:
                log.debug("event not recorded", reason=record.reason, error=str(exc))

    async def _write(self, record: _Record) -> None:
        involved = record.involved
        namespace = involved["namespace"] or "default"
        key = (
            involved["uid"],
            involved.get("fieldPath", ""),
            record.type,
            record.reason,
            record.message,
        )
        now = format_time(record.at)
        known = self._known.get(key)
        if known is not None:
            name, first, count = known
            try:
                await self.client.patch(
                    EVENTS, namespace, name, {"count": count + 1, "lastTimestamp": now}
                )
                self._known[key] = (name, first, count + 1)
                return
            except errors.NotFound:
                del self._known[key]
        name = f"{involved['name']}.{int(record.at * 1e9):x}"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": record.reason,
            "message": record.message,
            "type": record.type,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "eventTime": None,
            "reportingComponent": self.component,
            "reportingInstance": self.host or self.component,
        }
        await self.client.create(EVENTS, namespace, event)
        self._known[key] = (name, now, 1)


__all__ = ["EventRecorder", "format_micro_time"]
