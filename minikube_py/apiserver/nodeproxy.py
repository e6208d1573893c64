"""How the API server reaches a node's kubelet, and ``pods/log`` on top of that.

As in kube-apiserver (``pkg/registry/core/pod/rest/log.go``, ``LogLocation``), the API
server checks only what it can see in the Pod: the options, the container name (and
picks the only container when none is given). Whether a container has logs yet is the
kubelet's call, made from the pod status it reported; its refusal (``container "c" in
pod "p" is waiting to start: ContainerCreating``) comes back as a 400 and becomes a
BadRequest Status, exactly as kube-apiserver's ``GenericHttpResponseChecker`` does.

Two ways to a kubelet, chosen per node by :class:`NodeConnections`:

- in-process (``minikube-py up``): the kubelet's log service is registered under its
  node name and called directly, no HTTP hop;
- HTTP (``minikube-py kubelet`` elsewhere): ``http://<InternalIP>:<kubeletEndpoint
  port>/containerLogs/...``, the address and port the node reports in its status.

Both give an HTTP-shaped reply (status and a byte stream), so the rest is one path.
Logs are relayed chunk by chunk, never buffered whole; ``follow`` lasts until the
container stops (the kubelet's stream ends) or the client goes away.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, urlencode

import aiohttp
import structlog
from aiohttp import web

from minikube_py import errors
from minikube_py.httprelay import DISCONNECT_POLL, relay
from minikube_py.meta.objects import Obj, dig
from minikube_py.registry.api import API

log = structlog.get_logger(__name__)

KUBELET_PORT = 10250
MAX_ERROR_BODY = 50000  # kube-apiserver reads at most this much of a kubelet's error
ADDRESS_TYPES = ("InternalIP", "ExternalIP", "Hostname")
"""Preferred node address types. kube-apiserver's default puts Hostname first; a node's
hostname often does not resolve from the API server's machine, so it comes last here
(as with ``--kubelet-preferred-address-types=InternalIP,...``, minikube's choice)."""

_INT = re.compile(r"[+-]?[0-9]+")
_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})")
_INT64 = 2**63


# -- the kubelet, as the API server sees it --


class KubeletReply(Protocol):
    """An HTTP-shaped answer from a kubelet: status, and the body as a byte stream."""

    @property
    def status(self) -> int: ...

    @property
    def body(self) -> AsyncIterator[bytes]: ...


class LocalKubelet(Protocol):
    """An in-process kubelet's log service (``kubelet.server.LogService`` fits)."""

    async def container_logs(
        self, namespace: str, pod: str, container: str, query: Mapping[str, str]
    ) -> KubeletReply: ...


@dataclass(frozen=True)
class _HttpReply:
    status: int
    body: AsyncIterator[bytes]


class UnknownError(errors.APIError):
    """A failure that is no API error (kubelet unreachable): 500, reason left empty.

    kube-apiserver answers such errors with reason ``""``; kubectl then prints
    ``Error from server: <message>`` without a reason in parentheses.
    """

    code, reason = 500, ""


def kubelet_address(node: Obj) -> tuple[str, int]:
    """Where ``node``'s kubelet listens: a preferred address, the reported port (or 10250)."""
    addresses = dig(node, "status", "addresses") or []
    port = int(dig(node, "status", "daemonEndpoints", "kubeletEndpoint", "Port") or 0)
    for kind in ADDRESS_TYPES:
        for address in addresses:
            if address.get("type") == kind and address.get("address"):
                return str(address["address"]), port if port > 0 else KUBELET_PORT
    known = " ".join(f"{a.get('type')}:{a.get('address')}" for a in addresses)
    raise UnknownError(f"no preferred addresses found; known addresses: [{known}]")


