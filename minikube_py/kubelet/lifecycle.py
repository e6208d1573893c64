"""Container lifecycle details the kubelet owns: termination messages, preStop hooks,
and the pod's active deadline.

A container's termination message is a host file the kubelet bind-mounts at
``terminationMessagePath``; once the container exits, its content (at most 4 KiB) is the
``message`` of its terminated state, or, with ``FallbackToLogsOnError`` and an empty file
after a failure, the last lines of its log.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path

import aiohttp
import structlog

from minikube_py.kubelet.runtime.interface import ContainerRuntime, ContainerStatus, Mount
from minikube_py.kubelet.volumes import pod_dir
from minikube_py.meta.objects import Obj, dig, parse_time

log = structlog.get_logger(__name__)

MESSAGE_LIMIT = 4096
FALLBACK_LINES = 80
FALLBACK_LIMIT = 2048
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


def message_file(root: Path, uid: str, container: str, attempt: int) -> Path:
    return pod_dir(root, uid) / "containers" / container / f"{attempt}-termination-log"


def message_mount(root: Path, uid: str, spec: Obj, attempt: int) -> Mount:
    """A fresh, empty host file per attempt, mounted where the spec says."""
    path = message_file(root, uid, str(spec["name"]), attempt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    path.chmod(0o666)
    target = str(spec.get("terminationMessagePath") or "/dev/termination-log")
    return Mount(host_path=str(path), container_path=target)


async def with_message(
    runtime: ContainerRuntime, root: Path, spec: Obj | None, status: ContainerStatus
) -> ContainerStatus:
    """``status`` carrying its termination message, read as the kubelet does."""
    path = message_file(root, status.pod.uid, status.name, status.attempt)
    try:
        text = path.read_bytes()[:MESSAGE_LIMIT].decode(errors="replace")
    except OSError:
        text = ""
    policy = (spec or {}).get("terminationMessagePolicy", "File")
    if not text and policy == "FallbackToLogsOnError" and status.exit_code != 0:
        text = await _log_tail(runtime, status.id)
    return replace(status, message=text) if text else status


async def _log_tail(runtime: ContainerRuntime, container_id: str) -> str:
    chunks: list[bytes] = []
    logs = runtime.logs(container_id, tail=FALLBACK_LINES)
    try:
        async for chunk in logs:
            chunks.append(chunk)
    except Exception as exc:  # a missing log is an empty message, not an error
        log.debug("no log for the termination message", error=str(exc))
    finally:
        close = getattr(logs, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()
    return b"".join(chunks)[-FALLBACK_LIMIT:].decode(errors="replace")


async def run_pre_stop(
    runtime: ContainerRuntime, pod: Obj, status: ContainerStatus, grace: float
) -> None:
    """The container's preStop hook (exec or httpGet), within the grace period."""
    spec = next(
        (c for c in dig(pod, "spec", "containers") or [] if c.get("name") == status.name), None
    )
    hook = dig(spec, "lifecycle", "preStop") if spec else None
    if not hook or grace <= 0:
        return
    try:
        async with asyncio.timeout(grace):
            if "exec" in hook:
                await runtime.exec(status.id, list(hook["exec"].get("command") or []), grace)
            elif "httpGet" in hook:
                await _http_hook(pod, hook["httpGet"])
            elif "sleep" in hook:
                await asyncio.sleep(min(float(hook["sleep"].get("seconds", 0)), grace))
    except (TimeoutError, OSError, aiohttp.ClientError) as exc:
        log.info("preStop hook failed", pod=dig(pod, "metadata", "name"), error=str(exc))


async def _http_hook(pod: Obj, action: Obj) -> None:
    host = action.get("host") or dig(pod, "status", "podIP") or "127.0.0.1"
    scheme = str(action.get("scheme") or "HTTP").lower()
    url = f"{scheme}://{host}:{action.get('port')}{action.get('path') or '/'}"
    async with aiohttp.ClientSession() as session, session.get(url, ssl=False) as answer:
        await answer.read()


def deadline_left(pod: Obj, now: float) -> float | None:
    """Seconds until ``activeDeadlineSeconds`` runs out (<= 0: it has), None: no deadline."""
    deadline = dig(pod, "spec", "activeDeadlineSeconds")
    started = dig(pod, "status", "startTime")
    if deadline is None or not started:
        return None
    return parse_time(str(started)) + float(deadline) - now
