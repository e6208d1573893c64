"""The single checks a probe runs (exec, httpGet, tcpSocket, grpc), worded as kubelet 1.32.

Each check answers with an ``Outcome`` and the text the kubelet puts into its events
(``HTTP probe failed with statuscode: 500``, ``dial tcp 10.1.0.5:80: connect: connection
refused``, an exec command's own output), so that ``kubectl describe pod`` reads as it does
against a real node. A check that could not even be attempted (a named port the container
does not declare, the runtime unreachable) raises ``ProbeError`` instead: the kubelet retries
those at once and then throws the result away, rather than counting it against the container.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from minikube_py.kubelet.containers import expand
from minikube_py.kubelet.runtime.interface import ContainerRuntime
from minikube_py.meta.objects import Obj

USER_AGENT = "kube-probe/1.32"
MAX_OUTPUT = 10 * 1024  # the kubelet keeps at most 10 KiB of exec output or response body
MAX_REQUESTS = 10  # Go's client: the 10th redirect is refused
EXEC_GRACE = 5.0  # beyond timeoutSeconds, in case a runtime does not honour its limit
_FOLLOWED = frozenset({301, 302, 303, 307, 308})  # the codes Go's http.Client follows
_SKIP_AUTO = frozenset({"Accept", "Accept-Encoding", "User-Agent"})  # we set ours, as Go does


class Outcome(enum.Enum):
    SUCCESS = "success"
    WARNING = "warning"  # a success with something worth an event (redirect to another host)
    FAILURE = "failure"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CheckResult:
    outcome: Outcome
    output: str = ""


class ProbeError(Exception):
    """The check could not be run; ``outcome`` is what the kubelet's event calls the state."""

    def __init__(self, message: str, outcome: Outcome = Outcome.UNKNOWN) -> None:
        super().__init__(message)
        self.outcome = outcome


def go_quote(text: str) -> str:
    """Go's ``%q`` for the plain strings that end up in messages."""
    return json.dumps(text, ensure_ascii=False)


def go_seconds(seconds: float) -> str:
    """A ``time.Duration`` as Go prints it, for whole and fractional seconds."""
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{seconds:g}s"


def host_port(host: str, port: int) -> str:
    """``net.JoinHostPort``: brackets around IPv6 literals."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def resolve_port(port: object, container: Obj) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    number: int
    if isinstance(port, int) and not isinstance(port, bool):
        number = port
    elif isinstance(port, str):
        named = [p for p in container.get("ports") or [] if p.get("name") == port]
        if not named:
            raise ProbeError(f"port {go_quote(port)} not found")
        number = int(named[0].get("containerPort") or 0)
    else:
        raise ProbeError(f"intOrString had no kind: {port!r}")
    if 0 < number < 65536:
        return number
    raise ProbeError(f"invalid port number: {number}")


def _strerror(exc: OSError) -> str:
    """Go prints syscall errors in lower case: ``connection refused``, ``no route to host``."""
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc)


# -- exec --


def exec_command(action: Obj, container: Obj) -> list[str]:
    """The command with ``$(VAR)`` expanded from the container's static env only, as upstream."""
    env = {str(e.get("name")): str(e.get("value") or "") for e in container.get("env") or []}
    return [expand(str(arg), env) for arg in action.get("command") or []]


async def exec_check(
    runtime: ContainerRuntime, container_id: str, command: Sequence[str], limit_seconds: float
) -> CheckResult:
    """Exit code 0 is success; the output (stdout and stderr) is the event's message."""
    try:
        async with asyncio.timeout(limit_seconds + EXEC_GRACE):
            result = await runtime.exec(container_id, list(command), limit_seconds)
    except TimeoutError:
        return CheckResult(Outcome.FAILURE, f"command {go_quote(' '.join(command))} timed out")
    except Exception as exc:  # the runtime could not run it: not the container's fault
        raise ProbeError(str(exc) or type(exc).__name__) from exc
    output = result.output[:MAX_OUTPUT].decode("utf-8", errors="replace")
    return CheckResult(Outcome.SUCCESS if result.exit_code == 0 else Outcome.FAILURE, output)


# -- tcpSocket --


async def tcp_check(host: str, port: int, limit_seconds: float) -> CheckResult:
    """Success when a connection opens within the timeout; it is closed at once."""
    address = host_port(host, port)
    try:
        async with asyncio.timeout(limit_seconds):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return CheckResult(Outcome.FAILURE, f"dial tcp {address}: i/o timeout")
    except socket.gaierror:
        return CheckResult(Outcome.FAILURE, f"dial tcp: lookup {host}: no such host")
    except OSError as exc:
        return CheckResult(Outcome.FAILURE, f"dial tcp {address}: connect: {_strerror(exc)}")
    writer.close()
    with contextlib.suppress(OSError):  # a reset after the connect: it was open, which counts
        await writer.wait_closed()
    return CheckResult(Outcome.SUCCESS)


