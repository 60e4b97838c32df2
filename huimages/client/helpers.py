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
from huimages.errors import BackendUnavailable, HuImagesError, ImageNotFound, InvalidImageId

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
        return dimensions_or_none(self._client(), "" if imageid is None else str(imageid), size)

    def scaled_tag(self, imageid: object, size: str = DEFAULT_SIZE, *args: str, **attrs: Any) -> str:
        """An ``<img .../>`` tag; for an unknown image it still names the URL, without width and height."""
        if not _usable(imageid):
            return ""
        try:
            return tag_or_fallback(self._client(), str(imageid), size, args, attrs)
        except HuImagesError as exc:
            logger.warning("no tag for %s in %s: %s", imageid, size, exc)
            return ""

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


def dimensions_or_none(client: Client, imageid: str, size: str) -> tuple[int, int] | tuple[None, None]:
    """huImages' ``scaled_dimensions``: ``WxH!`` needs no look-up; ``(None, None)`` on any failure."""
    try:
        parsed = client.parse_size(size)
        if parsed.crop:
            return parsed.width, parsed.height
        return client.scaled_dimensions(imageid, size)
    except HuImagesError:
        return None, None


def tag_or_fallback(client: Client, imageid: str, size: str, args: tuple[str, ...], attrs: dict[str, Any]) -> str:
    """huImages' ``scaled_tag``: for an image it cannot read, the tag still names the URL, with what is known.

    Raises where huImages raised: a malformed ID, a size that is refused.
    """
    try:
        return client.scaled_tag(imageid, size, *args, **attrs)
    except HuImagesError:
        pass
    try:
        doc = client.get_imagedoc(imageid)
    except (ImageNotFound, InvalidImageId, BackendUnavailable):
        doc = {}
    width, height = dimensions_or_none(client, imageid, size)
    alt = alt_text(doc, client.settings.alt_addition)
    attrs = {k: v for k, v in attrs.items() if k != "placeholder"}  # nothing known to show
    return img_tag(client.scaled_imageurl(imageid, size), width, height, alt, args, attrs)


def _usable(imageid: object) -> bool:
    return isinstance(imageid, str) and is_valid_id(imageid)
