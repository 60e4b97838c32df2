"""Originals in an S3 bucket (or any S3-compatible store), as huImages kept them.

The object key is the image ID. Objects are private: no ACL is ever set, so
they inherit the bucket's (private) default. Each upload carries its SHA-1
(``x-amz-checksum-sha1``), which is the image's content address, so S3 itself
rejects bytes that do not match the ID; each download is checked against the
ID again. A local copy of every original read or written is kept on disk, so
rendering a second size does not download the original again.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from huimages.backends.files import atomic_write
from huimages.backends.s3 import Bucket, make_client
from huimages.config import Settings
from huimages.core.ids import is_valid_id, matches, validate_id
from huimages.errors import CorruptOriginal, ImageNotFound
from huimages.originals.base import OriginalsStore


class S3Store(OriginalsStore):
    name = "s3 originals"

    def __init__(self, bucket: Bucket, local_cache: Path | None = None) -> None:
        self.bucket = bucket
        self.local_cache = local_cache

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        assert settings.s3.bucket
        bucket = Bucket(make_client(settings), settings.s3.bucket, cls.name)
        return cls(bucket, settings.paths.originals_cache_dir)

    # -- local copies ---------------------------------------------------------

    def _local(self, image_id: str) -> Path | None:
        return None if self.local_cache is None else self.local_cache / image_id[:2] / image_id

    def _keep_local(self, image_id: str, data: bytes) -> None:
        path = self._local(image_id)
        if path is not None:
            with contextlib.suppress(OSError):  # the local copy is an optimisation only
                atomic_write(path, data)

    def drop_local(self, image_id: str) -> None:
        """Forget the local copy, so the next read goes to S3."""
        path = self._local(image_id)
        if path is not None:
            path.unlink(missing_ok=True)

    # -- primitives -----------------------------------------------------------

    def _read(self, image_id: str) -> bytes | None:
        path = self._local(image_id)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                data = path.read_bytes()
                if matches(image_id, data):
                    return data
                path.unlink()  # a damaged local copy: fetch it again
        fetched = self.bucket.get(image_id)
        if fetched is None:
            return None
        if not matches(image_id, fetched):
            raise CorruptOriginal(self.name, image_id, self.bucket.where)
        self._keep_local(image_id, fetched)
        return fetched

    def _write(self, image_id: str, data: bytes, content_type: str) -> None:
        self.bucket.put(image_id, data, content_type)
        self._keep_local(image_id, data)

    def _size(self, image_id: str) -> int | None:
        path = self._local(image_id)
        if path is not None and path.is_file():
            return path.stat().st_size
        return self.bucket.size(image_id)

    def _remove(self, image_id: str) -> None:
        self.bucket.delete(image_id)
        self.drop_local(image_id)

    def stored(self, image_id: str) -> bool:
        return self.bucket.size(validate_id(image_id)) is not None

    def listing(self) -> Iterator[list[tuple[str, float]]]:
        after = ""
        while objects := self.bucket.objects(after):
            yield [(key, modified) for key, modified in objects if is_valid_id(key)]
            after = objects[-1][0]

    # Masters: objects masters/<side>/<id> in the same (private) bucket, with a local copy.

    def _local_master(self, key: str) -> Path | None:
        return None if self.local_cache is None else self.local_cache / key

    def _read_master(self, key: str) -> bytes | None:
        path = self._local_master(key)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                return path.read_bytes()
        data = self.bucket.get(key)
        if data is not None and path is not None:
            with contextlib.suppress(OSError):
                atomic_write(path, data)
        return data

    def _write_master(self, key: str, data: bytes) -> None:
        self.bucket.put(key, data, "image/jpeg" if data[:2] == b"\xff\xd8" else "image/png")
        path = self._local_master(key)
        if path is not None:
            with contextlib.suppress(OSError):
                atomic_write(path, data)

    def _remove_master(self, key: str) -> None:
        self.bucket.delete(key)
        path = self._local_master(key)
        if path is not None:
            path.unlink(missing_ok=True)

    def ping(self) -> None:
        self.bucket.ping()

    def prefix(self, image_id: str, length: int) -> bytes:
        path = self._local(image_id)
        if path is not None and path.is_file():
            with path.open("rb") as fh:
                return fh.read(length)
        data = self.bucket.get_prefix(validate_id(image_id), length)
        if data is None:
            raise ImageNotFound(image_id, self.name)
        return data

    def public_ids(self, sample: int | None = None) -> tuple[int, list[str]]:
        """Originals readable by anyone (huImages made them so): (how many were checked, the public ones).

        ``sample``: check about that many, from a random place in the bucket on; None: all of them.
        """
        ids = self.all_ids() if sample is None else self._sample_ids(sample)
        return len(ids), [i for i in ids if self.bucket.is_public(i)]

    def _sample_ids(self, count: int) -> list[str]:
        start = base64.b32encode(os.urandom(20)).decode("ascii")
        keys = self.bucket.keys(start, count)
        if len(keys) < count:  # the random start was near the end: go on from the beginning
            keys += [k for k in self.bucket.keys("", count - len(keys)) if k <= start]
        return [k for k in dict.fromkeys(keys) if is_valid_id(k)]

    def all_ids(self) -> list[str]:
        """Every original's ID in the bucket, in key order."""
        return [image_id for page in self.listing() for image_id, _modified in page]

    def read_back(self, image_id: str) -> bytes | None:
        self.drop_local(image_id)
        return super().read_back(image_id)
