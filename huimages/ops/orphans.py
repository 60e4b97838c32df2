"""Originals that no catalog record names: a save whose catalog write failed after its original was stored.

They are harmless (an unknown ID answers 404, and saving the same bytes again
reuses the original). ``huimages check --orphans`` lists them; ``--delete``
removes those older than ``MIN_AGE``.

Uploads of this release remove such originals themselves within minutes
(``huimages.serving.unrecorded``, whose removal this module uses, so a save
racing it never loses its original); what is left is from earlier releases
or from a host that was lost with its notes.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator

from huimages.catalog.base import Catalog
from huimages.originals.base import OriginalsStore
from huimages.serving.unrecorded import remove_unrecorded

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
    """Delete an orphan and its master, unless a record names it by then; returns whether it went."""
    removed = remove_unrecorded(catalog, store, orphan.image_id, master_side)
    if removed:
        logger.info("removed the orphaned original %s (stored %s)", orphan.image_id, time.ctime(orphan.modified))
    return removed
