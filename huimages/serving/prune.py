"""Keeping the disk in bounds: temporary files of killed writers, and caches pruned least recently used first.

Everything here is safe while the server runs. A file under its real name is
always complete (writers rename a finished temporary file over it), so
removing one costs at most a render: a request that already opened it reads
it to the end, and the next one renders it again. Temporary files are removed
only once they are older than ``TEMP_MAX_AGE``, far longer than any write
takes, so a file that is being written is never touched. The render lock files
are a fixed set (``cache.LOCK_STRIPES``), never stale, and never removed.
"""

from __future__ import annotations

import array
import contextlib
import dataclasses
import fcntl
import logging
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from huimages.config import Settings
from huimages.serving.census import TEMP_MAX_AGE, Census, Relative, Shelf, disk_bytes, is_temporary, walk

logger = logging.getLogger(__name__)

_CHUNK = 1024  # a plan keeps its files' names in strings of this many names
START_PACE = 0.2  # the start-up sweep walks a fifth of the time
_SLICE = 0.02  # seconds of walking between rests


@dataclasses.dataclass
class SweepReport:
    files: int = 0
    bytes: int = 0


@dataclasses.dataclass
class PruneReport:
    """What pruning one folder did (``removed_*``) and what it keeps (``kept_*``); ``clock``: atime or mtime."""

    clock: str
    removed_files: int = 0
    removed_bytes: int = 0
    kept_files: int = 0
    kept_bytes: int = 0
    removed_folders: int = 0  # folders the removals left empty


def sweep_temporaries(
    folders: Iterable[Path],
    *,
    now: float | None = None,
    min_age: float = TEMP_MAX_AGE,
    dry_run: bool = False,
    pace: float = 1.0,
) -> SweepReport:
    """Remove the hidden temporary files older than ``min_age`` under ``folders`` (killed writers left them).

    ``pace``: the share of the time it walks (see ``_temporaries``).
    """
    now = time.time() if now is None else now
    report = SweepReport()
    for path, stat in _temporaries(folders, pace):
        if now - stat.st_mtime < min_age:
            continue
        if not dry_run:
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
        report.files += 1
        report.bytes += disk_bytes(stat)
    if report.files:
        logger.info("removed %d stale temporary files (%d bytes)", report.files, report.bytes)
    return report


def count_temporaries(folders: Iterable[Path], *, now: float | None = None) -> tuple[Shelf, int]:
    """The hidden temporary files under ``folders``, and how many of them are older than ``TEMP_MAX_AGE``."""
    now = time.time() if now is None else now
    found, stale = Shelf(), 0
    for _path, stat in _temporaries(folders):
        found.add(stat)
        stale += now - stat.st_mtime >= TEMP_MAX_AGE
    return found, stale


def _temporaries(folders: Iterable[Path], pace: float = 1.0) -> Iterator[tuple[str, os.stat_result]]:
    """Each hidden temporary file under ``folders``, with its ``lstat``.

    ``pace`` below 1 spreads the walk out: after each ``_SLICE`` seconds of
    walking it rests, so that it works that share of the time only.
    """
    rest = _SLICE * (1 - pace) / pace
    started = time.monotonic()
    for folder in folders:
        for dirpath, _dirnames, filenames in os.walk(folder):
            if pace < 1 and time.monotonic() - started >= _SLICE:
                time.sleep(rest)
                started = time.monotonic()
            for name in filenames:
                if not is_temporary(name):
                    continue
                path = os.path.join(dirpath, name)
                try:
                    stat = os.lstat(path)
                except FileNotFoundError:
                    continue
                yield path, stat


def temporary_folders(settings: Settings) -> list[Path]:
    """Every folder where huimages writes through temporary files."""
    paths = settings.paths
    return [paths.cache_dir, paths.originals_dir, paths.home / "masters", paths.originals_cache_dir]


