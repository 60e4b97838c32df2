"""Legacy originals: the first attachment of an image's CouchDB document.

huImages first stored originals as attachments. ``LegacyFallback`` serves them
on demand: read from CouchDB, verified against the ID (the SHA-1 must match),
copied to the primary store (S3, private), then used; ``huimages migrate``
copies all of them ahead of time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import couchdb.http

from huimages.backends.couch import CouchDatabase
from huimages.core.ids import matches
from huimages.errors import CorruptOriginal, ImageNotFound, StorageError
from huimages.originals.base import OriginalsStore

logger = logging.getLogger(__name__)


class CouchAttachmentStore(OriginalsStore):
    """Read-only view of the legacy attachments (and their removal after migration)."""

    name = "couchdb attachments"

    def __init__(self, database: CouchDatabase) -> None:
        self.couch = database

    def pending_ids(self, after: str | None, limit: int) -> list[str]:
        """IDs of images that still have an attachment, in ID order, strictly after ``after``."""
        options: dict[str, Any] = {"reduce": False, "limit": limit + 1}
        if after is not None:
            options["startkey"] = after
        ids = [str(row.id) for row in self.couch.view(self.name, "attachments", **options) if row.id != after]
        return ids[:limit]

    def count_pending(self) -> int:
        """How many images still have an attachment."""
        rows = self.couch.view(self.name, "attachments", reduce=True)
        return int(rows[0].value) if rows else 0

    def _attachment(self, image_id: str) -> tuple[dict[str, object], str, dict[str, object]] | None:
        with self.couch.errors(self.name, f"read {image_id}"):
            doc = self.couch.db(self.name).get(image_id)
        attachments = (doc or {}).get("_attachments") or {}
        if not attachments:
            return None
        name = next(iter(attachments))
        return dict(doc), name, attachments[name]

    def read_with_type(self, image_id: str) -> tuple[bytes, str] | None:
        """The attachment's bytes and content type, from one read of the document."""
        found = self._attachment(image_id)
        if found is None:
            return None
        doc, name, meta = found
        with self.couch.errors(self.name, f"read the attachment of {image_id}"):
            stream = self.couch.db(self.name).get_attachment(doc, name)
            if stream is None:
                return None
            return bytes(stream.read()), str(meta.get("content_type") or "image/jpeg")

    def _read(self, image_id: str) -> bytes | None:
        found = self.read_with_type(image_id)
        return None if found is None else found[0]

    def _write(self, image_id: str, data: bytes, content_type: str) -> None:
        raise StorageError(self.name, "legacy attachments are read-only; new originals go to the primary store")

    def _size(self, image_id: str) -> int | None:
        found = self._attachment(image_id)
        return None if found is None else int(found[2].get("length", 0))  # type: ignore[call-overload]

    def _remove(self, image_id: str) -> None:
        for _ in range(10):
            found = self._attachment(image_id)
            if found is None:
                return
            doc, name, _meta = found
            with self.couch.errors(self.name, f"delete the attachment of {image_id}"):
                try:
                    self.couch.db(self.name).delete_attachment(doc, name)
                    return
                except couchdb.http.ResourceConflict:
                    continue  # the document changed meanwhile; read it again
        raise StorageError(self.name, f"{image_id} kept changing; its attachment was not deleted")

    def listing(self) -> Iterator[list[tuple[str, float]]]:
        return iter(())  # attachments belong to their records: never orphans

    def _read_master(self, key: str) -> bytes | None:
        return None  # masters live in the primary store

    def _write_master(self, key: str, data: bytes) -> None:
        raise StorageError(self.name, "legacy attachments are read-only; masters go to the primary store")

    def _remove_master(self, key: str) -> None:
        return None

    def ping(self) -> None:
        with self.couch.errors(self.name, "reach the server"):
            self.couch.db(self.name).info()


class LegacyFallback(OriginalsStore):
    """The primary store, falling back to legacy attachments, which are migrated when read."""

    def __init__(self, primary: OriginalsStore, legacy: CouchAttachmentStore) -> None:
        self.primary = primary
        self.legacy = legacy
        self.name = primary.name

    def _read(self, image_id: str) -> bytes | None:
        """The primary copy; else (missing, or corrupt) the legacy attachment, which then repairs the primary."""
        corrupt: CorruptOriginal | None = None
        try:
            return self.primary.get(image_id)
        except ImageNotFound:
            pass
        except CorruptOriginal as exc:  # this copy is bad; a legacy attachment may still be good
            corrupt = exc
        found = self.legacy.read_with_type(image_id)
        if found is None or not matches(image_id, found[0]):
            if corrupt is not None:
                raise corrupt
            if found is None:
                return None
            raise CorruptOriginal(self.legacy.name, image_id, f"the attachment in {self.legacy.couch.where}")
        data, content_type = found
        self.primary.put(image_id, data, content_type)  # S3 checks its SHA-1 on the way in
        if corrupt is not None:
            logger.error("%s; repaired it from the legacy attachment", corrupt)
        else:
            logger.info("migrated legacy original %s to the %s on first use", image_id, self.primary.name)
        return data

    def _write(self, image_id: str, data: bytes, content_type: str) -> None:
        self.primary.put(image_id, data, content_type)

    def _size(self, image_id: str) -> int | None:
        for store in (self.primary, self.legacy):
            try:
                return store.length(image_id)
            except ImageNotFound:
                continue
        return None

    def _remove(self, image_id: str) -> None:
        self.primary.delete(image_id)

    def stored(self, image_id: str) -> bool:
        return self.primary.stored(image_id)

    def listing(self) -> Iterator[list[tuple[str, float]]]:
        return self.primary.listing()

    def _read_master(self, key: str) -> bytes | None:
        _, side, image_id = key.split("/")
        return self.primary.get_master(image_id, int(side))

    def _write_master(self, key: str, data: bytes) -> None:
        _, side, image_id = key.split("/")
        self.primary.put_master(image_id, int(side), data)

    def _remove_master(self, key: str) -> None:
        _, side, image_id = key.split("/")
        self.primary.delete_master(image_id, int(side))

    def ping(self) -> None:
        self.primary.ping()
        self.legacy.ping()
