"""CouchDB plumbing shared by the catalog, the legacy originals and the CDN queue.

Uses the ``CouchDB`` package (couchdb-python). A ``CouchDatabase`` is one
database with its design document (``_design/huimages``), both created on first
use; every error is translated into ``huimages.errors`` with the server named by
host and port only, never with the credentials ``COUCHSERVER`` may carry.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import couchdb
import couchdb.http

from huimages.config import Settings
from huimages.errors import BackendUnavailable, ConfigurationError, HuImagesError, StorageError
from huimages.telemetry import metrics

logger = logging.getLogger(__name__)

DESIGN_ID = "_design/huimages"
#: How long a read that may be a moment old waits for CouchDB to bring a view up to date. Past it the
#: index is read as it stands (``stale=update_after``: CouchDB goes on updating it), and for ``BEHIND_FOR``
#: seconds after that such reads of the view do not wait at all. Bulk writes (a migration, a restore)
#: can leave an index minutes of work behind; a request should not wait for it.
FRESH_WAIT = 2.0
BEHIND_FOR = 30.0
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
        self.quick = couchdb.Server(url, session=couchdb.http.Session(timeout=FRESH_WAIT, retry_delays=[0.0]))
        # After FRESH_WAIT ran out, a read of the index as it stands gets the rest of the backend timeout.
        rest = couchdb.http.Session(timeout=max(1.0, timeout - FRESH_WAIT), retry_delays=[0.0])
        self.rest = couchdb.Server(url, session=rest)

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
        # The same database through the FRESH_WAIT session, and through the rest of the timeout (no request made).
        self._quick = couchdb.Database(server.quick.resource(dbname), dbname)
        self._rest = couchdb.Database(server.rest.resource(dbname), dbname)
        self._behind_until: dict[str, float] = {}  # view: monotonic time until which lazy reads do not wait
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

    def view(self, backend: str, name: str, *, lazy: bool = False, **options: Any) -> list[Any]:
        """The rows of one of the design document's views.

        ``lazy``: an answer a moment old will do (newest-first listings,
        counts, the queue's figures). The read waits ``FRESH_WAIT`` at most for
        the index to be brought up to date, then reads it as it stands, within
        the rest of the backend timeout.
        """
        if not lazy:
            with self.errors(backend, f"query {name}"):
                return list(self.db(backend).view(f"huimages/{name}", **options))
        self.db(backend)  # made, with its design document
        with self.errors(backend, f"query {name}"):
            if time.monotonic() >= self._behind_until.get(name, 0.0):
                try:
                    return list(self._quick.view(f"huimages/{name}", **options))
                except TimeoutError:
                    self._behind_until[name] = time.monotonic() + BEHIND_FOR
                    logger.warning(
                        "CouchDB's view %s of %s is being brought up to date; reading it as it stands", name, self.where
                    )
            return list(self._rest.view(f"huimages/{name}", stale="update_after", **options))

    def _up_to_date(self, backend: str, name: str) -> bool:
        """Whether the view's index is brought up to date within ``FRESH_WAIT`` (False: it is being built)."""
        options = {"reduce": False} if "reduce" in self.views[name] else {}
        with self.errors(backend, f"query {name}"):
            try:
                list(self._quick.view(f"huimages/{name}", limit=1, **options))
                return True
            except TimeoutError:
                return False

    def behind(self, backend: str) -> list[str]:
        """The views whose index is not brought up to date within ``FRESH_WAIT`` (being built)."""
        self.db(backend)
        return [name for name in self.views if not self._up_to_date(backend, name)]

    def bring_up_to_date(self, backend: str, progress: Callable[[str, float], None] | None = None) -> None:
        """Wait until every view's index is up to date (after bulk writes), calling ``progress`` meanwhile."""
        self.db(backend)
        started = time.monotonic()
        for name in self.views:
            while not self._up_to_date(backend, name):
                if progress is not None:
                    progress(name, time.monotonic() - started)
            self._behind_until.pop(name, None)

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
