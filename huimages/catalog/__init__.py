"""Catalogs of image documents, chosen once from settings."""

from __future__ import annotations

from huimages.catalog.base import Catalog
from huimages.config import Settings


def open_catalog(settings: Settings) -> Catalog:
    """CouchDB when ``COUCHSERVER`` is set, else the SQLite file."""
    if settings.couch_server:
        from huimages.catalog.couchdb import CouchDBCatalog
        from huimages.couch import CouchConnection

        return CouchDBCatalog(CouchConnection(settings.couch_server, settings.couch_db, settings.backend_timeout))
    from huimages.catalog.sqlite import SQLiteCatalog

    return SQLiteCatalog(settings.catalog)


__all__ = ["Catalog", "open_catalog"]
