"""Stores for original image bytes, chosen once from settings."""

from __future__ import annotations

from huimages.config import Settings
from huimages.originals.base import OriginalsStore


def open_primary(settings: Settings) -> OriginalsStore:
    """S3 when ``S3BUCKET`` is set, else the filesystem store."""
    if settings.s3_bucket:
        from huimages.originals.s3 import S3Store

        return S3Store.from_settings(settings)
    from huimages.originals.filesystem import FilesystemStore

    return FilesystemStore(settings.originals)


def open_store(settings: Settings) -> OriginalsStore:
    """The originals store the settings name; with ``COUCHSERVER``, legacy attachments too."""
    primary = open_primary(settings)
    if not settings.couch_server:
        return primary
    from huimages.couch import CouchConnection
    from huimages.originals.couchdb import CouchAttachmentStore, LegacyFallback

    connection = CouchConnection(settings.couch_server, settings.couch_db, settings.backend_timeout)
    return LegacyFallback(primary, CouchAttachmentStore(connection))


__all__ = ["OriginalsStore", "open_primary", "open_store"]
