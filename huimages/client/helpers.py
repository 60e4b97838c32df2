"""The URL and markup helpers as templates need them: what the module functions return, never an exception.

A template that shows an image a store has lost, or an empty field, must
still render. ``TemplateHelpers`` wraps one client: for an unknown image the
tag still names its URL (as huImages' ``scaled_tag`` did), the URL is the
image server's, and what needs the record (a srcset, a ``<picture>``)
renders empty; an invalid or empty ID renders empty. The module functions,
the Django template tags and the Jinja2 globals all go through it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from huimages.catalog.records import alt_text
from huimages.client.markup import img_tag
from huimages.core.ids import is_valid_id
from huimages.core.sizes import DEFAULT_SIZE
from huimages.errors import HuImagesError

if TYPE_CHECKING:
    from huimages.client import Client

logger = logging.getLogger(__name__)


class TemplateHelpers:
    """``scaled_tag``, ``scaled_imageurl``, ``scaled_srcset``, ``scaled_picture``, ``scaled_dimensions``."""

    def __init__(self, client: Callable[[], Client]) -> None:
        self._client = client  # called at each use: a site may change its settings (Django's tests do)

    def scaled_imageurl(self, imageid: object, size: str = DEFAULT_SIZE, *, format: str = "jpeg") -> str:
        if not _usable(imageid):
            return ""
        try:
            return self._client().scaled_imageurl(str(imageid), size, format=format)
        except HuImagesError as exc:
            logger.warning("no URL for %s in %s: %s", imageid, size, exc)
            return ""

    def scaled_dimensions(self, imageid: object, size: str = DEFAULT_SIZE) -> tuple[int, int] | tuple[None, None]:
        """(width, height) after scaling; ``WxH!`` needs no look-up; ``(None, None)`` on any failure."""
        client = self._client()
        try:
            parsed = client.parse_size(size)
            if parsed.crop:
                return parsed.width, parsed.height
            if not _usable(imageid):
                return None, None
            return client.scaled_dimensions(str(imageid), size)
        except HuImagesError:
            return None, None

    def scaled_tag(self, imageid: object, size: str = DEFAULT_SIZE, *args: str, **attrs: Any) -> str:
        """An ``<img .../>`` tag; for an unknown image it still names the URL, without width and height."""
        if not _usable(imageid):
            return ""
        image_id, client = str(imageid), self._client()
        try:
            return client.scaled_tag(image_id, size, *args, **attrs)
        except HuImagesError:
            pass  # huImages still wrote a tag: the URL, and what is known
        try:
            doc = client.get_imagedoc(image_id)
        except HuImagesError:
            doc = {}
        width, height = self.scaled_dimensions(image_id, size)
        url = self.scaled_imageurl(image_id, size)
        return img_tag(url, width, height, alt_text(doc, client.settings.alt_addition), args, attrs) if url else ""

    def scaled_srcset(self, imageid: object, size: str = DEFAULT_SIZE, **options: Any) -> str:
        return self._quietly("srcset", imageid, lambda client: client.scaled_srcset(str(imageid), size, **options))

    def scaled_picture(self, imageid: object, size: str = DEFAULT_SIZE, **options: Any) -> str:
        return self._quietly("picture", imageid, lambda client: client.scaled_picture(str(imageid), size, **options))

    def _quietly(self, what: str, imageid: object, make: Callable[[Client], str]) -> str:
        if not _usable(imageid):
            return ""
        try:
            return make(self._client())
        except HuImagesError as exc:
            logger.warning("no %s for %s: %s", what, imageid, exc)
            return ""


def _usable(imageid: object) -> bool:
    return isinstance(imageid, str) and is_valid_id(imageid)