# -- httpGet --


@dataclass(frozen=True)
class HTTPRequest:
    url: URL
    headers: CIMultiDict[str] = field(default_factory=CIMultiDict)


def http_request(action: Obj, container: Obj, pod_ip: str) -> HTTPRequest:
    """The GET the kubelet sends: host defaults to the pod IP, kube-probe user agent."""
    scheme = str(action.get("scheme") or "HTTP").lower()
    host = str(action.get("host") or pod_ip)
    if not host:
        raise ProbeError("the pod has no IP yet")
    port = resolve_port(action.get("port"), container)
    path = str(action.get("path") or "")
    if path and not path.startswith("/"):
        path = "/" + path
    headers: CIMultiDict[str] = CIMultiDict()
    for header in action.get("httpHeaders") or []:
        headers.add(str(header.get("name", "")), str(header.get("value", "")))
    if "User-Agent" not in headers:
        headers["User-Agent"] = USER_AGENT
    if "Accept" not in headers:
        headers["Accept"] = "*/*"
    elif not headers["Accept"]:
        del headers["Accept"]  # set but empty: send none, as the kubelet
    return HTTPRequest(URL(f"{scheme}://{host_port(host, port)}{path}"), headers)


@dataclass
class _Exchange:
    """Where an HTTP probe got to, so a timeout or error can be worded as Go words it."""

    url: URL
    reading_body: bool = False


async def http_check(request: HTTPRequest, limit_seconds: float) -> CheckResult:
    """200 <= status < 400 is success; a redirect to another host ends in a warning."""
    exchange = _Exchange(request.url)
    connector = aiohttp.TCPConnector(ssl=False, force_close=True)  # no verify, no keep-alive
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        try:
            async with asyncio.timeout(limit_seconds):
                status, body = await _follow(session, request, exchange)
        except TimeoutError:
            if exchange.reading_body:
                raise ProbeError(
                    "context deadline exceeded (Client.Timeout or context cancellation"
                    " while reading body)",
                    Outcome.FAILURE,
                ) from None
            return _failed(
                exchange,
                "context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            )
        except _Refused as refused:
            return _failed(exchange, str(refused), url=refused.url)
        except aiohttp.ClientPayloadError as exc:
            raise ProbeError(str(exc), Outcome.FAILURE) from exc
        except (aiohttp.ClientError, OSError) as exc:
            return _failed(exchange, _client_error(exc, exchange.url))
    if 200 <= status < 300:
        return CheckResult(Outcome.SUCCESS, body)
    if 300 <= status < 400:
        return CheckResult(Outcome.WARNING, f"Probe terminated redirects, Response body: {body}")
    # Like the kubelet, never the body: it may hold what the user must not see in events.
    return CheckResult(Outcome.FAILURE, f"HTTP probe failed with statuscode: {status}")


class _Refused(Exception):
    """A redirect the prober will not follow, worded as Go's client error."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


def _failed(exchange: _Exchange, reason: str, url: str | None = None) -> CheckResult:
    return CheckResult(Outcome.FAILURE, f"Get {go_quote(url or str(exchange.url))}: {reason}")


def _client_error(exc: BaseException, url: URL) -> str:
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"dial tcp: lookup {url.host}: no such host"
    if isinstance(exc, aiohttp.ClientConnectorError):
        address = host_port(str(exc.host), int(exc.port or 0))
        return f"dial tcp {address}: connect: {_strerror(exc.os_error)}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "EOF"
    return str(exc) or type(exc).__name__


async def _follow(
    session: aiohttp.ClientSession, request: HTTPRequest, exchange: _Exchange
) -> tuple[int, str]:
    """GET, following redirects as the kubelet's client: only on the same host, at most 10."""
    via: list[URL] = []
    headers = CIMultiDict(request.headers)
    while True:
        async with session.get(
            exchange.url, headers=headers, allow_redirects=False, skip_auto_headers=_SKIP_AUTO
        ) as response:
            location = response.headers.get("Location")
            if response.status in _FOLLOWED and location:
                via.append(exchange.url)
                target = _redirect_target(exchange.url, location)
                if target.host == via[0].host:
                    if len(via) >= MAX_REQUESTS:
                        raise _Refused(f"stopped after {MAX_REQUESTS} redirects", location)
                    headers = _redirect_headers(request.headers, exchange.url, target, location)
                    exchange.url = target
                    continue
            exchange.reading_body = True
            body = await response.content.read(MAX_OUTPUT)
            return response.status, body.decode("utf-8", errors="replace")


def _redirect_target(current: URL, location: str) -> URL:
    try:
        return current.join(URL(location))
    except ValueError as exc:
        raise _Refused(
            f"failed to parse Location header {go_quote(location)}: {exc}", str(current)
        ) from exc


def _redirect_headers(
    original: Mapping[str, str], previous: URL, target: URL, location: str
) -> CIMultiDict[str]:
    """As Go: the first request's headers, a Host kept on relative redirects only, a Referer."""
    headers = CIMultiDict(original)
    if URL(location).is_absolute():
        headers.popall("Host", None)
    downgrade = previous.scheme == "https" and target.scheme == "http"
    if "Referer" not in headers and not downgrade:
        headers["Referer"] = str(previous.with_user(None))
    return headers


# -- grpc --

_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_SERVING_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits, value = value & 0x7F, value >> 7
        out.append(bits | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def health_request(service: str) -> bytes:
    """``HealthCheckRequest{service}`` in protobuf wire format (no generated code needed)."""
    raw = service.encode()
    return b"\x0a" + _varint(len(raw)) + raw if raw else b""


def health_status(reply: bytes) -> int:
    """The ``status`` field of a ``HealthCheckResponse`` (0, UNKNOWN, when absent)."""
    at, status = 0, 0
    while at < len(reply):
        tag, at = _read_varint(reply, at)
        wire = tag & 7
        if wire == 0:
            value, at = _read_varint(reply, at)
            if tag >> 3 == 1:
                status = value
        elif wire == 2:
            length, at = _read_varint(reply, at)
            at += length
        else:
            at += 8 if wire == 1 else 4
    return status


def _go_code(name: str) -> str:
    """``NOT_FOUND`` as Go's codes print it: ``NotFound``."""
    return "".join(part.capitalize() for part in name.split("_"))


async def grpc_check(host: str, port: int, service: str, limit_seconds: float) -> CheckResult:
    """grpc.health.v1 ``Check`` over plaintext; anything but SERVING is a failure."""
    try:
        import grpc  # a dependency of aetcd: present, but not this module's to require
    except ImportError:
        return CheckResult(
            Outcome.FAILURE, "gRPC probes are not supported on this node: grpcio is not installed"
        )
    address = host_port(host, port)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_seconds
    options = [("grpc.primary_user_agent", USER_AGENT)]
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), limit_seconds)
        except TimeoutError:
            return CheckResult(
                Outcome.FAILURE,
                f"timeout: failed to connect service {go_quote(address)} within"
                f" {go_seconds(limit_seconds)}: context deadline exceeded",
            )
        check = channel.unary_unary(_HEALTH_CHECK)
        try:
            reply: bytes = await check(
                health_request(service), timeout=max(0.001, deadline - loop.time())
            )
        except grpc.aio.AioRpcError as exc:
            return CheckResult(Outcome.FAILURE, _grpc_failure(grpc, exc, limit_seconds))
    status = health_status(reply)
    if status != 1:
        name = _SERVING_STATUS.get(status, str(status))
        return CheckResult(Outcome.FAILURE, f"service unhealthy (responded with {go_quote(name)})")
    return CheckResult(Outcome.SUCCESS, "service healthy")


