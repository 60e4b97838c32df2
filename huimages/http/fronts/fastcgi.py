"""The app under flup's threaded FastCGI server, for lighttpd.

Two ways to run it: spawned by lighttpd (``bin-path``: ``server.py``, which
reads settings from ``bin-environment`` and talks FastCGI on fd 0), or started
separately with ``huimages fcgi --socket PATH`` / ``--bind HOST:PORT``. Use
several processes for several cores (lighttpd's ``max-procs``); each one runs
flup's threaded server, since its forking server is broken on Python 3.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from huimages.config import Settings
from huimages.http.app import create_app
from huimages.http.fronts.malloc import limit_arenas
from huimages.serving.cache import DerivativeCache
from huimages.serving.housekeeping import Housekeeper
from huimages.serving.prune import sweep_in_background
from huimages.telemetry import metrics
from huimages.telemetry.logs import configure

logger = logging.getLogger(__name__)

BindAddress = str | tuple[str, int] | None


def run(settings: Settings, bind: BindAddress = None) -> None:
    """Serve FastCGI on ``bind`` (a socket path or host and port), or on fd 0 when None."""
    from flup.server.fcgi import WSGIServer

    limit_arenas(settings.malloc_arena_max)  # before flup starts a thread per request
    try:  # lighttpd serves /small/<id>.jpeg from the numeric folder through these links
        DerivativeCache(settings.paths.cache_dir).link_names(settings.sizes)
    except OSError as exc:
        logger.error("cannot link the named sizes' folders in %s: %s", settings.paths.cache_dir, exc)
    metrics.use_folder(settings.paths.run_dir / "metrics")  # /metrics sums every backend's values
    app = create_app(settings)
    sweep_in_background(settings)  # temporary files of writers killed before this start
    if app.service.pruner is not None:
        app.service.pruner.start()  # HUIMAGES_CACHE_MAX_BYTES
    Housekeeper(app.service).start()  # HUIMAGES_HOUSEKEEPING_INTERVAL
    server = WSGIServer(
        _terminated(app), bindAddress=bind, multithreaded=True, multiplexed=False, debug=False, umask=0o002
    )
    server.run()


def _terminated(app: Any) -> Any:
    """FastCGI ends every request body (an empty stdin record): an upload without a length is read to its end.

    (lighttpd streams a chunked upload to the backend without Content-Length.)
    """

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        environ.setdefault("wsgi.input_terminated", True)
        return app(environ, start_response)

    return wrapped


def main() -> None:
    """Entry for lighttpd's ``bin-path``: settings from the environment, logs to stderr."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="huimages[%(process)d] %(levelname)s %(message)s")
    settings = Settings.from_env()
    if settings.log_format == "json":
        configure("json")
    run(settings)
