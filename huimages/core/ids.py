"""Image IDs: ``base32(sha1(original bytes))`` without padding, plus ``01``.

The format is the one huImages used, so existing IDs, caches and CDN keys stay
valid. IDs are content addresses: the same bytes give the same ID, and an ID
can be checked against bytes (``matches``).
"""

from __future__ import annotations

import base64
import hashlib
import re

from huimages.errors import InvalidImageId

ID_SUFFIX = "01"
ID_LENGTH = 34
_ID_RE = re.compile(r"[A-Z2-7]{32}01")


def compute_id(data: bytes) -> str:
    """The ID of an original: deterministic, 34 characters, URL and path safe."""
    digest = base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")
    return digest.rstrip("=") + ID_SUFFIX


def validate_id(value: str) -> str:
    """Return ``value`` if it is a well-formed ID, else raise ``InvalidImageId``.

    Only the canonical (upper-case) spelling is accepted: an ID is a cache key
    and a file name, so two spellings would mean two cache entries.
    """
    if not isinstance(value, str):
        raise InvalidImageId(repr(value), "an image ID is a string")
    if _ID_RE.fullmatch(value):
        return value
    if len(value) != ID_LENGTH:
        raise InvalidImageId(value, f"an image ID has {ID_LENGTH} characters, this has {len(value)}")
    if _ID_RE.fullmatch(value.upper()):
        raise InvalidImageId(value, "image IDs are upper case")
    if not value.endswith(ID_SUFFIX):
        raise InvalidImageId(value, f"an image ID ends in {ID_SUFFIX!r}")
    raise InvalidImageId(value, "an image ID uses only the letters A-Z and the digits 2-7")


def is_valid_id(value: str) -> bool:
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def matches(image_id: str, data: bytes) -> bool:
    """Whether ``data`` are the bytes ``image_id`` was computed from."""
    return compute_id(data) == image_id