def _grpc_failure(grpc: object, exc: BaseException, limit_seconds: float) -> str:
    code = getattr(exc, "code", lambda: None)()
    details = str(getattr(exc, "details", lambda: "")() or "")
    codes = getattr(grpc, "StatusCode")  # noqa: B009 - grpc is untyped here
    if code == codes.UNIMPLEMENTED:
        return (
            "error: this server does not implement the grpc health protocol"
            f" (grpc.health.v1.Health): {details}"
        )
    if code == codes.DEADLINE_EXCEEDED:
        return f"timeout: health rpc did not complete within {go_seconds(limit_seconds)}"
    name = _go_code(code.name) if code is not None else "Unknown"
    return f"error: health rpc probe failed: rpc error: code = {name} desc = {details}"


# -- dispatch --


async def run_check(
    probe: Obj,
    *,
    runtime: ContainerRuntime,
    container: Obj,
    container_id: str,
    pod_ip: str,
    limit_seconds: float,
) -> CheckResult:
    """Run whichever handler ``probe`` names; ProbeError when it names none."""
    if (action := probe.get("exec")) is not None:
        command = exec_command(action, container)
        return await exec_check(runtime, container_id, command, limit_seconds)
    if (action := probe.get("httpGet")) is not None:
        return await http_check(http_request(action, container, pod_ip), limit_seconds)
    if (action := probe.get("tcpSocket")) is not None:
        port = resolve_port(action.get("port"), container)
        host = str(action.get("host") or pod_ip)
        if not host:
            raise ProbeError("the pod has no IP yet")
        return await tcp_check(host, port, limit_seconds)
    if (action := probe.get("grpc")) is not None:
        if not pod_ip:
            raise ProbeError("the pod has no IP yet")
        port = resolve_port(action.get("port"), container)
        service = str(action.get("service") or "")
        return await grpc_check(pod_ip, port, service, limit_seconds)
    raise ProbeError(f"missing probe handler for container {container.get('name')}")
