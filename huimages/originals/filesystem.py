"""Originals as files: ``<root>/<first two ID characters>/<id>``.

The two-character fan-out keeps folders small (1,024 of them, evenly filled,
since IDs are hashes).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from huimages.errors import BackendUnavailable, StorageError
from huimages.fsutil import atomic_write
from huimages.originals.base import OriginalsStore


class FilesystemStore(OriginalsStore):
    name = "filesystem originals"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, image_id: str) -> Path:
        return self.root / image_id[:2] / image_id

    def _read(self, image_id: str) -> bytes | None:
        try:
            return self._path(image_id).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(self.name, f"cannot read {image_id}: {exc.strerror}") from exc

    def _write(self, image_id: str, data: bytes, content_type: str) -> None:
        try:
            atomic_write(self._path(image_id), data)
        except OSError as exc:
            raise StorageError(self.name, f"cannot write {image_id}: {exc.strerror}") from exc

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

    def ping(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK):
                raise BackendUnavailable(self.name, f"{self.root} is not writable")
        except OSError as exc:
            raise BackendUnavailable(self.name, f"{self.root}: {exc.strerror}") from exc
