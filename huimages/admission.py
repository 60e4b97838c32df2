"""Admission control: at most N renders at once in a process, a bounded wait, then 503.

A flood of distinct cold URLs then costs a bounded amount of memory and CPU,
while cache hits (which never take a slot) keep answering. At most
``waiting`` requests wait for a slot, each at most ``wait`` seconds; the
others are refused at once, so a flood cannot occupy every thread of a
server (gunicorn's pool would then make the hits wait in its queue).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from huimages.errors import Overloaded


class RenderSlots:
    def __init__(self, slots: int, wait: float, waiting: int) -> None:
        self.slots = slots
        self.wait = wait
        self.waiting = waiting
        self._semaphore = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.in_flight = 0
        self.queued = 0
        self.refused = 0

    @contextlib.contextmanager
    def slot(self, key: str) -> Iterator[None]:
        """Hold one render slot; ``Overloaded`` (503 with Retry-After) after ``wait`` seconds without one."""
        started = time.monotonic()
        if not self._semaphore.acquire(blocking=False):
            with self._lock:
                full = self.queued >= self.waiting
                self.queued += not full
            acquired = not full and self._semaphore.acquire(timeout=self.wait)
            with self._lock:
                self.queued -= not full
                if not acquired:
                    self.refused += 1
            if not acquired:
                raise Overloaded(key, time.monotonic() - started, self.slots)
        with self._lock:
            self.in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1
            self._semaphore.release()
