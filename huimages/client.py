"""The modern client API: store images, emit URLs and ``<img>`` tags.

``Client`` methods carry huImages' names, arguments and defaults (sizes
default to ``150x150``), but raise ``HuImagesError`` subclasses where huImages
returned ``{}``, ``None`` or ``(None, None)``; the module functions in
``huimages`` are the huImages-compatible adapters over a default client.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from huimages.catalog.docs import Doc, alt_text, url_title
from huimages.config import Settings
from huimages.ids import validate_id
from huimages.markup import img_tag
from huimages.service import ImageService
from huimages.sizes import Size, output_dimensions
from huimages.urls import SIGNATURE_PARAM, image_path, titled_path

DEFAULT_SIZE = "150x150"  # huImages' default for every scaled_* function


class Client:
    """huimages for one site: built from ``Settings`` (default: the environment)."""

    def __init__(self, settings: Settings | None = None, *, service: ImageService | None = None) -> None:
        self.service = service or ImageService.from_settings(settings or Settings.from_env())
        self.settings = self.service.settings

    # -- storing --------------------------------------------------------------

    def save_image(
        self,
        imagedata: bytes,
        contenttype: str | None = None,
        timestamp: datetime.datetime | str | None = None,
        title: str = "",
        references: Mapping[str, Any] | None = None,
        filename: str = "image.jpeg",
        typ: str = "",
    ) -> str:
        """Store an image; returns its ID. Saving the same bytes again merges the metadata.

        The stored content type is the one detected from the bytes, which
        cannot lie; ``contenttype`` is only a hint (a mismatch is logged).
        ``filename`` is kept from the first save (alt texts and URL titles
        fall back to it). Raises ``InvalidImage`` or ``ImageTooLarge`` and
        stores nothing for bad input.
        """
        return self.service.ingest(
            imagedata,
            timestamp=timestamp,
            title=title,
            references=references,
            typ=typ,
            filename=filename,
            content_type_hint=contenttype,
        )

    def update_metadata(
        self,
        doc_id: str,
        timestamp: datetime.datetime | str | None = None,
        title: str = "",
        references: Mapping[str, Any] | None = None,
        typ: str = "",
    ) -> str:
        """Merge metadata as ``save_image`` does, without bytes; returns the ID (``UnknownImage`` if none)."""
        self.service.update_metadata(doc_id, timestamp=timestamp, title=title, references=references, typ=typ)
        return doc_id

    def set_title(self, imageid: str, title: str) -> None:
        self.service.catalog.set_title(imageid, title)

    def delete_image(self, imageid: str) -> None:
        """Delete the image everywhere (record, original, derivatives, CDN); an unknown ID is not an error."""
        self.service.delete(imageid)

    # -- reading --------------------------------------------------------------

    def get_imagedoc(self, imageid: str) -> Doc:
        """The image's catalog document (a dict in huImages' CouchDB shape)."""
        return self.service.catalog.get(imageid)

    def get_length(self, imageid: str) -> int:
        """Length in bytes of the stored original."""
        return self.service.original_length(self.get_imagedoc(imageid))

    def imageurl(self, imageid: str, size: str = "o") -> str:
        """The same as ``scaled_imageurl``, with the original as the default size."""
        return self.scaled_imageurl(imageid, size)

    def scaled_imageurl(self, imageid: str, size: str = DEFAULT_SIZE) -> str:
        """The URL of a scaled version: on the CDN once uploaded there, else on the image server."""
        return self.scaled_imageurls([imageid], size)[imageid]

    def scaled_imageurls(self, imageids: list[str], size: str = DEFAULT_SIZE) -> dict[str, str]:
        """``scaled_imageurl`` for many images at once, with one lookup for all of them.

        Named sizes are written in numeric form, as huImages did; with
        ``HUIMAGES_TITLE_URLS`` (default on) the image server URL carries the
        image's title as huImages wrote it.
        """
        return self._urls(self.service.parse_size(size), [validate_id(i) for i in imageids])

    def scaled_imagedata(self, imageid: str, size: str = DEFAULT_SIZE) -> bytes:
        """The bytes of a scaled version, rendered here if need be (no HTTP round trip)."""
        return self.service.derivative(self.service.parse_size(size), validate_id(imageid)).read()

    def scaled_dimensions(self, imageid: str, size: str = DEFAULT_SIZE) -> tuple[int, int]:
        """(width, height) of the image served for ``scaled_imageurl(imageid, size)``."""
        return self.service.dimensions(imageid, self.service.parse_size(size))

    def scaled_tag(self, imageid: str, size: str = DEFAULT_SIZE, *args: str, **attrs: Any) -> str:
        """An ``<img .../>`` tag: src, width, height, ``args`` verbatim, ``attrs`` escaped, and an alt text.

        Without an ``alt`` keyword the alt text is huImages': the newest title,
        else the file name, followed by ``HUIMAGESALTADDITION``. A trailing
        underscore is dropped from attribute names (``class_="x"``).
        """
        parsed = self.service.parse_size(size)
        doc = self.service.catalog.get_live(imageid)
        width, height = output_dimensions(parsed, int(doc["width"]), int(doc["height"]))
        src = self._urls(parsed, [imageid], {imageid: doc})[imageid]
        return img_tag(src, width, height, alt_text(doc, self.settings.alt_addition), args, attrs)

    # -- browsing -------------------------------------------------------------

    def get_random_imageid(self) -> str:
        return self.service.catalog.random_id()

    def get_next_imageid(self, imageid: str) -> str:
        return self.service.catalog.next_id(imageid)

    def get_previous_imageid(self, imageid: str) -> str:
        return self.service.catalog.previous_id(imageid)

    def _urls(self, size: Size, ids: list[str], docs: dict[str, Doc] | None = None) -> dict[str, str]:
        """CDN URLs where uploaded, else image server URLs (titled when the setting says so)."""
        publisher = self.service.publisher
        on_cdn = publisher.urls(size.spec, ids) if publisher is not None else {}
        missing = [i for i in ids if i not in on_cdn]
        if docs is None:
            docs = self.service.catalog.find_many(missing) if self.settings.title_urls and missing else {}
        return {i: on_cdn.get(i) or self._url(size, i, docs.get(i)) for i in ids}

    def _url(self, size: Size, image_id: str, doc: Doc | None = None) -> str:
        """The image server URL, signed (over the canonical path) when the size policy needs it."""
        canonical = image_path(size.spec, image_id)
        path = canonical
        if doc is not None and self.settings.title_urls:
            path = titled_path(size.spec, image_id, url_title(doc))
        signature = self.service.policy.signature_for(size, canonical)
        query = f"?{SIGNATURE_PARAM}={signature}" if signature else ""
        return f"{self.settings.server_url}{path[1:]}{query}"
