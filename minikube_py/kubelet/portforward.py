"""The kubelet's half of port-forward: find the pod's sandbox, open TCP connections into it.

In kube the kubelet asks the runtime for a streaming URL and the runtime's streaming server
(cri-dockerd, for Docker) runs ``nsenter -t <sandbox pid> -n socat - TCP4:localhost:<port>``
per forwarded connection. Here the sandbox's network is reached from this machine directly:
a pod on Docker's bridge has a routable IP, a ``hostNetwork`` pod listens on the node
itself. One difference follows: a server bound to 127.0.0.1 inside a bridged pod is not
reachable this way (socat, inside the namespace, would reach it).

Failures are worded as cri-dockerd words them, because that is the text kubectl prints
(``error forwarding port 80 to pod <sandbox id>, uid : exit status 1: <date> socat[<pid>]
E connect(5, AF=2 127.0.0.1:80, 16): Connection refused``): the API server puts the
``error forwarding port ...`` prefix in front of what :meth:`SandboxConnector.connect`
raises, naming the pod by :attr:`SandboxConnector.name` (under CRI, the sandbox id) and
uid (empty under CRI).
"""

from __future__ import annotations

import asyncio
import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from minikube_py import errors
from minikube_py.kubelet.runtime.interface import ContainerRuntime
from minikube_py.meta.objects import Obj, dig

CONNECT_TIMEOUT = 10.0
READ_LIMIT = 1024 * 1024  # the StreamReader's buffer: big reads make big DATA frames
LOOPBACK = "127.0.0.1"

PodLookup = Callable[[str, str], Obj | None]
"""(namespace, name) → the pod as this kubelet knows it, or None."""

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class ForwardFailed(Exception):
    """A connection into the pod failed; ``str()`` is the runtime's text for it."""


def socat_error(port: int, reason: str, *, now: float, pid: int) -> str:
    """What cri-dockerd reports when socat cannot connect: its exit, then socat's stderr."""
    stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(now))
    target = f"AF=2 {LOOPBACK}:{port}"
    return f"exit status 1: {stamp} socat[{pid}] E connect(5, {target}, 16): {reason}\n"


def _reason(exc: BaseException) -> str:
    """The C library's wording (``Connection refused``), as socat prints ``strerror``."""
    if isinstance(exc, TimeoutError):
        return os.strerror(errno.ETIMEDOUT)
    number = getattr(exc, "errno", None)
    return os.strerror(number) if number else str(exc) or type(exc).__name__


@dataclass(frozen=True)
class SandboxConnector:
    """One pod's network, for the length of a port-forward session."""

    name: str  # how errors name the pod: the sandbox id, as cri-dockerd's streaming server
    uid: str  # empty under CRI (the runtime knows sandboxes, not pod uids)
    address: str
    clock: Callable[[], float] = time.time

    async def connect(self, port: int) -> Connection:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                return await asyncio.open_connection(self.address, port, limit=READ_LIMIT)
        except (OSError, TimeoutError) as exc:
            message = socat_error(port, _reason(exc), now=self.clock(), pid=os.getpid())
            raise ForwardFailed(message) from exc


class PortForwardService:
    """``GetPortForward`` of this node's kubelet: which sandbox, at which address."""

    def __init__(
        self,
        runtime: ContainerRuntime,
        pods: PodLookup,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runtime = runtime
        self.pods = pods
        self.clock = clock

    async def connector(self, namespace: str, name: str, uid: str) -> SandboxConnector:
        """The pod's running sandbox; refusals worded as the kubelet's (``pod not found``)."""
        pod = self.pods(namespace, name)
        if pod is None:
            raise errors.NotFound("pod does not exist")
        pod_uid = str(dig(pod, "metadata", "uid") or "")
        if uid and uid != pod_uid:
            raise errors.NotFound("pod not found")
        ready = [s for s in await self.runtime.sandboxes(pod_uid) if s.ready]
        if not ready:
            raise errors.InternalError(f'pod not found ("{name}_{namespace}")')
        sandbox = ready[-1]  # the newest: sandboxes() sorts by creation
        host_network = bool(dig(pod, "spec", "hostNetwork"))
        address = LOOPBACK if host_network else sandbox.ip
        if not address:
            raise errors.InternalError(f"pod {name}_{namespace} has no IP address yet")
        return SandboxConnector(sandbox.id, "", address, self.clock)
