"""The ``huimages`` command.

The server-side commands work on ``ImageService.from_settings(Settings.from_env())``;
``upload``, ``url``, ``tag`` and ``info`` use the client API, which may be
remote (``HUIMAGES_CLIENT``). Every ``HuImagesError`` becomes a one-line
message and exit status 1 in one place (``_Group.invoke``), so commands do not
translate errors themselves.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import sys
import time
from pathlib import Path
from typing import Any

import click

from huimages.backends.files import process_alive
from huimages.catalog import open_catalog
from huimages.cdn.publisher import LEASE
from huimages.client import Client
from huimages.config import SETTINGS_SPECS, Settings
from huimages.core.formats import FORMATS
from huimages.errors import HuImagesError
from huimages.originals import open_primary
from huimages.serving.service import ImageService


class _Group(click.Group):
    """A command group that turns huimages' errors into plain CLI messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HuImagesError as exc:
            raise click.ClickException(str(exc)) from None


def _settings() -> Settings:
    return Settings.from_env()


def _client() -> Client:
    """The client API: over HTTP where the settings say remote (see HUIMAGES_CLIENT)."""
    return Client(_settings())


def _service() -> ImageService:
    """This host's store, catalog and cache: the server-side commands work on these, never over HTTP."""
    return ImageService.from_settings(_settings())


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (INFO level) to standard error.")
def main(verbose: bool) -> None:
    """huimages: store images once, serve them in any size by URL.

    Settings come from the environment (and the TOML file named by
    HUIMAGES_CONFIG); `huimages settings` lists them.
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        json_lines = _settings().log_format == "json"
    except HuImagesError:
        json_lines = False  # the command reports the bad setting itself
    if json_lines:
        from huimages.telemetry.logs import configure

        configure("json")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker or FastCGI processes [default: one per core].")
@click.option("--threads", default=16, show_default=True, type=click.IntRange(1, 256), help="Threads per worker.")
@click.option("--lighttpd", "use_lighttpd", is_flag=True, help="Run lighttpd in front, with FastCGI backends.")
def serve(host: str, port: int, workers: int | None, threads: int, use_lighttpd: bool) -> None:
    """Serve images over HTTP (renders misses, sends cache hits).

    With --lighttpd, lighttpd serves the cache hits and spawns FastCGI backends
    for the misses; Ctrl-C stops it and every backend.
    """
    from huimages.http.fronts.standalone import default_workers
    from huimages.http.fronts.standalone import serve as run
    from huimages.telemetry.logs import announce

    settings = _settings().serving_at(host, port)
    announce(f"huimages: data in {settings.paths.home}, serving http://{host}:{port}/", settings.log_format)
    interface = f"web interface at http://{host}:{port}/ui/ (sign in with the admin token)"
    if not settings.admin_token:
        interface = "set HUIMAGES_ADMIN_TOKEN to use the web interface (/ui/)"
    announce(f"huimages: {interface}", settings.log_format)
    if not use_lighttpd:
        run(settings, host, port, workers or default_workers(), threads)
        return
    from huimages.http.fronts.lighttpd import FrontConfig, run_front
    from huimages.serving.cache import DerivativeCache

    DerivativeCache(settings.paths.cache_dir).link_names(settings.sizes)  # /small/... as static hits at once
    cfg = FrontConfig.from_settings(settings, host=host, port=port, processes=workers or default_workers())
    sys.exit(run_front(cfg))


@main.command()
@click.option("--socket", "socket_path", type=click.Path(dir_okay=False, path_type=Path), help="Unix socket to use.")
@click.option("--bind", help="HOST:PORT to listen on instead of a socket.")
def fcgi(socket_path: Path | None, bind: str | None) -> None:
    """Serve the app over FastCGI for a separately configured lighttpd."""
    from huimages.http.fronts.fastcgi import run

    if (socket_path is None) == (bind is None):
        raise click.UsageError("give exactly one of --socket PATH or --bind HOST:PORT")
    address: str | tuple[str, int]
    if bind is not None:
        host, _, port = bind.rpartition(":")
        if not host or not port.isdigit():
            raise click.UsageError(f"--bind {bind!r} is not HOST:PORT")
        address = (host, int(port))
    else:
        assert socket_path is not None
        socket_path.parent.mkdir(parents=True, exist_ok=True)
        socket_path.unlink(missing_ok=True)
        address = str(socket_path)
    logging.getLogger().setLevel(logging.INFO)
    run(_settings(), address)


@main.command("lighttpd-config")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address lighttpd listens on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port lighttpd uses.")
@click.option("--processes", type=click.IntRange(1, 64), help="FastCGI backends [default: one per core].")
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Use a backend started with `huimages fcgi --socket PATH` instead of spawning them.",
)
def lighttpd_config(host: str, port: int, processes: int | None, socket_path: Path | None) -> None:
    """Print a lighttpd config for the current settings."""
    from huimages.http.fronts.lighttpd import FrontConfig, render_config
    from huimages.http.fronts.standalone import default_workers

    cfg = FrontConfig.from_settings(
        _settings(), host=host, port=port, processes=processes or default_workers(), external_socket=socket_path
    )
    click.echo(render_config(cfg), nl=False)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--title", default="", help="Title stored with every file.")
def upload(files: tuple[Path, ...], title: str) -> None:
    """Store image FILES; print `ID URL` for each.

    Exit status 1 if any file failed; the others are still stored.
    """
    client = _client()
    failures = 0
    with click.progressbar(files, label="uploading", file=sys.stderr, hidden=len(files) < 2) as bar:
        for path in bar:
            try:
                image_id = client.save_image(path.read_bytes(), title=title, filename=path.name)
            except (OSError, HuImagesError) as exc:  # one bad file must not stop the others
                failures += 1
                click.echo(f"\n{path}: {exc}", err=True)
                continue
            click.echo(f"{image_id} {client.imageurl(image_id)}")
    if failures:
        click.echo(f"{failures} of {len(files)} files failed", err=True)
        sys.exit(1)


@main.command()
@click.argument("image_id")
@click.option("--size", default="o", show_default=True, help="o, a size name, WxH or WxH!.")
def url(image_id: str, size: str) -> None:
    """Print the URL of IMAGE_ID at SIZE."""
    client = _client()
    click.echo(client.imageurl(image_id) if size == "o" else client.scaled_imageurl(image_id, size))


@main.command()
@click.argument("image_id")
@click.option("--size", default="square", show_default=True, help="A size name, WxH or WxH!.")
@click.option("--picture", is_flag=True, help="A <picture> with AVIF and WebP sources and a JPEG <img>.")
@click.option("--srcset", is_flag=True, help="Only the srcset value (1x and 2x, or --width descriptors).")
@click.option("--format", "format_name", default="jpeg", show_default=True, help="Format of --srcset URLs.")
@click.option("--width", "widths", type=int, multiple=True, help="A width descriptor candidate (repeatable).")
@click.option("--sizes", "sizes_attr", help="The sizes attribute of --picture with --width.")
def tag(
    image_id: str, size: str, picture: bool, srcset: bool, format_name: str, widths: tuple[int, ...], sizes_attr: str
) -> None:
    """Print an <img> tag for IMAGE_ID at SIZE (or a <picture>, or a srcset value)."""
    client = _client()
    if picture and srcset:
        raise click.UsageError("--picture and --srcset exclude each other")
    if picture:
        click.echo(client.scaled_picture(image_id, size, widths=widths or None, sizes=sizes_attr))
    elif srcset:
        click.echo(client.scaled_srcset(image_id, size, widths=widths or None, format=format_name))
    else:
        click.echo(client.scaled_tag(image_id, size))


@main.command()
@click.argument("image_id")
def info(image_id: str) -> None:
    """Print the catalog document of IMAGE_ID as JSON."""
    click.echo(json.dumps(_client().get_imagedoc(image_id), indent=2, sort_keys=True))


@main.command()
@click.option("--all", "check_all", is_flag=True, help="Check every original's ACL, not a sample of 100.")
@click.option("--originals", "originals", is_flag=True, help="Read every original back and check its sha1.")
@click.option("--orphans", is_flag=True, help="List stored originals that no catalog record names.")
@click.option("--delete", "delete_orphans", is_flag=True, help="With --orphans: remove those older than a day.")
def check(check_all: bool, originals: bool, orphans: bool, delete_orphans: bool) -> None:
    """Say whether each backend answers, whether S3 originals are public, and which images failed to render.

    With --originals, also read every original back from the store and check
    it against its ID, repairing what a legacy attachment can repair; with
    --orphans, list originals whose catalog write never happened. Exits 1 on
    any problem.
    """
    if delete_orphans and not orphans:
        raise click.UsageError("--delete goes with --orphans")
    from huimages.originals.s3 import S3Store

    service = _service()
    report = service.health()
    for role, item in report.items():
        state = "ok" if item["ok"] else f"FAILED: {item['error']}"
        click.echo(f"{role:10} {item['backend']}: {state}")
    problems = not all(item["ok"] for item in report.values())
    store = open_primary(service.settings)
    if isinstance(store, S3Store) and report["originals"]["ok"]:
        checked, public = store.public_ids(None if check_all else 100)
        scope = "all" if check_all else "a sample of"
        if public:
            problems = True
            click.echo(f"public    {len(public)} of {scope} {checked} originals are readable by anyone: ", nl=False)
            click.echo("run `huimages migrate --make-private`")
            for image_id in public[:20]:
                click.echo(f"  {image_id}")
        else:
            click.echo(f"public    none of {scope} {checked} originals")
    if service.settings.signing.policy == "open" and not service.settings.signing.keys:
        click.echo(
            "policy    open without HUIMAGES_URL_KEYS: anyone may have unsigned sizes rendered, within the"
            " budgets per address and per image; set HUIMAGES_URL_KEYS (or HUIMAGES_SIZE_POLICY=named)"
        )
    failing = service.failures.recent()
    if failing:
        problems = True
        click.echo(f"failing   {len(failing)} renders failed on their image recently (answered from memory):")
        for failure in failing[:20]:
            click.echo(f"  {failure.key}: {failure.message}")
    if originals:
        problems |= _verify_originals(service.settings, service.catalog)
    if orphans:
        problems |= _orphans(service, delete_orphans)
    if problems:
        sys.exit(1)


def _orphans(service: Any, delete: bool) -> bool:
    """List (and with ``delete`` remove) originals without a record; returns whether any is left."""
    from huimages.ops.orphans import MIN_AGE, find_orphans, remove_orphan

    now = time.time()
    store = open_primary(service.settings)
    found = list(find_orphans(service.catalog, store))
    removed = 0
    for orphan in found:
        age = f"stored {(now - orphan.modified) / 3600:.1f} h ago"
        if delete and orphan.old_enough(now):
            gone = remove_orphan(service.catalog, store, orphan, service.settings.master_side)
            removed += gone
            click.echo(f"  {orphan.image_id}: {age}, {'removed' if gone else 'saved meanwhile; kept'}")
        else:
            click.echo(f"  {orphan.image_id}: {age}")
    click.echo(f"orphans   originals without a catalog record: {len(found)}, removed: {removed}", nl=False)
    if delete:
        click.echo(f" (only those stored more than {MIN_AGE / 3600:.0f} h ago)")
    else:
        click.echo(": `huimages check --orphans --delete` removes those stored more than a day ago")
    return len(found) > removed


def _verify_originals(settings: Settings, catalog: Any, workers: int = 8) -> bool:
    """Read every original back and check its sha1 (repairing from legacy attachments); returns whether any is bad."""
    from huimages.ops.migrate import verify_originals
    from huimages.originals import open_legacy

    store = open_primary(settings)
    legacy = open_legacy(settings) if settings.couch.server else None
    with _bar(catalog.count(), "reading originals back") as bar:
        report = verify_originals(catalog, store, legacy, workers=workers, progress=bar.update)
    click.echo(
        f"originals verified: {report.ok}, repaired: {len(report.repaired)}, missing: {len(report.missing)},"
        f" corrupt: {len(report.corrupt)}, not checked: {len(report.errors)}"
    )
    for label, ids in (("repaired", report.repaired), ("missing", report.missing), ("corrupt", report.corrupt)):
        for image_id in ids:
            click.echo(f"  {label} {image_id}")
    _list_failures(report.errors)
    return report.failed


@main.command()
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
        failed |= _verify_originals(settings, catalog, workers)
    if failed:
        sys.exit(1)


def _migrate_couch(settings: Settings, target: Any, batch: int, workers: int, delete_attachments: bool) -> bool:
    """The CouchDB steps of `migrate`; returns whether anything failed."""
    from huimages.cdn import open_queue
    from huimages.cdn.couchdb import CouchQueue
    from huimages.ops.migrate import migrate_attachments
    from huimages.originals import open_legacy

    queue = open_queue(settings)
    if isinstance(queue, CouchQueue):
        click.echo(f"CDN queue records moved out of the image database: {queue.move_from_image_database()}")
    from huimages.imaging.pipeline import make_master

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


def _list_failures(failed: dict[str, str]) -> None:
    for image_id, reason in sorted(failed.items()):
        click.echo(f"  {image_id}: {reason}")


def _exit_on_failures(failed: dict[str, str]) -> None:
    """List what failed, by ID with the reason; exit status 1 if anything did."""
    _list_failures(failed)
    if failed:
        sys.exit(1)


def _bar(length: int, label: str) -> Any:
    return click.progressbar(length=length, label=label, file=sys.stderr)


@main.command()
@click.argument("image_ids", nargs=-1, required=True)
def delete(image_ids: tuple[str, ...]) -> None:
    """Delete images: record, original, cached derivatives, CDN objects. Unknown IDs are not an error.

    Other image servers of a cluster drop their cached copies at their next `huimages sweep`.
    """
    client = _client()
    for image_id in image_ids:
        client.delete_image(image_id)
        click.echo(f"deleted {image_id}")


@main.command()
@click.argument("sizes", nargs=-1, required=True)
@click.option("--all-images", is_flag=True, help="Every image in the catalog.")
@click.option("--id", "image_ids", multiple=True, help="This image (repeatable).")
def prerender(sizes: tuple[str, ...], all_images: bool, image_ids: tuple[str, ...]) -> None:
    """Render SIZES of images now (from their masters), so no page waits for them; cached ones are skipped.

    A size may name a format: small.webp, 150x150!.avif (JPEG when none).

    New derivatives are queued for the CDN when one is configured. To do this
    for every new image, set HUIMAGES_PRERENDER.
    """
    if all_images == bool(image_ids):
        raise click.UsageError("give --all-images, or one or more --id ID")
    service = _service()
    parsed = [service.parse_derivative(s) for s in sizes]
    catalog = service.catalog
    ids = [str(doc["_id"]) for docs in catalog.pages() for doc in docs] if all_images else list(image_ids)
    rendered = cached = 0
    failed: dict[str, str] = {}
    with _bar(len(ids), "prerendering") as bar:
        for image_id in ids:
            try:
                made = service.prerender(image_id, parsed)
            except HuImagesError as exc:  # one bad image must not stop the others
                failed[image_id] = str(exc)
            else:
                rendered, cached = rendered + made, cached + len(parsed) - made
            bar.update(1)
    click.echo(f"{rendered} derivatives rendered, {cached} were cached already, {len(failed)} failed")
    _exit_on_failures(failed)


@main.group()
def masters() -> None:
    """Masters: each image upright and at most HUIMAGES_MASTER_SIDE pixels, what renders read."""


@masters.command("build")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="Images at once.")
def masters_build(workers: int) -> None:
    """Make the master of every image that has none (images stored before masters); resumable."""
    import concurrent.futures

    from huimages.ops.migrate import each

    service = _service()
    side = service.settings.master_side
    if not side:
        raise click.ClickException("masters are off (HUIMAGES_MASTER_SIDE=0)")

    def build(image_id: str) -> str:
        if service.originals.get_master(image_id, side) is not None:
            return "already"
        service.master(image_id)
        return "made"

    made = already = 0
    failed: dict[str, str] = {}
    with (
        _bar(service.catalog.count(), "building masters") as bar,
        concurrent.futures.ThreadPoolExecutor(workers) as pool,
    ):
        for docs in service.catalog.pages():
            for image_id, outcome in each(pool, build, [str(doc["_id"]) for doc in docs]):
                if isinstance(outcome, HuImagesError):
                    failed[image_id] = str(outcome)
                elif outcome == "made":
                    made += 1
                else:
                    already += 1
                bar.update(1)
    click.echo(f"masters made: {made}, already there: {already}, failed: {len(failed)}")
    _exit_on_failures(failed)


def _byte_size(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    from huimages.core.units import parse_bytes

    try:
        return None if value is None else parse_bytes(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command()
@click.option("--max-bytes", callback=_byte_size, help="Keep the derivative cache within this size (500M, 2G).")
@click.option("--min-free", type=click.FloatRange(0, 100), help="Keep this percentage of the cache's disk free.")
@click.option("--originals-cache-max-bytes", callback=_byte_size, help="Keep the local copies of S3 originals within.")
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
    from huimages.serving import prune as pruning

    verb = "would remove" if dry_run else "removed"
    swept = pruning.sweep_temporaries(pruning.temporary_folders(settings), dry_run=dry_run)
    click.echo(f"temporary files: {verb} {swept.files} ({human_bytes(swept.bytes)}) left by killed writers")
    bounds = [("cache", settings.paths.cache_dir, max_bytes, min_free)]
    if originals_max is not None:
        bounds.append(("originals cache", settings.paths.originals_cache_dir, originals_max, None))
    for label, root, limit, free in bounds:
        if limit is None and free is None:
            continue
        planned = pruning.plan(root, max_bytes=limit, min_free_percent=free)
        with _bar(planned.count, f"pruning the {label}") as bar:
            report = pruning.carry_out(planned, dry_run=dry_run, progress=bar.update)
        click.echo(
            f"{label}: {verb} {report.removed_files} files ({human_bytes(report.removed_bytes)}),"
            f" least recently used by {'access' if report.clock == 'atime' else 'modification'} time;"
            f" {report.kept_files} files ({human_bytes(report.kept_bytes)}) remain"
        )


@main.command()
def cache() -> None:
    """What the derivative cache holds: files and bytes per size and format, oldest and newest, temporary files."""
    from huimages.core.units import human_bytes
    from huimages.serving.prune import TEMP_MAX_AGE, inventory

    settings = _settings()
    shelves, temporary, stale = inventory(settings.paths.cache_dir)
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
        f" {TEMP_MAX_AGE / 3600:.0f} h (left by killed writers; `huimages prune` removes them)"
    )


@main.command()
def sweep() -> None:
    """Remove this host's cached derivatives of images deleted anywhere (run from cron on every host)."""
    click.echo(f"{_service().sweep_deleted()} cached derivatives of deleted images removed")


