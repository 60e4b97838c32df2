"""The embedded catalog: one SQLite file, documents stored as JSON.

Documents keep the CouchDB shape, so moving a site to CouchDB copies them
unchanged. WAL mode lets the server's processes read while one writes; each
thread (and each forked process) gets its own connection.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from huimages.catalog.base import Catalog, Doc
from huimages.catalog.records import STATES, Derivative, QueueStats
from huimages.errors import BackendUnavailable, StorageError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS derivatives (
    size TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    next_attempt REAL NOT NULL DEFAULT 0,
    queued_at REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (size, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS derivatives_due ON derivatives (state, next_attempt);
CREATE TABLE IF NOT EXISTS size_versions (size TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL) WITHOUT ROWID;
"""
_DERIVATIVE_COLUMNS = "size, id, version, state, attempts, last_error, next_attempt, queued_at"


def _use_wal(conn: sqlite3.Connection, patience: float) -> None:
    """Switch the file to WAL once; it stays so for every later connection.

    Changing the journal mode needs an exclusive lock and fails at once with
    "database is locked" when other connections are busy (the busy timeout does
    not cover it), as when several workers start together: so read first, and
    retry the switch for a while.
    """
    deadline = time.monotonic() + patience
    while str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class SQLiteCatalog(Catalog):
    name = "sqlite catalog"

    def __init__(self, path: Path, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        _use_wal(conn, self.busy_timeout)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextlib.contextmanager
    def _errors(self) -> Iterator[sqlite3.Connection]:
        """Translate sqlite3 errors: busy or unopenable means retry, the rest is a fault."""
        try:
            yield self._connection()
        except sqlite3.OperationalError as exc:
            raise BackendUnavailable(self.name, f"{self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StorageError(self.name, f"{self.path}: {exc}") from exc
        except OSError as exc:  # the folder cannot be made or opened
            raise BackendUnavailable(self.name, f"{self.path}: {exc.strerror}") from exc

    def _load(self, image_id: str) -> Doc | None:
        with self._errors() as conn:
            row = conn.execute("SELECT doc FROM images WHERE id = ?", (image_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _modify(self, image_id: str, change: Callable[[Doc | None], Doc]) -> Doc:
        with self._transaction() as conn:
            row = conn.execute("SELECT doc FROM images WHERE id = ?", (image_id,)).fetchone()
            doc = change(None if row is None else json.loads(row[0]))
            doc["_id"] = image_id
            conn.execute(
                "INSERT OR REPLACE INTO images (id, doc, deleted) VALUES (?, ?, ?)",
                (image_id, json.dumps(doc, sort_keys=True), 1 if doc.get("deleted") else 0),
            )
        return doc

    def _neighbour(self, key: str | None, after: bool) -> str | None:
        where = "deleted = 0" if key is None else ("id > ? AND deleted = 0" if after else "id < ? AND deleted = 0")
        query = f"SELECT id FROM images WHERE {where} ORDER BY id {'' if after else 'DESC'} LIMIT 1"
        with self._errors() as conn:
            row = conn.execute(query, () if key is None else (key,)).fetchone()
        return None if row is None else str(row[0])

    def count(self) -> int:
        with self._errors() as conn:
            return int(conn.execute("SELECT count(*) FROM images WHERE deleted = 0").fetchone()[0])

    def ping(self) -> None:
        with self._errors() as conn:
            conn.execute("SELECT 1 FROM images LIMIT 1").fetchall()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._errors() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def size_version(self, size: str) -> int:
        with self._errors() as conn:
            row = conn.execute("SELECT version FROM size_versions WHERE size = ?", (size,)).fetchone()
        return 1 if row is None else int(row[0])

    def bump_size_version(self, size: str) -> int:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO size_versions (size, version) VALUES (?, 2)"
                " ON CONFLICT (size) DO UPDATE SET version = version + 1",
                (size,),
            )
            return int(conn.execute("SELECT version FROM size_versions WHERE size = ?", (size,)).fetchone()[0])

    def enqueue(self, size: str, image_id: str, version: int, now: float) -> None:
        with self._transaction() as conn:
            conn.execute(
                f"INSERT INTO derivatives ({_DERIVATIVE_COLUMNS}) VALUES (?, ?, ?, 'queued', 0, '', ?, ?)"
                " ON CONFLICT (size, id) DO UPDATE SET version = excluded.version, state = 'queued', attempts = 0,"
                " last_error = '', next_attempt = excluded.next_attempt, queued_at = excluded.queued_at"
                " WHERE derivatives.version < excluded.version",
                (size, image_id, version, now, now),
            )

    def due(self, now: float, limit: int) -> list[Derivative]:
        with self._errors() as conn:
            rows = conn.execute(
                f"SELECT {_DERIVATIVE_COLUMNS} FROM derivatives WHERE state = 'queued' AND next_attempt <= ?"
                " ORDER BY next_attempt LIMIT ?",
                (now, limit),
            ).fetchall()
        return [Derivative(*row) for row in rows]

    def settle(self, results: list[Derivative]) -> None:
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE derivatives SET state = ?, attempts = ?, last_error = ?, next_attempt = ?"
                " WHERE size = ? AND id = ? AND version = ?",
                [(d.state, d.attempts, d.last_error, d.next_attempt, d.size, d.image_id, d.version) for d in results],
            )

    def uploaded(self, size: str, image_ids: list[str], version: int) -> set[str]:
        found: set[str] = set()
        with self._errors() as conn:
            for start in range(0, len(image_ids), 500):  # SQLite's limit on bound parameters
                chunk = image_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                query = "SELECT id FROM derivatives WHERE size = ? AND version = ? AND state = 'uploaded'"
                rows = conn.execute(f"{query} AND id IN ({marks})", (size, version, *chunk)).fetchall()
                found.update(str(row[0]) for row in rows)
        return found

    def queue_stats(self) -> QueueStats:
        with self._errors() as conn:
            counts = dict(conn.execute("SELECT state, count(*) FROM derivatives GROUP BY state").fetchall())
            oldest = conn.execute("SELECT min(queued_at) FROM derivatives WHERE state = 'queued'").fetchone()[0]
        return QueueStats({state: int(counts.get(state, 0)) for state in STATES}, oldest)

    def requeue_parked(self, now: float) -> int:
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE derivatives SET state = 'queued', attempts = 0, next_attempt = ? WHERE state = 'parked'", (now,)
            )
            return int(cursor.rowcount)

    def acquire_lease(self, name: str, owner: str, ttl: float, now: float) -> bool:
        with self._transaction() as conn:
            row = conn.execute("SELECT owner, expires FROM leases WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO leases (name, owner, expires) VALUES (?, ?, ?)", (name, owner, now + ttl)
            )
            return True

    def release_lease(self, name: str, owner: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))
