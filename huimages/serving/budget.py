"""What a stranger's unsigned URLs may cost: renders, bytes and sizes, counted on disk.

Under the ``open`` policy without keys (huImages' behaviour, and the default)
any size renders without a signature, so one client that knows one image ID
could fill the disk with 2 x 4096 x 4096 sizes of it. The named and allowed
sizes are free (a site's pages use them); every other unsigned render is
charged here, before it starts:

- per client address, per minute: at most ``renders`` renders and ``megabytes``
  MB written (429 with ``Retry-After`` past either). The minutes are fixed
  windows, so any 60 seconds hold at most twice that;
- per image: at most ``sizes_per_image`` distinct unsigned derivatives
  (size and format) ever, so many clients together cannot either (403).

The counts live beside the cache (``<cache>/.huimages/budget/``) under file
locks, so every process of a host shares them. A URL whose signature
verifies (keys configured) is never charged; without keys any signature is
ignored, and the request is charged like any other.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from huimages.backends.files import is_disk_full
from huimages.errors import DiskFull, SizeNotAllowed, StorageError, TooManyRequests

logger = logging.getLogger(__name__)

WINDOW = 60.0  # seconds of a client's budget


class StrangerBudget:
    def __init__(
        self,
        folder: Path,
        renders: int,
        megabytes: int,
        sizes_per_image: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.folder = Path(folder)
        self.renders = renders
        self.bytes = megabytes * 1_000_000
        self.sizes_per_image = sizes_per_image
        self.clock = clock

    def admit(self, client: str, image_id: str, derivative: str) -> None:
        """Charge one unsigned render of ``derivative`` (``300x200.webp``) of ``image_id`` to ``client``, or refuse."""
        if not (self.renders or self.bytes):
            if self.sizes_per_image:
                self._admit_size(image_id, derivative)
            return
        with shared_record(self.folder / "clients" / address_name(client)) as state:  # then the image's: one order
            self._roll(state)
            if self.renders and state["renders"] >= self.renders:
                raise TooManyRequests(
                    f"this address made {state['renders']} renders of unsigned sizes in the last minute"
                    f" (the limit is {self.renders}); named sizes and signed URLs are not limited",
                    self._retry_after(state),
                )
            if self.bytes and state["bytes"] >= self.bytes:
                raise TooManyRequests(
                    f"renders of unsigned sizes for this address wrote {state['bytes'] // 1_000_000} MB in the"
                    f" last minute (the limit is {self.bytes // 1_000_000} MB)",
                    self._retry_after(state),
                )
            if self.sizes_per_image:  # only a render the address may still pay for takes a size of the image
                self._admit_size(image_id, derivative)
            state["renders"] += 1

    def charge_bytes(self, client: str, length: int) -> None:
        """Add what an admitted render wrote to the client's minute."""
        if self.bytes:
            with shared_record(self.folder / "clients" / address_name(client)) as state:
                self._roll(state)
                state["bytes"] += length

    def _admit_size(self, image_id: str, derivative: str) -> None:
        with shared_record(self.folder / "images" / image_id) as state:
            sizes: list[str] = state.setdefault("sizes", [])
            if derivative in sizes:
                return  # rendered before (and flushed or pruned since): no new size
            if len(sizes) >= self.sizes_per_image:
                raise SizeNotAllowed(
                    derivative,
                    f"{image_id} already has {len(sizes)} unsigned sizes besides the named ones (the limit);"
                    " use a named size, or signed URLs (HUIMAGES_URL_KEYS)",
                )
            sizes.append(derivative)

    def _roll(self, state: dict[str, Any]) -> None:
        roll(state, self.clock(), renders=0, bytes=0)

    def _retry_after(self, state: dict[str, Any]) -> int:
        return retry_after(state, self.clock())


def roll(state: dict[str, Any], now: float, **counts: int) -> None:
    """Start a new window in ``state`` (with ``counts`` zeroed) once the last one is a minute old."""
    if now - state.get("start", 0) >= WINDOW:
        state.update(start=int(now), **counts)


def retry_after(state: dict[str, Any], now: float) -> int:
    """Seconds until the window of ``state`` ends (``Retry-After``)."""
    return max(1, int(state["start"] + WINDOW - now) + 1)


@contextlib.contextmanager
def shared_record(path: Path) -> Iterator[dict[str, Any]]:
    """A small JSON record, read and written back under an exclusive lock (shared by every process of a host)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.pread(fd, 1 << 20, 0)
        try:
            state = json.loads(raw) if raw else {}
        except ValueError:
            state = {}  # a damaged record starts again
        try:
            yield state
        finally:
            data = json.dumps(state).encode()
            if data != raw:
                _write_record(fd, data, path)
    finally:
        os.close(fd)


def _write_record(fd: int, data: bytes, path: Path) -> None:
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    except OSError as exc:
        logger.error("cannot write the budget record %s: %s", path, exc.strerror)
        if is_disk_full(exc):
            raise DiskFull("budget") from exc
        raise StorageError("budget", f"cannot record a client's renders: {exc.strerror}") from exc


def address_name(client: str) -> str:
    """A file name for a client address (IPv6 has colons; nothing the client sends reaches the path)."""
    return hashlib.sha1(client.encode("utf-8", "replace")).hexdigest()[:20]