def sweep_in_background(settings: Settings) -> threading.Thread:
    """A server's start-up sweep of stale temporary files, without delaying its first answers.

    One process of the host sweeps (the others find the lock taken), in a
    thread at low priority that walks a fifth of the time (``START_PACE``),
    so that hits and renders keep the cores while it walks a large cache.
    """

    def sweep() -> None:
        with contextlib.suppress(OSError, AttributeError):  # this thread only, where the system allows it
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        try:
            with host_lock(settings.paths.cache_dir, "sweep") as free:
                if free:
                    sweep_temporaries(temporary_folders(settings), pace=START_PACE)
        except OSError as exc:
            logger.warning("the start-up sweep of temporary files stopped: %s", exc)

    thread = threading.Thread(target=sweep, name="huimages-sweep", daemon=True)
    thread.start()
    return thread


def access_clock(folder: Path) -> str:
    """``atime`` when the filesystem of ``folder`` records reads (relatime, strictatime), else ``mtime``.

    Read from the mount options in ``/proc/self/mountinfo``; where they cannot
    be read, modification time is the safe choice.
    """
    real = os.path.realpath(folder)
    best, options = "", ""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return "mtime"
    for line in lines:
        fields = line.split()
        mount_point = fields[4].replace("\\040", " ")
        inside = real == mount_point or real.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, options = mount_point, fields[5]
    return "mtime" if not best or "noatime" in options.split(",") else "atime"


def _files(root: Path, census: Census | None = None) -> Iterator[tuple[str, str, os.stat_result]]:
    """Every complete file under ``root`` as (folder, name, stat): hidden files and folders
    (temporaries, state) and links left out; ``census`` counts every file seen."""
    relative = Relative(root)
    for folder, name, stat in walk(root):
        if census is not None:
            census.add(relative(folder), name, stat)
        if not name.startswith("."):
            yield folder, name, stat


