"""The production catalog: image documents in CouchDB, as huImages stored them.

Several image servers share one (clusterable) CouchDB. Every change is a
read-modify-write retried on 409, so concurrent merges from any number of
hosts lose nothing. The image database holds image documents and this design
document only: huImages' own clients browse it with ``_all_docs``.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

import couchdb.http

from huimages.backends.couch import CouchDatabase
from huimages.catalog.base import Catalog
from huimages.catalog.records import Doc
from huimages.core.ids import is_valid_id
from huimages.errors import BackendUnavailable

_CONFLICT_RETRIES = 20


class CouchDBCatalog(Catalog):
    name = "couchdb catalog"

    def __init__(self, database: CouchDatabase) -> None:
        self.couch = database

    def _load(self, image_id: str) -> Doc | None:
        with self.couch.errors(self.name, f"read {image_id}"):
            doc = self.couch.db(self.name).get(image_id)
        return None if doc is None else dict(doc)

    def _modify(self, image_id: str, change: Callable[[Doc | None], Doc]) -> Doc:
        db = self.couch.db(self.name)
        for attempt in range(_CONFLICT_RETRIES):
            with self.couch.errors(self.name, f"update {image_id}"):
                current = db.get(image_id)
                doc = change(None if current is None else dict(current))
                doc["_id"] = image_id
                if current is not None:
                    doc["_rev"] = current["_rev"]
                try:
                    db.save(doc)
                    return doc
                except couchdb.http.ResourceConflict:
                    time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
        raise BackendUnavailable(self.name, f"{image_id} kept changing under {_CONFLICT_RETRIES} attempts")

    def _load_many(self, image_ids: list[str]) -> dict[str, Doc]:
        if not image_ids:
            return {}
        with self.couch.errors(self.name, "read images"):
            rows = self.couch.db(self.name).view("_all_docs", keys=image_ids, include_docs=True)
            return {str(row.key): dict(row.doc) for row in rows if row.doc}

    def _page(self, after: str | None, limit: int) -> list[Doc]:
        return self._live(after, limit, descending=False)

    def _live(self, key: str | None, limit: int, *, descending: bool) -> list[Doc]:
        """Up to ``limit`` live image documents after ``key`` in ID order (or before it, ``descending``).

        Read from ``_all_docs``, CouchDB's own index of IDs, which is always up
        to date: no request waits for a view's build (a migration or a restore
        can leave one minutes of work behind), and the seek costs the same at
        any depth. Documents that are not live images are skipped.
        """
        found: list[Doc] = []
        db = self.couch.db(self.name)
        while len(found) < limit:
            ask = limit - len(found) + 1
            options: dict[str, Any] = {"include_docs": True, "limit": ask, "descending": descending}
            if key is not None:
                options["startkey"] = key
            with self.couch.errors(self.name, "read images"):
                rows = list(db.view("_all_docs", **options))
            for row in rows:
                if row.id != key and row.doc and _is_live_image(row.doc):
                    found.append(dict(row.doc))
            if len(rows) < ask:
                break
            key = str(rows[-1].id)
        return found[:limit]

    def _newest_page(self, before: tuple[str, str] | None, limit: int) -> list[Doc]:
        options: dict[str, Any] = {"descending": True, "limit": limit + 1, "include_docs": True}
        if before is not None:
            options["startkey"] = list(before)
        rows = self.couch.view(self.name, "newest", lazy=True, **options)
        key = None if before is None else list(before)
        return [dict(row.doc) for row in rows if row.key != key][:limit]

    def _delete(self, image_id: str) -> bool:
        db = self.couch.db(self.name)
        for attempt in range(_CONFLICT_RETRIES):
            with self.couch.errors(self.name, f"delete {image_id}"):
                current = db.get(image_id)
                if current is None:
                    return False
                try:
                    db.delete(current)
                    return True
                except couchdb.http.ResourceNotFound:
                    return False
                except couchdb.http.ResourceConflict:
                    time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
        raise BackendUnavailable(self.name, f"{image_id} kept changing under {_CONFLICT_RETRIES} attempts")

    def deletions(self, cursor: str | None, limit: int = 1000) -> tuple[list[str], str | None]:
        """From CouchDB's own changes feed: a deleted document stays there as a deletion."""
        options: dict[str, object] = {"limit": limit}
        if cursor is not None:
            options["since"] = json.loads(cursor)
        with self.couch.errors(self.name, "read the changes feed"):
            feed = self.couch.db(self.name).changes(**options)
        results = feed.get("results") or []
        ids = [str(r["id"]) for r in results if r.get("deleted") and is_valid_id(str(r["id"]))]
        return ids, json.dumps(feed["last_seq"]) if results else cursor

    def _neighbour(self, key: str | None, after: bool) -> str | None:
        found = self._live(key, 1, descending=not after)
        return str(found[0]["_id"]) if found else None

    def count(self) -> int:
        rows = self.couch.view(self.name, "live", lazy=True, reduce=True)
        return int(rows[0].value) if rows else 0

    def ping(self) -> None:
        with self.couch.errors(self.name, "reach the server"):
            self.couch.db(self.name).info()

    def views_behind(self) -> list[str]:
        return self.couch.behind(self.name)

    def bring_up_to_date(self, progress: Callable[[str, float], None] | None = None) -> None:
        self.couch.bring_up_to_date(self.name, progress)


def _is_live_image(doc: Doc) -> bool:
    """An image document (what the live view emits): not a design document, no ``huimages`` kind field, not
    marked deleted."""
    return not str(doc.get("_id", "_")).startswith("_") and not doc.get("huimages") and not doc.get("deleted")
