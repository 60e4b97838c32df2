"""The size grammar of URLs, and the pure geometry behind it.

A size is ``o`` (the original), a named size (``small``), ``WxH`` (fit inside
the box, keep the aspect ratio, never upscale) or ``WxH!`` (scale and crop,
centred, to exactly WxH, upscaling if need be). Everything here is a pure
function of its arguments, so it can be property-tested and shared by the
renderer and ``scaled_dimensions``: the two can never disagree.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping

from huimages.errors import InvalidSize

ORIGINAL = "o"
DEFAULT_SIZE = "150x150"  # huImages' default for every scaled_* function
_SPEC_RE = re.compile(r"([1-9][0-9]{0,5})x([1-9][0-9]{0,5})(!?)")


@dataclasses.dataclass(frozen=True)
class Size:
    """A parsed size. ``token`` is the URL segment (and cache folder) it came from."""

    token: str
    width: int = 0
    height: int = 0
    crop: bool = False

    @property
    def is_original(self) -> bool:
        return self.token == ORIGINAL

    @property
    def spec(self) -> str:
        """The numeric form (``240x160``, ``75x75!``), or ``o``."""
        if self.is_original:
            return ORIGINAL
        return f"{self.width}x{self.height}{'!' if self.crop else ''}"


def parse_spec(spec: str, max_side: int) -> tuple[int, int, bool]:
    """Parse ``WxH`` or ``WxH!``; raise ``ValueError`` saying what is wrong."""
    match = _SPEC_RE.fullmatch(spec)
    if match is None:
        raise ValueError("expected WxH or WxH! with whole numbers from 1, e.g. 240x160 or 75x75!")
    width, height = int(match.group(1)), int(match.group(2))
    if width > max_side or height > max_side:
        raise ValueError(f"{width}x{height} exceeds the largest side allowed, {max_side} px")
    return width, height, bool(match.group(3))


def parse_size(token: str, named: Mapping[str, str], max_side: int) -> Size:
    """Parse a URL size segment. Raises ``InvalidSize`` naming the problem."""
    if token == ORIGINAL:
        return Size(ORIGINAL)
    if not isinstance(token, str) or not token or len(token) > 20 or not token.isascii():
        raise InvalidSize(str(token), "a size is 'o', a size name or WxH[!] in ASCII")
    spec = named.get(token, token)
    try:
        width, height, crop = parse_spec(spec, max_side)
    except ValueError as exc:
        if token.isalpha():
            names = ", ".join(sorted(named))
            raise InvalidSize(token, f"unknown size name; known names: {names}") from None
        raise InvalidSize(token, str(exc)) from None
    return Size(token, width, height, crop)


def _round_div(numerator: int, denominator: int) -> int:
    """Integer division rounding half up, without floats (exact for any size)."""
    return (2 * numerator + denominator) // (2 * denominator)


def fit_dimensions(src_w: int, src_h: int, box_w: int, box_h: int) -> tuple[int, int]:
    """Largest size with the source's aspect ratio inside the box; never upscales."""
    if src_w <= box_w and src_h <= box_h:
        return src_w, src_h
    if src_w * box_h >= src_h * box_w:  # width is the binding side
        return box_w, max(1, _round_div(src_h * box_w, src_w))
    return max(1, _round_div(src_w * box_h, src_h)), box_h


def crop_box(src_w: float, src_h: float, box_w: int, box_h: int) -> tuple[float, float, float, float]:
    """The centred region of the source with the box's aspect ratio.

    Returned in source pixels (floats, so no rounding shifts the centre); it
    is scaled to exactly ``box_w x box_h`` afterwards.
    """
    if src_w * box_h >= src_h * box_w:  # source is wider: trim left and right
        region_w = src_h * box_w / box_h
        left = (src_w - region_w) / 2
        return (left, 0.0, left + region_w, float(src_h))
    region_h = src_w * box_h / box_w
    top = (src_h - region_h) / 2
    return (0.0, top, float(src_w), top + region_h)


def output_dimensions(size: Size, src_w: int, src_h: int) -> tuple[int, int]:
    """The exact size of the image served for ``size`` from a ``src_w x src_h`` original."""
    if size.is_original:
        return src_w, src_h
    if size.crop:
        return size.width, size.height
    return fit_dimensions(src_w, src_h, size.width, size.height)


def decode_target(size: Size, src_w: int, src_h: int) -> tuple[int, int]:
    """The smallest full-image size a decoder must deliver to render ``size``.

    For a fit this is the output size; for a crop it is the whole source scaled
    so that the crop region covers the box. JPEG draft decoding picks the
    smallest DCT scale that is at least this large.
    """
    if size.is_original:
        return src_w, src_h
    if not size.crop:
        return fit_dimensions(src_w, src_h, size.width, size.height)
    scale = max(size.width / src_w, size.height / src_h)
    if scale >= 1:
        return src_w, src_h
    return min(src_w, math.ceil(src_w * scale)), min(src_h, math.ceil(src_h * scale))
