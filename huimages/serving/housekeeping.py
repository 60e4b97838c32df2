"""A server's housekeeping: what faults left undone is finished without anyone acting.

Every server process runs a thread that, every
``HUIMAGES_HOUSEKEEPING_INTERVAL`` seconds, unless another process of the host
is at it, finishes the recorded deletes that are due
(``huimages.serving.deletes``) and removes what uploads stored without writing
their record (``huimages.serving.unrecorded``). Queue runs and ``huimages
sweep`` do the same, so a site with cron needs no server for it.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import TYPE_CHECKING

from huimages.serving.prune import host_lock

if TYPE_CHECKING:
    from huimages.serving.service import ImageService

logger = logging.getLogger(__name__)


class Housekeeper:
    def __init__(self, service: ImageService) -> None:
        self.service = service
        self.interval = service.settings.housekeeping_interval
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        if self.interval and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="huimages-housekeeping", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval * random.uniform(0.8, 1.2)):  # the host's processes spread out
            try:
                self.run_once()
            except Exception:  # the thread must outlive any one failure
                logger.exception("housekeeping failed")

    def run_once(self) -> dict[str, int] | None:
        """One round, unless another process of the host holds the lock (None then)."""
        with host_lock(self.service.settings.paths.cache_dir, "housekeeping") as free:
            if not free:
                return None
            done = self.service.housekeeping()
        if any(done[key] for key in ("deletes_finished", "unrecorded_removed")):
            logger.info("housekeeping: %s", " ".join(f"{k}={v}" for k, v in sorted(done.items())))
        return done
