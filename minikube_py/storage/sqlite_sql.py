"""The SQLite revision log: schema and the blocking statements run on one connection.

Design in the spirit of kine: one append-only table ``kv`` whose row id is the global
revision. Each write appends a row that points at the row it supersedes
(``prev_revision``); a unique index on ``(name, prev_revision)`` makes two writers that
raced past the same revision impossible to both commit. A delete appends a tombstone
that still carries the last value, so watchers can report what was deleted.
Everything here is synchronous and runs on a worker thread.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from minikube_py.storage.interface import Event, EventType, KeyValue, StoreCorrupt
from minikube_py.storage.keys import prefix_end

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS kv_name_prev ON kv (name, prev_revision);
CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

COMPACT_KEY = "compact_revision"


@dataclass(frozen=True, slots=True)
class Row:
    """The newest row of one key: its revision, whether it is a tombstone, and its value."""

    id: int
    deleted: bool
    create_revision: int
    value: bytes

    def as_kv(self, key: str) -> KeyValue:
        return KeyValue(key, self.value, self.create_revision, self.id)


def connect(path: Path, *, writer: bool) -> sqlite3.Connection:
    """Open a connection in autocommit mode; transactions are begun explicitly.

    WAL lets readers run beside the single writer; ``synchronous=FULL`` fsyncs the WAL at
    every commit, so an acknowledged write survives power loss, not just a process crash.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=OFF")
        if writer:
            conn.executescript(SCHEMA)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreCorrupt(f"{path} is not a usable SQLite database: {exc}") from exc
    return conn


def check_integrity(path: Path) -> None:
    """Stop start-up on a damaged file rather than serve (or worsen) corrupt state.

    The check runs on a read-only connection, before any writable one exists: closing a
    writable connection checkpoints the WAL into the main file, which on a damaged file
    would rewrite it and delete the newest commits. Read-only, both files stay as found.
    """
    if not path.exists():
        return
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreCorrupt(f"{path} cannot be opened: {exc}") from exc
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise StoreCorrupt(f"{path} failed its integrity check: {exc}") from exc
    finally:
        conn.close()
    if rows != [("ok",)]:
        problems = "; ".join(str(r[0]) for r in rows[:5])
        raise StoreCorrupt(f"{path} failed its integrity check: {problems}")


def last_revision(conn: sqlite3.Connection) -> int:
    """The newest revision ever written; AUTOINCREMENT keeps it even if rows are compacted."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'kv'").fetchone()
    return int(row[0]) if row else 0


def compact_revision(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (COMPACT_KEY,)).fetchone()
    return int(row[0]) if row else 0


def set_compact_revision(conn: sqlite3.Connection, revision: int) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)",
        (COMPACT_KEY, revision),
    )


def latest_row(conn: sqlite3.Connection, key: str, revision: int = 0) -> Row | None:
    """The newest row of ``key`` at or below ``revision`` (0: newest of all)."""
    if revision:
        sql = (
            "SELECT id, deleted, create_revision, value FROM kv"
            " WHERE name = ? AND id <= ? ORDER BY id DESC LIMIT 1"
        )
        found = conn.execute(sql, (key, revision)).fetchone()
    else:
        sql = (
            "SELECT id, deleted, create_revision, value FROM kv"
            " WHERE name = ? ORDER BY id DESC LIMIT 1"
        )
        found = conn.execute(sql, (key,)).fetchone()
    if found is None:
        return None
    return Row(found[0], bool(found[1]), found[2], found[3])


def range_bounds(prefix: str, start_after: str) -> tuple[str, str, bool]:
    """Lower bound (exclusive when the flag is set), and upper bound (exclusive) of a prefix."""
    end = prefix_end(prefix)
    upper = end if end is not None else "\U0010ffff" * 4
    if start_after and start_after >= prefix:
        return start_after, upper, True
    return prefix, upper, False


def list_range(
    conn: sqlite3.Connection, prefix: str, start_after: str, revision: int, limit: int
) -> list[KeyValue]:
    """Live keys in the range at ``revision``: the newest row per name, unless a tombstone."""
    low, high, exclusive = range_bounds(prefix, start_after)
    op = ">" if exclusive else ">="
    sql = (
        "SELECT k.name, k.value, k.create_revision, k.id FROM kv k JOIN ("
        f" SELECT MAX(id) AS id FROM kv WHERE name {op} ? AND name < ? AND id <= ?"
        " GROUP BY name) m ON k.id = m.id"
        " WHERE k.deleted = 0 ORDER BY k.name"
    )
    params: tuple[object, ...] = (low, high, revision)
    if limit > 0:
        sql += " LIMIT ?"
        params += (limit,)
    return [KeyValue(n, v, c, i) for n, v, c, i in conn.execute(sql, params)]


def count_range(conn: sqlite3.Connection, prefix: str) -> int:
    low, high, _ = range_bounds(prefix, "")
    sql = (
        "SELECT COUNT(*) FROM kv k JOIN ("
        " SELECT MAX(id) AS id FROM kv WHERE name >= ? AND name < ? GROUP BY name) m"
        " ON k.id = m.id WHERE k.deleted = 0"
    )
    return int(conn.execute(sql, (low, high)).fetchone()[0])


def events_between(
    conn: sqlite3.Connection, prefix: str, after: int, upto: int, limit: int
) -> list[Event]:
    """Changes under ``prefix`` with ``after < revision <= upto``, oldest first."""
    low, high, _ = range_bounds(prefix, "")
    sql = (
        "SELECT k.id, k.name, k.deleted, k.create_revision, k.value,"
        " p.id, p.create_revision, p.value"
        " FROM kv k LEFT JOIN kv p ON p.id = k.prev_revision AND p.name = k.name"
        " WHERE k.id > ? AND k.id <= ? AND k.name >= ? AND k.name < ?"
        " ORDER BY k.id LIMIT ?"
    )
    events = []
    for rev, name, deleted, created, value, p_id, p_created, p_value in conn.execute(
        sql, (after, upto, low, high, limit)
    ):
        prev = KeyValue(name, p_value, p_created, p_id) if p_id is not None else None
        kind = EventType.DELETE if deleted else EventType.PUT
        events.append(Event(kind, KeyValue(name, value, created, rev), prev))
    return events


def append(
    conn: sqlite3.Connection,
    *,
    revision: int,
    key: str,
    value: bytes,
    deleted: bool,
    create_revision: int,
    prev_revision: int,
) -> None:
    conn.execute(
        "INSERT INTO kv (id, name, deleted, create_revision, prev_revision, value)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (revision, key, int(deleted), create_revision, prev_revision, value),
    )


def compact_step(conn: sqlite3.Connection, revision: int, start: int, window: int) -> int:
    """Drop history below ``revision`` among the next ``window`` rows from id ``start``.

    A row goes when a newer row of the same key at or below ``revision`` supersedes it, or
    when it is a tombstone older than ``revision``. Windows are taken in id order, so a
    tombstone is only removed after every older row of its key is gone: no deleted key
    can reappear between steps. Returns the next window's start.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = conn.execute(
            "SELECT id FROM kv WHERE id >= ? ORDER BY id LIMIT 1 OFFSET ?", (start, window)
        ).fetchone()
        end = revision if found is None else min(int(found[0]), revision)
        conn.execute(
            "DELETE FROM kv WHERE id >= ? AND id < ? AND (deleted = 1 OR EXISTS ("
            " SELECT 1 FROM kv n WHERE n.name = kv.name AND n.id > kv.id AND n.id <= ?))",
            (start, end, revision),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return end
