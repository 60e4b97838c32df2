"""Image URL paths, built and parsed in one place.

The canonical path is ``/<size>/<id>.<format>`` (``.jpeg``, ``.webp``,
``.avif``, ``.png``; ``?s=<signature>`` when signed). Every form huImages wrote into
pages is read as the same JPEG: ``/<size>/<id>/<title>.jpeg`` (its
``scaled_imageurl`` for images with a title or a file name),
``/<size>/<id>.jpg`` and ``/<size>/<id>``. A title works with every format.

Parsing is strict and pure: it sees the decoded path and either returns the
size token and ID, returns None (not an image path: 404), or raises one of the
project's errors. Nothing here touches a file, so a path that tries to leave
the grammar (``..``, an encoded slash, a NUL) is refused before any I/O.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import parse_qs, unquote

from huimages.core.formats import JPEG, Format
from huimages.core.ids import validate_id
from huimages.errors import InvalidPath

SIGNATURE_PARAM = "s"

#: Cache-Control of every derivative: IDs are content addresses, so a derivative never changes.
HIT_MAX_AGE = 31536000
CACHE_FOREVER = f"public, max-age={HIT_MAX_AGE}, immutable"
#: What lighttpd's mod_expire sends on the hits it serves itself (it cannot add ``immutable``).
LIGHTTPD_HIT_CACHE_CONTROL = f"max-age={HIT_MAX_AGE}"
MAX_PATH = 200  # an image path is at most ~60 characters; anything much longer is not one
# /<size>/<id>.<ext>, /<size>/<id>, /<size>/<id>/<title>.<ext>; an extension is a short word (checked later)
_IMAGE_PATH = re.compile(r"/([^/]*)/([^/.]*)(?:\.([A-Za-z0-9]{1,8})|/[^/]+\.([A-Za-z0-9]{1,8}))?")
_NOT_IN_TITLES = re.compile(r"[^A-Za-z0-9_=,:-]+")


class ImagePath(NamedTuple):
    """A parsed image path: the size token, the ID, and the extension as written (``jpeg`` when none was)."""

    size_token: str
    image_id: str
    extension: str


def image_path(size_token: str, image_id: str, fmt: Format = JPEG) -> str:
    """The canonical path of a derivative; ``!`` stays literal, as in the cache folder name."""
    return f"/{size_token}/{image_id}.{fmt.extension}"


def titled_path(size_token: str, image_id: str, title: str, fmt: Format = JPEG) -> str:
    """huImages' ``scaled_imageurl`` form ``/<size>/<id>/<slug>.jpeg`` (in any format); canonical without a slug."""
    slug = title_slug(title)
    return f"/{size_token}/{image_id}/{slug}.{fmt.extension}" if slug else image_path(size_token, image_id, fmt)


def title_slug(title: str) -> str:
    """A title as huImages put it into URLs: spaces as ``-``, every other run outside ``[A-Za-z0-9_=,:-]`` as ``_``."""
    return _NOT_IN_TITLES.sub("_", title.replace(" ", "-"))


def split_request_target(raw: str) -> tuple[str, str]:
    """Decode a request target into (path, query); the path is percent-decoded once."""
    raw_path, _, query = raw.partition("?")
    if raw_path.startswith(("http://", "https://")):  # absolute-form request target
        raw_path = "/" + raw_path.split("://", 1)[1].partition("/")[2]
    return unquote(raw_path, encoding="latin-1"), query


def check_path(path: str) -> None:
    """Refuse paths no client of ours sends: control or non-ASCII characters, traversal, overlong."""
    if len(path) > MAX_PATH:
        raise InvalidPath(f"the path has {len(path)} characters; image paths have at most {MAX_PATH}")
    if not path.isascii() or any(ord(c) < 0x20 or c == "\x7f" for c in path):
        raise InvalidPath("the path contains control or non-ASCII characters")
    if ".." in path.split("/") or "\\" in path or "%" in path or "//" in path:
        raise InvalidPath("the path contains '..', '\\', '//' or percent-encoding; not allowed")


def parse_image_path(path: str) -> ImagePath | None:
    """Size token, image ID and extension of an image path in any of its forms; None if the path is not one.

    The extension is returned as written: whether it names a format served
    here is the service's to say.
    """
    check_path(path)
    match = _IMAGE_PATH.fullmatch(path)
    if match is None:
        return None
    return ImagePath(match.group(1), validate_id(match.group(2)), match.group(3) or match.group(4) or "jpeg")


def signature_of(query: str) -> str | None:
    """The signature parameter of a query string, if there is exactly one."""
    values = parse_qs(query, keep_blank_values=True).get(SIGNATURE_PARAM, [])
    if len(values) > 1:
        raise InvalidPath(f"the query has {len(values)} '{SIGNATURE_PARAM}' parameters; one at most")
    return values[0] if values else None
