"""Originals as files: ``<root>/<first two ID characters>/<id>``; masters under ``<masters>/<side>/``.

The two-character fan-out keeps folders small (1,024 of them, evenly filled,
since IDs are hashes).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from huimages.backends.files import atomic_write, is_disk_full
from huimages.core.ids import is_valid_id
from huimages.errors import BackendUnavailable, DiskFull, StorageError
from huimages.originals.base import OriginalsStore

logger = logging.getLogger(__name__)


class FilesystemStore(OriginalsStore):
    name = "filesystem originals"

    def __init__(self, root: Path, masters: Path | None = None) -> None:
        self.root = Path(root)
        self.masters = Path(masters) if masters is not None else self.root.parent / "masters"

    def _path(self, image_id: str) -> Path:
        return self.root / image_id[:2] / image_id

    def _master_path(self, key: str) -> Path:
        _, side, image_id = key.split("/")
        return self.masters / side / image_id[:2] / image_id

    def _read_file(self, path: Path, what: str) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(self.name, f"cannot read {what}: {exc.strerror}") from exc

    def _write_file(self, path: Path, data: bytes, what: str) -> None:
        try:
            atomic_write(path, data)
        except OSError as exc:
            logger.error("cannot write %s: %s", path, exc.strerror)
            if is_disk_full(exc):
                raise DiskFull(self.name) from exc
            raise StorageError(self.name, f"cannot write {what}: {exc.strerror}") from exc

    def _read(self, image_id: str) -> bytes | None:
        return self._read_file(self._path(image_id), image_id)

    def _write(self, image_id: str, data: bytes, content_type: str) -> None:
        self._write_file(self._path(image_id), data, image_id)

    def _size(self, image_id: str) -> int | None:
        try:
            return self._path(image_id).stat().st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(self.name, f"cannot stat {image_id}: {exc.strerror}") from exc

    def _remove(self, image_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(image_id).unlink()

    def _read_master(self, key: str) -> bytes | None:
        return self._read_file(self._master_path(key), key)

    def _write_master(self, key: str, data: bytes) -> None:
        self._write_file(self._master_path(key), data, key)

    def _remove_master(self, key: str) -> None:
        self._master_path(key).unlink(missing_ok=True)

    def listing(self) -> Iterator[list[tuple[str, float]]]:
        try:
            fanout = sorted(e.name for e in os.scandir(self.root) if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return
        for folder in fanout:
            with contextlib.suppress(FileNotFoundError):
                entries = [e for e in os.scandir(self.root / folder) if is_valid_id(e.name)]
                yield sorted((e.name, e.stat().st_mtime) for e in entries)

    def ping(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK):
                raise BackendUnavailable(self.name, f"{self.root} is not writable")
        except OSError as exc:
            raise BackendUnavailable(self.name, f"{self.root}: {exc.strerror}") from exc
