"""Health: ``check`` (backends, originals, orphans) and ``settings``."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from huimages.config import SETTINGS_SPECS, Settings
from huimages.ops.cli.common import _bar, _list_failures, _service, _settings
from huimages.originals import open_primary


@click.command()
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
    if report["catalog"]["ok"]:
        behind = service.catalog.views_behind()
        if service.queue is not None and report.get("queue", {}).get("ok", True):
            behind += [f"{name} (CDN queue)" for name in service.queue.views_behind()]
        if behind:  # not a failure: reads answer from the index as it stands meanwhile
            click.echo(
                f"indexes   being brought up to date: {', '.join(behind)}; newest-first listings, counts and"
                " the queue's figures answer from them as they stand until then"
            )
    from huimages.imaging.focus import detector

    click.echo(f"focus     found at upload by: {detector(service.settings.focus)}")
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
        problems |= verify_originals(service.settings, service.catalog)
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


def verify_originals(settings: Settings, catalog: Any, workers: int = 8) -> bool:
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


@click.command()
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
