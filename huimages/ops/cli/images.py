"""Images: ``upload``, ``url``, ``tag``, ``info``, ``delete``, ``prerender``, ``focus``, ``masters build``."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from huimages.errors import HuImagesError
from huimages.ops.cli.common import _bar, _bring_up_to_date, _client, _exit_on_failures, _service

if TYPE_CHECKING:
    from huimages.catalog.records import Doc
    from huimages.serving.service import ImageService


@click.command()
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


@click.command()
@click.argument("image_id")
@click.option("--size", default="o", show_default=True, help="o, a size name, WxH or WxH!.")
def url(image_id: str, size: str) -> None:
    """Print the URL of IMAGE_ID at SIZE."""
    client = _client()
    click.echo(client.imageurl(image_id) if size == "o" else client.scaled_imageurl(image_id, size))


@click.command()
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


@click.command()
@click.argument("image_id")
def info(image_id: str) -> None:
    """Print the catalog document of IMAGE_ID as JSON."""
    click.echo(json.dumps(_client().get_imagedoc(image_id), indent=2, sort_keys=True))


@click.command()
@click.argument("image_ids", nargs=-1, required=True)
def delete(image_ids: tuple[str, ...]) -> None:
    """Delete images: record, original, cached derivatives, CDN objects. Unknown IDs are not an error.

    Other image servers of a cluster drop their cached copies at their next `huimages sweep`.
    What a store that does not answer keeps is removed by the next queue run or `huimages sweep`.
    """
    client = _client()
    for image_id in image_ids:
        click.echo(client.delete_image(image_id).describe())


@click.command()
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


@click.group()
def masters() -> None:
    """Masters: each image upright and at most HUIMAGES_MASTER_SIDE pixels, what renders read."""


@masters.command("build")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="Images at once.")
def masters_build(workers: int) -> None:
    """Make the master of every image that has none (images stored before masters); resumable."""
    service = _service()
    side = service.settings.master_side
    if not side:
        raise click.ClickException("masters are off (HUIMAGES_MASTER_SIDE=0)")

    def build(doc: Doc) -> str:
        image_id = str(doc["_id"])
        if service.originals.get_master(image_id, side) is not None:
            return "already"
        if "placeholder" not in doc:  # stored before focus: one decode makes both
            service.analyse(image_id)
        else:
            service.master(image_id)
        return "made"

    counts, failed = _every_image(service, build, workers, "building masters")
    click.echo(f"masters made: {counts.get('made', 0)}, already there: {counts.get('already', 0)}, ", nl=False)
    click.echo(f"failed: {len(failed)}")
    _exit_on_failures(failed)


def _on_record(work: Callable[[Doc], str], page: dict[str, Doc], image_id: str) -> str:
    return work(page[image_id])


def _every_image(
    service: ImageService, work: Callable[[Doc], str], workers: int, label: str
) -> tuple[dict[str, int], dict[str, str]]:
    """``work`` for every image's record (as the listing read it), ``workers`` at once, with a progress bar:
    its outcomes counted, and the failures."""
    import concurrent.futures

    from huimages.ops.migrate import each

    _bring_up_to_date(service.catalog)  # a listing of every image, not of the index as it stands
    counts: dict[str, int] = {}
    failed: dict[str, str] = {}
    with _bar(service.catalog.count(), label) as bar, concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for docs in service.catalog.pages():
            page = {str(doc["_id"]): doc for doc in docs}
            for image_id, outcome in each(pool, functools.partial(_on_record, work, page), list(page)):
                if isinstance(outcome, HuImagesError):
                    failed[image_id] = str(outcome)
                else:
                    counts[outcome] = counts.get(outcome, 0) + 1
                bar.update(1)
    return counts, failed


@click.command()
@click.argument("image_id", required=False)
@click.argument("point", nargs=2, type=click.FloatRange(0, 1), required=False)
@click.option("--auto", "automatic", is_flag=True, help="Back to the focus found at upload.")
@click.option("--all", "every", is_flag=True, help="Find the focus of every image that has none yet; resumable.")
@click.option("--again", is_flag=True, help="With --all: find it again for every image (a new detector).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="Images at once.")
def focus(
    image_id: str | None, point: tuple[float, float] | None, automatic: bool, every: bool, again: bool, workers: int
) -> None:
    """Show or set where IMAGE_ID's crops are placed: X Y as fractions (0 to 1) of the upright image.

    `huimages focus ID` prints the focus; `huimages focus ID 0.4 0.3` sets it
    by hand; `huimages focus ID --auto` goes back to the found one. With
    --all, every image stored before focus points gets its focus and
    placeholders (one decode of its original each); images that have them are
    skipped, so an interrupted run goes on where it stopped. Crops get new
    URLs when a focus changes; the old ones keep answering.
    """
    if every:
        if image_id or point or automatic:
            raise click.UsageError("--all takes no ID, point or --auto")
        _focus_all(again, workers)
        return
    if image_id is None:
        raise click.UsageError("give an image ID (and X Y, or --auto), or --all")
    client = _client()
    if point and automatic:
        raise click.UsageError("give X Y or --auto, not both")
    if point or automatic:
        found = client.set_focus(image_id, None if automatic else point)
    else:
        from huimages.core.focus import focus_of

        found = focus_of(client.get_imagedoc(image_id)).as_record()
    click.echo(json.dumps(found, sort_keys=True))


def _focus_all(again: bool, workers: int) -> None:
    service = _service()

    def find(doc: Doc) -> str:
        if not again and "placeholder" in doc:
            return "already"
        return str(service.analyse(str(doc["_id"]))["focus"]["source"])

    counts, failed = _every_image(service, find, workers, "finding focus points")
    found = ", ".join(f"{name}: {count}" for name, count in sorted(counts.items())) or "no images"
    click.echo(f"focus points {found}; failed: {len(failed)}")
    _exit_on_failures(failed)