@main.command("process-queue")
def process_queue() -> None:
    """Upload queued derivatives to the CDN bucket (what cron's /processqueue does)."""
    cdn = _service().publisher
    if cdn is None:
        raise click.ClickException("no CDN is configured: set CDN_BUCKET and CDN_URL")
    report = cdn.run()
    click.echo(json.dumps(report.as_dict(), sort_keys=True))


@main.command()
@click.argument("size")
@click.option("--cache-only", is_flag=True, help="Only remove this host's cached files (the others of a cluster).")
def flush(size: str, cache_only: bool) -> None:
    """Render SIZE anew: new version, cached files removed, URLs back on the image server.

    A named size is flushed together with its numeric form (small and 240x160).
    New derivatives are queued and reach the CDN at the next queue run.
    """
    service = _service()
    parsed = service.parse_size(size)
    if parsed.is_original:
        raise click.ClickException("o is the original itself; there is nothing to flush")
    outcome = service.flush(parsed, cache_only=cache_only)
    if outcome.version is None:
        click.echo(f"{outcome.token}: {outcome.removed} cached files removed")
        return
    note = f", CloudFront invalidation {outcome.invalidation}" if outcome.invalidation else ""
    click.echo(f"{outcome.token}: version {outcome.version}, {outcome.removed} cached files removed{note}")


