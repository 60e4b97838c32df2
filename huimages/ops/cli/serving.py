"""Serving: ``huimages serve`` (gunicorn, or lighttpd in front), ``fcgi``, ``lighttpd-config``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from huimages.ops.cli.common import _settings


@click.command()
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


@click.command()
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


@click.command("lighttpd-config")
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
