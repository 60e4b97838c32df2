"""The abstract catalog: image documents by ID (see ``docs`` for their shape).

Implementations provide ``_load``, ``_modify`` (an atomic read-modify-write),
``_delete``, ``_neighbour``, ``_page``, ``deletions``, ``count`` and ``ping``
(and may answer ``_load_many`` in one query); merging, browsing and deleting
are built here on top.
"""

from __future__ import annotations

import abc
import base64
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from huimages.catalog.records import Doc, merge_into, merge_metadata
from huimages.core.ids import validate_id
from huimages.errors import EmptyStore, ImageNotFound, UnknownImage


class Catalog(abc.ABC):
    """Image documents by ID, with ordered browsing."""

    name: str = "catalog"

    # -- primitives -----------------------------------------------------------

    @abc.abstractmethod
    def _load(self, image_id: str) -> Doc | None:
        """The document, or None."""

    @abc.abstractmethod
    def _modify(self, image_id: str, change: Callable[[Doc | None], Doc]) -> Doc:
        """Atomically replace the document with ``change(current)``; returns it."""

    @abc.abstractmethod
    def _neighbour(self, key: str | None, after: bool) -> str | None:
        """The nearest ID of a non-deleted image strictly after (or before) ``key``.

        ``key=None`` means from the very start (``after``) or end (not ``after``):
        backends collate differently, so no sentinel string is portable.
        """

    @abc.abstractmethod
    def _page(self, after: str | None, limit: int) -> list[Doc]:
        """Up to ``limit`` documents of non-deleted images with IDs after ``after`` (None: from the start)."""

    @abc.abstractmethod
    def _delete(self, image_id: str) -> bool:
        """Remove the document and record the deletion; False if there was none."""

    @abc.abstractmethod
    def deletions(self, cursor: str | None, limit: int = 1000) -> tuple[list[str], str | None]:
        """IDs deleted after ``cursor`` (None: ever), oldest first, and the cursor to continue from.

        Every host's cache sweep follows this feed, so a deleted image's
        derivatives go from every host's cache.
        """

    @abc.abstractmethod
    def count(self) -> int:
        """How many non-deleted images the catalog holds."""

    def _load_many(self, image_ids: list[str]) -> dict[str, Doc]:
        """The documents that exist among ``image_ids`` (backends answer in one query)."""
        found = {i: self._load(i) for i in image_ids}
        return {i: doc for i, doc in found.items() if doc is not None}

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise ``BackendUnavailable`` unless the catalog answers."""

    def views_behind(self) -> list[str]:
        """The indexes being brought up to date, whose readers answer from them as they stand (CouchDB's views)."""
        return []

    def bring_up_to_date(self, progress: Callable[[str, float], None] | None = None) -> None:
        """Wait until every index is up to date (bulk writers, at their end); ``progress(view, seconds)`` meanwhile."""
        return  # nothing to wait for: the embedded stores' indexes are always up to date

    # -- public API -----------------------------------------------------------

    def find(self, image_id: str) -> Doc | None:
        return self._load(validate_id(image_id))

    def get(self, image_id: str) -> Doc:
        doc = self.find(image_id)
        if doc is None:
            raise UnknownImage(image_id, self.name)
        return doc

    def get_live(self, image_id: str) -> Doc:
        """The document of an image that may be served (not marked deleted)."""
        doc = self.get(image_id)
        if doc.get("deleted"):
            raise ImageNotFound(image_id, f"{self.name} (marked deleted)")
        return doc

    def find_many(self, image_ids: Iterable[str]) -> dict[str, Doc]:
        """The documents of those of ``image_ids`` that exist."""
        return self._load_many([validate_id(i) for i in dict.fromkeys(image_ids)])

    def page(self, after: str | None, limit: int) -> list[Doc]:
        """Up to ``limit`` live image documents in ID order, after ``after`` (None: from the first)."""
        return self._page(after, limit)

    @abc.abstractmethod
    def _newest_page(self, before: tuple[str, str] | None, limit: int) -> list[Doc]:
        """Live documents newest first (by ``ctime``, then ID, both descending), after the key ``before``."""

    def newest_page(self, after: str | None, limit: int) -> list[Doc]:
        """Up to ``limit`` live image documents newest first, after the image ``after`` (None: from the newest)."""
        before = None
        if after is not None:
            doc = self.get(after)
            before = (str(doc.get("ctime") or ""), after)
        return self._newest_page(before, limit)

    def pages(self, batch: int = 500) -> Iterator[list[Doc]]:
        """Every live image document, ``batch`` at a time, in ID order."""
        after: str | None = None
        while docs := self._page(after, batch):
            yield docs
            after = str(docs[-1]["_id"])

    def delete(self, image_id: str) -> bool:
        """Remove an image's document; False if it had none (not an error, as in huImages)."""
        return self._delete(validate_id(image_id))

    def update(self, image_id: str, change: Callable[[Doc], Doc]) -> Doc:
        """Atomically change an existing document; ``ImageNotFound`` if there is none."""

        def apply(doc: Doc | None) -> Doc:
            if doc is None:
                raise UnknownImage(image_id, self.name)
            return change(doc)

        return self._modify(validate_id(image_id), apply)

    def update_metadata(self, image_id: str, **metadata: Any) -> Doc:
        """Merge title, references, type and timestamp into an existing document (see ``merge_metadata``)."""
        return self.update(image_id, lambda doc: merge_metadata(doc, **metadata))

    def record_image(self, image_id: str, **fields: Any) -> Doc:
        """Create or merge the document of a saved image (see ``merge_into``)."""
        validate_id(image_id)
        return self._modify(image_id, lambda doc: merge_into(doc, image_id, **fields))

    def set_title(self, image_id: str, title: str) -> Doc:
        """Append a title the image does not have yet."""
        return self.update_metadata(image_id, timestamp=None, title=title)

    def next_id(self, image_id: str) -> str:
        """The following ID in ID order, wrapping to the first after the last."""
        found = self._neighbour(validate_id(image_id), after=True) or self._neighbour(None, after=True)
        if found is None:
            raise EmptyStore()
        return found

    def previous_id(self, image_id: str) -> str:
        """The preceding ID in ID order, wrapping to the last before the first."""
        found = self._neighbour(validate_id(image_id), after=False) or self._neighbour(None, after=False)
        if found is None:
            raise EmptyStore()
        return found

    def random_id(self) -> str:
        """A random ID: the first one at or after a random key (as huImages did).

        O(log n) on every backend, at the price of a bias towards IDs that
        follow large gaps; IDs are hashes, so gaps are nearly even.
        """
        key = base64.b32encode(os.urandom(20)).decode("ascii")
        found = self._neighbour(key, after=True) or self._neighbour(None, after=True)
        if found is None:
            raise EmptyStore()
        return found
