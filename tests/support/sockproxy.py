"""A unix-socket proxy in front of the Docker daemon, with a switch to cut it.

An outage of the runtime can be tested this way without stopping the daemon every
other test shares: the kubelet under test talks to the proxy's socket, and ``cut()``
makes that socket stop answering (open connections are closed, the socket file is
removed, so a new connect fails as it does when dockerd is down); ``hang()`` keeps
accepting connections but never answers on them (a daemon that is stuck);
``restore()`` closes whatever hangs and forwards again at the same path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

_CHUNK = 64 * 1024


class SocketProxy:
    """Forwards every connection on ``path`` to the unix socket ``target``, byte for byte."""

    def __init__(self, path: Path, target: Path) -> None:
        self.path = path
        self.target = target
        self.connections = 0
        """Connections accepted so far (a test can see the client reconnect)."""
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._hanging = False

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    async def restore(self) -> None:
        """Forward again at ``path``; connections left hanging are closed."""
        if self._hanging:
            self._hanging = False
            await self._close_all()
        if self._server is None:
            self._server = await asyncio.start_unix_server(self._accepted, path=str(self.path))

    async def cut(self) -> None:
        """Stop answering: no listener, no socket file, every open connection closed."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.path.unlink(missing_ok=True)
        await self._close_all()

    def hang(self) -> None:
        """Accept, but never answer: open connections and new ones alike go silent."""
        self._hanging = True

    async def _close_all(self) -> None:
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        pipe = asyncio.current_task()
        assert pipe is not None
        self._pipes.add(pipe)
        try:
            if self._hanging:
                await asyncio.Future()  # held open until ``restore`` or ``cut`` cancels it
            await self._forward(reader, writer)
        finally:
            self._pipes.discard(pipe)
            writer.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_unix_connection(str(self.target))
        except OSError:
            return  # the daemon itself is gone: the client sees its connection closed
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._copy(reader, upstream_writer))
                group.create_task(self._copy(upstream_reader, writer))
        except* OSError:
            pass  # one side hung up hard: both are closed
        finally:
            upstream_writer.close()

    async def _copy(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Copy until end of stream, then pass the half-close on (exec's stdin needs it)."""
        while chunk := await source.read(_CHUNK):
            if self._hanging:  # swallowed: the other side waits for an answer in vain
                await asyncio.Future()
            sink.write(chunk)
            await sink.drain()
        if sink.can_write_eof():
            with contextlib.suppress(OSError):
                sink.write_eof()


@contextlib.asynccontextmanager
async def socket_proxy(path: Path, target: Path) -> AsyncIterator[SocketProxy]:
    """A listening proxy at ``path`` for the block; cut (and its file gone) after it."""
    proxy = SocketProxy(path, target)
    await proxy.restore()
    try:
        yield proxy
    finally:
        await proxy.cut()
