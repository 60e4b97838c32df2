"""``huimages migrate``: huImages' CouchDB attachments and records into today's stores."""

from __future__ import annotations

import sys
from typing import Any

import click

from huimages.catalog import open_catalog
from huimages.cdn import open_queue
from huimages.config import Settings
from huimages.ops.cli.common import _bar, _bring_up_to_date, _list_failures, _settings
from huimages.ops.cli.health import verify_originals
from huimages.originals import open_primary


@click.command()
@click.option("--batch", default=100, show_default=True, type=click.IntRange(1, 10000), help="IDs fetched per query.")
@click.option("--workers", default=8, show_default=True, type=click.IntRange(1, 64), help="Concurrent transfers.")
@click.option("--delete-attachments", is_flag=True, help="Delete each attachment once its copy is verified.")
@click.option("--make-private", is_flag=True, help="Remove public grants from S3 originals (huImages set them).")
@click.option("--verify", is_flag=True, help="Then read every original back and check its sha1 (slow: reads them all).")
def migrate(batch: int, workers: int, delete_attachments: bool, make_private: bool, verify: bool) -> None:
    """Bring a huImages deployment up to date; safe to interrupt and rerun.

    Copies legacy CouchDB attachments into the originals store (an
    attachment is deleted, with --delete-attachments, only after its copy was
    read back and its sha1 checked); moves CDN queue records out of the image
    database; gives records written by huImages their displayed size (EXIF
    rotation), length and content type; with --make-private, makes every S3
    original private; with --verify, reads every original back and checks it
    against its ID (exit 1 while any is missing or corrupt).
    """
    from huimages.ops import migrate as steps
    from huimages.originals.s3 import S3Store

    settings = _settings()
    target = open_primary(settings)
    if make_private and not isinstance(target, S3Store):
        raise click.ClickException("--make-private is about S3 originals: set S3BUCKET")
    failed = False
    if settings.couch.server:
        failed |= _migrate_couch(settings, target, batch, workers, delete_attachments)
    catalog = open_catalog(settings)
    _bring_up_to_date(catalog)  # the records listed next are all of them, not the index as it stood
    with _bar(catalog.count(), "checking records") as bar:
        records = steps.fix_legacy_records(catalog, target, progress=bar.update)
    click.echo(f"records of huImages corrected: {records.fixed} of {records.checked}")
    _list_failures(records.failed)
    failed |= bool(records.failed)
    if make_private:
        assert isinstance(target, S3Store)
        ids = target.all_ids()
        with _bar(len(ids), "making originals private") as bar:
            checked, changed = steps.make_private(target, ids, progress=bar.update)
        click.echo(f"originals made private: {changed} of {checked}")
    if verify:
        failed |= verify_originals(settings, catalog, workers)
    _bring_up_to_date(catalog, *([open_queue(settings)] if settings.couch.server else []))
    if failed:
        sys.exit(1)


def _migrate_couch(settings: Settings, target: Any, batch: int, workers: int, delete_attachments: bool) -> bool:
    """The CouchDB steps of `migrate`; returns whether anything failed."""
    from huimages.cdn.couchdb import CouchQueue
    from huimages.ops.migrate import migrate_attachments
    from huimages.originals import open_legacy

    queue = open_queue(settings)
    if isinstance(queue, CouchQueue):
        click.echo(f"CDN queue records moved out of the image database: {queue.move_from_image_database()}")
    from huimages.imaging import make_master

    legacy = open_legacy(settings)
    side = settings.master_side

    def master(image_id: str, data: bytes) -> None:  # the copy's one decode makes its master
        if side:
            target.put_master(image_id, side, make_master(data, settings.limits, side))

    with _bar(legacy.count_pending(), f"migrating to the {target.name}") as bar:
        report = migrate_attachments(
            legacy,
            target,
            batch=batch,
            workers=workers,
            delete_attachments=delete_attachments,
            progress=bar.update,
            copied=master,
        )
    click.echo(f"copied: {report.copied}")
    click.echo(f"already in the {target.name}: {report.already}")
    if delete_attachments:
        click.echo(f"attachments deleted: {report.deleted}")
    click.echo(f"failed: {len(report.failed)}")
    _list_failures(report.failed)
    return bool(report.failed)
