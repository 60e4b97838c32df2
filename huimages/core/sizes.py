"""The size grammar of URLs, and the pure geometry behind it.

A size is ``o`` (the original), a named size (``small``), ``WxH`` (fit inside
the box, keep the aspect ratio, never upscale) or ``WxH!`` (scale and crop to
exactly WxH, upscaling if need be), centred, or placed around a focus named
after it in percents (``WxH!@42-31``, ``square@42-31``: ``huimages.core.focus``).
Everything here is a pure function of its arguments, so it can be
property-tested and shared by the renderer and ``scaled_dimensions``: the two
can never disagree.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping

from huimages.core.focus import FocusPoint, parse_point, point_token
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
    focus: FocusPoint | None = None  # a crop's focus in percents (None: centred)

    @property
    def is_original(self) -> bool:
        return self.token == ORIGINAL

    @property
    def spec(self) -> str:
        """The numeric form (``240x160``, ``75x75!``, ``75x75!@42-31``), or ``o``: a cache folder's name."""
        if self.is_original:
            return ORIGINAL
        return f"{self.width}x{self.height}{'!' if self.crop else ''}{point_token(self.focus)}"

    @property
    def focus_at(self) -> tuple[float, float]:
        """The crop's focus as fractions of the upright image (the centre when it has none)."""
        return (0.5, 0.5) if self.focus is None else (self.focus[0] / 100, self.focus[1] / 100)

    @property
    def unfocused(self) -> Size:
        """This size centred (itself when it has no focus): the size the policy and the CDN's versions go by."""
        if self.focus is None:
            return self
        return dataclasses.replace(self, token=self.token.partition("@")[0], focus=None)

    def focused(self, point: FocusPoint) -> Size:
        """This crop placed around ``point`` (percents), named in numeric form; a fit size or the centre: unchanged."""
        base = self.unfocused
        if not base.crop or not point_token(point):
            return base
        return dataclasses.replace(base, token=f"{base.spec}{point_token(point)}", focus=point)


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
    if not isinstance(token, str) or not token or len(token.partition("@")[0]) > 20 or not token.isascii():
        raise InvalidSize(str(token), "a size is 'o', a size name or WxH[!] in ASCII")
    if "@" in token:
        return _parse_focused(token, named, max_side)
    spec = named.get(token, token)
    try:
        width, height, crop = parse_spec(spec, max_side)
    except ValueError as exc:
        if token.isalpha():
            names = ", ".join(sorted(named))
            raise InvalidSize(token, f"unknown size name; known names: {names}") from None
        raise InvalidSize(token, str(exc)) from None
    return Size(token, width, height, crop)


def _parse_focused(token: str, named: Mapping[str, str], max_side: int) -> Size:
    base, _, point = token.partition("@")
    size = parse_size(base, named, max_side)
    if not size.crop:
        raise InvalidSize(token, "only a crop (WxH! or a named crop) is placed around a focus")
    try:
        focus = parse_point(point)
    except ValueError as exc:
        raise InvalidSize(token, str(exc)) from None
    if not point_token(focus):
        raise InvalidSize(token, "@50-50 is the centre: leave the focus out")
    return dataclasses.replace(size, token=token, focus=focus)


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


def crop_box(
    src_w: float, src_h: float, box_w: int, box_h: int, focus: tuple[float, float] = (0.5, 0.5)
) -> tuple[float, float, float, float]:
    """The region of the source with the box's aspect ratio, centred on ``focus`` and kept inside the source.

    ``focus`` is a point as fractions of the source (the centre by default).
    Returned in source pixels (floats, so no rounding shifts the centre); it
    is scaled to exactly ``box_w x box_h`` afterwards.
    """
    if src_w * box_h >= src_h * box_w:  # source is wider: trim left and right
        region_w = src_h * box_w / box_h
        left = _place(focus[0], region_w, src_w)
        return (left, 0.0, left + region_w, float(src_h))
    region_h = src_w * box_h / box_w
    top = _place(focus[1], region_h, src_h)
    return (0.0, top, float(src_w), top + region_h)


def _place(at: float, length: float, total: float) -> float:
    """Where a span of ``length`` centred at the fraction ``at`` of ``total`` starts, moved inside ``[0, total]``."""
    if at == 0.5:
        return (total - length) / 2  # exactly as huImages' centred crops were placed
    return min(max(at * total - length / 2, 0.0), total - length)


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
