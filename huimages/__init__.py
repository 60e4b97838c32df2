"""huimages: store an image once, serve it in any size by URL.

The module functions are huImages' API, with the arguments, defaults and
return values of huImages' last release (``{}`` for an unknown ID,
``(None, None)`` for unknown dimensions, ``None`` for image data that cannot
be had). They are adapters over a default ``Client``, built from the
environment on first use (never at import time). ``Client`` is the modern API:
the same methods, raising ``HuImagesError`` subclasses instead.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names below are, for type checkers; at run time each is imported when first used
    from huimages.client import Client
    from huimages.client.compat import (
        default_client,
        delete_image,
        get_imagedoc,
        get_length,
        get_next_imageid,
        get_previous_imageid,
        get_random_imageid,
        imageurl,
        reset_default_client,
        save_image,
        scaled_dimensions,
        scaled_imagedata,
        scaled_imageurl,
        scaled_picture,
        scaled_srcset,
        scaled_tag,
        set_title,
        update_metadata,
    )
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
        UnknownImage,
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
    "UnknownImage",
    "default_client",
    "delete_image",
    "get_imagedoc",
    "get_length",
    "get_next_imageid",
    "get_previous_imageid",
    "get_random_imageid",
    "imageurl",
    "reset_default_client",
    "save_image",
    "scaled_dimensions",
    "scaled_imagedata",
    "scaled_imageurl",
    "scaled_picture",
    "scaled_srcset",
    "scaled_tag",
    "set_title",
    "update_metadata",
]

#: Where each public name lives: ``import huimages`` (and so ``import huimages.errors``) loads nothing else.
#: The classes are the client, the settings and the errors; the functions are huImages' (``client.compat``).
_HOMES = {
    name: {"Client": "huimages.client", "Settings": "huimages.config"}.get(name, "huimages.errors")
    if name[0].isupper()
    else "huimages.client.compat"
    for name in __all__
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'huimages' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # found once, then an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
