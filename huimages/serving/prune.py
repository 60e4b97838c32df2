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
import stat as stat_mode
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from huimages.backends.files import TEMP_SUFFIX
from huimages.config import Settings

logger = logging.getLogger(__name__)

#: A temporary file older than this was left by a writer that was killed: a write takes seconds at most
#: (a 64 MB original, a master, a copy from S3), so ten minutes leave a wide margin, and the self-pruning
#: cache (its prunes sweep them too) gives back a killed writer's space within an interval of that.
TEMP_MAX_AGE = 600.0
_LINK_SUFFIX = ".link"  # a named size's link being made (``DerivativeCache.link_name``)


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


def is_temporary(name: str) -> bool:
    return name.startswith(".") and (name.endswith(TEMP_SUFFIX) or name.endswith(_LINK_SUFFIX))


def disk_bytes(stat: os.stat_result) -> int:
    """What a file takes on disk, as ``du`` counts it (small files take a whole block)."""
    return stat.st_blocks * 512


def sweep_temporaries(
    folders: Iterable[Path], *, now: float | None = None, min_age: float = TEMP_MAX_AGE, dry_run: bool = False
) -> SweepReport:
    """Remove the hidden temporary files older than ``min_age`` under ``folders`` (killed writers left them)."""
    now = time.time() if now is None else now
    report = SweepReport()
    for path, stat in _temporaries(folders):
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


def _temporaries(folders: Iterable[Path]) -> Iterator[tuple[str, os.stat_result]]:
    """Each hidden temporary file under ``folders``, with its ``lstat``."""
    for folder in folders:
        for dirpath, _dirnames, filenames in os.walk(folder):
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
    """A server's start-up sweep of stale temporary files, without delaying its first answers."""

    def sweep() -> None:
        try:
            sweep_temporaries(temporary_folders(settings))
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


def _files(root: Path) -> Iterator[tuple[str, str, os.stat_result]]:
    """Every complete file under ``root`` as (folder, name, stat): hidden files and folders
    (temporaries, state) and links left out."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            with contextlib.suppress(FileNotFoundError):
                stat = os.lstat(os.path.join(dirpath, name))
                if stat_mode.S_ISREG(stat.st_mode):
                    yield dirpath, name, stat


class Plan:
    """What pruning a folder would remove (least recently used first) and what it holds now.

    Kept compact (arrays, and each folder's path once), since a cache holds
    hundreds of thousands of files: about 60 bytes a file.
    """

    def __init__(self, clock: str, root: str = "") -> None:
        self.clock, self.root = clock, root
        self.folders: list[str] = []
        self.folder_of = array.array("I")
        self.names: list[str] = []
        self.used = array.array("d")
        self.sizes = array.array("q")
        self.order = array.array("I")  # the victims, least recently used first

    @property
    def files(self) -> int:
        return len(self.names)

    @property
    def bytes(self) -> int:
        return sum(self.sizes)

    @property
    def count(self) -> int:
        """How many files would go."""
        return len(self.order)

    @property
    def victims(self) -> list[tuple[int, str]]:
        """(bytes on disk, path) of each file that would go, least recently used first."""
        return [(self.sizes[i], self.path(i)) for i in self.order]

    def path(self, index: int) -> str:
        return os.path.join(self.folders[self.folder_of[index]], self.names[index])


def plan(root: Path, *, max_bytes: int | None = None, min_free_percent: float | None = None) -> Plan:
    """The least recently used files to remove so ``root`` holds at most ``max_bytes`` and its
    filesystem has ``min_free_percent`` free (either bound may be None)."""
    planned = Plan(access_clock(root), os.fspath(root))
    by_atime = planned.clock == "atime"
    for folder, name, stat in _files(root):
        if not planned.folders or planned.folders[-1] != folder:
            planned.folders.append(folder)
        planned.folder_of.append(len(planned.folders) - 1)
        planned.names.append(name)
        planned.used.append(max(stat.st_atime, stat.st_mtime) if by_atime else stat.st_mtime)
        planned.sizes.append(disk_bytes(stat))
    excess = 0 if max_bytes is None else planned.bytes - max_bytes
    if min_free_percent is not None:
        fs = os.statvfs(root)
        wanted = fs.f_blocks * fs.f_frsize * min_free_percent / 100
        excess = max(excess, int(wanted - fs.f_bavail * fs.f_frsize))
    if excess > 0:
        freed = 0
        for index in sorted(range(planned.files), key=planned.used.__getitem__):
            if freed >= excess:
                break
            planned.order.append(index)
            freed += planned.sizes[index]
    return planned


def carry_out(planned: Plan, *, dry_run: bool = False, progress: Callable[[int], None] | None = None) -> PruneReport:
    """Remove the planned files, and the folders left holding no file (``du`` counts folders too)."""
    report = PruneReport(planned.clock, kept_files=planned.files, kept_bytes=planned.bytes)
    emptied: set[int] = set()
    for index in planned.order:
        size = planned.sizes[index]
        if not dry_run:
            try:
                os.unlink(planned.path(index))
            except FileNotFoundError:
                continue  # removed meanwhile (a delete, another prune)
            emptied.add(planned.folder_of[index])
        report.removed_files += 1
        report.removed_bytes += size
        if progress is not None:
            progress(1)
    report.kept_files -= report.removed_files
    report.kept_bytes -= report.removed_bytes
    for folder in emptied - {i for i, path in enumerate(planned.folders) if path == planned.root}:
        with contextlib.suppress(OSError):  # not empty (a file written meanwhile), or gone: it stays
            os.rmdir(planned.folders[folder])
            report.removed_folders += 1
    return report


def prune(
    root: Path, *, max_bytes: int | None = None, min_free_percent: float | None = None, dry_run: bool = False
) -> PruneReport:
    """``plan`` and ``carry_out`` in one."""
    return carry_out(plan(root, max_bytes=max_bytes, min_free_percent=min_free_percent), dry_run=dry_run)


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


def inventory(root: Path, *, now: float | None = None) -> tuple[dict[tuple[str, str], Shelf], Shelf, int]:
    """What the cache holds: a ``Shelf`` per (size folder, extension); its temporary files, and how many are stale."""
    now = time.time() if now is None else now
    shelves: dict[tuple[str, str], Shelf] = {}
    temporary, stale = Shelf(), 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        folder = os.path.relpath(dirpath, root)
        for name in filenames:
            with contextlib.suppress(FileNotFoundError):
                stat = os.lstat(os.path.join(dirpath, name))
                if is_temporary(name):
                    temporary.add(stat)
                    stale += now - stat.st_mtime >= TEMP_MAX_AGE
                elif not name.startswith(".") and folder != ".":
                    shelves.setdefault((folder, name.rpartition(".")[2]), Shelf()).add(stat)
    return dict(sorted(shelves.items())), temporary, stale


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
