"""Container logs as the kubelet serves them: options, which container, the byte limit.

Pure helpers (no I/O) behind ``GET /containerLogs/{namespace}/{pod}/{container}``, after
the kubelet's ``getContainerLogs`` and ``validateContainerLogStatus``:

- the query decodes like a v1 ``PodLogOptions`` (booleans are true unless ``0``/``false``;
  the legacy ``tail`` alias still works), and bad values get the kubelet's two canned
  answers, 400 ``Unable to decode query.`` and 422 ``Invalid request.``;
- *which* container's logs is read from the pod's status, not from the runtime, because
  that is what users see in ``kubectl get pod``: during CrashLoopBackOff both ``logs`` and
  ``logs --previous`` show the attempt that just crashed (``lastState``), and a container
  still waiting answers ``... is waiting to start: <reason>``;
- ``limitBytes`` is applied here, since a runtime has no such option.

Tail, since and timestamps are passed to the runtime, which reads its own log files.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from minikube_py.meta.objects import Obj, dig

Query = Mapping[str, str]

DECODE_ERROR = '{"message": "Unable to decode query."}'
INVALID_ERROR = '{"message": "Invalid request."}'

_INT = re.compile(r"[+-]?[0-9]+")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})"
)
_INT64 = 2**63


class LogsError(Exception):
    """A log request the kubelet refuses before streaming: HTTP code and its exact text."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class LogOptions:
    """A decoded v1 PodLogOptions, minus ``container`` (the kubelet has it in the path)."""

    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: float | None = None  # seconds since the epoch
    limit_bytes: int | None = None

    def since(self, now: float) -> float | None:
        """The runtime's lower bound: ``sinceTime`` as given, or ``sinceSeconds`` before now."""
        if self.since_time is not None:
            return self.since_time
        if self.since_seconds is not None:
            return now - self.since_seconds
        return None


def query_bool(value: str | None) -> bool:
    """apimachinery's rule: absent, ``0`` and ``false`` (any case) are false, all else true."""
    return value is not None and value != "0" and value.lower() != "false"


def query_int(value: str | None) -> int | None:
    """An int64 like Go's ``strconv.ParseInt``; ValueError carries Go's message."""
    if value is None:
        return None
    if not _INT.fullmatch(value):
        raise ValueError(f'strconv.ParseInt: parsing "{value}": invalid syntax')
    number = int(value)
    if not -_INT64 <= number < _INT64:
        raise ValueError(f'strconv.ParseInt: parsing "{value}": value out of range')
    return number


def parse_rfc3339(value: str) -> dt.datetime:
    """A timestamp as Go's ``time.Parse(time.RFC3339, ...)`` reads it (fraction optional).

    ``datetime.fromisoformat`` would also take dates alone or zone-less times, which the
    kubelet and kube-apiserver both refuse.
    """
    found = _RFC3339.fullmatch(value)
    if found is None:
        raise ValueError(
            f'parsing time "{value}" as "2006-01-02T15:04:05Z07:00": cannot parse "{value}"'
        )
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    offset = dt.timedelta(0)
    if zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        offset = sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    return dt.datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second),
        micros,
        dt.timezone(offset),
    )


def parse_options(query: Query) -> LogOptions:
    """Decode and validate like the kubelet; LogsError(400 or 422) with its canned text."""
    values = dict(query)
    tail = values.pop("tail", None)
    if tail is not None:  # the pre-1.1 name; "all" means no tail at all
        values.pop("tailLines", None)
        if tail != "all":
            values["tailLines"] = tail
    try:
        since_time = values.get("sinceTime")
        options = LogOptions(
            follow=query_bool(values.get("follow")),
            previous=query_bool(values.get("previous")),
            timestamps=query_bool(values.get("timestamps")),
            tail_lines=query_int(values.get("tailLines")),
            since_seconds=query_int(values.get("sinceSeconds")),
            since_time=parse_rfc3339(since_time).timestamp() if since_time else None,
            limit_bytes=query_int(values.get("limitBytes")),
        )
    except ValueError:
        raise LogsError(400, DECODE_ERROR) from None
    if not valid(options):
        raise LogsError(422, INVALID_ERROR)
    return options


