"""What the derivative cache holds, per size and format: counted by a walk, recorded for large caches.

A walk stats every file (about 4.6 s for a million files here), so a large
cache is answered from the record of the last walk instead: every prune (the
self-pruning thread's included) counts the cache on the way and records it in
``<cache>/.huimages/census.json``. ``huimages cache`` and the web interface's
status page read that record when the cache holds at least ``RECORD_FROM``
files and the record is younger than ``RECORD_MAX_AGE``; otherwise they walk
(and record what they counted, for next time).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from huimages.backends.files import TEMP_SUFFIX, atomic_write

logger = logging.getLogger(__name__)

#: A temporary file older than this was left by a writer that was killed: a write takes seconds at most
#: (a 64 MB original, a master, a copy from S3), so ten minutes leave a wide margin, and the self-pruning
#: cache (its prunes sweep them too) gives back a killed writer's space within an interval of that.
TEMP_MAX_AGE = 600.0
LINK_SUFFIX = ".link"  # a named size's link being made (``DerivativeCache.link_name``)
RECORD_FROM = 100_000  # files: a smaller cache is walked in well under a second
RECORD_MAX_AGE = 3600.0  # seconds: an older record is walked anew
_RECORD = Path(".huimages") / "census.json"


def is_temporary(name: str) -> bool:
    return name.startswith(".") and (name.endswith(TEMP_SUFFIX) or name.endswith(LINK_SUFFIX))


def disk_bytes(stat: os.stat_result) -> int:
    """What a file takes on disk, as ``du`` counts it (small files take a whole block)."""
    return stat.st_blocks * 512


@dataclasses.dataclass
class Shelf:
    """The cached files of one size in one format."""

    files: int = 0
    bytes: int = 0
    oldest: float = float("inf")  # modification times
    newest: float = 0.0

    def add(self, stat: os.stat_result) -> None:
        self.files += 1
        self.bytes += disk_bytes(stat)
        self.oldest = min(self.oldest, stat.st_mtime)
        self.newest = max(self.newest, stat.st_mtime)


@dataclasses.dataclass
class Census:
    """A ``Shelf`` per (size folder, extension), the temporary files and how many are stale, as of ``made``."""

    made: float = dataclasses.field(default_factory=time.time)
    shelves: dict[tuple[str, str], Shelf] = dataclasses.field(default_factory=dict)
    temporary: Shelf = dataclasses.field(default_factory=Shelf)
    stale: int = 0
    recorded: bool = False  # read from the record of an earlier walk

    @property
    def files(self) -> int:
        return sum(shelf.files for shelf in self.shelves.values())

    @property
    def bytes(self) -> int:
        return sum(shelf.bytes for shelf in self.shelves.values())

    def add(self, folder: str, name: str, stat: os.stat_result) -> None:
        """Count one file of the walk (``folder`` relative to the cache; "." for the cache itself)."""
        if is_temporary(name):
            self.temporary.add(stat)
            self.stale += self.made - stat.st_mtime >= TEMP_MAX_AGE
        elif not name.startswith(".") and folder != ".":
            self.shelves.setdefault(_shelf(folder, name), Shelf()).add(stat)

    def remove(self, folder: str, name: str, size: int) -> None:
        """Count off a file a prune removed (its shelf's oldest stays as the walk saw it)."""
        shelf = self.shelves.get(_shelf(folder, name))
        if shelf is not None:
            shelf.files -= 1
            shelf.bytes -= size

    def sorted(self) -> Census:
        self.shelves = dict(sorted(self.shelves.items()))
        return self

    def to_json(self) -> dict[str, Any]:
        def shelf(s: Shelf) -> list[float]:
            return [s.files, s.bytes, s.oldest if s.files else 0.0, s.newest]

        return {
            "made": self.made,
            "shelves": [[folder, ext, *shelf(s)] for (folder, ext), s in self.shelves.items()],
            "temporary": shelf(self.temporary),
            "stale": self.stale,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Census:
        def shelf(values: list[float]) -> Shelf:
            files, size, oldest, newest = values
            return Shelf(int(files), int(size), float(oldest) if files else float("inf"), float(newest))

        shelves = {(str(row[0]), str(row[1])): shelf(row[2:]) for row in data["shelves"]}
        return cls(float(data["made"]), shelves, shelf(data["temporary"]), int(data["stale"]), recorded=True)


def walk(root: Path) -> Iterator[tuple[str, str, os.stat_result]]:
    """Every file under ``root`` outside hidden folders (state, locks) as (folder, name, lstat); links left out."""
    try:
        entries = os.scandir(root)
    except (FileNotFoundError, NotADirectoryError):
        return
    folders = []
    with entries:
        here = os.fspath(root)
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith("."):
                        folders.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    yield here, entry.name, entry.stat(follow_symlinks=False)
    for folder in folders:
        yield from walk(Path(folder))


def count(root: Path) -> Census:
    """Walk the cache and count what it holds."""
    census = Census()
    relative = Relative(root)
    for folder, name, stat in walk(root):
        census.add(relative(folder), name, stat)
    return census.sorted()


class Relative:
    """Folders of a walk relative to its root, each worked out once (a walk gives a folder's files together)."""

    def __init__(self, root: Path) -> None:
        self.base = os.fspath(root)
        self.last, self.relative = "", ""

    def __call__(self, folder: str) -> str:
        if folder != self.last:
            self.last, self.relative = folder, os.path.relpath(folder, self.base)
        return self.relative


def record(root: Path, census: Census) -> None:
    """Keep ``census`` as the cache's record (where it cannot be written, the next look walks)."""
    try:
        atomic_write(root / _RECORD, json.dumps(census.to_json()).encode())
    except OSError as exc:
        logger.warning("the cache's census could not be recorded: %s", exc)


def recorded(root: Path) -> Census | None:
    """The recorded census, or None if there is none or it cannot be read."""
    try:
        return Census.from_json(json.loads((root / _RECORD).read_bytes()))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def census(root: Path, *, walk_anew: bool = False, now: float | None = None) -> Census:
    """What the cache holds: the record of a recent walk for a large cache, else a walk (recorded if large)."""
    now = time.time() if now is None else now
    if not walk_anew:
        kept = recorded(root)
        if kept is not None and kept.files >= RECORD_FROM and 0 <= now - kept.made < RECORD_MAX_AGE:
            return kept
    counted = count(root)
    if counted.files >= RECORD_FROM:
        record(root, counted)
    return counted


def _shelf(folder: str, name: str) -> tuple[str, str]:
    """A file's (size, extension): a crop's files around every focus (``75x75!@42-31``) count with its size."""
    return folder.partition("@")[0], name.rpartition(".")[2]
