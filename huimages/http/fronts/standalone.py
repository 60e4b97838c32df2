"""``huimages serve``: the app under gunicorn, several processes, no other service.

gunicorn's threaded worker keeps connections alive and sends cache hits with
``sendfile`` through ``wsgi.file_wrapper``; ``headfirst`` makes it read each
request's head before a thread takes it, so slow clients hold no thread. The app is built in each worker
after the fork, so no connection is shared between processes.
"""

from __future__ import annotations

import os
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from huimages.config import Settings
from huimages.http.app import create_app
from huimages.http.fronts.malloc import limit_arenas
from huimages.serving.housekeeping import Housekeeper
from huimages.serving.prune import sweep_in_background
from huimages.telemetry import metrics
from huimages.telemetry.logs import JsonFormatter, configure


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


class StandaloneServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, host: str, port: int, workers: int, threads: int) -> None:
        self.settings = settings
        self.options: dict[str, Any] = {
            "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            "workers": workers,
            "worker_class": "huimages.http.fronts.headfirst.HeadFirstWorker",  # gthread, slow heads cost no thread
            "threads": threads,
            "keepalive": 5,
            "timeout": 120,
            "graceful_timeout": 10,
            "accesslog": "-",  # combined format (gunicorn's default), or JSON lines
            "logger_class": type("Logs", (_Logs,), {"json": settings.log_format == "json"}),
            "errorlog": "-",
            "loglevel": "info",
            "proc_name": "huimages",
            "child_exit": _child_exit,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        limit_arenas(self.settings.malloc_arena_max)  # in each worker, before its threads start
        app = create_app(self.settings)  # in each worker, after the fork
        if app.service.pruner is not None:
            app.service.pruner.start()  # HUIMAGES_CACHE_MAX_BYTES
        Housekeeper(app.service).start()  # HUIMAGES_HOUSEKEEPING_INTERVAL
        return app


class _Logs(Logger):  # type: ignore[misc]
    """gunicorn's logs; with ``json``, one JSON object a line, a request's fields included."""

    json = False

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if self.json:
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(JsonFormatter())

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        """gunicorn's log fields, with no part of ``Authorization``: its Basic user is often a token."""
        fields: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        fields["u"] = "-"
        fields.pop("{authorization}i", None)
        return fields

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not resp.sent and resp.response_length and environ.get("REQUEST_METHOD") != "HEAD":
            resp.sent = resp.response_length  # gunicorn's sendfile path does not count what it sent
        if not self.json:
            super().access(resp, req, environ, request_time)
            return
        if not self.cfg.accesslog:
            return
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("RAW_URI") or environ.get("PATH_INFO", "")
        status = int(str(resp.status).split(None, 1)[0])
        fields = {
            "method": method,
            "path": path,
            "status": status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "render_ms": environ.get("huimages.render_ms"),
            "remote": environ.get("REMOTE_ADDR"),
        }
        self.access_log.info("%s %s %s", method, path, status, extra=fields)


def _child_exit(_server: Any, worker: Any) -> None:
    metrics.process_ended(worker.pid)


def serve(settings: Settings, host: str, port: int, workers: int, threads: int = 16) -> None:
    configure(settings.log_format)
    metrics.use_folder(settings.paths.run_dir / "metrics", wipe=True)  # the workers' values, summed by /metrics
    sweep_in_background(settings)  # temporary files of writers killed before this start
    StandaloneServer(settings, host, port, workers, threads).run()
