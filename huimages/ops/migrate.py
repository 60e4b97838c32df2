"""``huimages migrate``: bring a huImages deployment's data up to date.

Legacy CouchDB attachments are copied into the originals store; records
written by huImages get their displayed size, length and content type;
originals huImages made public are made private.

Safe to interrupt and rerun: an original already in the store is not copied
again (its key is its content address, so it can never be there twice), and an
attachment is deleted only after the copy was read back from the store and its
SHA-1 checked against the ID.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import logging
from collections.abc import Callable, Iterator

from huimages.catalog.base import Catalog
from huimages.core.ids import matches
from huimages.errors import CorruptOriginal, HuImagesError
from huimages.imaging import probe_header
from huimages.originals.base import OriginalsStore
from huimages.originals.couchdb import CouchAttachmentStore
from huimages.originals.s3 import S3Store

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class MigrationReport:
    copied: int = 0
    already: int = 0
    deleted: int = 0
    failed: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def done(self) -> int:
        return self.copied + self.already + len(self.failed)


def each(
    pool: concurrent.futures.Executor, work: Callable[[str], str], ids: list[str]
) -> Iterator[tuple[str, str | HuImagesError]]:
    """``work(id)`` for each ID in ``pool``: (ID, its outcome or the error it raised), as they finish."""
    futures = {pool.submit(work, image_id): image_id for image_id in ids}
    for future in concurrent.futures.as_completed(futures):
        try:
            yield futures[future], future.result()
        except HuImagesError as exc:
            yield futures[future], exc


def pending(legacy: CouchAttachmentStore, batch: int) -> Iterator[list[str]]:
    """IDs of images that still have an attachment, ``batch`` at a time, in ID order."""
    last: str | None = None
    while ids := legacy.pending_ids(last, batch):
        yield ids
        last = ids[-1]


def migrate_one(
    image_id: str,
    legacy: CouchAttachmentStore,
    target: OriginalsStore,
    delete: bool,
    copied: Callable[[str, bytes], None] | None = None,
) -> str:
    """Copy one original; returns ``copied`` or ``already``; raises with the reason otherwise.

    "Already" means read back from the store and checked against the ID:
    existence alone (a HEAD, a local copy) is never taken as copied, so a
    missing or corrupt object is copied again. ``copied(image_id, data)``
    runs after a copy (it makes the master).
    """
    outcome = "already"
    if not target.verified(image_id):
        found = legacy.read_with_type(image_id)
        if found is None:
            raise HuImagesError("the attachment disappeared while migrating")
        data, content_type = found
        if not matches(image_id, data):
            raise HuImagesError("the attachment's sha1 does not match the image ID; left in place")
        target.put(image_id, data, content_type)
        if copied is not None:
            copied(image_id, data)
        outcome = "copied"
    if delete:
        if not target.verified(image_id):
            raise HuImagesError(f"the copy in the {target.name} did not verify; the attachment is kept")
        legacy.delete(image_id)
    return outcome


def migrate_attachments(
    legacy: CouchAttachmentStore,
    target: OriginalsStore,
    *,
    batch: int = 100,
    workers: int = 8,
    delete_attachments: bool = False,
    progress: Callable[[int], None] | None = None,
    copied: Callable[[str, bytes], None] | None = None,
) -> MigrationReport:
    report = MigrationReport()
    seen: set[str] = set()
    work = functools.partial(migrate_one, legacy=legacy, target=target, delete=delete_attachments, copied=copied)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for ids in pending(legacy, batch):
            ids = [i for i in ids if i not in seen]  # failures stay in the view; do not retry them in one run
            if not ids:
                break
            seen.update(ids)
            work = functools.partial(
                migrate_one, legacy=legacy, target=target, delete=delete_attachments, copied=copied
            )
            for image_id, outcome in each(pool, work, ids):
                if isinstance(outcome, HuImagesError):
                    report.failed[image_id] = str(outcome)
                    logger.warning("could not migrate %s: %s", image_id, outcome)
                else:
                    if outcome == "copied":
                        report.copied += 1
                    else:
                        report.already += 1
                    report.deleted += delete_attachments
                if progress is not None:
                    progress(1)
    return report


@dataclasses.dataclass
class RecordReport:
    checked: int = 0
    fixed: int = 0
    failed: dict[str, str] = dataclasses.field(default_factory=dict)


HEADER_BYTES = 256 * 1024  # EXIF and image headers sit at the start of a file


def fix_legacy_records(
    catalog: Catalog, originals: OriginalsStore, progress: Callable[[int], None] | None = None
) -> RecordReport:
    """Records written by huImages: displayed width and height (EXIF rotation), ``length`` and ``content_type``.

    Only records without ``length`` are huImages'; each costs one ranged read
    of its original's first bytes and one HEAD. Safe to rerun: fixed records
    have ``length`` and are skipped.
    """
    report = RecordReport()
    for docs in catalog.pages():
        for doc in docs:
            if progress is not None:
                progress(1)
            if "length" in doc and "content_type" in doc:
                continue
            image_id = str(doc["_id"])
            report.checked += 1
            try:
                content_type, width, height = probe_header(originals.prefix(image_id, HEADER_BYTES))
                length = originals.length(image_id)
            except HuImagesError as exc:
                report.failed[image_id] = str(exc)
                logger.warning("could not check the record of %s: %s", image_id, exc)
                continue
            fields = {"width": width, "height": height, "length": length, "content_type": content_type}
            catalog.update(image_id, lambda current, fields=fields: {**current, **fields})  # type: ignore[misc]
            report.fixed += 1
    return report


@dataclasses.dataclass
class VerifyReport:
    """What reading every original back found: IDs by outcome (``errors``: could not be checked, with why)."""

    ok: int = 0
    repaired: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)
    corrupt: list[str] = dataclasses.field(default_factory=list)
    errors: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return bool(self.missing or self.corrupt or self.errors)


def verify_one(image_id: str, store: OriginalsStore, legacy: CouchAttachmentStore | None) -> str:
    """Read one original back from the store itself and check its SHA-1.

    Returns ``ok``, ``repaired``, ``missing`` or ``corrupt``.

    A missing or corrupt copy is repaired from a good legacy attachment when
    there is one (copied, then read back and checked again).
    """
    try:
        data = store.read_back(image_id)
    except CorruptOriginal:
        data = b""
    if data is not None and matches(image_id, data):
        return "ok"
    state = "missing" if data is None else "corrupt"
    found = legacy.read_with_type(image_id) if legacy is not None else None
    if found is not None and matches(image_id, found[0]):
        store.put(image_id, *found)
        if store.verified(image_id):
            logger.error(
                "the original %s was %s in the %s; repaired it from the legacy attachment", image_id, state, store.name
            )
            return "repaired"
    logger.error("the original %s is %s in the %s and no good copy is left to repair it", image_id, state, store.name)
    return state


def verify_originals(
    catalog: Catalog,
    store: OriginalsStore,
    legacy: CouchAttachmentStore | None = None,
    *,
    workers: int = 8,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """``verify_one`` for the original of every live record (``migrate --verify``, ``check --originals``)."""
    report = VerifyReport()
    work = functools.partial(verify_one, store=store, legacy=legacy)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for docs in catalog.pages():
            for image_id, outcome in each(pool, work, [str(d["_id"]) for d in docs]):
                if isinstance(outcome, HuImagesError):
                    report.errors[image_id] = str(outcome)
                elif outcome == "ok":
                    report.ok += 1
                else:
                    getattr(report, outcome).append(image_id)
                if progress is not None:
                    progress(1)
    for ids in (report.repaired, report.missing, report.corrupt):
        ids.sort()
    return report


def make_private(store: S3Store, ids: list[str], progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Remove public grants from originals (huImages made them public); returns (checked, changed).

    Idempotent, so an interrupted run is simply run again.
    """
    changed = 0
    for image_id in ids:
        if store.bucket.is_public(image_id):
            store.bucket.make_private(image_id)
            changed += 1
        if progress is not None:
            progress(1)
    return len(ids), changed
