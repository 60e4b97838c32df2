"""The embedded catalog: one SQLite file, documents stored as JSON.

Documents keep the CouchDB shape, so moving a site to CouchDB copies them
unchanged. The file is shared with the embedded CDN queue (its own tables).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from huimages.backends.sqlite import SQLiteFile, select_in
from huimages.catalog.base import Catalog
from huimages.catalog.records import Doc

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS images_newest ON images (coalesce(json_extract(doc, '$.ctime'), ''), id) WHERE deleted = 0;
CREATE TABLE IF NOT EXISTS deletions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    at REAL NOT NULL
);
"""


_CTIME = "coalesce(json_extract(doc, '$.ctime'), '')"  # the expression images_newest is built on

#: Every listing query, by name: each seeks into an index, whatever the depth of its cursor
#: (``tests/test_contract_catalog.py`` holds their plans). The newest-first cursor repeats the
#: ctime bound outside the OR, so that SQLite searches the index from it instead of scanning down.
QUERIES = {
    "page": "SELECT doc FROM images WHERE id > ? AND deleted = 0 ORDER BY id LIMIT ?",
    "newest": f"SELECT doc FROM images WHERE deleted = 0 ORDER BY {_CTIME} DESC, id DESC LIMIT ?",
    "newest after": (
        f"SELECT doc FROM images WHERE deleted = 0 AND {_CTIME} <= ? AND ({_CTIME} < ? OR id < ?)"
        f" ORDER BY {_CTIME} DESC, id DESC LIMIT ?"
    ),
    "first": "SELECT id FROM images WHERE deleted = 0 ORDER BY id LIMIT 1",
    "last": "SELECT id FROM images WHERE deleted = 0 ORDER BY id DESC LIMIT 1",
    "following": "SELECT id FROM images WHERE id > ? AND deleted = 0 ORDER BY id LIMIT 1",
    "preceding": "SELECT id FROM images WHERE id < ? AND deleted = 0 ORDER BY id DESC LIMIT 1",
}


def _setup(conn: sqlite3.Connection) -> None:
    conn.executescript(_SCHEMA)


class SQLiteCatalog(Catalog):
    name = "sqlite catalog"

    def __init__(self, path: Path, busy_timeout: float = 30.0) -> None:
        self.file = SQLiteFile(path, self.name, _setup, busy_timeout)

    @property
    def path(self) -> Path:
        return self.file.path

    def _load(self, image_id: str) -> Doc | None:
        with self.file.errors() as conn:
            row = conn.execute("SELECT doc FROM images WHERE id = ?", (image_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _modify(self, image_id: str, change: Callable[[Doc | None], Doc]) -> Doc:
        with self.file.transaction() as conn:
            row = conn.execute("SELECT doc FROM images WHERE id = ?", (image_id,)).fetchone()
            doc = change(None if row is None else json.loads(row[0]))
            doc["_id"] = image_id
            conn.execute(
                "INSERT OR REPLACE INTO images (id, doc, deleted) VALUES (?, ?, ?)",
                (image_id, json.dumps(doc, sort_keys=True), 1 if doc.get("deleted") else 0),
            )
        return doc

    def _load_many(self, image_ids: list[str]) -> dict[str, Doc]:
        with self.file.errors() as conn:
            rows = select_in(conn, "SELECT id, doc FROM images WHERE id IN ({marks})", image_ids)
            return {str(image_id): json.loads(doc) for image_id, doc in rows}

    def _page(self, after: str | None, limit: int) -> list[Doc]:
        with self.file.errors() as conn:
            rows = conn.execute(QUERIES["page"], (after or "", limit)).fetchall()
        return [json.loads(doc) for (doc,) in rows]

    def _newest_page(self, before: tuple[str, str] | None, limit: int) -> list[Doc]:
        with self.file.errors() as conn:
            if before is None:
                rows = conn.execute(QUERIES["newest"], (limit,)).fetchall()
            else:
                rows = conn.execute(QUERIES["newest after"], (before[0], before[0], before[1], limit)).fetchall()
        return [json.loads(doc) for (doc,) in rows]

    def put_many(self, docs: list[Doc]) -> None:
        """Write whole documents in one transaction, replacing any there (a restore; the scale benchmark's fill)."""
        rows = [(str(doc["_id"]), json.dumps(doc, sort_keys=True), 1 if doc.get("deleted") else 0) for doc in docs]
        with self.file.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO images (id, doc, deleted) VALUES (?, ?, ?)", rows)

    def _delete(self, image_id: str) -> bool:
        with self.file.transaction() as conn:
            if conn.execute("DELETE FROM images WHERE id = ?", (image_id,)).rowcount == 0:
                return False
            conn.execute("INSERT INTO deletions (id, at) VALUES (?, ?)", (image_id, time.time()))
        return True

    def deletions(self, cursor: str | None, limit: int = 1000) -> tuple[list[str], str | None]:
        with self.file.errors() as conn:
            rows = conn.execute(
                "SELECT seq, id FROM deletions WHERE seq > ? ORDER BY seq LIMIT ?", (int(cursor or 0), limit)
            ).fetchall()
        return [str(image_id) for _, image_id in rows], str(rows[-1][0]) if rows else cursor

    def _neighbour(self, key: str | None, after: bool) -> str | None:
        name = ("first" if after else "last") if key is None else ("following" if after else "preceding")
        with self.file.errors() as conn:
            row = conn.execute(QUERIES[name], () if key is None else (key,)).fetchone()
        return None if row is None else str(row[0])

    def count(self) -> int:
        with self.file.errors() as conn:
            return int(conn.execute("SELECT count(*) FROM images WHERE deleted = 0").fetchone()[0])

    def ping(self) -> None:
        with self.file.errors() as conn:
            conn.execute("SELECT 1 FROM images LIMIT 1").fetchall()
