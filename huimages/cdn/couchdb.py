"""The production CDN queue: records in a CouchDB database of their own (default ``<db>_cdn``).

Kept out of the image database, which huImages' clients browse with
``_all_docs``. Records that releases before this one wrote into the image
database are moved here the first time a process uses the queue (and by
``huimages migrate``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

import couchdb.http

from huimages.backends.couch import CouchDatabase
from huimages.cdn.records import KEY_PREFIXES, Record
from huimages.cdn.store import Change, QueueStore
from huimages.errors import BackendUnavailable, StorageError

logger = logging.getLogger(__name__)

_CONFLICT_RETRIES = 20
_MOVE_BATCH = 500
_DERIVATIVE = "doc.huimages === 'derivative'"
CDN_VIEWS: dict[str, dict[str, str]] = {
    # Queued derivatives by their next attempt.
    "due": {
        "map": f"function (doc) {{ if ({_DERIVATIVE} && doc.state === 'queued') {{ emit(doc.next_attempt, null); }} }}",
    },
    # Every derivative by its image (deleting an image).
    "by_image": {"map": f"function (doc) {{ if ({_DERIVATIVE}) {{ emit(doc.image_id, null); }} }}"},
    # Every derivative by state and queue time: counts, the oldest queued, the parked ones.
    "states": {
        "map": f"function (doc) {{ if ({_DERIVATIVE}) {{ emit([doc.state, doc.queued_at], null); }} }}",
        "reduce": "_count",
    },
}


class CouchQueue(QueueStore):
    name = "couchdb cdn queue"

    def __init__(self, database: CouchDatabase, image_database: CouchDatabase | None = None) -> None:
        self.couch = database
        self.image_database = image_database
        self._moved = image_database is None
        self._move_lock = threading.Lock()

    def _db(self) -> couchdb.Database:
        if not self._moved:
            with self._move_lock:
                if not self._moved:
                    self.move_from_image_database()
                    self._moved = True
        return self.couch.db(self.name)

    def move_from_image_database(self) -> int:
        """Move queue, lease and size records out of the image database; returns how many moved.

        Each record is written here first (kept as it is if this database has
        it already, since only the new release writes here) and only then
        deleted from the image database, so nothing is lost if this stops.
        """
        if self.image_database is None:
            return 0
        source = self.image_database.db(self.name)
        target = self.couch.db(self.name)
        moved = 0
        for prefix in KEY_PREFIXES:
            while True:
                with self.couch.errors(self.name, "move queue records out of the image database"):
                    rows = list(
                        source.view(
                            "_all_docs",
                            startkey=prefix,
                            endkey=prefix + "\ufff0",
                            include_docs=True,
                            limit=_MOVE_BATCH,
                        )
                    )
                    if not rows:
                        break
                    copies = [{k: v for k, v in dict(row.doc).items() if k != "_rev"} for row in rows]
                    target.update(copies)  # a conflict means the record is here already: keep that one
                    source.update([{"_id": row.id, "_rev": row.doc["_rev"], "_deleted": True} for row in rows])
                moved += len(rows)
        if moved:
            logger.info("moved %d CDN queue records from %s to %s", moved, self.image_database.where, self.couch.where)
        return moved

    def _get_many(self, keys: list[str]) -> dict[str, Record]:
        if not keys:
            return {}
        with self.couch.errors(self.name, "read queue records"):
            rows = self._db().view("_all_docs", keys=keys, include_docs=True)
            return {str(row.key): dict(row.doc) for row in rows if row.doc}

    def _update_many(self, keys: list[str], change: Change) -> None:
        pending = list(dict.fromkeys(keys))
        db = self._db()
        for attempt in range(_CONFLICT_RETRIES):
            with self.couch.errors(self.name, "update queue records"):
                current = {str(row.key): row.doc for row in db.view("_all_docs", keys=pending, include_docs=True)}
                docs = []
                for key in pending:
                    doc = current.get(key)
                    record = change(key, None if doc is None else dict(doc))
                    if record is not None:
                        docs.append({**record, "_id": key, **({"_rev": doc["_rev"]} if doc else {})})
                outcomes = db.update(docs) if docs else []
            failed = [(doc_id, error) for ok, doc_id, error in outcomes if not ok]
            refused = [
                f"{doc_id}: {error}" for doc_id, error in failed if not isinstance(error, couchdb.http.ResourceConflict)
            ]
            if refused:
                raise StorageError(self.name, f"{self.couch.where} refused {len(refused)} records ({refused[0]})")
            pending = [doc_id for doc_id, _ in failed]
            if not pending:
                return
            time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
        raise BackendUnavailable(self.name, f"{len(pending)} queue records kept changing")

    def _remove_many(self, keys: list[str]) -> None:
        db = self._db()
        with self.couch.errors(self.name, "remove queue records"):
            rows = db.view("_all_docs", keys=keys)
            gone = [
                {"_id": row.id, "_rev": row.value["rev"], "_deleted": True}
                for row in rows
                if row.value and not row.value.get("deleted")
            ]
            if gone:
                db.update(gone)

    def _derivatives_of(self, image_ids: list[str]) -> list[Record]:
        self._db()
        rows = self.couch.view(self.name, "by_image", keys=image_ids, include_docs=True)
        return [dict(row.doc) for row in rows if row.doc]

    def _due(self, now: float, limit: int) -> list[Record]:
        self._db()
        rows = self.couch.view(self.name, "due", endkey=now, limit=limit, include_docs=True)
        return [dict(row.doc) for row in rows]

    def _state_counts(self) -> dict[str, int]:
        self._db()
        return {
            str(row.key[0]): int(row.value) for row in self.couch.view(self.name, "states", lazy=True, group_level=1)
        }

    def _oldest_queued(self) -> float | None:
        self._db()
        rows = self.couch.view(
            self.name, "states", lazy=True, reduce=False, startkey=["queued"], endkey=["queued", {}], limit=1
        )
        return float(rows[0].key[1]) if rows else None

    def _keys_in_state(self, state: str) -> list[str]:
        self._db()
        rows = self.couch.view(self.name, "states", reduce=False, startkey=[state], endkey=[state, {}])
        return [str(row.id) for row in rows]

    def _with_prefix(self, prefix: str, after: str | None, limit: int) -> list[tuple[str, Record]]:
        with self.couch.errors(self.name, "read queue records"):
            rows = self._db().view(
                "_all_docs", startkey=after or prefix, endkey=prefix + "\ufff0", include_docs=True, limit=limit + 1
            )
            return [(str(row.id), dict(row.doc)) for row in rows if row.id != after and row.doc][:limit]

    def ping(self) -> None:
        with self.couch.errors(self.name, "reach the server"):
            self._db().info()

    def views_behind(self) -> list[str]:
        self._db()
        return self.couch.behind(self.name)

    def bring_up_to_date(self, progress: Callable[[str, float], None] | None = None) -> None:
        self._db()
        self.couch.bring_up_to_date(self.name, progress)
