"""Catalogs of image documents, chosen once from settings."""

from __future__ import annotations

from huimages.catalog.base import Catalog
from huimages.config import Settings


def open_catalog(settings: Settings) -> Catalog:
    """The catalog the settings name (SQLite by default)."""
    from huimages.catalog.sqlite import SQLiteCatalog

    return SQLiteCatalog(settings.catalog)


__all__ = ["Catalog", "open_catalog"]
