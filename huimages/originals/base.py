"""The abstract originals store.

An implementation provides five primitives for originals (``_read``,
``_write``, ``_size``, ``_remove``, ``ping``) and three for masters
(``_read_master``, ``_write_master``, ``_remove_master``), and translates its
own errors into ``huimages.errors``; the public methods, which validate IDs
and check integrity, live here once.

A master is derived data (see ``imaging.ingest``): kept beside the originals
so every host can use it, never checked against the ID, made again whenever
it is missing or unreadable.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator

from huimages.core.ids import matches, validate_id
from huimages.errors import CorruptOriginal, ImageNotFound, StorageError


def master_key(image_id: str, side: int) -> str:
    """Where a master lives: its side is part of the key, so changing HUIMAGES_MASTER_SIDE makes new ones."""
    return f"masters/{side}/{image_id}"


class OriginalsStore(abc.ABC):
    """Original image bytes by ID. Content-addressed: an ID's bytes never change."""

    #: Short name used in health checks and error messages.
    name: str = "originals"

    # -- primitives -----------------------------------------------------------

    @abc.abstractmethod
    def _read(self, image_id: str) -> bytes | None:
        """The stored bytes, or None when there are none."""

    @abc.abstractmethod
    def _write(self, image_id: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``image_id`` atomically (all or nothing)."""

    @abc.abstractmethod
    def _size(self, image_id: str) -> int | None:
        """The stored length in bytes, or None when there are none."""

    @abc.abstractmethod
    def _remove(self, image_id: str) -> None:
        """Remove the bytes; removing what is not there is not an error."""

    @abc.abstractmethod
    def _read_master(self, key: str) -> bytes | None:
        """The master stored under ``key`` (``masters/<side>/<id>``), or None."""

    @abc.abstractmethod
    def _write_master(self, key: str, data: bytes) -> None:
        """Store a master atomically."""

    @abc.abstractmethod
    def _remove_master(self, key: str) -> None:
        """Remove a master; removing what is not there is not an error."""

    @abc.abstractmethod
    def listing(self) -> Iterator[list[tuple[str, float]]]:
        """Every stored original's ID with its last modification (epoch seconds), a page at a time, in ID order."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise ``BackendUnavailable`` (or ``StorageError``) unless the store answers."""

    # -- public API -----------------------------------------------------------

    def get(self, image_id: str) -> bytes:
        data = self._read(validate_id(image_id))
        if data is None:
            raise ImageNotFound(image_id, self.name)
        return data

    def put(self, image_id: str, data: bytes, content_type: str) -> None:
        """Store an original whose ID must be the content address of ``data``."""
        if not matches(validate_id(image_id), data):
            raise StorageError(self.name, f"refusing to store bytes under {image_id}: their sha1 differs")
        self._write(image_id, data, content_type)

    def exists(self, image_id: str) -> bool:
        return self._size(validate_id(image_id)) is not None

    def stored(self, image_id: str) -> bool:
        """Whether the store itself holds the original now (not a local copy of it): what a save checks last."""
        return self.exists(image_id)

    def length(self, image_id: str) -> int:
        size = self._size(validate_id(image_id))
        if size is None:
            raise ImageNotFound(image_id, self.name)
        return size

    def delete(self, image_id: str) -> None:
        self._remove(validate_id(image_id))

    def prefix(self, image_id: str, length: int) -> bytes:
        """The first ``length`` bytes of an original (enough for its header); stores that can, read only those."""
        return self.get(image_id)[:length]

    def get_master(self, image_id: str, side: int) -> bytes | None:
        return self._read_master(master_key(validate_id(image_id), side))

    def put_master(self, image_id: str, side: int, data: bytes) -> None:
        self._write_master(master_key(validate_id(image_id), side), data)

    def delete_master(self, image_id: str, side: int) -> None:
        self._remove_master(master_key(validate_id(image_id), side))

    def read_back(self, image_id: str) -> bytes | None:
        """The bytes as the store itself holds them, bypassing any local copy (verification)."""
        return self._read(validate_id(image_id))

    def verified(self, image_id: str) -> bool:
        """Whether the store holds exactly the bytes of ``image_id``."""
        try:
            data = self.read_back(image_id)
        except CorruptOriginal:
            return False
        return data is not None and matches(image_id, data)
