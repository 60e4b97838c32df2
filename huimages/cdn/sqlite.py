"""The embedded CDN queue: records in a table of the SQLite catalog file.

State, next attempt and queue time are copied out of each derivative record
into indexed columns, so the queue's queries never parse JSON. Queue tables of
the releases that kept the queue in the catalog are moved in on first use.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from huimages.backends.sqlite import SQLiteFile, select_in
from huimages.cdn.records import WAITING, Derivative, Record, derivative_key, lease_key, size_key
from huimages.cdn.store import Change, QueueStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cdn_records (
    key TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    state TEXT,
    next_attempt REAL,
    queued_at REAL,
    image_id TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cdn_records_due ON cdn_records (state, next_attempt);
CREATE INDEX IF NOT EXISTS cdn_records_age ON cdn_records (state, queued_at);
CREATE INDEX IF NOT EXISTS cdn_records_image ON cdn_records (image_id);
"""


Row = tuple[str, str, object, object, object, object]


def _row(key: str, record: Record) -> Row:
    derivative = record.get("huimages") == "derivative"
    return (
        key,
        json.dumps(record, sort_keys=True),
        record["state"] if derivative else None,
        record["next_attempt"] if derivative else None,
        record["queued_at"] if derivative else None,
        record["image_id"] if derivative else None,
    )


def _upsert(conn: sqlite3.Connection, rows: list[Row]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO cdn_records (key, doc, state, next_attempt, queued_at, image_id)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


def _setup(conn: sqlite3.Connection) -> None:
    conn.executescript(_SCHEMA)
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'derivatives'").fetchone():
        _move_old_tables(conn)


def _move_old_tables(conn: sqlite3.Connection) -> None:
    """Move the queue tables of the catalog-kept queue (derivatives, size_versions, leases) into cdn_records."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'derivatives'").fetchone():  # not moved meanwhile
            rows = []
            columns = "size, id, version, state, attempts, last_error, next_attempt, queued_at"
            for values in conn.execute(f"SELECT {columns} FROM derivatives"):
                item = Derivative(*values)
                rows.append(_row(derivative_key(item.size, item.image_id), item.as_record()))
            for size, version in conn.execute("SELECT size, version FROM size_versions"):
                rows.append(_row(size_key(size), {"huimages": "size", "version": version}))
            for name, owner, expires in conn.execute("SELECT name, owner, expires FROM leases"):
                rows.append(_row(lease_key(name), {"huimages": "lease", "owner": owner, "expires": expires}))
            _upsert(conn, rows)
            for table in ("derivatives", "size_versions", "leases"):  # not executescript: it would commit
                conn.execute(f"DROP TABLE {table}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class SQLiteQueue(QueueStore):
    name = "sqlite cdn queue"

    def __init__(self, path: Path, busy_timeout: float = 30.0) -> None:
        self.file = SQLiteFile(path, self.name, _setup, busy_timeout)

    def _get_many(self, keys: list[str]) -> dict[str, Record]:
        with self.file.errors() as conn:
            rows = select_in(conn, "SELECT key, doc FROM cdn_records WHERE key IN ({marks})", keys)
            return {str(key): json.loads(doc) for key, doc in rows}

    def _update_many(self, keys: list[str], change: Change) -> None:
        with self.file.transaction() as conn:
            rows = []
            for key in keys:
                row = conn.execute("SELECT doc FROM cdn_records WHERE key = ?", (key,)).fetchone()
                record = change(key, None if row is None else json.loads(row[0]))
                if record is not None:
                    rows.append(_row(key, record))
            _upsert(conn, rows)

    def _remove_many(self, keys: list[str]) -> None:
        with self.file.transaction() as conn:
            conn.executemany("DELETE FROM cdn_records WHERE key = ?", [(key,) for key in keys])

    def _derivatives_of(self, image_ids: list[str]) -> list[Record]:
        with self.file.errors() as conn:
            rows = list(select_in(conn, "SELECT doc FROM cdn_records WHERE image_id IN ({marks})", image_ids))
        return [json.loads(doc) for (doc,) in rows]

    def _due(self, now: float, limit: int) -> list[Record]:
        with self.file.errors() as conn:
            rows = conn.execute(
                "SELECT doc FROM cdn_records WHERE state = 'queued' AND next_attempt <= ?"
                " ORDER BY next_attempt LIMIT ?",
                (now, limit),
            ).fetchall()
        return [json.loads(doc) for (doc,) in rows]

    def _state_counts(self) -> dict[str, int]:
        with self.file.errors() as conn:
            # One index range per waiting state: the uploaded records, however many, are not read.
            rows = conn.execute(
                "SELECT state, count(*) FROM cdn_records WHERE state IN (?, ?, ?) GROUP BY state", WAITING
            )
            return {str(state): int(count) for state, count in rows}

    def _oldest_queued(self) -> float | None:
        with self.file.errors() as conn:
            value = conn.execute("SELECT min(queued_at) FROM cdn_records WHERE state = 'queued'").fetchone()[0]
        return None if value is None else float(value)

    def _keys_in_state(self, state: str) -> list[str]:
        with self.file.errors() as conn:
            return [str(key) for (key,) in conn.execute("SELECT key FROM cdn_records WHERE state = ?", (state,))]

    def _with_prefix(self, prefix: str, after: str | None, limit: int) -> list[tuple[str, Record]]:
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # the first key past every key with the prefix
        with self.file.errors() as conn:
            rows = conn.execute(
                "SELECT key, doc FROM cdn_records WHERE key >= ? AND key > ? AND key < ? ORDER BY key LIMIT ?",
                (prefix, after or "", end, limit),
            ).fetchall()
        return [(str(key), json.loads(doc)) for key, doc in rows]

    def ping(self) -> None:
        with self.file.errors() as conn:
            conn.execute("SELECT 1 FROM cdn_records LIMIT 1").fetchall()
