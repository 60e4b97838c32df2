"""Stores for original image bytes, chosen once from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from huimages.config import Settings
from huimages.originals.base import OriginalsStore

if TYPE_CHECKING:
    from huimages.backends.couch import CouchServer
    from huimages.originals.couchdb import CouchAttachmentStore


def open_primary(settings: Settings) -> OriginalsStore:
    """S3 when ``S3BUCKET`` is set, else the filesystem store."""
    if settings.s3.bucket:
        from huimages.originals.s3 import S3Store

        return S3Store.from_settings(settings)
    from huimages.originals.filesystem import FilesystemStore

    return FilesystemStore(settings.paths.originals_dir, settings.paths.home / "masters")


def open_legacy(settings: Settings, couch: CouchServer | None = None) -> CouchAttachmentStore:
    """The legacy originals: attachments of the image documents in CouchDB (``COUCHSERVER`` must be set)."""
    from huimages.backends.couch import connect, image_database
    from huimages.originals.couchdb import CouchAttachmentStore

    assert settings.couch.server
    server = connect(settings, couch)
    return CouchAttachmentStore(image_database(server, settings.couch.db))


def open_store(settings: Settings, couch: CouchServer | None = None) -> OriginalsStore:
    """The originals store the settings name; with ``COUCHSERVER``, legacy attachments too."""
    primary = open_primary(settings)
    if not settings.couch.server:
        return primary
    from huimages.originals.couchdb import LegacyFallback

    return LegacyFallback(primary, open_legacy(settings, couch))


__all__ = ["OriginalsStore", "open_legacy", "open_primary", "open_store"]
