"""The abstract catalog: image documents as huImages stored them in CouchDB.

A document is a JSON object: ``_id`` (the image ID), ``ctime``, ``mtime``,
``title`` (list), ``references`` (dict of lists), ``types`` (list), ``width``,
``height`` (as displayed, EXIF orientation applied) and optionally
``deleted``. huimages adds ``content_type`` and ``length``; older readers
ignore them.

Implementations provide ``_load``, ``_modify`` (an atomic read-modify-write),
``_neighbour`` and ``ping``; merging and browsing are built here on top.
"""

from __future__ import annotations

import abc
import base64
import datetime
import os
from collections.abc import Callable, Mapping
from typing import Any

from huimages.errors import EmptyStore, ImageNotFound
from huimages.ids import validate_id

Doc = dict[str, Any]


def format_timestamp(value: datetime.datetime | str | None) -> str:
    """huImages' timestamp format: ``20090129T101530.000123``."""
    if isinstance(value, str):
        return value
    moment = value or datetime.datetime.now()
    return f"{moment.strftime('%Y%m%dT%H%M%S')}.{moment.microsecond:06d}"


def merge_into(
    doc: Doc | None,
    image_id: str,
    *,
    width: int,
    height: int,
    content_type: str,
    length: int,
    timestamp: str,
    title: str = "",
    references: Mapping[str, Any] | None = None,
    typ: str = "",
) -> Doc:
    """The document after saving an image, merged as huImages merged it.

    ``ctime`` is kept from the first save; ``title``, ``types`` and each list in
    ``references`` gain values they do not hold yet. A pure function, so every
    backend merges identically.
    """
    merged: Doc = dict(doc or {})
    merged["_id"] = image_id
    merged.setdefault("ctime", timestamp)
    merged["mtime"] = timestamp
    merged["width"], merged["height"] = width, height
    merged["content_type"] = content_type
    merged["length"] = length
    merged.pop("deleted", None)  # saving the bytes again brings the image back
    merged["title"] = list(merged.get("title") or [])
    if title and title not in merged["title"]:
        merged["title"].append(title)
    merged["types"] = list(merged.get("types") or [])
    if typ and typ not in merged["types"]:
        merged["types"].append(typ)
    refs: dict[str, list[Any]] = {k: list(v) for k, v in (merged.get("references") or {}).items()}
    for key, value in (references or {}).items():
        values = refs.setdefault(str(key), [])
        if value not in values:
            values.append(value)
    merged["references"] = refs
    return merged


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
    def count(self) -> int:
        """How many non-deleted images the catalog holds."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise ``BackendUnavailable`` unless the catalog answers."""

    # -- public API -----------------------------------------------------------

    def find(self, image_id: str) -> Doc | None:
        return self._load(validate_id(image_id))

    def get(self, image_id: str) -> Doc:
        doc = self.find(image_id)
        if doc is None:
            raise ImageNotFound(image_id, self.name)
        return doc

    def get_live(self, image_id: str) -> Doc:
        """The document of an image that may be served (not marked deleted)."""
        doc = self.get(image_id)
        if doc.get("deleted"):
            raise ImageNotFound(image_id, f"{self.name} (marked deleted)")
        return doc

    def record_image(self, image_id: str, **fields: Any) -> Doc:
        """Create or merge the document of a saved image (see ``merge_into``)."""
        validate_id(image_id)
        return self._modify(image_id, lambda doc: merge_into(doc, image_id, **fields))

    def set_title(self, image_id: str, title: str) -> Doc:
        def change(doc: Doc | None) -> Doc:
            if doc is None:
                raise ImageNotFound(image_id, self.name)
            titles = list(doc.get("title") or [])
            if title and title not in titles:
                titles.append(title)
            return {**doc, "title": titles}

        return self._modify(validate_id(image_id), change)

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
