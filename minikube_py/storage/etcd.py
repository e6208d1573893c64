"""The distributed store: etcd v3 through aetcd's gRPC channel and protobuf messages.

aetcd's convenience methods lack ranges with limit and revision, so the KV calls build
etcd's own requests on aetcd's stubs. Several endpoints give fail-over: a call that fails
because its member is gone (or has no leader) moves to the next member and retries until
a deadline. Watches are one gRPC stream each and resume after the last delivered
revision on another member, so a consumer never sees a gap or a duplicate.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import aetcd
import structlog
from aetcd import rpc
from grpc.aio import EOF

from minikube_py.storage.interface import (
    Compacted,
    Event,
    EventType,
    KeyExists,
    KeyNotFound,
    KeyValue,
    ListResult,
    RevisionConflict,
    StoreError,
    StoreUnavailable,
)
from minikube_py.storage.keys import prefix_end

log = structlog.get_logger(__name__)
T = TypeVar("T")

RETRIABLE = {rpc.StatusCode.UNAVAILABLE, rpc.StatusCode.DEADLINE_EXCEEDED}
RETIRE_SECONDS = 60.0
OPEN_DEADLINE = 5.0
"""At start-up, a store no member answers within this is reported, not waited for."""
WATCH_CREATE_TIMEOUT = 10.0
COMPACTED_TEXT = "required revision has been compacted"
LEADER_METADATA = (("hasleader", "true"),)
"""Ask members to end watches when they lose the leader, so we resume elsewhere. Unary
calls do without it: it costs client CPU on every call, and a leaderless member answers
them with UNAVAILABLE anyway (which fails over)."""


def _cancelled_by_caller() -> bool:
    """True when our own task is being cancelled, not just a call under it."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def parse_endpoints(servers: str) -> list[tuple[str, int]]:
    """``http://h:p[,http://h:p]`` (the kube-apiserver flag) into (host, port) pairs."""
    endpoints = []
    for raw in servers.split(","):
        url = urlsplit(raw.strip())
        if url.scheme != "http" or not url.hostname:
            raise StoreUnavailable(f"unsupported etcd server {raw!r}: use http://host:port")
        endpoints.append((url.hostname, url.port or 2379))
    if not endpoints:
        raise StoreUnavailable("no etcd servers given")
    return endpoints


def _kv(kv: Any) -> KeyValue:
    return KeyValue(kv.key.decode(), kv.value, kv.create_revision, kv.mod_revision)


CHANNEL_OPTIONS = {"grpc.max_receive_message_length": 2**31 - 1}
"""gRPC caps an answer at 4 MiB by default; a LIST of a few thousand objects is larger (kube's
etcd client lifts the cap the same way)."""


def _put(operations: Any, key: str, value: bytes) -> None:
    """Add a put of ``key`` to a Txn's operations, in place (see ``EtcdStore._txn_on``)."""
    put = operations.add().request_put
    put.key, put.value = key.encode(), value


def _range_end(key: str) -> bytes:
    end = prefix_end(key)
    return end.encode() if end is not None else b"\0"


