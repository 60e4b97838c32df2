"""Which sizes a ``srcset`` offers: pure geometry, like ``huimages.core.sizes``.

A density candidate (``2x``) is the size's box scaled by the density
(``240x160`` becomes ``480x320``, ``75x75!`` becomes ``150x150!``); a width
candidate (``640w``) is the box scaled to that width, keeping its shape. A
candidate is left out when the original is too small to fill it (it would be
an upscaled or repeated copy of a smaller one) or when it exceeds the largest
side a URL may ask for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from huimages.core.sizes import Size, output_dimensions


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One entry of a ``srcset``: the size to ask for, and its descriptor (``2x``, ``640w``)."""

    size: Size
    descriptor: str


def density_candidates(
    size: Size, densities: Iterable[float], src_w: int, src_h: int, max_side: int
) -> list[Candidate]:
    """``1x``, ``2x``, ... of ``size`` for a ``src_w x src_h`` original; the first density is always kept."""
    out_w, out_h = output_dimensions(size, src_w, src_h)
    chosen: list[Candidate] = []
    for density in densities:
        if density <= 0:
            raise ValueError(f"a density must be positive, not {density}")
        descriptor = f"{density:g}x"
        if not chosen and density == 1:
            chosen.append(Candidate(size, descriptor))
            continue
        if size.is_original:
            continue  # the original has one size only
        width, height = round(size.width * density), round(size.height * density)
        fits = density * out_w <= src_w and density * out_h <= src_h  # no upscaling needed
        if (fits or not chosen) and min(width, height) > 0 and max(width, height) <= max_side:
            chosen.append(Candidate(_scaled(size, width, height), descriptor))
    return chosen


def width_candidates(size: Size, widths: Iterable[int], src_w: int, src_h: int, max_side: int) -> list[Candidate]:
    """``<w>w`` candidates: the box of ``size`` (the original's shape for ``o``) scaled to each width.

    The descriptor is the width actually served, which for a fit can be less
    than asked; widths the original cannot fill give way to one candidate at
    the largest width it can.
    """
    box_w, box_h = (src_w, src_h) if size.is_original else (size.width, size.height)
    by_width: dict[int, Candidate] = {}
    for width in sorted(set(widths)):
        if width <= 0:
            raise ValueError(f"a width must be positive, not {width}")
        height = max(1, round(width * box_h / box_w))
        if max(width, height) > max_side:
            continue
        candidate = _scaled(size, width, height)
        served_w, served_h = output_dimensions(candidate, src_w, src_h)
        if size.crop and (served_w > src_w or served_h > src_h):
            continue  # a crop this large would be upscaled
        by_width.setdefault(served_w, Candidate(candidate, f"{served_w}w"))
    return list(by_width.values())


def _scaled(size: Size, width: int, height: int) -> Size:
    token = f"{width}x{height}{'!' if size.crop else ''}"
    return Size(token, width, height, size.crop)
