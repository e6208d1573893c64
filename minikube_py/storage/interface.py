"""The storage seam: one protocol that every backend (SQLite, etcd) implements.

The API server is the only component that talks to a ``Store``. The model is etcd's:
a single global revision that every write increments, keys with a create and a mod
revision, optimistic concurrency by expected revision, and watches that can resume
from any revision that has not been compacted away.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One stored key at one revision."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int


class EventType(enum.Enum):
    """What happened to a key; a PUT with create == mod revision is a creation."""

    PUT = "PUT"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class Event:
    """A change to one key.

    ``kv.mod_revision`` is the revision of the change. For a DELETE, ``kv.value`` is the
    value the key held before it was deleted (so watchers can report the last state).
    ``prev`` is the key before the change, when the backend still has it.
    """

    type: EventType
    kv: KeyValue
    prev: KeyValue | None = None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def is_create(self) -> bool:
        return self.type is EventType.PUT and self.kv.create_revision == self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class ListResult:
    """A page of a range read at one consistent revision."""

    items: list[KeyValue]
    revision: int
    more: bool
    """True when keys beyond the returned page remain (``limit`` cut the page short)."""


class StoreError(Exception):
    """Base of every storage error; the API server translates these once, at its boundary."""


class KeyExists(StoreError):
    """``create`` found the key already present."""

    def __init__(self, key: str, current: KeyValue | None = None) -> None:
        super().__init__(f"key {key!r} already exists")
        self.key = key
        self.current = current


class KeyNotFound(StoreError):
    """The key does not exist (or was deleted)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} not found")
        self.key = key


class RevisionConflict(StoreError):
    """``update``/``delete`` expected a revision that is no longer the key's current one."""

    def __init__(self, key: str, expected: int, current: KeyValue | None) -> None:
        actual = current.mod_revision if current else 0
        super().__init__(f"key {key!r}: expected revision {expected}, current is {actual}")
        self.key = key
        self.expected = expected
        self.current = current


class Compacted(StoreError):
    """The requested revision is older than the oldest revision the store still keeps."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} is compacted (oldest kept: {compacted})")
        self.requested = requested
        self.compacted = compacted


class StoreUnavailable(StoreError):
    """The backend cannot be reached or opened (etcd down, data dir locked, ...)."""


class StoreCorrupt(StoreError):
    """The backend's data failed its integrity check; start-up must stop."""


class WatchStream(Protocol):
    """An ordered stream of events; close it (or use ``async with``) when done."""

    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def __anext__(self) -> Event: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Store(Protocol):
    """What the API server needs from storage.

    Keys are strings in kube-apiserver's layout (``/registry/pods/default/nginx``) and values
    are opaque bytes. Every successful write returns the new global revision, and is durable
    before it returns.
    """

    @property
    def name(self) -> str:
        """A short description for logs and ``status`` (backend and location)."""
        ...

    async def get(self, key: str, *, revision: int = 0) -> KeyValue:
        """The key's value at ``revision`` (0: latest). Raises KeyNotFound, Compacted."""
        ...

    async def list(
        self, prefix: str, *, limit: int = 0, start_after: str = "", revision: int = 0
    ) -> ListResult:
        """Keys under ``prefix`` in key order, after ``start_after``, at one revision.

        ``limit`` 0 means no limit. ``revision`` 0 means the latest; reusing the returned
        revision for the next page gives a consistent snapshot while writes go on.
        """
        ...

    async def count(self, prefix: str) -> int:
        """How many keys exist under ``prefix`` now."""
        ...

    async def create(self, key: str, value: bytes) -> int:
        """Store a new key. Raises KeyExists."""
        ...

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> int:
        """Replace the key if its mod revision is ``expected_revision``.

        Raises KeyNotFound, or RevisionConflict carrying the current value.
        """
        ...

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        """Delete the key (if its mod revision matches, when one is given).

        Returns the deleted value with ``mod_revision`` set to the deletion's revision.
        Raises KeyNotFound, RevisionConflict.
        """
        ...

    def watch(self, prefix: str, *, after_revision: int) -> WatchStream:
        """Every change under ``prefix`` with a revision above ``after_revision``, in order.

        Raises Compacted (when iterated first) if history after ``after_revision`` is gone.
        """
        ...

    async def current_revision(self) -> int:
        """The revision of the latest committed write (0 for an empty store)."""
        ...

    async def compacted_revision(self) -> int:
        """The revision of the latest compaction (0: never compacted).

        Reads at a revision below it, and watches from a revision below it, raise Compacted.
        """
        ...

    async def compact(self, revision: int) -> None:
        """Drop history below ``revision``; the state at ``revision`` and later stays readable."""
        ...

    async def close(self) -> None:
        """Release connections, files and background tasks."""
        ...
