"""The derivative cache: ``prune``, ``cache`` (a summary), ``sweep`` (files of deleted images)."""

from __future__ import annotations

import time

import click

from huimages.config import Settings
from huimages.ops.cli.common import _bar, _byte_size, _service, _settings


@click.command()
@click.option("--max-bytes", callback=_byte_size, help="Keep the derivative cache within this size (500M, 2G).")
@click.option("--min-free", type=click.FloatRange(0, 100), help="Keep this percentage of the cache's disk free.")
@click.option(
    "--originals-cache-max-bytes",
    callback=_byte_size,
    help="Keep the local copies of S3 originals and masters within (default: HUIMAGES_ORIGINALS_CACHE_MAX_BYTES).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
def prune(max_bytes: int | None, min_free: float | None, originals_cache_max_bytes: int | None, dry_run: bool) -> None:
    """Remove temporary files of killed writers, and the least recently used cached files beyond the bounds.

    Safe from cron while the server runs: a removed derivative renders again
    when next asked for. Files are ordered by access time where the
    filesystem records it (not mounted noatime), else by modification time.
    """
    from huimages.serving import prune as pruning

    settings = _settings()
    with pruning.host_lock(settings.paths.cache_dir) as free:
        if not free:
            click.echo("another prune is running on this host; nothing done")
            return
        _prune(settings, max_bytes, min_free, originals_cache_max_bytes, dry_run)


def _prune(
    settings: Settings, max_bytes: int | None, min_free: float | None, originals_max: int | None, dry_run: bool
) -> None:
    from huimages.core.units import human_bytes
    from huimages.serving import census
    from huimages.serving import prune as pruning

    verb = "would remove" if dry_run else "removed"
    swept = pruning.sweep_temporaries(pruning.temporary_folders(settings), dry_run=dry_run)
    click.echo(f"temporary files: {verb} {swept.files} ({human_bytes(swept.bytes)}) left by killed writers")
    bounds = [("cache", settings.paths.cache_dir, max_bytes, min_free)]
    if originals_max is None and settings.originals_cache_bound:  # HUIMAGES_ORIGINALS_CACHE_MAX_BYTES
        originals_max = settings.originals_cache_bound
    if originals_max is not None:
        bounds.append(("originals cache", settings.paths.originals_cache_dir, originals_max, None))
    for label, root, limit, free in bounds:
        if limit is None and free is None:
            continue
        counted = census.Census() if root == settings.paths.cache_dir else None  # the walk counts the cache too
        planned = pruning.plan(root, max_bytes=limit, min_free_percent=free, census=counted)
        with _bar(planned.count, f"pruning the {label}") as bar:
            report = pruning.carry_out(planned, dry_run=dry_run, progress=bar.update, census=counted)
        if counted is not None and not dry_run:
            census.record(root, counted.sorted())
        click.echo(
            f"{label}: {verb} {report.removed_files} files ({human_bytes(report.removed_bytes)}),"
            f" least recently used by {'access' if report.clock == 'atime' else 'modification'} time;"
            f" {report.kept_files} files ({human_bytes(report.kept_bytes)}) remain;"
            f" {report.removed_folders} emptied folders removed"
        )


@click.command()
@click.option("--walk", is_flag=True, help="Count the cache now, even where a recent count is recorded.")
def cache(walk: bool) -> None:
    """What the derivative cache holds: files and bytes per size and format, oldest and newest, temporary files.

    A cache of 100,000 files or more is answered from the count its last
    prune (or walk) recorded, if that is under an hour old: counting anew
    stats every file, seconds for a million.
    """
    from huimages.core.units import human_bytes
    from huimages.serving import prune as pruning
    from huimages.serving.census import TEMP_MAX_AGE, census

    settings = _settings()
    counted = census(settings.paths.cache_dir, walk_anew=walk)
    shelves, temporary, stale = counted.shelves, counted.temporary, counted.stale
    names = {spec: name for name, spec in settings.sizes.items()}

    def when(stamp: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))

    click.echo(f"{'size':22} {'format':6} {'files':>9} {'bytes':>10}  {'oldest':16}  newest")
    for (folder, extension), shelf in shelves.items():
        label = f"{folder} ({names[folder]})" if folder in names else folder
        click.echo(
            f"{label:22} {extension:6} {shelf.files:>9,} {human_bytes(shelf.bytes):>10}"
            f"  {when(shelf.oldest):16}  {when(shelf.newest)}"
        )
    files = sum(shelf.files for shelf in shelves.values())
    click.echo(f"{'total':29} {files:>9,} {human_bytes(sum(shelf.bytes for shelf in shelves.values())):>10}")
    click.echo(
        f"temporary files: {temporary.files} ({human_bytes(temporary.bytes)}), {stale} older than"
        f" {TEMP_MAX_AGE / 60:.0f} min (left by killed writers; `huimages prune` removes them)"
    )
    if counted.recorded:
        made = when(counted.made)
        click.echo(f"as counted at {made} by the last prune or walk, less what it removed (--walk counts now)")
    elsewhere = [folder for folder in pruning.temporary_folders(settings) if folder != settings.paths.cache_dir]
    others, stale_others = pruning.count_temporaries(elsewhere)
    click.echo(
        f"temporary files beside the cache (originals, masters, local copies of S3 originals): {others.files}"
        f" ({human_bytes(others.bytes)}), {stale_others} older than {TEMP_MAX_AGE / 60:.0f} min"
    )


@click.command()
def sweep() -> None:
    """Remove this host's cached derivatives of images deleted anywhere (run from cron on every host).

    It also finishes the deletes a store kept from finishing, and removes what
    uploads stored without writing their record, as a queue run does.
    """
    service = _service()
    click.echo(f"{service.sweep_deleted()} cached derivatives of deleted images removed")
    done = service.housekeeping()
    pending = "unknown (the queue store did not answer)" if done["deletes_pending"] < 0 else done["deletes_pending"]
    click.echo(f"{done['deletes_finished']} unfinished deletes finished, {pending} waiting")
    click.echo(
        f"{done['unrecorded_removed']} originals of uploads without a record removed,"
        f" {done['unrecorded_waiting']} waiting"
    )