@main.group(invoke_without_command=True)
@click.pass_context
def queue(ctx: click.Context) -> None:
    """Show the CDN queue: derivatives per state, and the age of the oldest queued one."""
    if ctx.invoked_subcommand is not None:
        return
    from huimages.cdn import open_queue

    store = open_queue(_settings())
    stats = store.queue_stats()
    for state, count in stats.counts.items():
        click.echo(f"{state:9} {count}")
    if stats.oldest_queued_at is not None:
        click.echo(f"oldest queued {time.time() - stats.oldest_queued_at:.0f} s ago")
    holder = _lease_holder(store.lease(LEASE))
    if holder is None:
        click.echo("running   no queue run")
    else:
        host, pid, left = holder
        click.echo(f"running   a queue run on host {host}, process {pid}; its lease expires in {left:.0f} s")


@queue.command("break-lease")
@click.option("--force", is_flag=True, help="Also when the holder may still be alive (its lease is fresh).")
def queue_break_lease(force: bool) -> None:
    """End the lease of a queue run whose process is gone, so the next run need not wait for it to expire.

    A holder on this host whose process no longer exists is broken at once;
    one on another host, or still alive, only with --force (two runs would
    then work at once until the old one notices, after its batch).
    """
    from huimages.cdn import open_queue

    store = open_queue(_settings())
    lease = store.lease(LEASE)
    holder = _lease_holder(lease)
    if lease is None or holder is None:
        click.echo("no queue run holds the lease")
        return
    host, pid, left = holder
    gone = host == socket.gethostname() and pid.isdigit() and not process_alive(int(pid))
    if not (gone or force):
        raise click.ClickException(
            f"the run of process {pid} on {host} holds the lease for {left:.0f} s more and may be alive;"
            " wait for it, or use --force if you know it is gone"
        )
    if store.break_lease(LEASE, str(lease["owner"])):
        click.echo(f"broke the lease of process {pid} on {host}{'' if gone else ' (forced)'}")
    else:
        click.echo("the lease changed hands meanwhile; nothing broken")