class Plan:
    """What pruning a folder would remove (least recently used first) and what it holds now.

    Kept compact, since a cache holds millions of files: each file's name in
    a string shared with ``_CHUNK`` others, its folder as an index, its last
    use in whole seconds and its size in 512-byte blocks, in arrays; the
    victims are chosen by a histogram of the times instead of a sort of every
    file. 56 to 61 bytes a file for the cache's names (``scripts/bench.py
    --only scale`` measures it).
    """

    def __init__(self, clock: str, root: str = "") -> None:
        self.clock, self.root = clock, root
        self.folders: list[str] = []
        self.folder_of = array.array("I")
        self._names: list[bytes | bytearray] = []  # the names of _CHUNK files each, one after the other
        self._ends = array.array("I")  # where each name ends in its chunk
        self.used = array.array("I")  # seconds since the epoch
        self.blocks = array.array("I")  # bytes on disk / 512
        self.order = array.array("I")  # the victims, least recently used first

    def add(self, folder: str, name: str, used: float, stat: os.stat_result) -> None:
        if not self.folders or self.folders[-1] != folder:
            self.folders.append(folder)
        if len(self.used) % _CHUNK == 0:
            self.seal()
            self._names.append(bytearray())
        names = self._names[-1]
        names += os.fsencode(name)
        self.folder_of.append(len(self.folders) - 1)
        self._ends.append(len(names))
        self.used.append(min(int(used), 0xFFFFFFFF))
        self.blocks.append(min(stat.st_blocks, 0xFFFFFFFF))

    def seal(self) -> None:
        """Keep the last chunk's names in an immutable string of their exact size."""
        if self._names and isinstance(self._names[-1], bytearray):
            self._names[-1] = bytes(self._names[-1])

    @property
    def files(self) -> int:
        return len(self.used)

    @property
    def bytes(self) -> int:
        return sum(self.blocks) * 512

    @property
    def count(self) -> int:
        """How many files would go."""
        return len(self.order)

    @property
    def victims(self) -> list[tuple[int, str]]:
        """(bytes on disk, path) of each file that would go, least recently used first."""
        return [(self.blocks[i] * 512, self.path(i)) for i in self.order]

    def name(self, index: int) -> str:
        start = self._ends[index - 1] if index % _CHUNK else 0
        return os.fsdecode(bytes(self._names[index // _CHUNK][start : self._ends[index]]))

    def path(self, index: int) -> str:
        return os.path.join(self.folders[self.folder_of[index]], self.name(index))

    def choose(self, excess: int) -> None:
        """Order as victims the least recently used files that hold at least ``excess`` bytes.

        A histogram of the times finds the bucket where the bytes reach
        ``excess``; the files of older buckets are placed by a counting sort,
        and only the files of one bucket at a time are sorted by time.
        """
        if excess <= 0 or not self.files:
            return
        buckets = min(65536, max(256, self.files // 16))  # a few files a bucket
        low = min(self.used)
        span = max(self.used) - low + 1
        held = array.array("q", [0]) * buckets  # blocks
        counts = array.array("I", [0]) * buckets  # files
        for used, blocks in zip(self.used, self.blocks, strict=True):
            bucket = ((used - low) * buckets) // span  # inline in both loops: a call a file costs a tenth more
            held[bucket] += blocks
            counts[bucket] += 1
        needed, last = -(-excess // 512), buckets - 1
        total = 0
        for bucket, blocks in enumerate(held):
            total += blocks
            if total >= needed:
                last = bucket
                break
        del counts[last + 1 :]
        starts = array.array("I", [0]) * (last + 1)
        for bucket in range(1, last + 1):
            starts[bucket] = starts[bucket - 1] + counts[bucket - 1]
        placed = array.array("I", [0]) * sum(counts)  # the candidates, bucket by bucket
        fill = array.array("I", starts)
        for index, used in enumerate(self.used):
            bucket = ((used - low) * buckets) // span
            if bucket <= last:
                placed[fill[bucket]] = index
                fill[bucket] += 1
        freed, cut = 0, 0
        for bucket in range(last + 1):
            start, end = starts[bucket], starts[bucket] + counts[bucket]
            if span > buckets:  # a bucket spans more than a second: order its files
                placed[start:end] = array.array("I", sorted(placed[start:end], key=self.used.__getitem__))
            for index in placed[start:end]:
                if freed >= needed:
                    break
                freed += self.blocks[index]
                cut += 1
        del placed[cut:]
        self.order = placed


def plan(
    root: Path, *, max_bytes: int | None = None, min_free_percent: float | None = None, census: Census | None = None
) -> Plan:
    """The least recently used files to remove so ``root`` holds at most ``max_bytes`` and its
    filesystem has ``min_free_percent`` free (either bound may be None).

    ``census``, if given, counts what the walk saw (shelves and temporary files) on the way.
    """
    planned = Plan(access_clock(root), os.fspath(root))
    by_atime = planned.clock == "atime"
    for folder, name, stat in _files(root, census):
        planned.add(folder, name, max(stat.st_atime, stat.st_mtime) if by_atime else stat.st_mtime, stat)
    planned.seal()
    excess = 0 if max_bytes is None else planned.bytes - max_bytes
    if min_free_percent is not None:
        fs = os.statvfs(root)
        wanted = fs.f_blocks * fs.f_frsize * min_free_percent / 100
        excess = max(excess, int(wanted - fs.f_bavail * fs.f_frsize))
    planned.choose(excess)
    return planned


def carry_out(
    planned: Plan,
    *,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    census: Census | None = None,
) -> PruneReport:
    """Remove the planned files, and the folders left holding no file (``du`` counts folders too).

    ``census``, the count of the plan's walk, loses each file removed.
    """
    report = PruneReport(planned.clock, kept_files=planned.files, kept_bytes=planned.bytes)
    emptied: set[int] = set()
    for index in planned.order:
        size = planned.blocks[index] * 512
        if not dry_run:
            path = planned.path(index)
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue  # removed meanwhile (a delete, another prune)
            emptied.add(planned.folder_of[index])
            if census is not None:
                census.remove(os.path.relpath(os.path.dirname(path), planned.root), os.path.basename(path), size)
        report.removed_files += 1
        report.removed_bytes += size
        if progress is not None:
            progress(1)
    report.kept_files -= report.removed_files
    report.kept_bytes -= report.removed_bytes
    for folder in sorted((planned.folders[i] for i in emptied), reverse=True):  # the deepest first
        while folder != planned.root and folder.startswith(planned.root + os.sep):
            try:
                os.rmdir(folder)  # and then its parent, which it may have left empty
            except OSError:
                break  # not empty (a file written meanwhile), or gone: it stays
            report.removed_folders += 1
            folder = os.path.dirname(folder)
    return report


def prune(
    root: Path, *, max_bytes: int | None = None, min_free_percent: float | None = None, dry_run: bool = False
) -> PruneReport:
    """``plan`` and ``carry_out`` in one."""
    return carry_out(plan(root, max_bytes=max_bytes, min_free_percent=min_free_percent), dry_run=dry_run)


@contextlib.contextmanager
def host_lock(cache_root: Path, name: str = "prune") -> Iterator[bool]:
    """One pruner (or other ``name``) at a time on a host: yields whether this one may run (never waits)."""
    folder = cache_root / ".huimages"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class AutoPruner:
    """Keeps a server's cache within ``HUIMAGES_CACHE_MAX_BYTES`` by itself.

    Every server process runs one: a thread that, every
    ``HUIMAGES_CACHE_PRUNE_INTERVAL`` seconds (and as soon as this process has
    written a tenth of the bound since the last check, but at most ten times
    an interval), starts ``huimages prune --max-bytes`` at low priority in a
    process of its own, unless another pruner of the host holds the lock. The
    scan and the removals run outside the server's processes, so neither a
    render nor a hit waits for them; the pruner prunes to 90 % of the bound,
    so it does not run again at once.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bound = settings.cache_max_bytes
        self.interval = settings.cache_prune_interval
        self.min_gap = self.interval / 10  # however fast the cache fills, a prune starts at most this often
        self._written = 0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.bound and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="huimages-pruner", daemon=True)
            self._thread.start()

    def wrote(self, length: int) -> None:
        """A render wrote ``length`` bytes to the cache."""
        self._written += length
        if self._written >= self.bound // 10:
            self._wake.set()

    def _loop(self) -> None:
        self._wake.wait(random.uniform(0, min(self.interval, 30.0)))  # the host's processes do not start together
        while True:
            self._wake.clear()
            self._written = 0
            started = time.monotonic()
            try:
                self.run_once()
            except (OSError, subprocess.SubprocessError) as exc:
                logger.warning("the cache pruner could not run: %s", exc)
            time.sleep(max(0.0, self.min_gap - (time.monotonic() - started)))
            self._wake.wait(self.interval)

    def run_once(self) -> bool:
        """Start a prune unless another holds the host's lock; returns whether one ran (and waits for it)."""
        with host_lock(self.settings.paths.cache_dir) as free:
            if not free:
                return False
        target = int(self.bound * 0.9)
        argv = [sys.executable, "-m", "huimages", "prune", "--max-bytes", str(target)]
        if self.settings.originals_cache_bound:  # the local copies of S3 originals and masters too
            argv += ["--originals-cache-max-bytes", str(int(self.settings.originals_cache_bound * 0.9))]
        env = {**os.environ, **self.settings.child_environment(os.environ)}
        if shutil.which("nice"):  # at low priority: renders come first
            argv = ["nice", "-n", "10", *argv]
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            logger.warning("the cache pruner failed: %s", (done.stderr or done.stdout).strip()[-500:])
        else:
            logger.info("cache pruner: %s", " ".join(done.stdout.split()))
        return True