async def _aclose(chunks: AsyncIterator[bytes]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


class NodeConnections:
    """The way to each node's kubelet: registered in-process services first, else HTTP."""

    def __init__(self, *, connect_timeout: float = 30.0) -> None:
        self._local: dict[str, LocalKubelet] = {}
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout)

    def register_local(self, node_name: str, kubelet: LocalKubelet) -> None:
        """An in-process kubelet for ``node_name``: calls skip HTTP from now on."""
        self._local[node_name] = kubelet

    def unregister_local(self, node_name: str) -> None:
        self._local.pop(node_name, None)

    @contextlib.asynccontextmanager
    async def container_logs(
        self, node: Obj, namespace: str, pod: str, container: str, query: Mapping[str, str]
    ) -> AsyncIterator[KubeletReply]:
        """The kubelet's answer to ``/containerLogs/...``; leaving the block ends the stream."""
        name = str(dig(node, "metadata", "name") or "")
        local = self._local.get(name)
        if local is not None:
            reply = await local.container_logs(namespace, pod, container, query)
            try:
                yield reply
            finally:
                await _aclose(reply.body)
            return
        host, port = kubelet_address(node)
        path = "/".join(quote(part, safe="") for part in (namespace, pod, container))
        url = f"http://{_host(host)}:{port}/containerLogs/{path}"
        if query:
            url += "?" + urlencode(query)
        try:
            response = await self._client().get(url)
        except (aiohttp.ClientError, OSError) as exc:
            raise UnknownError(f'Get "{url}": {_describe(exc)}') from exc
        async with response:  # leaving it closes an unfinished stream's connection
            yield _HttpReply(response.status, _chunks(response, url))

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, auto_decompress=False)
        return self._session

    async def close(self) -> None:
        """Close the HTTP connections to kubelets (API server shutdown)."""
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _chunks(response: aiohttp.ClientResponse, url: str) -> AsyncIterator[bytes]:
    """The body as it arrives; a kubelet that drops the connection just ends the stream."""
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except (aiohttp.ClientError, OSError) as exc:
        log.warning("kubelet stream broke", url=url, error=repr(exc))


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _describe(exc: BaseException) -> str:
    """Go's wording for a failed dial (``dial tcp 10.0.0.2:10250: connect: connection refused``)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        number = exc.os_error.errno
        reason = os.strerror(number) if number else str(exc.os_error)
        return f"dial tcp {exc.host}:{exc.port}: connect: {reason[:1].lower()}{reason[1:]}"
    return str(exc) or type(exc).__name__


# -- PodLogOptions: decoding, validation, the container --


@dataclass(frozen=True)
class PodLogOptions:
    """A decoded v1 PodLogOptions (``sinceTime`` kept as the RFC 3339 text sent on)."""

    container: str = ""
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    since_seconds: int | None = None
    since_time: str | None = None
    tail_lines: int | None = None
    limit_bytes: int | None = None

    def kubelet_query(self) -> dict[str, str]:
        """The kubelet's query, built as ``LogLocation`` builds it (false flags left out)."""
        query: dict[str, str] = {}
        for key, flag in (
            ("follow", self.follow),
            ("previous", self.previous),
            ("timestamps", self.timestamps),
        ):
            if flag:
                query[key] = "true"
        for key, number in (
            ("sinceSeconds", self.since_seconds),
            ("tailLines", self.tail_lines),
            ("limitBytes", self.limit_bytes),
        ):
            if number is not None:
                query[key] = str(number)
        if self.since_time is not None:
            query["sinceTime"] = self.since_time
        return query


def _bool(value: str | None) -> bool:
    """apimachinery's rule: absent, ``0`` and ``false`` (any case) are false, all else true."""
    return value is not None and value != "0" and value.lower() != "false"


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    if not _INT.fullmatch(value):
        raise errors.BadRequest(f'strconv.ParseInt: parsing "{value}": invalid syntax')
    number = int(value)
    if not -_INT64 <= number < _INT64:
        raise errors.BadRequest(f'strconv.ParseInt: parsing "{value}": value out of range')
    return number


def _since_time(value: str | None) -> str | None:
    """The time re-sent at second precision, as ``LogLocation`` formats ``time.RFC3339``."""
    if not value:
        return None
    found = _RFC3339.fullmatch(value)
    if found is None:
        raise errors.BadRequest(
            f'parsing time "{value}" as "2006-01-02T15:04:05Z07:00": cannot parse "{value}"'
        )
    return found.group(1) + found.group(2)


def parse_log_options(query: Mapping[str, str]) -> PodLogOptions:
    """Query → options; a value that does not decode is a 400 (as the parameter codec's)."""
    return PodLogOptions(
        container=query.get("container", ""),
        follow=_bool(query.get("follow")),
        previous=_bool(query.get("previous")),
        timestamps=_bool(query.get("timestamps")),
        since_seconds=_int(query.get("sinceSeconds")),
        since_time=_since_time(query.get("sinceTime")),
        tail_lines=_int(query.get("tailLines")),
        limit_bytes=_int(query.get("limitBytes")),
    )


def validate_log_options(name: str, options: PodLogOptions) -> None:
    """``ValidatePodLogOptions``: 422 ``PodLogOptions "<pod>" is invalid: ...``."""
    problems: list[errors.FieldError] = []
    if options.tail_lines is not None and options.tail_lines < 0:
        problems.append(
            errors.invalid("tailLines", options.tail_lines, "must be greater than or equal to 0")
        )
    if options.limit_bytes is not None and options.limit_bytes < 1:
        problems.append(errors.invalid("limitBytes", options.limit_bytes, "must be greater than 0"))
    if options.since_seconds is not None and options.since_time is not None:
        problems.append(
            errors.forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified")
        )
    elif options.since_seconds is not None and options.since_seconds < 1:
        problems.append(
            errors.invalid("sinceSeconds", options.since_seconds, "must be greater than 0")
        )
    if problems:
        raise errors.Invalid(errors.Target(kind="PodLogOptions", name=name), problems)


def container_names(pod: Obj) -> list[str]:
    """Every container of the pod in ``VisitContainers`` order: init, regular, ephemeral."""
    spec = pod.get("spec") or {}
    return [
        str(c.get("name", ""))
        for kind in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(kind) or []
    ]


