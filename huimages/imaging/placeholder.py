"""Placeholders made at upload: the average colour, and a ThumbHash.

A ThumbHash (Evan Wallace's format, https://evanw.github.io/thumbhash/) is
about 25 bytes that decode into a blurred 32-pixel picture of the image, its
aspect ratio and transparency included. It is written here from the
published algorithm: a DCT of the image in an L, P, Q (and alpha) colour
space, the lowest frequencies quantised to four bits. ``tests/test_focus.py``
holds it to vectors made by the reference implementation (the npm package
``thumbhash``). Both come from a copy of the image at most ``HASH_SIDE`` pixels
a side, which the upload's decode already holds.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

from PIL import Image

HASH_SIDE = 32  # the reference allows 100; the hash keeps frequencies up to 7, so 32 pixels hold them all


def placeholder(upright: Image.Image) -> dict[str, str]:
    """The record's ``placeholder`` field: ``{"color": "#rrggbb", "thumbhash": base64}``, from the image at any size."""
    small = upright.copy()
    small.thumbnail((HASH_SIDE, HASH_SIDE), Image.Resampling.BOX, reducing_gap=2.0)
    small = small.convert("RGBA")
    return {"color": average_colour(small), "thumbhash": base64.b64encode(encode_thumbhash(small)).decode("ascii")}


def average_colour(im: Image.Image) -> str:
    """The mean colour (weighted by opacity) as ``#rrggbb``."""
    rgba = im.convert("RGBA")
    totals = [0.0, 0.0, 0.0]
    weight = 0.0
    data = rgba.tobytes()
    for r, g, b, a in zip(data[0::4], data[1::4], data[2::4], data[3::4], strict=True):
        weight += a
        totals[0] += r * a
        totals[1] += g * a
        totals[2] += b * a
    if not weight:
        return "#ffffff"
    return "#" + "".join(f"{min(255, round(t / weight)):02x}" for t in totals)


def _round(value: float) -> int:
    """Rounding half up, as the reference (JavaScript's ``Math.round``) does."""
    return math.floor(value + 0.5)


def _coefficient_grid(nx: int, ny: int, first: int = 0) -> list[tuple[int, int]]:
    """The (cx, cy) of a channel's coefficients, in the hash's order: a triangle of the lowest frequencies."""
    return [(cx, cy) for cy in range(ny) for cx in range(nx) if cx * ny < nx * (ny - cy) and (cx or cy or not first)]


def _dct(channel: Sequence[float], w: int, h: int, nx: int, ny: int) -> tuple[float, list[float], float]:
    """(DC, AC normalised into 0..1, scale) of one channel, for frequencies up to ``nx`` x ``ny``."""
    cos_x = [[math.cos(math.pi / w * cx * (x + 0.5)) for x in range(w)] for cx in range(nx)]
    cos_y = [[math.cos(math.pi / h * cy * (y + 0.5)) for y in range(h)] for cy in range(ny)]
    rows = [channel[y * w : (y + 1) * w] for y in range(h)]
    # the sum over x first, per row and horizontal frequency; then over y for each coefficient
    by_row = [[sum(v * c for v, c in zip(row, cos_x[cx], strict=True)) for row in rows] for cx in range(nx)]
    dc, ac = 0.0, []
    for cx, cy in _coefficient_grid(nx, ny):
        value = sum(r * c for r, c in zip(by_row[cx], cos_y[cy], strict=True)) / (w * h)
        if cx or cy:
            ac.append(value)
        else:
            dc = value
    scale = max((abs(v) for v in ac), default=0.0)
    if scale:
        ac = [0.5 + 0.5 / scale * v for v in ac]
    return dc, ac, scale


