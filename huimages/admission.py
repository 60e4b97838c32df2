"""Admission control: at most N renders at once in a process, a bounded wait, then 503.

A flood of distinct cold URLs then costs a bounded amount of memory and CPU,
while cache hits (which never take a slot) keep answering. flup's threaded
FastCGI server starts a thread per request without a cap; those threads wait
here, cheaply, instead of decoding at once.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from huimages.errors import Overloaded


class RenderSlots:
    def __init__(self, slots: int, wait: float) -> None:
        self.slots = slots
        self.wait = wait
        self._semaphore = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.in_flight = 0
        self.refused = 0

    @contextlib.contextmanager
    def slot(self, key: str) -> Iterator[None]:
        """Hold one render slot; ``Overloaded`` (503 with Retry-After) after ``wait`` seconds without one."""
        started = time.monotonic()
        if not self._semaphore.acquire(timeout=self.wait):
            with self._lock:
                self.refused += 1
            raise Overloaded(key, time.monotonic() - started, self.slots)
        with self._lock:
            self.in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1
            self._semaphore.release()
