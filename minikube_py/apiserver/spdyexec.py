"""``pods/exec`` and ``pods/attach`` over the SPDY/3.1 upgrade, as kubectl before 1.31 speaks it.

After the upgrade (:mod:`spdyupgrade`) the client opens one SPDY stream per channel, each
named by its ``streamType`` header: ``error``, then ``stdin``, ``stdout``, ``stderr`` (not
beside a TTY) and ``resize`` (a TTY, from v3), whichever it asked for. As the kubelet's
``remotecommand`` server (``httpstream.go``) the server replies to each stream, waits until
it holds as many as the options call for (30 s, ``streamCreationTimeout``, else it gives
up and closes), and only then runs the session: stdin's bytes go in (its FIN is the end of
stdin), stdout and stderr come out, resize carries ``{"Width":..,"Height":..}`` objects.
At the end the error stream carries the Status, every stream the server wrote on gets its
FIN, and the connection stays until the client closes it (kubectl does, at once), so no
reset can overtake the last output.

What each protocol version changes (the client names them in its order, the server takes
the first it knows: kubectl 1.30 offers v5 first, which is WebSocket-only, so gets v4):

- ``v4.channel.k8s.io``: the Status is JSON, so an exit code travels (``NonZeroExitCode``
  with an ``ExitCode`` cause);
- ``v3.channel.k8s.io``: a failure is its message as text and success is nothing;
- ``v2.channel.k8s.io``: as v3 without resizing (a resize stream is not waited for);
- ``channel.k8s.io``: as v2, but the error stream is reset as soon as the streams are up
  (the 1.0 kubelet's slip, kept by every later one), so no Status ever arrives.

Flow control is not enforced: spdystream, kubectl's SPDY, does none (see :mod:`spdy`).

One difference from the kubelet: the session is already running when the streams come
(the kubelet's refusals must be answered before the 101, and accepting is starting here,
as on the WebSocket path); its output waits for them, unread, and a client that never
opens them has the session closed after the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import structlog

from minikube_py.apiserver import channels, spdy
from minikube_py.apiserver.channels import StreamOptions
from minikube_py.meta.objects import Obj

log = structlog.get_logger(__name__)

V4 = channels.V4
V3 = "v3.channel.k8s.io"
V2 = "v2.channel.k8s.io"
V1 = channels.V1
PROTOCOLS = (V4, V3, V2, V1)
"""What the kubelet speaks over SPDY. Not v5: over SPDY a FIN already ends stdin."""

STREAM_CREATION_TIMEOUT = 30.0  # the kubelet's default streamCreationTimeout
FINISH_TIMEOUT = channels.FINISH_TIMEOUT

ERROR, STDIN, STDOUT, STDERR, RESIZE = "error", "stdin", "stdout", "stderr", "resize"
_OUTPUT = {channels.STDOUT: STDOUT, channels.STDERR: STDERR}

Send = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True)
class Version:
    """One protocol version's differences from v4."""

    name: str
    resize: bool = True
    resets_error_stream: bool = False

    @classmethod
    def of(cls, name: str) -> Version:
        if name in (V4, V3):
            return cls(name)
        return cls(name, resize=False, resets_error_stream=name == V1)

    @property
    def stream_types(self) -> frozenset[str]:
        kinds = {ERROR, STDIN, STDOUT, STDERR}
        return frozenset(kinds | {RESIZE}) if self.resize else frozenset(kinds)

    def expected_streams(self, options: StreamOptions) -> int:
        """As the kubelet counts: error, then each stream asked for; a TTY has no stderr."""
        tty = options.tty
        wanted = (options.stdin, options.stdout, options.stderr and not tty, tty and self.resize)
        return 1 + sum(wanted)