class EtcdStore:
    """``Store`` on an etcd v3 cluster."""

    def __init__(
        self, servers: str, *, timeout: float = 5.0, failover_seconds: float = 30.0
    ) -> None:
        self.servers = servers
        self._endpoints = parse_endpoints(servers)
        self._timeout = timeout
        self._failover = failover_seconds
        self._index = 0
        self._client: aetcd.Client | None = None
        self._switch = asyncio.Lock()
        self._retired: list[tuple[float, Any]] = []
        self._streams: set[EtcdWatch] = set()
        self._closed = False

    @property
    def name(self) -> str:
        return f"etcd:{self.servers}"

    @classmethod
    async def open(cls, servers: str, **options: float) -> EtcdStore:
        """Connect and prove a member answers, so a wrong URL fails at start-up."""
        store = cls(servers, **options)
        failover, store._failover = store._failover, min(store._failover, OPEN_DEADLINE)
        try:
            await store.current_revision()
        except StoreError as exc:
            await store.close()
            raise StoreUnavailable(f"cannot reach etcd at {servers}: {exc}") from exc
        store._failover = failover
        log.info("etcd store opened", servers=servers)
        return store

    # -- connections and fail-over --

    async def client(self) -> aetcd.Client:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        client = self._client
        if client is None:
            async with self._switch:
                if self._client is None:
                    host, port = self._endpoints[self._index]
                    self._client = aetcd.Client(
                        host=host, port=port, timeout=self._timeout, options=CHANNEL_OPTIONS
                    )
                    await self._client.connect()
                client = self._client
        return client

    async def failed(self, client: aetcd.Client) -> None:
        """The member behind ``client`` failed: point new calls at the next member.

        The old client is retired, not closed: closing a gRPC channel cancels every call
        still running on it, which would turn other callers' answers into cancellations.
        Retired clients are closed once any call on them must have timed out.
        """
        stale: Any = client
        async with self._switch:
            if id(self._client) != id(stale):
                return
            self._client = None
            self._index = (self._index + 1) % len(self._endpoints)
        log.warning("etcd member unavailable, switching", next=self._endpoints[self._index])
        now = asyncio.get_running_loop().time()
        expired = [c for at, c in self._retired if now - at > RETIRE_SECONDS]
        self._retired = [(at, c) for at, c in self._retired if now - at <= RETIRE_SECONDS]
        self._retired.append((now, stale))
        for old in expired:
            await old.close()

    async def _call(self, request: Callable[[aetcd.Client], Awaitable[T]]) -> T:
        """Run one RPC; on a retriable failure, fail over and retry until the deadline."""
        result, _ = await self._call_tracked(request)
        return result

    async def _call_tracked(
        self, request: Callable[[aetcd.Client], Awaitable[T]]
    ) -> tuple[T, bool]:
        """As ``_call``; also says whether an earlier attempt may have been applied."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._failover
        delay, retried = 0.02, False
        while True:
            client = await self.client()
            try:
                return await request(client), retried
            except rpc.AioRpcError as exc:
                if exc.code() not in RETRIABLE or loop.time() > deadline:
                    raise StoreUnavailable(f"etcd: {exc.details()}") from exc
                await self.failed(client)
            except aetcd.exceptions.ClientError as exc:
                if loop.time() > deadline:
                    raise StoreUnavailable(f"etcd: {exc}") from exc
                await self.failed(client)
            except asyncio.CancelledError:
                if _cancelled_by_caller():
                    raise
                # The channel under this call was closed: retry like any lost connection.
                if loop.time() > deadline:
                    raise StoreUnavailable("etcd: connection closed") from None
            retried = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def _range(self, request: Any) -> Any:
        async def run(client: aetcd.Client) -> Any:
            return await client.kvstub.Range(request, timeout=self._timeout)

        try:
            return await self._call(run)
        except StoreUnavailable as exc:
            if COMPACTED_TEXT in str(exc):
                raise Compacted(request.revision, await self.compacted_revision()) from exc
            raise

    async def _txn(self, request: Any) -> tuple[Any, bool]:
        """Run a Txn; the flag says a retried attempt may already have applied it."""

        async def run(client: aetcd.Client) -> Any:
            return await client.kvstub.Txn(request, timeout=self._timeout)

        return await self._call_tracked(run)

    # -- the Store protocol --

    async def get(self, key: str, *, revision: int = 0) -> KeyValue:
        answer = await self._range(rpc.RangeRequest(key=key.encode(), revision=revision))
        if not answer.kvs:
            raise KeyNotFound(key)
        return _kv(answer.kvs[0])

    async def list(
        self, prefix: str, *, limit: int = 0, start_after: str = "", revision: int = 0
    ) -> ListResult:
        start = prefix.encode()
        if start_after and start_after >= prefix:
            start = start_after.encode() + b"\0"
        request = rpc.RangeRequest(
            key=start or b"\0", range_end=_range_end(prefix), limit=limit, revision=revision
        )
        answer = await self._range(request)
        return ListResult(
            [_kv(kv) for kv in answer.kvs], revision or answer.header.revision, answer.more
        )

    async def count(self, prefix: str) -> int:
        request = rpc.RangeRequest(
            key=prefix.encode() or b"\0", range_end=_range_end(prefix), count_only=True
        )
        return int((await self._range(request)).count)

    @staticmethod
    def _txn_on(key: bytes, *, target: int, result: int, **against: int) -> Any:
        """A Txn comparing one key, to which the caller adds its operations in place.

        Built in place (``add()``, then setting fields) because protobuf copies every
        message handed to a constructor: nesting constructors, as the request's shape
        suggests, costs three times as much on a path every write takes.
        """
        request = rpc.TxnRequest()
        request.compare.add(key=key, target=target, result=result, **against)
        return request

    @staticmethod
    def _txn_on_version(key: bytes, revision: int) -> Any:
        """A Txn on ``key`` that applies only if its mod_revision is ``revision`` (0: absent)."""
        return EtcdStore._txn_on(
            key, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL, mod_revision=revision
        )

    @staticmethod
    def _current(answer: Any) -> KeyValue | None:
        kvs = answer.responses[0].response_range.kvs
        return _kv(kvs[0]) if kvs else None

    async def create(self, key: str, value: bytes) -> int:
        request = self._txn_on_version(key.encode(), 0)
        _put(request.success, key, value)
        # No read in the failure branch: creates rarely collide, and a Txn that also ranges
        # costs etcd noticeably more; the collision path reads the winner separately.
        answer, retried = await self._txn(request)
        if not answer.succeeded:
            try:
                current: KeyValue | None = await self.get(key)
            except KeyNotFound:
                current = None
            if retried and current is not None and current.value == value:
                return current.mod_revision  # our first attempt landed before the failure
            raise KeyExists(key, current)
        return int(answer.header.revision)

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> int:
        request = self._txn_on_version(key.encode(), expected_revision)
        _put(request.success, key, value)
        request.failure.add().request_range.key = key.encode()
        answer, retried = await self._txn(request)
        if answer.succeeded:
            return int(answer.header.revision)
        current = self._current(answer)
        if current is None:
            raise KeyNotFound(key)
        if retried and current.value == value and current.mod_revision > expected_revision:
            return current.mod_revision  # our first attempt landed before the failure
        raise RevisionConflict(key, expected_revision, current)

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        raw = key.encode()
        if expected_revision:
            request = self._txn_on_version(raw, expected_revision)
        else:  # any live version: create_revision > 0
            request = self._txn_on(
                raw, target=rpc.Compare.CREATE, result=rpc.Compare.GREATER, create_revision=0
            )
        remove = request.success.add().request_delete_range
        remove.key, remove.prev_kv = raw, True
        request.failure.add().request_range.key = raw
        answer, _ = await self._txn(request)
        if answer.succeeded:
            deleted = answer.responses[0].response_delete_range.prev_kvs
            if deleted:
                prev = _kv(deleted[0])
                return KeyValue(key, prev.value, prev.create_revision, answer.header.revision)
        current = self._current(answer) if not answer.succeeded else None
        if current is None:
            raise KeyNotFound(key)
        raise RevisionConflict(key, expected_revision, current)

    def watch(self, prefix: str, *, after_revision: int) -> EtcdWatch:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        stream = EtcdWatch(self, prefix, after_revision)
        self._streams.add(stream)
        return stream

    def forget(self, stream: EtcdWatch) -> None:
        self._streams.discard(stream)

    async def current_revision(self) -> int:
        answer = await self._range(rpc.RangeRequest(key=b"\0", count_only=True))
        return int(answer.header.revision)

    async def compacted_revision(self) -> int:
        """etcd does not report it directly: find the oldest readable revision by bisection."""
        low, high = 1, await self.current_revision()
        if high <= 1 or await self._readable(low):
            return 0
        while low + 1 < high:  # low is compacted, high is readable
            middle = (low + high) // 2
            if await self._readable(middle):
                high = middle
            else:
                low = middle
        return high

    async def _readable(self, revision: int) -> bool:
        request = rpc.RangeRequest(key=b"\0", count_only=True, revision=revision)

        async def run(client: aetcd.Client) -> Any:
            return await client.kvstub.Range(request, timeout=self._timeout)

        try:
            await self._call(run)
        except StoreUnavailable as exc:
            if COMPACTED_TEXT in str(exc):
                return False
            raise
        return True

    async def compact(self, revision: int) -> None:
        revision = min(revision, await self.current_revision())

        async def run(client: aetcd.Client) -> None:
            await client.kvstub.Compact(
                rpc.CompactionRequest(revision=revision), timeout=self._timeout
            )

        try:
            await self._call(run)
        except StoreUnavailable as exc:
            if COMPACTED_TEXT not in str(exc):  # already compacted that far: nothing to do
                raise

    async def close(self) -> None:
        self._closed = True
        for stream in builtins.list(self._streams):
            await stream.close()
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
        for _, old in self._retired:
            await old.close()
        self._retired.clear()


class EtcdWatch:
    """One etcd watch stream that survives member failures by resuming elsewhere."""

    def __init__(self, store: EtcdStore, prefix: str, after_revision: int) -> None:
        self._store = store
        self._prefix = prefix
        self._last = after_revision
        self._call: Any = None
        self._client: aetcd.Client | None = None
        self._pending: collections.deque[Event] = collections.deque()
        self._closed = False

    async def open_stream(self) -> None:
        """Start a gRPC watch after the last delivered revision and wait until it is created."""
        while True:
            client = await self._store.client()
            call = rpc.WatchStub(client.channel).Watch(metadata=LEADER_METADATA)
            create = rpc.WatchCreateRequest(
                key=self._prefix.encode() or b"\0",
                range_end=_range_end(self._prefix),
                start_revision=self._last + 1,
                prev_kv=True,
            )
            try:
                async with asyncio.timeout(WATCH_CREATE_TIMEOUT):
                    await call.write(rpc.WatchRequest(create_request=create))
                    created = await call.read()
            except rpc.AioRpcError as exc:
                call.cancel()
                await self._recover(client, exc)
                continue
            except (asyncio.CancelledError, TimeoutError):
                call.cancel()
                if _cancelled_by_caller():
                    raise
                await self._store.failed(client)
                continue
            if created is None or created is EOF:
                call.cancel()
                await self._store.failed(client)
                continue
            if created.compact_revision:
                call.cancel()
                raise Compacted(self._last, int(created.compact_revision))
            self._call, self._client = call, client
            self._pending.extend(self._events(created))
            return

    async def _recover(self, client: aetcd.Client, exc: rpc.AioRpcError) -> None:
        if exc.code() not in RETRIABLE and exc.code() != rpc.StatusCode.CANCELLED:
            raise StoreUnavailable(f"etcd watch: {exc.details()}") from exc
        if self._closed:
            raise StopAsyncIteration
        await self._store.failed(client)
        await asyncio.sleep(0.05)

    def _events(self, answer: Any) -> builtins.list[Event]:
        events = []
        for raw in answer.events:
            kind = EventType.DELETE if raw.type == rpc.Event.DELETE else EventType.PUT
            prev = _kv(raw.prev_kv) if raw.HasField("prev_kv") else None
            kv = _kv(raw.kv)
            if kind is EventType.DELETE and prev is not None:
                kv = KeyValue(kv.key, prev.value, prev.create_revision, kv.mod_revision)
            if kv.mod_revision > self._last:
                self._last = kv.mod_revision
                events.append(Event(kind, kv, prev))
        return events

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._pending:
                return self._pending.popleft()
            if self._closed:
                raise StopAsyncIteration
            if self._call is None:
                await self.open_stream()
                continue
            try:
                answer = await self._call.read()
            except rpc.AioRpcError as exc:
                self._drop_call()
                assert self._client is not None
                await self._recover(self._client, exc)
                continue
            except asyncio.CancelledError:
                if self._closed:
                    raise StopAsyncIteration from None
                if _cancelled_by_caller():
                    raise
                self._drop_call()  # its channel was closed under it: resume elsewhere
                continue
            if answer is EOF or answer is None or answer.canceled:
                if answer not in (None, EOF) and answer.compact_revision:
                    raise Compacted(self._last, int(answer.compact_revision))
                self._drop_call()
                continue
            self._pending.extend(self._events(answer))

    def _drop_call(self) -> None:
        if self._call is not None:
            self._call.cancel()
            self._call = None

    async def close(self) -> None:
        self._closed = True
        self._drop_call()
        self._store.forget(self)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
