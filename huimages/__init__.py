"""huimages: store an image once, serve it in any size by URL.

The module functions are huImages' API, bound lazily to a default ``Client``
built from the environment on first use (never at import time). Sites that
need more than one configuration create ``Client(settings)`` objects instead.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Mapping
from typing import Any

from huimages.client import Client
from huimages.config import Settings
from huimages.errors import (
    BackendUnavailable,
    ConfigurationError,
    EmptyStore,
    HuImagesError,
    ImageNotFound,
    ImageTooLarge,
    InvalidImage,
    InvalidImageId,
    InvalidSize,
    StorageError,
)

__all__ = [
    "BackendUnavailable",
    "Client",
    "ConfigurationError",
    "EmptyStore",
    "HuImagesError",
    "ImageNotFound",
    "ImageTooLarge",
    "InvalidImage",
    "InvalidImageId",
    "InvalidSize",
    "Settings",
    "StorageError",
    "default_client",
    "get_imagedoc",
    "get_length",
    "get_next_imageid",
    "get_previous_imageid",
    "get_random_imageid",
    "imageurl",
    "reset_default_client",
    "save_image",
    "scaled_dimensions",
    "scaled_imageurl",
    "scaled_tag",
    "set_title",
]

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
    return default_client().save_image(imagedata, contenttype, timestamp, title, references, filename, typ)


def get_imagedoc(imageid: str) -> dict[str, Any]:
    return default_client().get_imagedoc(imageid)


def get_length(imageid: str) -> int:
    return default_client().get_length(imageid)


def imageurl(imageid: str, size: str = "o") -> str:
    return default_client().imageurl(imageid, size)


def scaled_imageurl(imageid: str, size: str = "square") -> str:
    return default_client().scaled_imageurl(imageid, size)


def scaled_dimensions(imageid: str, size: str = "square") -> tuple[int, int]:
    return default_client().scaled_dimensions(imageid, size)


def scaled_tag(imageid: str, size: str = "square", **attrs: Any) -> str:
    return default_client().scaled_tag(imageid, size, **attrs)


def get_random_imageid() -> str:
    return default_client().get_random_imageid()


def get_next_imageid(imageid: str) -> str:
    return default_client().get_next_imageid(imageid)


def get_previous_imageid(imageid: str) -> str:
    return default_client().get_previous_imageid(imageid)


def set_title(imageid: str, title: str) -> None:
    default_client().set_title(imageid, title)