def encode_thumbhash(im: Image.Image) -> bytes:
    """The ThumbHash of an image of at most 100x100 pixels."""
    rgba = im.convert("RGBA")
    w, h = rgba.size
    if w > 100 or h > 100:
        raise ValueError(f"a ThumbHash is made from at most 100x100 pixels, not {w}x{h}")
    data = rgba.tobytes()
    pixels = list(zip(data[0::4], data[1::4], data[2::4], data[3::4], strict=True))
    alpha_sum = sum(a for _, _, _, a in pixels) / 255
    avg = [0.0, 0.0, 0.0]
    if alpha_sum:
        for channel in range(3):
            avg[channel] = sum(p[channel] * p[3] for p in pixels) / 255 / 255 / alpha_sum
    has_alpha = alpha_sum < w * h
    l_limit = 5 if has_alpha else 7
    lx = max(1, _round(l_limit * w / max(w, h)))
    ly = max(1, _round(l_limit * h / max(w, h)))
    lum, yb, rg, alpha = [], [], [], []
    for r8, g8, b8, a8 in pixels:
        a = a8 / 255
        r = avg[0] * (1 - a) + a / 255 * r8  # on the average colour where transparent
        g = avg[1] * (1 - a) + a / 255 * g8
        b = avg[2] * (1 - a) + a / 255 * b8
        lum.append((r + g + b) / 3)
        yb.append((r + g) / 2 - b)
        rg.append(r - g)
        alpha.append(a)
    l_dc, l_ac, l_scale = _dct(lum, w, h, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = _dct(yb, w, h, 3, 3)
    q_dc, q_ac, q_scale = _dct(rg, w, h, 3, 3)
    landscape = w > h
    header24 = (
        _round(63 * l_dc)
        | _round(31.5 + 31.5 * p_dc) << 6
        | _round(31.5 + 31.5 * q_dc) << 12
        | _round(31 * l_scale) << 18
        | int(has_alpha) << 23
    )
    header16 = (ly if landscape else lx) | _round(63 * p_scale) << 3 | _round(63 * q_scale) << 9 | int(landscape) << 15
    out = [header24 & 255, header24 >> 8 & 255, header24 >> 16, header16 & 255, header16 >> 8]
    channels = [l_ac, p_ac, q_ac]
    if has_alpha:
        a_dc, a_ac, a_scale = _dct(alpha, w, h, 5, 5)
        out.append(_round(15 * a_dc) | _round(15 * a_scale) << 4)
        channels.append(a_ac)
    nibbles = [_round(15 * f) for ac in channels for f in ac]
    for index in range(0, len(nibbles), 2):
        pair = nibbles[index : index + 2]
        out.append(pair[0] | (pair[1] << 4 if len(pair) > 1 else 0))
    return bytes(out)


def decode_thumbhash(data: bytes) -> Image.Image:
    """The picture a ThumbHash stands for: RGBA, 32 pixels on its long side."""
    header24 = data[0] | data[1] << 8 | data[2] << 16
    header16 = data[3] | data[4] << 8
    l_dc = (header24 & 63) / 63
    p_dc = (header24 >> 6 & 63) / 31.5 - 1
    q_dc = (header24 >> 12 & 63) / 31.5 - 1
    l_scale = (header24 >> 18 & 31) / 31
    has_alpha = bool(header24 >> 23)
    p_scale = (header16 >> 3 & 63) / 63
    q_scale = (header16 >> 9 & 63) / 63
    landscape = bool(header16 >> 15)
    lx = max(3, (5 if has_alpha else 7) if landscape else header16 & 7)
    ly = max(3, header16 & 7 if landscape else (5 if has_alpha else 7))
    a_dc, a_scale = ((data[5] & 15) / 15, (data[5] >> 4) / 15) if has_alpha else (1.0, 0.0)
    start = 6 if has_alpha else 5
    nibbles = [byte >> shift & 15 for byte in data[start:] for shift in (0, 4)]
    position = 0

    def channel(nx: int, ny: int, scale: float) -> list[tuple[int, int, float]]:
        nonlocal position
        terms = []
        for cx, cy in _coefficient_grid(nx, ny, first=1):
            nibble = nibbles[position] if position < len(nibbles) else 0
            terms.append((cx, cy, (nibble / 7.5 - 1) * scale))
            position += 1
        return terms

    l_ac = channel(lx, ly, l_scale)
    p_ac = channel(3, 3, p_scale * 1.25)  # saturation boosted, as the reference does against quantisation
    q_ac = channel(3, 3, q_scale * 1.25)
    a_ac = channel(5, 5, a_scale) if has_alpha else []
    ratio = _aspect(data)
    w = _round(32 if ratio > 1 else 32 * ratio)
    h = _round(32 / ratio if ratio > 1 else 32)
    n = max(lx, ly, 5 if has_alpha else 3)
    values: list[int] = []
    for y in range(h):
        fy = [math.cos(math.pi / h * (y + 0.5) * cy) * 2 for cy in range(n)]
        for x in range(w):
            fx = [math.cos(math.pi / w * (x + 0.5) * cx) for cx in range(n)]
            lum = l_dc + sum(v * fx[cx] * fy[cy] for cx, cy, v in l_ac)
            p = p_dc + sum(v * fx[cx] * fy[cy] for cx, cy, v in p_ac)
            q = q_dc + sum(v * fx[cx] * fy[cy] for cx, cy, v in q_ac)
            a = a_dc + sum(v * fx[cx] * fy[cy] for cx, cy, v in a_ac)
            b = lum - 2 / 3 * p
            r = (3 * lum - b + q) / 2
            g = r - q
            values.extend(int(max(0.0, 255 * min(1.0, c))) for c in (r, g, b, a))
    return Image.frombytes("RGBA", (w, h), bytes(values))


def _aspect(data: bytes) -> float:
    has_alpha = data[2] & 0x80
    landscape = data[4] & 0x80
    lx = (5 if has_alpha else 7) if landscape else data[3] & 7
    ly = data[3] & 7 if landscape else (5 if has_alpha else 7)
    return lx / ly


def preview_data_uri(thumbhash: str) -> str:
    """A ``data:`` URI of the picture a ThumbHash stands for (a 32-pixel PNG, a few hundred bytes)."""
    picture = decode_thumbhash(base64.b64decode(thumbhash))
    out = io.BytesIO()
    picture.save(out, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")
