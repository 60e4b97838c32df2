"""Filesystem helpers shared by the derivative cache and the filesystem store (and one about processes)."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that no reader ever sees a partial file.

    The bytes go to a hidden temporary file in the same folder (so the rename
    stays on one filesystem), are flushed to disk, and only then renamed over
    ``path``. A writer killed at any point leaves at most a hidden ``*.tmp``
    file behind, never a short file under the real name.
    """
    os.close(atomic_write_open(path, data, mode))


def atomic_write_open(path: Path, data: bytes, mode: int = 0o644) -> int:
    """``atomic_write``, returning a read-only descriptor of the file written.

    The descriptor is opened before the rename, so it reads these bytes even
    if the file is replaced or removed right after (a flush, a prune).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except FileNotFoundError:  # a prune removed the folder it had just emptied: make it again
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    reader = -1
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # mkstemp makes 0600; the web server may run as another user
        reader = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
        os.replace(tmp, path)
        return reader
    except BaseException:
        if reader >= 0:
            os.close(reader)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def is_disk_full(exc: OSError) -> bool:
    """Whether a write failed for lack of space (the disk, or the user's quota)."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def is_within(root: Path, candidate: Path) -> bool:
    """Whether ``candidate`` resolves to a path inside ``root`` (no escape via ``..`` or links)."""
    root_real = os.path.realpath(root)
    return os.path.commonpath([root_real, os.path.realpath(candidate)]) == root_real


def process_alive(pid: int) -> bool:
    """Whether a process of this host still exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
