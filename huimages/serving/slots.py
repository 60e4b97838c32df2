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
from collections.abc import Callable, Iterator

from huimages.errors import Overloaded


class RenderSlots:
    def __init__(self, slots: int, wait: float, waiting: int) -> None:
        self.slots = slots
        self.wait = wait
        self.waiting = waiting
        self._semaphore = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._owners: dict[str, int] = {}  # slots held per owner (guarded by _owner_turn)
        self._owner_turn = threading.Condition()
        self.in_flight = 0
        self.queued = 0
        self.refused = 0

    @property
    def share(self) -> int:
        """Slots one owner (a stranger's address) may hold at once: half of them, at least one."""
        return max(1, self.slots // 2)

    @contextlib.contextmanager
    def slot(self, key: str, owner: str | None = None) -> Iterator[None]:
        """Hold one render slot; ``Overloaded`` (503 with Retry-After) after ``wait`` seconds without one.

        An ``owner`` (the address of a client rendering unsigned sizes) holds at
        most ``share`` slots at once: its other renders wait in the same bounded
        waiting room for one of its own to end, so a browser loading a page of
        new sizes is served in turn, and a flood from one address leaves the
        other slots to everyone else.
        """
        if owner is None:
            with self._slot(key):
                yield
            return
        started = time.monotonic()
        with self._owner_turn:
            if self._owners.get(owner, 0) >= self.share:
                turn = self._owner_turn.wait_for  # (called while holding _owner_turn, as wait_for needs)
                self._wait_in_room(key, started, lambda t: turn(lambda: self._owners.get(owner, 0) < self.share, t))
            self._owners[owner] = self._owners.get(owner, 0) + 1
        try:
            with self._slot(key):
                yield
        finally:
            with self._owner_turn:
                self._owners[owner] -= 1
                if not self._owners[owner]:
                    del self._owners[owner]
                self._owner_turn.notify_all()

    @contextlib.contextmanager
    def _slot(self, key: str) -> Iterator[None]:
        started = time.monotonic()
        if not self._semaphore.acquire(blocking=False):
            self._wait_in_room(key, started, lambda t: self._semaphore.acquire(timeout=t))
        with self._lock:
            self.in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1
            self._semaphore.release()

    def _wait_in_room(self, key: str, started: float, wait: Callable[[float], bool]) -> None:
        """Wait (``wait(seconds)`` -> got it) in the bounded waiting room; ``Overloaded`` when full or too long."""
        with self._lock:
            full = self.queued >= self.waiting
            self.queued += not full
        got = not full and wait(self.wait)
        with self._lock:
            self.queued -= not full
            self.refused += not got
        if not got:
            raise Overloaded(key, time.monotonic() - started, self.slots)
