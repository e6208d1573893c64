"""The channel protocol of ``pods/exec`` and ``pods/attach`` over WebSocket, both ends of it.

Every WebSocket message carries one stream: its first byte is the channel (0 stdin, 1
stdout, 2 stderr, 3 error, 4 resize), the rest the bytes. The client negotiates a
subprotocol and the server echoes the one it chose:

- ``v5.channel.k8s.io``: what kubectl 1.30+ offers (alone). Message ``[255, n]`` closes
  channel ``n``: kubectl sends ``[255, 0]`` when its stdin ends, which is how
  ``kubectl exec -i pod -- sh -c 'cat > /x' < file`` (and ``kubectl cp``) can finish;
- ``v4.channel.k8s.io``: the official Python client (which now offers v5 first); stdin
  can never be closed, so a command waiting for EOF waits forever, as on a real cluster;
- ``channel.k8s.io`` (or no subprotocol) and the ``base64.`` variants of v1 and v4, which
  the kubelet's WebSocket server has always accepted (text messages: the channel as a
  digit, then base64). The v1 flavour reports a failure as plain text, success as nothing.

On connect the server sends one empty message on the lowest channel it writes (stdout,
else stderr, else error) so that the client knows the streams are up. At the end the
error channel carries a v1 Status and the server sends a normal WebSocket close, then
waits for the client's: closing the TCP connection at once could let the kernel reset it
while the client still reads buffered output (kube-apiserver's ``finish`` has the story).

This module is the wire format only; it is used by the API server (facing kubectl) and by
the kubelet's own HTTP server (facing the API server), as the kubelet and kube-apiserver
share ``wsstream`` in Kubernetes. Both sides relay a :class:`Session`, whatever runs it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

from aiohttp import WSMsgType, web
from multidict import MultiMapping

from minikube_py.meta.objects import Obj

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255
"""v5 only: ``[255, channel]`` says the sender is done with that channel."""

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
V1 = "channel.k8s.io"
V1_BASE64 = "base64.channel.k8s.io"
PROTOCOLS = (V5, V4, V4_BASE64, V1, V1_BASE64)
_BASE64 = frozenset({V4_BASE64, V1_BASE64})
_STATUS_AS_JSON = frozenset({V5, V4, V4_BASE64})

REFUSAL_HEADER = "X-Minikube-Py-Refusal"
"""A kubelet's refusal, percent-encoded, repeated from the body: aiohttp's WebSocket client
(the API server's, on the way to a kubelet) sees the status and headers of a failed
handshake, never its body."""

FINISH_TIMEOUT = 60.0
"""How long the server waits for the client's close frame after its own (see above)."""
MAX_MESSAGE = 32 * 2**20
"""The largest message accepted from a client (the Python client sends stdin whole)."""


class UnsupportedProtocol(ValueError):
    """None of the offered subprotocols is spoken here."""


class Refused(Exception):
    """A kubelet said no before any stream was opened: its HTTP status and its text."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def negotiate(offered: str) -> str:
    """The subprotocol to echo for a ``Sec-WebSocket-Protocol`` header (may be empty).

    Offered anywhere, v5 wins, as in kube-apiserver 1.32 (its stream translator takes every
    request that offers v5); otherwise the client's first supported choice, as the
    kubelet's handshake does. No header at all means the v1 protocol without a name.
    """
    names = [name.strip() for name in offered.split(",") if name.strip()]
    if not names:
        return ""
    if V5 in names:
        return V5
    for name in names:
        if name in PROTOCOLS:
            return name
    raise UnsupportedProtocol(
        f"requested protocol(s) are not supported: [{' '.join(names)}];"
        f" supports [{' '.join(PROTOCOLS)}]"
    )


# -- options, in the API's and the kubelet's spelling --


@dataclass(frozen=True)
class StreamOptions:
    """A PodExecOptions / PodAttachOptions (attach has no command)."""

    command: tuple[str, ...] = ()
    container: str = ""
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    tty: bool = False

    def kubelet_query(self) -> list[tuple[str, str]]:
        """The kubelet's query, as kube-apiserver's ``streamParams`` builds it."""
        flags = (("input", self.stdin), ("output", self.stdout), ("error", self.stderr))
        pairs = [(name, "1") for name, on in (*flags, ("tty", self.tty)) if on]
        return pairs + [("command", part) for part in self.command]


def _bool(value: str | None) -> bool:
    """apimachinery's rule: absent, ``0`` and ``false`` (any case) are false, all else true."""
    return value is not None and value != "0" and value.lower() != "false"


def api_options(query: MultiMapping[str]) -> StreamOptions:
    """``?command=sh&command=-c&stdin=true``, decoded as kube-apiserver decodes it.

    A flag left out is false (kubectl omits them), but the defaults applied after decoding
    (``SetDefaults_PodExecOptions``, ``SetDefaults_PodAttachOptions``) set stdout and
    stderr, whatever was asked: so there always is a stdout channel, and a TTY's missing
    stderr is the kubelet's doing.
    """
    return StreamOptions(
        command=tuple(query.getall("command", ())),
        container=query.get("container", ""),
        stdin=_bool(query.get("stdin")),
        stdout=True,
        stderr=True,
        tty=_bool(query.get("tty")),
    )


def kubelet_options(query: MultiMapping[str]) -> StreamOptions:
    """The kubelet's ``NewOptions``: only ``1`` is true, and a TTY has no separate stderr."""
    tty = query.get("tty") == "1"
    return StreamOptions(
        command=tuple(query.getall("command", ())),
        stdin=query.get("input") == "1",
        stdout=query.get("output") == "1",
        stderr=query.get("error") == "1" and not tty,
        tty=tty,
    )


# -- the Status on the error channel --


def success() -> Obj:
    return {"metadata": {}, "status": "Success"}


def exit_failure(code: int, detail: str) -> Obj:
    """A command that ended with ``code``; kubectl exits with the cause's number."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: {detail}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def internal_error(message: str) -> Obj:
    """``apierrors.NewInternalError`` as the streaming code writes it (no kind, no apiVersion)."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {message}",
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


def translated_for_v5(status: Obj) -> Obj:
    """What kube-apiserver's stream translator tells a v5 client about a kubelet's Status.

    The translator is itself a client of the kubelet: an exit code comes back worded by
    client-go (``command terminated with exit code 3``), and any other failure as an
    internal error around the kubelet's message, whose own ``Internal error occurred:``
    prefix stays (kubectl prints it twice, as against a real cluster).
    """
    state = status.get("status")
    if state == "Success":
        return success()
    if state != "Failure":
        return internal_error("error stream protocol error: unknown error")
    if status.get("reason") != "NonZeroExitCode":
        return internal_error(str(status.get("message") or ""))
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") != "ExitCode":
            continue
        text = str(cause.get("message", ""))
        if not text.isdigit() or int(text) > 255:
            return internal_error(f'error stream protocol error: invalid exit code value "{text}"')
        code = int(text)
        return exit_failure(code, f"command terminated with exit code {code}")
    return internal_error("error stream protocol error: no ExitCode cause given")


def encode_status(protocol: str, status: Obj) -> bytes | None:
    """v4/v5: the Status as JSON; older: the message of a failure, nothing for success.

    The same over SPDY, whose v2 and v3 (never offered over WebSocket) write text as v1.
    """
    if protocol in _STATUS_AS_JSON:
        return json.dumps(status, separators=(",", ":")).encode()
    if status.get("status") == "Success":
        return None
    return str(status.get("message") or "").encode()


class ResizeDecoder:
    """``{"Width":80,"Height":24}`` objects from the resize channel, however they were cut."""

    def __init__(self) -> None:
        self._buffer = ""
        self._decoder = json.JSONDecoder()

    def feed(self, data: bytes) -> list[tuple[int, int]]:
        self._buffer += data.decode(errors="replace")
        sizes: list[tuple[int, int]] = []
        while self._buffer.strip():
            text = self._buffer.lstrip()
            try:
                value, end = self._decoder.raw_decode(text)
            except json.JSONDecodeError:
                if len(text) > 4096:  # never a size: drop it rather than grow
                    self._buffer = ""
                return sizes
            self._buffer = text[end:]
            if isinstance(value, dict):
                fields = {str(k).lower(): v for k, v in value.items()}
                width, height = fields.get("width"), fields.get("height")
                if isinstance(width, int) and isinstance(height, int):
                    sizes.append((width, height))
        return sizes


# -- a session, whatever runs it --


class Session(Protocol):
    """A running exec or attach: output until ``read`` says None, then ``status``.

    ``write`` after the process ended is ignored (its stdin is gone), never an error.
    """

    async def read(self) -> tuple[int, bytes] | None:
        """(STDOUT or STDERR, bytes), or None once the output has ended."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def resize(self, width: int, height: int) -> None: ...

    async def status(self) -> Obj:
        """The final v1 Status (after ``read`` returned None)."""
        ...

    async def close(self) -> None:
        """Leave: release everything (safe to call twice)."""
        ...


# -- the server's end of the WebSocket --


def is_websocket(request: web.Request) -> bool:
    connection = request.headers.get("Connection", "").lower()
    upgrade = request.headers.get("Upgrade", "").lower()
    return upgrade == "websocket" and "upgrade" in connection


def refusal_response(refusal: Refused) -> web.Response:
    """A kubelet's refusal as the kubelet (and kube-apiserver's proxy) answers it."""
    return web.Response(
        status=refusal.code,
        text=refusal.text,
        headers={REFUSAL_HEADER: quote(refusal.text, safe="")},
    )


class ChannelConnection:
    """An accepted WebSocket speaking one channel subprotocol."""

    def __init__(self, ws: web.WebSocketResponse, protocol: str, options: StreamOptions) -> None:
        self.ws = ws
        self.protocol = protocol
        self.finishing = False
        """Set once the Status is sent and our close frame is on its way."""
        self._base64 = protocol in _BASE64
        self._writable = {STDOUT: options.stdout, STDERR: options.stderr, ERROR: True}
        self._reads_stdin = options.stdin

    @classmethod
    async def accept(
        cls, request: web.Request, protocol: str, options: StreamOptions
    ) -> ChannelConnection:
        """Upgrade, echo ``protocol``, and say hello on the lowest channel written to."""
        ws = web.WebSocketResponse(
            protocols=(protocol,) if protocol else (),
            compress=False,
            timeout=FINISH_TIMEOUT,
            max_msg_size=MAX_MESSAGE,
        )
        await ws.prepare(request)
        connection = cls(ws, protocol, options)
        first = STDOUT if options.stdout else STDERR if options.stderr else ERROR
        await connection._send(first, b"")
        return connection

    async def send(self, channel: int, data: bytes) -> None:
        """Output on ``channel``; one the client did not ask for is dropped, as kube does."""
        if self._writable.get(channel):
            await self._send(channel, data)

    async def _send(self, channel: int, data: bytes) -> None:
        if self._base64:
            await self.ws.send_str(chr(ord("0") + channel) + base64.b64encode(data).decode())
        else:
            await self.ws.send_bytes(bytes((channel,)) + data)

    async def send_status(self, status: Obj) -> None:
        encoded = encode_status(self.protocol, status)
        if encoded is not None:
            await self._send(ERROR, encoded)

    async def messages(self) -> AsyncIterator[tuple[int, bytes]]:
        """(channel, bytes) from the client until it closes; pings are answered meanwhile."""
        while True:
            message = await self.ws.receive()
            if message.type is WSMsgType.BINARY:
                raw = bytes(message.data)
            elif message.type is WSMsgType.TEXT:  # the Python client sends str as text
                raw = str(message.data).encode()
            else:  # CLOSE, CLOSING (our own close), CLOSED, ERROR
                return
            parsed = self._parse(raw)
            if parsed is not None:
                yield parsed

    def _parse(self, raw: bytes) -> tuple[int, bytes] | None:
        if not raw:
            return None
        channel, data = raw[0], raw[1:]
        if self._base64:
            channel -= ord("0")
            try:
                data = base64.b64decode(data, validate=True)
            except binascii.Error:
                return None  # kube logs such a frame and goes on
        if channel == CLOSE and self.protocol == V5:
            return (CLOSE, data) if len(data) == 1 else None
        if channel == STDIN and not self._reads_stdin:
            return None
        return (channel, data) if channel in (STDIN, RESIZE) else None

    async def close(self) -> None:
        """Normal closure, then wait (up to FINISH_TIMEOUT) for the client's close frame."""
        self.finishing = True
        await self.ws.close()

    async def going_away(self) -> None:
        """The server is shutting down: close at once, whatever runs."""
        await self.ws.close(code=1001, message=b"server shutting down")