def _lease_holder(lease: dict[str, Any] | None) -> tuple[str, str, float] | None:
    """(host, process ID, seconds left) of a queue run holding the lease, or None when none does."""
    if not lease or not lease.get("owner") or float(lease.get("expires", 0.0)) <= time.time():
        return None
    host, pid, *_ = [*str(lease["owner"]).split(":"), "", ""]
    return host, pid, float(lease["expires"]) - time.time()


@queue.command("add-cached")
@click.option("--size", "sizes", multiple=True, help="Only this size (repeatable); default: every cached size.")
def queue_add_cached(sizes: tuple[str, ...]) -> None:
    """Queue the derivatives already in this host's cache for the CDN, without rendering them again.

    How a site with a warm cache switches the CDN on. Derivatives already
    queued or uploaded are skipped.
    """
    service = _service()
    publisher = service.publisher
    if publisher is None:
        raise click.ClickException("no CDN is configured: set CDN_BUCKET and CDN_URL")
    tokens = [service.parse_size(s).spec for s in sizes] or service.cache.sizes()
    queued = already = skipped = 0
    for token, fmt in itertools.product(tokens, FORMATS.values()):
        ids = service.cache.image_ids(token, fmt)
        if not publisher.accepts(token):
            skipped += len(ids)
            continue
        with _bar(len(ids), f"queueing {token} ({fmt.name})") as bar:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                added = publisher.enqueue_many(token, chunk, fmt)
                queued, already = queued + added, already + len(chunk) - added
                bar.update(len(chunk))
    click.echo(f"queued: {queued}, already queued or uploaded: {already}, sizes not offloaded (CDN_SIZES): {skipped}")


@queue.command("retry")
def queue_retry() -> None:
    """Queue every parked derivative again, with its attempts reset."""
    from huimages.cdn import open_queue

    count = open_queue(_settings()).requeue_parked(time.time())
    click.echo(f"{count} parked derivatives queued again")


@main.command()
def settings() -> None:
    """List every setting with its current value."""
    current = _settings()
    for spec in SETTINGS_SPECS:
        value = current.value_of(spec)
        if spec.secret and value:
            value = "(set, hidden)"
        elif isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in sorted(value.items()))
        click.echo(f"{spec.name}={value}\n    {spec.help}")