def resolve_container(pod: Obj, requested: str) -> str:
    """``validateContainer``: the named container must exist; unnamed, the only one is used.

    kube-apiserver does not read ``kubectl.kubernetes.io/default-container``: kubectl does,
    and always sends ``container=`` (``Defaulted container "a" out of: a, b``). A client
    that names no container of a multi-container pod gets the 400, as from kube.
    """
    name = str(dig(pod, "metadata", "name") or "")
    if requested:
        if requested not in container_names(pod):
            raise errors.BadRequest(f"container {requested} is not valid for pod {name}")
        return requested
    regular = (pod.get("spec") or {}).get("containers") or []
    if len(regular) == 1:
        return str(regular[0].get("name", ""))
    if not regular:
        raise errors.BadRequest(f"a container name must be specified for pod {name}")
    choices = " ".join(container_names(pod))
    raise errors.BadRequest(
        f"a container name must be specified for pod {name}, choose one of: [{choices}]"
    )


# -- the kubelet's refusal, as a Status --

_GENERIC = {
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: (
        "TooManyRequests",
        "the server has received too many requests and has asked us to try again later",
    ),
    504: (
        "Timeout",
        "the server was unable to return a response in the time allotted, but may still be"
        " processing the request",
    ),
}


def _generic(code: int, text: str) -> tuple[str, str]:
    """Reason and message of ``NewGenericServerResponse`` for a status code."""
    if code == 403:
        return "Forbidden", text  # the server's text says who may not do what
    if code in _GENERIC:
        return _GENERIC[code]
    if code >= 500:
        return "InternalError", (
            f'an error on the server ("{text}") has prevented the request from succeeding'
        )
    return (
        "",
        f"the server responded with the status code {code} but did not return more information",
    )


def kubelet_error(code: int, text: str, pod: str) -> errors.APIError:
    """A kubelet's refusal as kube-apiserver's ``GenericHttpResponseChecker`` words it.

    400 → BadRequest with the kubelet's text (``... is waiting to start: ...``), 500 →
    InternalError with it; any other code its generic message, naming ``pods/log <pod>``.
    """
    if code == 400:
        return errors.BadRequest(text)
    if code == 500:
        return errors.InternalError(f"Internal error occurred: {text}", causes=[{"message": text}])
    reason, message = _generic(code, text)
    status = {
        "reason": reason,
        "message": f"{message} ( pods/log {pod})",
        "details": {"kind": "pods/log", "name": pod},
    }
    return errors.from_status(status, code)


async def _read_error(body: AsyncIterator[bytes]) -> str:
    data = bytearray()
    async for chunk in body:
        data += chunk[: MAX_ERROR_BODY - len(data)]
        if len(data) >= MAX_ERROR_BODY:
            break
    return data.decode(errors="replace")


Getter = Callable[[str, str], Awaitable[Obj]]
"""(namespace, name) → the object, or an APIError (NotFound) as the registry raises it."""
NodeGetter = Callable[[str], Awaitable[Obj]]


def pod_and_node_getters(api: API) -> tuple[Getter, NodeGetter]:
    """(namespace, name) → pod and name → node, read through the API's registries."""
    catalog = api.registries.catalog
    pods, nodes = catalog.by_kind("", "Pod"), catalog.by_kind("", "Node")
    if pods is None or nodes is None:
        raise LookupError("the catalog has no pods or nodes")
    pod_info, node_info = pods.info, nodes.info

    async def get_pod(namespace: str, name: str) -> Obj:
        return await api.get(pod_info, namespace, name)

    async def get_node(name: str) -> Obj:
        return await api.get(node_info, "", name)

    return get_pod, get_node


# -- relaying --


class PodLogs:
    """``GET /api/v1/namespaces/{ns}/pods/{name}/log``: check, find the kubelet, relay."""

    def __init__(
        self,
        get_pod: Getter,
        get_node: Callable[[str], Awaitable[Obj]],
        connections: NodeConnections,
        *,
        poll: float = DISCONNECT_POLL,
    ) -> None:
        self.get_pod = get_pod
        self.get_node = get_node
        self.connections = connections
        self.poll = poll

    @classmethod
    def for_api(cls, api: API, connections: NodeConnections) -> PodLogs:
        """Pods and nodes read through the API's registries (the watch cache)."""
        return cls(*pod_and_node_getters(api), connections)

    async def handle(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        if request.method != "GET":
            raise errors.MethodNotAllowed(
                "the server does not allow this method on the requested resource"
            )
        options = parse_log_options(request.query)
        validate_log_options(name, options)
        pod = await self.get_pod(namespace, name)
        container = resolve_container(pod, options.container)
        node_name = str(dig(pod, "spec", "nodeName") or "")
        if not node_name:  # kube-apiserver: no location, so 204 and no body
            return web.Response(status=204)
        node = await self.get_node(node_name)
        query = options.kubelet_query()
        async with self.connections.container_logs(
            node, namespace, name, container, query
        ) as reply:
            if not 200 <= reply.status <= 206:
                raise kubelet_error(reply.status, await _read_error(reply.body), name)
            return await self._stream(request, reply.body)

    async def _stream(self, request: web.Request, body: AsyncIterator[bytes]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        try:
            await response.prepare(request)
            await relay(request, response, body, poll=self.poll)
            await response.write_eof()
        except ConnectionError:  # the client left; nothing more to say
            pass
        return response
