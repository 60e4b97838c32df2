"""huImages' module functions, with the arguments, defaults and return values of its last release.

``huimages`` exposes them (``huimages.save_image``); they are adapters over a
default ``Client`` built from the environment on first use, never at import.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
from collections.abc import Mapping
from typing import Any

from huimages.client import DEFAULT_DENSITIES, PICTURE_FORMATS, Client
from huimages.client.helpers import dimensions_or_none, tag_or_fallback
from huimages.config import Settings
from huimages.core.sizes import DEFAULT_SIZE
from huimages.errors import (
    BackendUnavailable,
    HuImagesError,
    ImageNotFound,
    InvalidImageId,
)

_default: Client | None = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The client the module functions use, built from the environment on first call."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Client(Settings.from_env())
    return _default


def reset_default_client() -> None:
    """Forget the default client, e.g. after changing the environment in tests."""
    global _default
    with _default_lock:
        _default = None


def save_image(
    imagedata: bytes,
    contenttype: str | None = None,
    timestamp: datetime.datetime | str | None = None,
    title: str = "",
    references: Mapping[str, Any] | None = None,
    filename: str = "image.jpeg",
    typ: str = "",
) -> str:
    """Store an image; returns its ID (``base32(sha1(bytes))`` + ``01``)."""
    return default_client().save_image(imagedata, contenttype, timestamp, title, references, filename, typ)


def delete_image(imageid: str) -> None:
    """Delete an image and everything derived from it; an unknown ID is silently ignored."""
    with contextlib.suppress(InvalidImageId):  # no such image can exist
        default_client().delete_image(imageid)


def get_imagedoc(imageid: str) -> dict[str, Any] | None:
    """The image's document; ``{}`` for an unknown ID; ``None`` when the catalog cannot be reached."""
    try:
        return default_client().get_imagedoc(imageid)
    except (ImageNotFound, InvalidImageId):
        return {}
    except BackendUnavailable:
        return None


def get_length(imageid: str) -> int:
    """The length in bytes of the original."""
    return default_client().get_length(imageid)


def imageurl(imageid: str, size: str = "o", *, format: str = "jpeg") -> str:
    """The same as ``scaled_imageurl(imageid, size)``, with the original as the default size."""
    return default_client().imageurl(imageid, size, format=format)


def scaled_imageurl(imageid: str, size: str = DEFAULT_SIZE, *, format: str = "jpeg") -> str:
    """The URL of a scaled version in ``format`` (jpeg, webp, avif or png; on the CDN once uploaded there)."""
    return default_client().scaled_imageurl(imageid, size, format=format)


def scaled_srcset(
    imageid: str,
    size: str = DEFAULT_SIZE,
    densities: tuple[float, ...] = DEFAULT_DENSITIES,
    *,
    widths: tuple[int, ...] | None = None,
    format: str = "jpeg",
) -> str:
    """A ``srcset`` value (``"<url> 1x, <url> 2x"``, or width descriptors with ``widths``); see ``Client``."""
    return default_client().scaled_srcset(imageid, size, densities, widths=widths, format=format)


def scaled_picture(
    imageid: str,
    size: str = DEFAULT_SIZE,
    formats: tuple[str, ...] = PICTURE_FORMATS,
    densities: tuple[float, ...] = DEFAULT_DENSITIES,
    *,
    widths: tuple[int, ...] | None = None,
    sizes: str | None = None,
    fallback: str = "jpeg",
    **attrs: Any,
) -> str:
    """A ``<picture>`` with AVIF and WebP sources and a JPEG (or PNG) ``<img>``; see ``Client.scaled_picture``."""
    return default_client().scaled_picture(
        imageid, size, formats, densities, widths=widths, sizes=sizes, fallback=fallback, **attrs
    )


def scaled_imagedata(imageid: str, size: str = DEFAULT_SIZE) -> bytes | None:
    """The bytes of a scaled version; ``None`` when it cannot be had."""
    try:
        return default_client().scaled_imagedata(imageid, size)
    except HuImagesError:
        return None


def scaled_dimensions(imageid: str, size: str = DEFAULT_SIZE) -> tuple[int, int] | tuple[None, None]:
    """(width, height) after scaling; ``WxH!`` needs no lookup; ``(None, None)`` on any failure."""
    return dimensions_or_none(default_client(), imageid, size)


def scaled_tag(imageid: str, size: str = DEFAULT_SIZE, *args: str, **kwargs: Any) -> str:
    """An ``<img .../>`` tag; for an unknown image it still names the URL, without width and height."""
    return tag_or_fallback(default_client(), imageid, size, args, kwargs)


def get_random_imageid() -> str:
    return default_client().get_random_imageid()


def get_next_imageid(imageid: str) -> str:
    return default_client().get_next_imageid(imageid)


def get_previous_imageid(imageid: str) -> str:
    return default_client().get_previous_imageid(imageid)


def update_metadata(
    doc_id: str,
    timestamp: datetime.datetime | str | None = None,
    title: str = "",
    references: Mapping[str, Any] | None = None,
    typ: str = "",
) -> str:
    """Merge metadata into an image's document as ``save_image`` does, without bytes; returns the ID."""
    return default_client().update_metadata(doc_id, timestamp, title, references, typ)


def set_title(imageid: str, newtitle: str) -> None:
    """Add a title (the newest is the alt text; the first is the URL's title)."""
    default_client().set_title(imageid, newtitle)
