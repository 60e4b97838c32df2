"""Uploads whose record was never written: what they stored goes again, within minutes.

An upload that stores an original leaves a note beside the cache
(``.huimages/unrecorded/<id>``) first and takes it away once the image's
record is written. If the record cannot be written, the upload removes the
original and master it wrote at once; when the catalog does not answer even
for that, the note stays, and a sweep (a server's housekeeping, the queue
run, ``huimages sweep``) removes them once the note is ``GRACE`` seconds old.
A worker killed between the two writes leaves a note too.

Nothing recorded is ever removed. Two rules make it so, whatever the
interleaving with a save of the same bytes on any host:

- a save checks, after writing its record, that the store still holds the
  original, and stores it again if not (``ImageService.ingest``);
- the removal reads the original, deletes it, then looks for a record once
  more and puts the bytes back if one appeared meanwhile (``remove_unrecorded``).

Originals left without a record in other ways (by releases before this one,
or on a host that was lost) are listed by ``huimages check --orphans``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

from huimages.backends.files import is_disk_full
from huimages.catalog.base import Catalog
from huimages.core.ids import is_valid_id
from huimages.errors import DiskFull, HuImagesError, StorageError
from huimages.originals.base import OriginalsStore

logger = logging.getLogger(__name__)

#: A note younger than this may belong to an upload still writing its record (bounded by the backend timeout).
GRACE = 120.0


def remove_unrecorded(catalog: Catalog, store: OriginalsStore, image_id: str, master_side: int) -> bool:
    """Delete an original and its master unless a record names the image; returns whether they went.

    A record that appears while they are being removed gets its original back.
    """
    if catalog.find_many([image_id]):
        return False
    data = store.read_back(image_id)
    store.delete(image_id)
    raced = catalog.find_many([image_id])
    if raced:  # a save raced this removal: put its original back
        if data is not None:
            store.put(image_id, data, str(raced[image_id].get("content_type") or "image/jpeg"))
            logger.warning("%s was saved while it was removed as unrecorded; its original is back", image_id)
        return False
    if master_side:
        store.delete_master(image_id, master_side)
    return True


class UnrecordedUploads:
    """The notes of one host's uploads between storing an original and writing its record."""

    def __init__(self, folder: Path, catalog: Catalog, store: OriginalsStore, master_side: int) -> None:
        self.folder, self.catalog, self.store, self.master_side = folder, catalog, store, master_side

    def begin(self, image_id: str) -> None:
        """Before an original is stored (an empty file: its time is what counts)."""
        path = self.folder / image_id
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
            os.utime(path)  # an earlier note of the same bytes starts its grace again
        except OSError as exc:
            logger.error("cannot write %s: %s", path, exc.strerror)
            if is_disk_full(exc):
                raise DiskFull("cache") from exc
            raise StorageError("cache", f"cannot note an upload beside the cache: {exc.strerror}") from exc

    def end(self, image_id: str) -> None:
        """Its record is written."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.folder / image_id)

    def abandon(self, image_id: str) -> bool:
        """The record could not be written: remove what the upload stored; False if that must wait."""
        try:
            removed = remove_unrecorded(self.catalog, self.store, image_id, self.master_side)
        except HuImagesError as exc:
            logger.warning("%s: the original of an upload without a record stays until a sweep: %s", image_id, exc)
            return False
        if removed:
            logger.info("%s: removed the original an upload stored without writing its record", image_id)
        self.end(image_id)
        return True

    def sweep(self, now: float | None = None) -> tuple[int, int]:
        """Clear the notes older than ``GRACE``; returns how many were cleared and how many stay."""
        now = time.time() if now is None else now
        cleared = waiting = 0
        for image_id, modified in self._notes():
            if now - modified < GRACE:
                waiting += 1
            elif self.abandon(image_id):
                cleared += 1
            else:
                waiting += 1
                break  # the catalog or the store does not answer: the rest waits for the next sweep
        return cleared, waiting

    def _notes(self) -> list[tuple[str, float]]:
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        notes = []
        for entry in entries:
            if is_valid_id(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    notes.append((entry.name, entry.stat().st_mtime))
        return notes
