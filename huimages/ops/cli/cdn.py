"""The CDN: ``process-queue``, ``flush``, ``queue`` (and its ``break-lease``, ``add-cached``, ``retry``)."""

from __future__ import annotations

import itertools
import json
import socket
import time
from typing import Any

import click

from huimages.backends.files import process_alive
from huimages.cdn.publisher import LEASE
from huimages.core.formats import FORMATS
from huimages.errors import HuImagesError
from huimages.ops.cli.common import _bar, _service, _settings


@click.command("process-queue")
def process_queue() -> None:
    """Upload queued derivatives to the CDN bucket (what cron's /processqueue does).

    Each run first finishes the deletes a store kept from finishing, and removes
    what uploads stored without writing their record (after a short grace).
    """
    service = _service()
    if service.publisher is None:
        raise click.ClickException("no CDN is configured: set CDN_BUCKET and CDN_URL")
    click.echo(json.dumps(service.process_queue(), sort_keys=True))


@click.command()
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


@click.group(invoke_without_command=True)
@click.pass_context
def queue(ctx: click.Context) -> None:
    """Show the CDN queue: derivatives waiting per state, the oldest queued one, unfinished deletes, the run.

    Each figure is read on its own: one the store does not answer is named
    as missing, the others are shown (exit 1 when any is missing).
    """
    if ctx.invoked_subcommand is not None:
        return
    from huimages.cdn import open_queue

    store = open_queue(_settings())
    missing = 0

    def show(what: str, read: Any) -> None:
        nonlocal missing
        try:
            read()
        except HuImagesError as exc:
            missing += 1
            click.echo(f"{what}: not read ({exc})")

    def counts() -> None:
        stats = store.queue_stats()
        for state, count in stats.counts.items():
            click.echo(f"{state:9} {count}")
        if stats.oldest_queued_at is not None:
            click.echo(f"oldest queued {time.time() - stats.oldest_queued_at:.0f} s ago")

    def deletes() -> None:
        unfinished = sum(1 for _ in store.removals())
        if unfinished:
            click.echo(f"deletes   {unfinished} unfinished (the next queue run or `huimages sweep` finishes them)")

    def run() -> None:
        holder = _lease_holder(store.lease(LEASE))
        if holder is None:
            click.echo("running   no queue run")
        else:
            host, pid, left = holder
            click.echo(f"running   a queue run on host {host}, process {pid}; its lease expires in {left:.0f} s")

    show("derivatives per state", counts)
    show("unfinished deletes", deletes)
    show("the queue run", run)
    if missing:
        raise SystemExit(1)


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
