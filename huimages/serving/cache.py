"""The derivative cache on disk: ``<cache>/<size>/<id>.<format>`` (``.jpeg``, ``.webp``, ``.avif``, ``.png``).

This layout is the URL path, so lighttpd (or any static server) can use the
cache folder as its document root and serve every hit without Python.
Files appear atomically; renders of one derivative are serialised across
threads and processes by a file lock on one of a fixed set of lock files
(striped by key), so no lock file is ever deleted and no unlink race exists.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import logging
import os
import re
import shutil
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from huimages.backends.files import atomic_write, atomic_write_open, is_disk_full, is_within
from huimages.core.focus import FocusPoint, point_token
from huimages.core.formats import FORMATS, JPEG, Format
from huimages.core.ids import is_valid_id, validate_id
from huimages.errors import DiskFull, RenderBusy, StorageError

logger = logging.getLogger(__name__)

LOCK_STRIPES = 1024
#: After a write found the disk full, misses answer 503 for this long without rendering.
DISK_FULL_PAUSE = 10.0
_STATE_DIR = ".huimages"  # hidden: never a valid size, denied by the lighttpd config


@dataclasses.dataclass
class CachedFile:
    """An open cache file: what a response sends (``fd`` is owned by whoever closes it)."""

    fd: int
    stat: os.stat_result
    render_ms: float | None = None  # set when this request rendered it (the access log says so)

    @classmethod
    def of(cls, fd: int) -> CachedFile:
        return cls(fd, os.fstat(fd))

    def read(self) -> bytes:
        """All its bytes (and closes it)."""
        try:
            return os.pread(self.fd, self.stat.st_size, 0)
        finally:
            self.close()

    def close(self) -> None:
        os.close(self.fd)


class DerivativeCache:
    """Paths, atomic writes and render locks for the derivative cache."""

    def __init__(self, root: Path, lock_timeout: float = 60.0) -> None:
        self.root = Path(root)
        self.lock_timeout = lock_timeout
        self._lock_dir = self.root / _STATE_DIR / "locks"
        self._full_until = 0.0  # monotonic time until which misses are refused (the disk was full)

    def path(self, size_token: str, image_id: str, fmt: Format = JPEG) -> Path:
        """The cache file for a derivative.

        Both parts must be plain names (``[A-Za-z0-9!]``, with a focus
        ``@x-y``, and a valid ID), so the result can never leave the cache
        folder, whatever the caller passes.
        """
        validate_id(image_id)
        if not _is_plain_token(size_token):
            raise ValueError(f"size token {size_token!r} is not a plain folder name")
        return self.root / size_token / f"{image_id}.{fmt.extension}"

    def open(self, size_token: str, image_id: str, fmt: Format = JPEG) -> CachedFile | None:
        """Open a cached derivative for reading, or None on a miss."""
        try:
            fd = os.open(self.path(size_token, image_id, fmt), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError("cache", f"cannot read {size_token}/{image_id}.{fmt.extension}: {exc.strerror}") from exc
        return CachedFile.of(fd)

    def exists(self, size_token: str, image_id: str, fmt: Format = JPEG) -> bool:
        return self.path(size_token, image_id, fmt).is_file()

    def write(self, size_token: str, image_id: str, data: bytes, fmt: Format = JPEG) -> CachedFile:
        """Store a derivative atomically; returns it opened (valid even if it is removed at once).

        A full disk raises ``DiskFull`` and makes ``check_space`` refuse
        renders for ``DISK_FULL_PAUSE`` seconds; nothing partial is left.
        """
        path = self.path(size_token, image_id, fmt)
        try:
            return CachedFile.of(atomic_write_open(path, data))
        except OSError as exc:
            if is_disk_full(exc):
                self._full_until = time.monotonic() + DISK_FULL_PAUSE
                logger.error(
                    "no space left to write %s (%s); misses answer 503 for %g s", path, exc.strerror, DISK_FULL_PAUSE
                )
                raise DiskFull("cache", round(DISK_FULL_PAUSE)) from exc
            logger.error("cannot write %s: %s", path, exc.strerror)
            raise StorageError("cache", f"cannot write {path.relative_to(self.root)}: {exc.strerror}") from exc

    def check_space(self) -> None:
        """Raise ``DiskFull`` while the last write found the disk full, so a miss is not rendered in vain."""
        left = self._full_until - time.monotonic()
        if left > 0:
            raise DiskFull("cache", max(1, round(left)))

    @contextlib.contextmanager
    def lock(self, size_token: str, image_id: str, fmt: Format = JPEG) -> Iterator[None]:
        """Hold the render lock for one derivative (shared by every process on this host)."""
        key = f"{size_token}/{image_id}.{fmt.extension}"
        stripe = zlib.crc32(key.encode()) % LOCK_STRIPES
        self._lock_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_dir / f"{stripe:04d}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            self._acquire(fd, key)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _acquire(self, fd: int, key: str) -> None:
        start = time.monotonic()
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            waited = time.monotonic() - start
            if waited >= self.lock_timeout:
                raise RenderBusy(key, waited)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def link_name(self, name: str, spec: str) -> None:
        """Make the folder of a named size a link to its numeric one (``small`` -> ``240x160``).

        Then ``/small/<id>.jpeg`` and ``/240x160/<id>.jpeg`` are one file, which
        lighttpd serves under either path. A real folder left by an earlier
        release is merged into the numeric one first.
        """
        if name == spec or not _is_plain_token(name) or not _is_plain_token(spec):
            return
        link = self.root / name
        try:
            if os.readlink(link) == spec:
                return
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno != errno.EINVAL or not link.is_dir():
                raise
            self._merge_folder(link, self.root / spec)
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = self.root / f".{name}.{os.getpid()}.{threading.get_ident()}.link"  # one per thread
        temporary.unlink(missing_ok=True)
        os.symlink(spec, temporary)
        try:
            os.replace(temporary, link)
        except OSError:
            temporary.unlink(missing_ok=True)
            if os.readlink(link) != spec:  # another process linked it meanwhile: fine; anything else is not
                raise

    def link_names(self, sizes: Mapping[str, str]) -> None:
        """``link_name`` for every named size (before lighttpd starts serving)."""
        for name, spec in sizes.items():
            self.link_name(name, spec)

    @staticmethod
    def _merge_folder(folder: Path, into: Path) -> None:
        into.mkdir(parents=True, exist_ok=True)
        for entry in folder.iterdir():
            if entry.name.startswith("."):
                entry.unlink(missing_ok=True)  # a killed writer's temporary file
            elif (into / entry.name).exists():
                entry.unlink(missing_ok=True)
            else:
                os.replace(entry, into / entry.name)
        folder.rmdir()

    def remove_image(self, image_id: str, points: Iterable[FocusPoint] | None = None) -> int:
        """Delete every cached derivative of one image (every size, focus and format) here; how many were removed.

        ``points``: the focus points the image's crops were cut around (its
        record's: only those render), so only their folders are tried; without
        them (the record is gone), every focus folder is.
        """
        validate_id(image_id)
        folders = self.sizes()
        if points is not None:
            tokens = [point_token(p) for p in points]
            crops = [f for f in folders if "!" in f and "@" not in f]
            folders = [f for f in folders if "@" not in f] + [f + t for f in crops for t in tokens if t]
        removed = 0
        for folder in folders:
            for fmt in FORMATS.values():
                try:
                    (self.root / folder / f"{image_id}.{fmt.extension}").unlink()
                    removed += 1
                except FileNotFoundError:
                    continue
        return removed

    def sizes(self) -> list[str]:
        """The size folders of the cache (links of named sizes left out: they are their numeric folder)."""
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        return sorted(e.name for e in entries if e.is_dir(follow_symlinks=False) and _is_plain_token(e.name))

    def image_ids(self, size_token: str, fmt: Format = JPEG) -> list[str]:
        """The IDs whose derivative of one size, in one format, is cached here."""
        try:
            names = os.listdir(self.root / size_token)
        except FileNotFoundError:
            return []
        ending = f".{fmt.extension}"
        stems = (n[: -len(ending)] for n in names if n.endswith(ending))
        return sorted(stem for stem in stems if is_valid_id(stem))

    def state_folder(self, name: str) -> Path:
        """A folder of this host's own records beside the cache (hidden: never served)."""
        return self.root / _STATE_DIR / name

    def read_state(self, name: str) -> str | None:
        """A small value this host keeps beside the cache (e.g. where its sweep stopped)."""
        try:
            return (self.root / _STATE_DIR / name).read_text()
        except FileNotFoundError:
            return None

    def write_state(self, name: str, value: str) -> None:
        atomic_write(self.root / _STATE_DIR / name, value.encode())

    def remove_size(self, size_token: str) -> int:
        """Delete every cached file of one size (a crop's with every focus); returns how many were removed."""
        if not _is_plain_token(size_token):
            return 0
        focused = [f for f in self.sizes() if f.startswith(f"{size_token}@")] if "@" not in size_token else []
        count = 0
        for name in [size_token, *focused]:
            folder = self.root / name
            if folder.is_symlink() or not folder.is_dir() or not is_within(self.root, folder):
                continue
            count += sum(1 for fmt in FORMATS.values() for _ in folder.glob(f"*.{fmt.extension}"))
            shutil.rmtree(folder, ignore_errors=True)
        return count


_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9!]{1,20}(@[0-9]{1,3}-[0-9]{1,3})?")


def _is_plain_token(token: str) -> bool:
    return _PLAIN_TOKEN.fullmatch(token) is not None
