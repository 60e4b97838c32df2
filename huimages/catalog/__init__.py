"""Catalogs of image documents, chosen once from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from huimages.catalog.base import Catalog
from huimages.config import Settings

if TYPE_CHECKING:
    from huimages.backends.couch import CouchServer


def open_catalog(settings: Settings, couch: CouchServer | None = None) -> Catalog:
    """CouchDB when ``COUCHSERVER`` is set (on ``couch``, if given), else the SQLite file."""
    if settings.couch.server:
        from huimages.backends.couch import connect, image_database
        from huimages.catalog.couchdb import CouchDBCatalog

        server = connect(settings, couch)
        return CouchDBCatalog(image_database(server, settings.couch.db))
    from huimages.catalog.sqlite import SQLiteCatalog

    return SQLiteCatalog(settings.paths.catalog_file)


__all__ = ["Catalog", "open_catalog"]
