"""The ``huimages`` command.

The server-side commands work on ``ImageService.from_settings(Settings.from_env())``;
``upload``, ``url``, ``tag`` and ``info`` use the client API, which may be
remote (``HUIMAGES_CLIENT``). Every ``HuImagesError`` becomes a one-line
message and exit status 1 in one place (``_Group.invoke``), so commands do not
translate errors themselves.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from huimages.errors import HuImagesError
from huimages.ops.cli.common import _settings


class _Group(click.Group):
    """A command group that turns huimages' errors into plain CLI messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HuImagesError as exc:
            raise click.ClickException(str(exc)) from None


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


# The command groups, each a module of its own; imported after main, which they do not import.
from huimages.ops.cli import caching, cdn, health, images, migration, serving  # noqa: E402

for _command in (
    serving.serve,
    serving.fcgi,
    serving.lighttpd_config,
    images.upload,
    images.url,
    images.tag,
    images.info,
    images.delete,
    images.prerender,
    images.focus,
    images.masters,
    health.check,
    health.settings,
    migration.migrate,
    caching.prune,
    caching.cache,
    caching.sweep,
    cdn.process_queue,
    cdn.flush,
    cdn.queue,
):
    main.add_command(_command)
