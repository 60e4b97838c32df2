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
from collections.abc import Callable, Iterator
from pathlib import Path

from huimages.catalog.base import Catalog, Doc
from huimages.errors import BackendUnavailable, StorageError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"""


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
        conn.execute("PRAGMA journal_mode=WAL")
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
        with self._errors() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT doc FROM images WHERE id = ?", (image_id,)).fetchone()
                doc = change(None if row is None else json.loads(row[0]))
                doc["_id"] = image_id
                conn.execute(
                    "INSERT OR REPLACE INTO images (id, doc, deleted) VALUES (?, ?, ?)",
                    (image_id, json.dumps(doc, sort_keys=True), 1 if doc.get("deleted") else 0),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
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
