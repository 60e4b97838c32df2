"""What the commands share: settings, the client, this host's service, progress bars, failure lists."""

from __future__ import annotations

import sys
from typing import Any

import click

from huimages.client import Client
from huimages.config import Settings
from huimages.serving.service import ImageService


def _settings() -> Settings:
    return Settings.from_env()


def _client() -> Client:
    """The client API: over HTTP where the settings say remote (see HUIMAGES_CLIENT)."""
    return Client(_settings())


def _service() -> ImageService:
    """This host's store, catalog and cache: the server-side commands work on these, never over HTTP."""
    return ImageService.from_settings(_settings())


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


def _byte_size(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    from huimages.core.units import parse_bytes

    try:
        return None if value is None else parse_bytes(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _bring_up_to_date(*stores: Any) -> None:
    """After (or before reading back) bulk writes: wait for the stores' indexes, saying which is being built."""
    shown: set[str] = set()

    def progress(view: str, seconds: float) -> None:
        if view not in shown:
            shown.add(view)
            click.echo(f"bringing the index {view} up to date", err=True)
        click.echo(f"  {view}: {seconds:.0f} s", err=True)

    for store in stores:
        store.bring_up_to_date(progress)
