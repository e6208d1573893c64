"""Child program for ``test_sqlite_crash``: write to a SQLite store until SIGKILL arrives.

Usage: ``python -m tests.storage.crash_writer DB_PATH [SEED]``

It opens ``SQLiteStore`` on DB_PATH and runs ``WRITERS`` coroutines. Writer ``i`` owns the
keys ``/registry/crash/w<i>/<n>``: each step creates its next key or updates one it already
has. Every value names its writer, a per-writer sequence number, its key and a checksum, so
the parent can tell a value written here from garbage, and a newer write from an older one.
The sequence only grows, across runs too: a run resumes after the highest sequence the
store holds, including writes that landed but were never reported.

Only after a write's ``await`` returned is it reported, as one JSON line on stdout,
flushed: ``{"key": ..., "value": ..., "revision": ...}``. Logs go to stderr, so stdout
carries nothing else. When the parent goes away the next report fails with a broken pipe
and the program ends, so an aborted test leaves no writer behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from minikube_py.storage.sqlite import SQLiteStore

WRITERS = 8
PREFIX = "/registry/crash/"
SEPARATOR = "|"


@dataclass(frozen=True, slots=True)
class Written:
    """What a value says about the write that produced it."""

    writer: int
    sequence: int
    key: str


def writer_prefix(writer: int) -> str:
    return f"{PREFIX}w{writer}/"


def owner(key: str) -> int:
    """The writer that owns ``key`` (from its path, not its value)."""
    return int(key.removeprefix(PREFIX).split("/", 1)[0].removeprefix("w"))


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def encode_value(writer: int, sequence: int, key: str, padding: str) -> bytes:
    """A value that can be verified on its own; ``padding`` varies the row size."""
    body = SEPARATOR.join((f"w{writer}", f"s{sequence}", key, padding))
    return f"{body}{SEPARATOR}{_digest(body)}".encode()


def parse_value(value: bytes) -> Written:
    """Decode a value from ``encode_value``; ValueError if it is not one, or is damaged."""
    body, _, digest = value.decode().rpartition(SEPARATOR)
    if digest != _digest(body):
        raise ValueError(f"checksum mismatch in {value[:80]!r}")
    writer, sequence, key, _padding = body.split(SEPARATOR)
    return Written(int(writer.removeprefix("w")), int(sequence.removeprefix("s")), key)


@dataclass
class Writer:
    """One writer coroutine's state: the keys it owns and their current mod revisions."""

    index: int
    store: SQLiteStore
    rng: random.Random
    sequence: int = 0
    next_key: int = 0
    revisions: dict[str, int] = field(default_factory=dict)

    def adopt(self, key: str, mod_revision: int, written: Written) -> None:
        """Take over a key a previous run left behind."""
        self.revisions[key] = mod_revision
        self.sequence = max(self.sequence, written.sequence)
        self.next_key = max(self.next_key, int(key.rsplit("/", 1)[1]) + 1)

    def _value(self, key: str) -> bytes:
        self.sequence += 1
        padding = "".join(self.rng.choices(string.ascii_letters, k=self.rng.randint(16, 600)))
        return encode_value(self.index, self.sequence, key, padding)

    async def step(self) -> tuple[str, bytes, int]:
        if not self.revisions or self.rng.random() < 0.5:
            key = f"{writer_prefix(self.index)}{self.next_key}"
            self.next_key += 1
            value = self._value(key)
            revision = await self.store.create(key, value)
        else:
            key = self.rng.choice(sorted(self.revisions))
            value = self._value(key)
            revision = await self.store.update(key, value, expected_revision=self.revisions[key])
        self.revisions[key] = revision
        return key, value, revision

    async def run(self) -> None:
        while True:
            key, value, revision = await self.step()
            line = json.dumps({"key": key, "value": value.decode(), "revision": revision})
            print(line, flush=True)


async def main(path: Path, seed: int) -> None:
    store = await SQLiteStore.open(path)
    try:
        writers = [Writer(i, store, random.Random(f"{seed}/{i}")) for i in range(WRITERS)]
        for kv in (await store.list(PREFIX)).items:
            writers[owner(kv.key)].adopt(kv.key, kv.mod_revision, parse_value(kv.value))
        await asyncio.gather(*(writer.run() for writer in writers))
    finally:
        await store.close()


if __name__ == "__main__":
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else random.randrange(2**32)
    try:
        asyncio.run(main(Path(sys.argv[1]), seed))
    except BrokenPipeError:
        sys.exit(0)