async def relay(
    connection: ChannelConnection,
    session: Session,
    *,
    final: Callable[[Obj], Obj] = lambda status: status,
) -> None:
    """Both ways at once: client input to the session, its output and Status back.

    Ends when the session's output has ended (Status sent, close handshake done) or when
    the client has gone; the caller closes the session. ``final`` rewords the Status.
    """
    async with asyncio.TaskGroup() as group:
        inbound = group.create_task(_inbound(connection, session), name="stream-in")
        outbound = group.create_task(_outbound(connection, session, final), name="stream-out")
        await asyncio.wait((inbound, outbound), return_when=asyncio.FIRST_COMPLETED)
        if outbound.done() or connection.finishing:
            await outbound  # our own close ended the input: let the close handshake finish
            inbound.cancel()
        else:  # the client left (or the server is going away): nobody to send output to
            outbound.cancel()


async def _inbound(connection: ChannelConnection, session: Session) -> None:
    sizes = ResizeDecoder()
    with contextlib.suppress(ConnectionError):
        async for channel, data in connection.messages():
            if channel == STDIN:
                await session.write(data)
            elif channel == RESIZE:
                for width, height in sizes.feed(data):
                    await session.resize(width, height)
            elif data[0] == STDIN:  # CLOSE of stdin; closing other channels changes nothing
                await session.close_stdin()


async def _outbound(
    connection: ChannelConnection, session: Session, final: Callable[[Obj], Obj]
) -> None:
    with contextlib.suppress(ConnectionError):
        while (item := await session.read()) is not None:
            channel, data = item
            if data:
                await connection.send(channel, data)
        await connection.send_status(final(await session.status()))
        await connection.close()
