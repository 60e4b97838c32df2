"""Originals that no catalog record names: a save whose catalog write failed after its original was stored.

They are harmless (an unknown ID answers 404, and saving the same bytes again
reuses the original), but nothing else ever removes them. ``huimages check
--orphans`` lists them; ``--delete`` removes those older than ``MIN_AGE``.

A save racing the removal never loses its original. Two rules make it so:

- a save checks, after writing its record, that the store still holds the
  original, and stores it again if not (``ImageService.ingest``);
- the removal reads the original, deletes it, then looks for a record once
  more and puts the bytes back if one appeared meanwhile (``remove_orphan``).

Whatever the interleaving, either the save's last check comes after the
delete (and the save stores the bytes again), or its record was written
before the delete, and the removal's second look finds it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator

from huimages.catalog.base import Catalog
from huimages.originals.base import OriginalsStore

logger = logging.getLogger(__name__)

#: Only originals stored longer ago than this are removed: a save in progress writes its record within seconds.
MIN_AGE = 24 * 3600.0


@dataclasses.dataclass(frozen=True)
class Orphan:
    image_id: str
    modified: float  # epoch seconds

    def old_enough(self, now: float) -> bool:
        return now - self.modified >= MIN_AGE


def find_orphans(catalog: Catalog, store: OriginalsStore) -> Iterator[Orphan]:
    """Every stored original without a catalog record (a record marked deleted still counts as one)."""
    for page in store.listing():
        if not page:
            continue
        known = catalog.find_many([image_id for image_id, _ in page])
        for image_id, modified in page:
            if image_id not in known:
                yield Orphan(image_id, modified)


def remove_orphan(catalog: Catalog, store: OriginalsStore, orphan: Orphan, master_side: int) -> bool:
    """Delete an orphan and its master, unless a record names it by then; returns whether it went.

    A record that appears while it is being removed gets its original back.
    """
    if catalog.find_many([orphan.image_id]):
        return False
    data = store.read_back(orphan.image_id)
    store.delete(orphan.image_id)
    raced = catalog.find_many([orphan.image_id])
    if raced:  # a save raced us: put its original back
        if data is not None:
            store.put(orphan.image_id, data, str(raced[orphan.image_id].get("content_type") or "image/jpeg"))
            logger.warning("%s was saved while it was removed as an orphan; its original is back", orphan.image_id)
        return False
    if master_side:
        store.delete_master(orphan.image_id, master_side)
    logger.info("removed the orphaned original %s (stored %s)", orphan.image_id, time.ctime(orphan.modified))
    return True
