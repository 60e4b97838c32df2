"""The client API a website uses: store images, emit URLs and ``<img>`` tags.

Method names and signatures are those of huImages' module functions, so code
written against huImages keeps working; ``huimages`` exposes the same names as
module functions bound to a default client.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Mapping
from typing import Any

from huimages.catalog.base import Doc
from huimages.config import Settings
from huimages.ids import validate_id
from huimages.service import ImageService
from huimages.sizes import Size
from huimages.urls import SIGNATURE_PARAM, image_path


class Client:
    """huimages for one site: built from ``Settings`` (default: the environment)."""

    def __init__(self, settings: Settings | None = None, *, service: ImageService | None = None) -> None:
        self.service = service or ImageService.from_settings(settings or Settings.from_env())
        self.settings = self.service.settings

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

        ``contenttype`` and ``filename`` are accepted for huImages compatibility;
        the stored content type is the one detected from the bytes, which cannot lie.
        Raises ``InvalidImage`` or ``ImageTooLarge`` and stores nothing for bad input.
        """
        del contenttype, filename
        return self.service.ingest(imagedata, timestamp=timestamp, title=title, references=references, typ=typ)

    def get_imagedoc(self, imageid: str) -> Doc:
        """The image's catalog document (a dict in huImages' CouchDB shape)."""
        return self.service.catalog.get(imageid)

    def get_length(self, imageid: str) -> int:
        """Length in bytes of the stored original."""
        return self.service.original_length(self.get_imagedoc(imageid))

    def imageurl(self, imageid: str, size: str = "o") -> str:
        """The image server URL for ``size`` exactly as given (``o`` by default)."""
        parsed = self.service.parse_size(size)
        return self._url(parsed, parsed.token, validate_id(imageid))

    def scaled_imageurl(self, imageid: str, size: str = "square") -> str:
        """The URL of a scaled version: on the CDN once uploaded there, else on the image server.

        Named sizes are emitted in numeric form, as huImages did.
        """
        return self.scaled_imageurls([imageid], size)[imageid]

    def scaled_imageurls(self, imageids: list[str], size: str = "square") -> dict[str, str]:
        """``scaled_imageurl`` for many images at once, with one catalog query for all of them."""
        parsed = self.service.parse_size(size)
        ids = [validate_id(i) for i in imageids]
        cdn = self.service.publisher
        on_cdn = cdn.urls(parsed.spec, ids) if cdn is not None else {}
        return {i: on_cdn.get(i) or self._url(parsed, parsed.spec, i) for i in ids}

    def scaled_dimensions(self, imageid: str, size: str = "square") -> tuple[int, int]:
        """(width, height) of the image served for ``scaled_imageurl(imageid, size)``."""
        return self.service.dimensions(imageid, self.service.parse_size(size))

    def scaled_tag(self, imageid: str, size: str = "square", **attrs: Any) -> str:
        """An ``<img .../>`` tag with src, width, height and ``attrs``, every value escaped.

        A trailing underscore is dropped from attribute names, so ``class_="x"``
        gives ``class="x"``.
        """
        width, height = self.scaled_dimensions(imageid, size)
        parts = [
            f'src="{html.escape(self.scaled_imageurl(imageid, size))}"',
            f'width="{width}"',
            f'height="{height}"',
        ]
        for key, value in attrs.items():
            name = key[:-1] if key.endswith("_") else key
            parts.append(f'{html.escape(name)}="{html.escape(str(value))}"')
        return f"<img {' '.join(parts)} />"

    def get_random_imageid(self) -> str:
        return self.service.catalog.random_id()

    def get_next_imageid(self, imageid: str) -> str:
        return self.service.catalog.next_id(imageid)

    def get_previous_imageid(self, imageid: str) -> str:
        return self.service.catalog.previous_id(imageid)

    def set_title(self, imageid: str, title: str) -> None:
        self.service.catalog.set_title(imageid, title)

    def _url(self, size: Size, token: str, image_id: str) -> str:
        """The image server URL, signed when the size policy needs it."""
        path = image_path(token, image_id)
        signature = self.service.policy.signature_for(size, path)
        query = f"?{SIGNATURE_PARAM}={signature}" if signature else ""
        return f"{self.settings.server_url}{path[1:]}{query}"
