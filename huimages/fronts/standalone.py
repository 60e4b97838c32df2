"""``huimages serve``: the app under gunicorn, several processes, no other service.

gunicorn's threaded worker keeps connections alive and sends cache hits with
``sendfile`` through ``wsgi.file_wrapper``. The app is built in each worker
after the fork, so no connection is shared between processes.
"""

from __future__ import annotations

import os
from typing import Any

from gunicorn.app.base import BaseApplication

from huimages import metrics
from huimages.config import Settings
from huimages.prune import sweep_in_background
from huimages.web import create_app


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


class StandaloneServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, host: str, port: int, workers: int, threads: int) -> None:
        self.settings = settings
        self.options: dict[str, Any] = {
            "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": threads,
            "keepalive": 5,
            "timeout": 120,
            "graceful_timeout": 10,
            "accesslog": None,
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
        return create_app(self.settings)


def _child_exit(_server: Any, worker: Any) -> None:
    metrics.process_ended(worker.pid)


def serve(settings: Settings, host: str, port: int, workers: int, threads: int = 16) -> None:
    metrics.use_folder(settings.paths.run_dir / "metrics", wipe=True)  # the workers' values, summed by /metrics
    sweep_in_background(settings)  # temporary files of writers killed before this start
    StandaloneServer(settings, host, port, workers, threads).run()