class SpdyExec:
    """One exec or attach over a SPDY connection, relaying a :class:`channels.Session`."""

    def __init__(
        self,
        protocol: str,
        options: StreamOptions,
        send: Send,
        abort: Callable[[], None],
        *,
        creation_timeout: float = STREAM_CREATION_TIMEOUT,
        finish_timeout: float = FINISH_TIMEOUT,
    ) -> None:
        self.version = Version.of(protocol)
        self.session = spdy.Session(client=False, flow_control=False)
        self.streams: dict[str, int] = {}
        """The client's stream id of each type, as the server took them."""
        self._expected = self.version.expected_streams(options)
        self._received = 0
        self._ready = asyncio.Event()
        self._outbox = spdy.Outbox(self.session, send)
        self._abort = abort
        self._creation_timeout = creation_timeout
        self._finish_timeout = finish_timeout
        self._sizes = channels.ResizeDecoder()

    async def serve(
        self,
        chunks: AsyncIterator[bytes],
        target: channels.Session,
        *,
        final: Callable[[Obj], Obj] = lambda status: status,
    ) -> None:
        """Until the session ended and the client left, or the client left first.

        ``final`` rewords the Status; the caller closes ``target``.
        """
        async with asyncio.TaskGroup() as group:
            reader = group.create_task(self._read(chunks, target), name="spdy-exec-in")
            ready = group.create_task(self._ready.wait(), name="spdy-exec-streams")
            await asyncio.wait(
                (reader, ready), timeout=self._creation_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            ready.cancel()
            if not self._ready.is_set():
                if not reader.done():
                    log.warning("timed out waiting for client to create streams")
                reader.cancel()
                return
            await self._streams_up()
            writer = group.create_task(self._write(target, final), name="spdy-exec-out")
            await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
            if writer.done():  # everything said: the client closes when it has read it
                await asyncio.wait((reader,), timeout=self._finish_timeout)
            reader.cancel()
            writer.cancel()

    async def flush(self) -> bool:
        """Send what the session queued, in order; False once the client is gone."""
        return await self._outbox.flush()

    async def going_away(self) -> None:
        """The server is shutting down: GOAWAY, then close at once, whatever runs."""
        self.session.go_away()
        with contextlib.suppress(ConnectionError):
            await self.flush()
        self._abort()

    # -- the client's frames --

    async def _read(self, chunks: AsyncIterator[bytes], target: channels.Session) -> None:
        try:
            async for chunk in chunks:
                for event in self.session.receive(chunk):
                    await self._on_event(event, target)
                if not await self.flush():
                    return
        except spdy.SessionError as exc:
            log.info("exec session ended by a protocol error", error=str(exc))
            await self.flush()

    async def _on_event(self, event: spdy.Event, target: channels.Session) -> None:
        match event:
            case spdy.StreamOpened(stream_id, headers):
                self._opened(stream_id, headers)
            case spdy.DataReceived(stream_id, data, fin):
                if stream_id == self.streams.get(STDIN):
                    if data:
                        await target.write(data)
                    if fin:
                        await target.close_stdin()
                elif stream_id == self.streams.get(RESIZE):
                    for width, height in self._sizes.feed(data):
                        await target.resize(width, height)
            case spdy.StreamReset(stream_id) if stream_id == self.streams.get(STDIN):
                await target.close_stdin()
            case _:
                pass  # pings are answered by the session; the rest changes nothing here

    def _opened(self, stream_id: int, headers: spdy.Headers) -> None:
        """Reply to every stream; count those of a known type until all are there."""
        self.session.reply(stream_id)
        kind = (headers.get("streamtype") or [""])[0]
        if self._ready.is_set() or kind not in self.version.stream_types:
            log.info("unexpected exec stream", stream=stream_id, stream_type=kind)
            return
        self.streams[kind] = stream_id
        self._received += 1
        if self._received >= self._expected:
            self._ready.set()

    async def _streams_up(self) -> None:
        """v1's quirks: its error stream is reset, and the server ends its side of stdin."""
        if not self.version.resets_error_stream:
            return
        if ERROR in self.streams:
            self.session.reset(self.streams[ERROR], spdy.RstStatus.CANCEL)
        if self.session.is_open(self.streams.get(STDIN, 0)):
            self.session.send_data(self.streams[STDIN], b"", fin=True)
        await self.flush()

    # -- the session's output --

    async def _write(self, target: channels.Session, final: Callable[[Obj], Obj]) -> None:
        while (item := await target.read()) is not None:
            channel, data = item
            stream_id = self.streams.get(_OUTPUT.get(channel, ""), 0)
            if data and self.session.is_open(stream_id):  # a stream not made: dropped
                self.session.send_data(stream_id, data)
                if not await self.flush():
                    return
        status = channels.encode_status(self.version.name, final(await target.status()))
        error = self.streams.get(ERROR, 0)
        if status is not None and self.session.is_open(error):
            self.session.send_data(error, status)
        for kind in (STDOUT, STDERR, ERROR):
            stream_id = self.streams.get(kind, 0)
            if self.session.is_open(stream_id):
                self.session.send_data(stream_id, b"", fin=True)
        await self.flush()
