"""The production catalog: image documents in CouchDB, as huImages stored them.

Several image servers share one (clusterable) CouchDB. Every change is a
read-modify-write retried on 409, so concurrent merges from any number of
hosts lose nothing.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable

import couchdb.http

from huimages.catalog.base import Catalog, Doc
from huimages.catalog.records import PARKED, QUEUED, STATES, Derivative, QueueStats
from huimages.couch import CouchConnection
from huimages.errors import BackendUnavailable

_CONFLICT_RETRIES = 20


class CouchDBCatalog(Catalog):
    name = "couchdb catalog"

    def __init__(self, connection: CouchConnection) -> None:
        self.couch = connection

    def _load(self, image_id: str) -> Doc | None:
        with self.couch.errors(self.name, f"read {image_id}"):
            doc = self.couch.db(self.name).get(image_id)
        return None if doc is None else dict(doc)

    def _modify(self, image_id: str, change: Callable[[Doc | None], Doc]) -> Doc:
        doc = self._change(image_id, change)
        assert doc is not None
        return doc

    def _neighbour(self, key: str | None, after: bool) -> str | None:
        options = {} if key is None else {"startkey": key}
        rows = self.couch.view(self.name, "live", limit=2, reduce=False, descending=not after, **options)
        for row in rows:
            if row.id != key:
                return str(row.id)
        return None

    def count(self) -> int:
        rows = self.couch.view(self.name, "live", reduce=True)
        return int(rows[0].value) if rows else 0

    def ping(self) -> None:
        with self.couch.errors(self.name, "reach the server"):
            self.couch.db(self.name).info()

    # -- derivatives and the CDN queue: documents with a `huimages` kind field --

    def _change(self, doc_id: str, change: Callable[[Doc | None], Doc | None]) -> Doc | None:
        """Read-modify-write of a bookkeeping document; ``change`` returning None writes nothing."""
        db = self.couch.db(self.name)
        for attempt in range(_CONFLICT_RETRIES):
            with self.couch.errors(self.name, f"update {doc_id}"):
                current = db.get(doc_id)
                doc = change(None if current is None else dict(current))
                if doc is None:
                    return None
                doc["_id"] = doc_id
                if current is not None:
                    doc["_rev"] = current["_rev"]
                try:
                    db.save(doc)
                    return doc
                except couchdb.http.ResourceConflict:
                    time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
        raise BackendUnavailable(self.name, f"{doc_id} kept changing under {_CONFLICT_RETRIES} attempts")

    def size_version(self, size: str) -> int:
        doc = self._load(f"size:{size}")
        return 1 if doc is None else int(doc["version"])

    def bump_size_version(self, size: str) -> int:
        doc = self._change(
            f"size:{size}", lambda d: {**(d or {}), "huimages": "size", "version": int((d or {}).get("version", 1)) + 1}
        )
        assert doc is not None
        return int(doc["version"])

    def enqueue(self, size: str, image_id: str, version: int, now: float) -> None:
        def change(doc: Doc | None) -> Doc | None:
            if doc is not None and int(doc["version"]) >= version:
                return None
            fresh = Derivative(size, image_id, version, next_attempt=now, queued_at=now)
            return {**(doc or {}), **_as_doc(fresh)}

        self._change(_derivative_id(size, image_id), change)

    def due(self, now: float, limit: int) -> list[Derivative]:
        rows = self.couch.view(self.name, "due", endkey=now, limit=limit, include_docs=True)
        return [_as_derivative(row.doc) for row in rows]

    def settle(self, results: list[Derivative]) -> None:
        if not results:
            return
        db = self.couch.db(self.name)
        pending = {_derivative_id(d.size, d.image_id): d for d in results}
        for _ in range(_CONFLICT_RETRIES):
            with self.couch.errors(self.name, "record upload results"):
                current = {row.id: row.doc for row in db.view("_all_docs", keys=list(pending), include_docs=True)}
                docs = []
                for doc_id, result in pending.items():
                    doc = current.get(doc_id)
                    if doc is None or int(doc["version"]) != result.version:
                        continue  # flushed or removed meanwhile: this result no longer applies
                    docs.append({**dict(doc), **_as_doc(result)})
                outcomes = db.update(docs)
            conflicts = {doc_id for ok, doc_id, _ in outcomes if not ok}
            pending = {k: v for k, v in pending.items() if k in conflicts}
            if not pending:
                return
        raise BackendUnavailable(self.name, f"{len(pending)} queue records kept changing")

    def uploaded(self, size: str, image_ids: list[str], version: int) -> set[str]:
        keys = [_derivative_id(size, i) for i in image_ids]
        with self.couch.errors(self.name, "look up uploads"):
            rows = self.couch.db(self.name).view("_all_docs", keys=keys, include_docs=True)
            return {
                str(row.doc["image_id"])
                for row in rows
                if row.doc and row.doc.get("state") == "uploaded" and int(row.doc["version"]) == version
            }

    def queue_stats(self) -> QueueStats:
        rows = self.couch.view(self.name, "states", group_level=1)
        counts = {state: 0 for state in STATES}
        counts.update({str(row.key[0]): int(row.value) for row in rows})
        oldest = self.couch.view(self.name, "states", reduce=False, startkey=[QUEUED], endkey=[QUEUED, {}], limit=1)
        return QueueStats(counts, float(oldest[0].key[1]) if oldest else None)

    def requeue_parked(self, now: float) -> int:
        rows = self.couch.view(
            self.name, "states", reduce=False, startkey=[PARKED], endkey=[PARKED, {}], include_docs=True
        )
        docs = [{**dict(row.doc), "state": QUEUED, "attempts": 0, "next_attempt": now} for row in rows]
        with self.couch.errors(self.name, "queue parked derivatives again"):
            outcomes = self.couch.db(self.name).update(docs) if docs else []
        return sum(1 for ok, _, _ in outcomes if ok)

    def acquire_lease(self, name: str, owner: str, ttl: float, now: float) -> bool:
        """Whoever saves the lease document first wins; the other writer gets a 409."""
        doc_id = f"lease:{name}"
        db = self.couch.db(self.name)
        with self.couch.errors(self.name, f"take the lease {name}"):
            current = db.get(doc_id)
            if current is not None and current.get("owner") != owner and float(current.get("expires", 0)) > now:
                return False
            doc = {"_id": doc_id, "huimages": "lease", "owner": owner, "expires": now + ttl}
            if current is not None:
                doc["_rev"] = current["_rev"]
            try:
                db.save(doc)
            except couchdb.http.ResourceConflict:
                return False
        return True

    def release_lease(self, name: str, owner: str) -> None:
        doc_id = f"lease:{name}"
        with self.couch.errors(self.name, f"release the lease {name}"):
            db = self.couch.db(self.name)
            current = db.get(doc_id)
            if current is not None and current.get("owner") == owner:
                with contextlib.suppress(couchdb.http.ResourceConflict, couchdb.http.ResourceNotFound):
                    db.delete(current)


def _derivative_id(size: str, image_id: str) -> str:
    return f"derivative:{size}:{image_id}"


def _as_doc(d: Derivative) -> Doc:
    return {
        "huimages": "derivative",
        "size": d.size,
        "image_id": d.image_id,
        "version": d.version,
        "state": d.state,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "next_attempt": d.next_attempt,
        "queued_at": d.queued_at,
    }


def _as_derivative(doc: Doc) -> Derivative:
    return Derivative(
        size=doc["size"],
        image_id=doc["image_id"],
        version=int(doc["version"]),
        state=doc["state"],
        attempts=int(doc["attempts"]),
        last_error=doc.get("last_error", ""),
        next_attempt=float(doc["next_attempt"]),
        queued_at=float(doc["queued_at"]),
    )