def valid(options: LogOptions) -> bool:
    """``ValidatePodLogOptions``: the kubelet only says *that* something is wrong."""
    if options.tail_lines is not None and options.tail_lines < 0:
        return False
    if options.limit_bytes is not None and options.limit_bytes < 1:
        return False
    if options.since_seconds is not None and options.since_time is not None:
        return False
    return options.since_seconds is None or options.since_seconds >= 1


_KINDS = ("containers", "initContainers", "ephemeralContainers")
_STATUSES = ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")


def container_spec(pod: Obj, name: str) -> Obj | None:
    """The spec of container ``name``: regular, init or ephemeral (all have logs)."""
    for kind in _KINDS:
        for container in dig(pod, "spec", kind) or []:
            if isinstance(container, dict) and container.get("name") == name:
                return container
    return None


def container_status(pod: Obj, name: str) -> Obj | None:
    """The status entry of container ``name``, searched in the kubelet's order."""
    for kind in _STATUSES:
        for status in dig(pod, "status", kind) or []:
            if isinstance(status, dict) and status.get("name") == name:
                return status
    return None


def _waiting(container: str, pod: str, reason: str) -> LogsError:
    """What the kubelet says for the usual reasons a container has no logs yet."""
    detail = {
        "ErrImagePull": "image can't be pulled",
        "ImagePullBackOff": "trying and failing to pull image",
    }.get(reason, reason)
    return LogsError(400, f'container "{container}" in pod "{pod}" is waiting to start: {detail}')


def pick_container_id(pod: Obj, container: str, *, previous: bool) -> str:
    """The ID (``docker://...``) whose logs to read; LogsError(400) when there is none.

    ``validateContainerLogStatus``: previous → ``lastState.terminated``; running → the
    current one; terminated → it (or the last one, when the next never started); a
    container waiting after a crash → the crashed one; waiting → no logs yet.
    """
    pod_name = str(dig(pod, "metadata", "name") or "")
    status = container_status(pod, container)
    if status is None:
        raise LogsError(400, f'container "{container}" in pod "{pod_name}" is not available')
    state = status.get("state") or {}
    last = dig(status, "lastState", "terminated") or {}
    last_id = str(last.get("containerID") or "")
    terminated_here = f'container "{container}" in pod "{pod_name}" is terminated'
    if previous:
        if not last_id:
            raise LogsError(
                400, f'previous terminated container "{container}" in pod "{pod_name}" not found'
            )
        return last_id
    if "running" in state and state["running"] is not None:
        return str(status.get("containerID") or "")
    if state.get("terminated") is not None:
        current = str(state["terminated"].get("containerID") or "") or last_id
        if not current:
            raise LogsError(400, terminated_here)
        return current
    if last:
        if not last_id:
            raise LogsError(400, terminated_here)
        return last_id
    if state.get("waiting") is not None:
        raise _waiting(container, pod_name, str(state["waiting"].get("reason") or ""))
    raise LogsError(
        400, f'container "{container}" in pod "{pod_name}" is waiting to start - no logs yet'
    )


def runtime_id(container_id: str) -> str:
    """``docker://abc`` → ``abc``: the runtime knows its containers without the scheme."""
    return container_id.partition("://")[2] or container_id


async def limit_bytes(chunks: AsyncIterator[bytes], limit: int | None) -> AsyncIterator[bytes]:
    """At most ``limit`` bytes of ``chunks`` (the last chunk cut), then stop, even if following.

    The caller closes ``chunks``: stopping early must not leave a runtime stream open.
    """
    if limit is None:
        async for chunk in chunks:
            yield chunk
        return
    left = limit
    async for chunk in chunks:
        piece = chunk[:left]
        left -= len(piece)
        if piece:
            yield piece
        if left <= 0:
            return
