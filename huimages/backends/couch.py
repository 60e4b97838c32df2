"""CouchDB plumbing shared by the catalog, the legacy originals and the CDN queue.

Uses the ``CouchDB`` package (couchdb-python). A ``CouchDatabase`` is one
database with its design document (``_design/huimages``), both created on first
use; every error is translated into ``huimages.errors`` with the server named by
host and port only, never with the credentials ``COUCHSERVER`` may carry.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import couchdb
import couchdb.http

from huimages.config import Settings
from huimages.errors import BackendUnavailable, ConfigurationError, HuImagesError, StorageError
from huimages.telemetry import metrics

DESIGN_ID = "_design/huimages"
Views = Mapping[str, Mapping[str, str]]
_IMAGE = "doc._id.charAt(0) !== '_' && !doc.huimages"  # image documents have no `huimages` kind field
IMAGE_VIEWS: dict[str, dict[str, str]] = {
    # Image IDs of images that may be served, in ID order (browsing, random, count).
    "live": {
        "map": f"function (doc) {{ if ({_IMAGE} && !doc.deleted) {{ emit(doc._id, null); }} }}",
        "reduce": "_count",
    },
    # Live images by creation time, then ID: browsing newest first.
    "newest": {
        "map": f"function (doc) {{ if ({_IMAGE} && !doc.deleted) {{ emit([doc.ctime || '', doc._id], null); }} }}",
    },
    # Images whose original is (still) a CouchDB attachment: what `huimages migrate` copies.
    "attachments": {
        "map": f"function (doc) {{ if ({_IMAGE} && doc._attachments) {{ emit(doc._id, null); }} }}",
        "reduce": "_count",
    },
}


def image_database(server: CouchServer, dbname: str) -> CouchDatabase:
    """The database of image documents: the catalog's, and the legacy originals' (attachments)."""
    return server.database(dbname, IMAGE_VIEWS)


def connect(settings: Settings, shared: CouchServer | None = None) -> CouchServer:
    """The CouchDB server the settings name (``COUCHSERVER``, ``HUIMAGES_BACKEND_TIMEOUT``); ``shared``, if given.

    The one place a connection is made: the stores of one service share it (one pool).
    """
    if not settings.couch.server:
        raise ConfigurationError("COUCHSERVER", "is not set: name the CouchDB server, e.g. http://127.0.0.1:5984/")
    return shared or CouchServer(settings.couch.server, settings.backend_timeout)


class CouchServer:
    """A CouchDB server; its databases share one connection pool."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError("COUCHSERVER", "must be an http(s) URL such as http://127.0.0.1:5984/")
        self.host = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        # One immediate retry: a pooled keep-alive connection the server closed fails once
        # with ECONNRESET. (An empty list trips a bug in couchdb-python 1.2's retry loop.)
        session = couchdb.http.Session(timeout=timeout, retry_delays=[0.0])
        self.server = couchdb.Server(url, session=session)

    def database(self, dbname: str, views: Views) -> CouchDatabase:
        return CouchDatabase(self, dbname, views)


class CouchDatabase:
    """One database, with the views ``views`` in its design document."""

    def __init__(self, server: CouchServer, dbname: str, views: Views) -> None:
        self.server = server
        self.dbname = dbname
        self.views = {name: dict(view) for name, view in views.items()}
        self.where = f"database {dbname} at {server.host}"
        self._db: couchdb.Database | None = None
        self._lock = threading.Lock()

    def db(self, backend: str) -> couchdb.Database:
        """The database, created with its design document on first use."""
        if self._db is not None:
            return self._db
        with self._lock, self.errors(backend, "open the database"):
            if self._db is None:
                try:
                    db = self.server.server[self.dbname]
                except couchdb.http.ResourceNotFound:
                    try:
                        db = self.server.server.create(self.dbname)
                    except couchdb.http.PreconditionFailed:  # another host created it first
                        db = self.server.server[self.dbname]
                _ensure_design(db, self.views)
                self._db = db
        return self._db

    def exists(self, backend: str) -> bool:
        """Whether the database is there, without creating it."""
        with self.errors(backend, "look for the database"):
            return self.dbname in self.server.server

    def view(self, backend: str, name: str, **options: Any) -> list[Any]:
        with self.errors(backend, f"query {name}"):
            return list(self.db(backend).view(f"huimages/{name}", **options))

    @contextlib.contextmanager
    def errors(self, backend: str, action: str) -> Iterator[None]:
        with metrics.backend_call(backend, action):
            try:
                yield
            except HuImagesError:
                raise
            except couchdb.http.Unauthorized:
                raise StorageError(
                    backend, f"cannot {action}: {self.where} refused the credentials in COUCHSERVER"
                ) from None
            except couchdb.http.ServerError as exc:
                status = exc.args[0][0] if exc.args and isinstance(exc.args[0], tuple) else "?"
                if status == 403:
                    raise StorageError(backend, f"cannot {action}: {self.where} forbids it") from None
                raise BackendUnavailable(backend, f"cannot {action}: {self.where} answered {status}") from exc
            except (OSError, http.client.HTTPException) as exc:
                raise BackendUnavailable(backend, f"cannot {action}: no answer from {self.where}") from exc
            except (TypeError, ValueError) as exc:  # couchdb-python fails on an answer without a type, or not JSON
                raise BackendUnavailable(
                    backend, f"cannot {action}: {self.where} sent an answer that is not CouchDB's"
                ) from exc


def _ensure_design(db: couchdb.Database, views: dict[str, dict[str, str]]) -> None:
    for _ in range(5):
        current = db.get(DESIGN_ID)
        if current is not None and current.get("views") == views:
            return
        doc = dict(current or {"_id": DESIGN_ID})
        doc["views"] = views
        doc["language"] = "javascript"
        try:
            db.save(doc)
            return
        except couchdb.http.ResourceConflict:
            continue  # another host wrote it at the same time; check again
