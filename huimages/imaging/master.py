"""Storing an original: one decode checks it completely, makes its master, finds its focus and placeholders.

A master is the image upright, in sRGB, at most the master side on its long
edge; every derivative it covers is rendered from it. An animation's master
is its first frame: what ``.jpeg`` and ``.png`` serve; the formats that
animate are rendered from the original (docs/formats.md says why).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
from collections.abc import Iterator

from PIL import Image

from huimages.config import Limits
from huimages.core.focus import Focus
from huimages.core.sizes import fit_dimensions
from huimages.errors import ImageTooLarge
from huimages.imaging.checks import (
    SWAPS_AXES,
    TRANSPOSE,
    ImageInfo,
    check_ratio,
    describe,
    open_counted,
    pillow_errors,
    verify_checksums,
    verify_frames,
)
from huimages.imaging.colour import to_srgb
from huimages.imaging.focus import FACE_SIDE, find_focus, shrink
from huimages.imaging.placeholder import placeholder
from huimages.imaging.render import REDUCING_GAP, RESAMPLE, to_rgb

logger = logging.getLogger(__name__)

# Masters are JPEGs of quality 92 with 4:2:0 chroma: on the sample photos as close to direct renders
# (SSIM) as quality 95 with 4:4:4, and a third cheaper to decode, which is most of a small render's cost.
# (Decoding a master at twice the target before LANCZOS was tried too: +0.0005 SSIM for twice the time.)
MASTER_QUALITY = 92


@dataclasses.dataclass(frozen=True)
class Ingested:
    """What storing an original learnt and made: its description, its master (None: masters are off),
    its focus and its placeholders (``{"color", "thumbhash"}``)."""

    info: ImageInfo
    master: bytes | None
    focus: Focus
    placeholder: dict[str, str]


def master_dimensions(width: int, height: int, side: int, content_type: str = "") -> tuple[int, int]:
    """The size of an original's master: at most ``side`` pixels on its long side, never enlarged.

    A JPEG's master is the original at the smallest DCT scale (1, 1/2, 1/4,
    1/8) that fits, which its decoder delivers without any resampling: so a
    3000-pixel JPEG has a 1500-pixel master, and making it costs less than
    rendering 1024x768 from the original. Other formats (and JPEGs too large
    for 1/8) are fitted into ``side`` x ``side``.
    """
    if content_type == "image/jpeg":
        for scale in (1, 2, 4, 8):
            if max(width, height) <= side * scale:
                return -(-width // scale), -(-height // scale)
    return fit_dimensions(width, height, side, side)


def ingest(data: bytes, limits: Limits, master_side: int, focus: str = "auto") -> Ingested:
    """Check an original completely and make its master, from one decode.

    The decode that proves the file is complete and uncorrupted (at the
    smallest JPEG scale that still covers the master) is the one the master
    is made from: the image upright, in RGB (RGBA when it has transparency),
    fitted into ``master_side`` pixels. The focus (found as ``focus``,
    ``HUIMAGES_FOCUS``, says) and the placeholders come from the same
    pixels. ``master_side`` 0: no master, the verify decode delivers just
    what the focus needs. Raises ``InvalidImage`` or
    ``ImageTooLarge`` saying what is wrong.
    """
    with _checked_upright(data, limits, master_side) as (info, upright):
        if master_side <= 0:
            return Ingested(info, None, find_focus(upright, focus), placeholder(upright))  # (already small)
        small = shrink(upright)  # the focus and the placeholders come from one small copy
        return Ingested(info, _encode_master(upright), find_focus(small, focus), placeholder(small))


def ingest_stored(data: bytes, limits: Limits, master_side: int, focus: str = "auto") -> Ingested:
    """``ingest`` of an original already stored (whatever upload and ratio limits held when it came)."""
    return ingest(data, _stored_limits(data, limits), master_side, focus)


def make_master(data: bytes, limits: Limits, master_side: int) -> bytes:
    """The master of a stored original (for images stored before masters, or a host that lost one).

    Only the master: a render that finds none, and ``huimages migrate``,
    need no focus or placeholders (the record has them, or
    ``huimages focus --all`` finds them).
    """
    with _checked_upright(data, _stored_limits(data, limits), master_side) as (_, upright):
        return _encode_master(upright)


def _stored_limits(data: bytes, limits: Limits) -> Limits:
    return dataclasses.replace(limits, max_upload_bytes=max(len(data), 1), max_pixels_per_byte=0)


@contextlib.contextmanager
def _checked_upright(data: bytes, limits: Limits, master_side: int) -> Iterator[tuple[ImageInfo, Image.Image]]:
    """The original checked completely and decoded once, upright: at its master's size, or (``master_side`` 0)
    at the size the focus search needs. The pixels are valid inside the ``with`` only."""
    if len(data) > limits.max_upload_bytes:
        raise ImageTooLarge(
            f"the file has {len(data)} bytes, more than the limit of {limits.max_upload_bytes}",
            limits.max_upload_bytes,
            len(data),
        )
    im, frames = open_counted(data, limits)
    with im:
        check_ratio(im, len(data), limits)
        info = describe(im, frames)
        if im.format == "PNG":
            verify_checksums(data)  # Pillow decodes a PNG without checking its chunks' CRCs
        if frames > 1:
            verify_frames(im, frames)  # an animation is served whole: every frame must decode
        if master_side <= 0:
            size = fit_dimensions(info.width, info.height, FACE_SIDE, FACE_SIDE)
        else:
            size = master_dimensions(info.width, info.height, master_side, info.content_type)
        yield info, _upright(im, info, size)


def _encode_master(upright: Image.Image) -> bytes:
    with pillow_errors():
        out = io.BytesIO()
        if upright.mode == "RGBA":
            upright.save(out, "PNG", compress_level=3)
        else:
            upright.save(out, "JPEG", quality=MASTER_QUALITY)
        return out.getvalue()


def _upright(im: Image.Image, info: ImageInfo, size: tuple[int, int]) -> Image.Image:
    """The image decoded whole (the check that it is complete), upright, in sRGB, at ``size`` (its displayed size).

    A JPEG is decoded at the smallest DCT scale that still covers ``size``.
    """
    swap = info.orientation in SWAPS_AXES
    raw = (size[1], size[0]) if swap else size
    with pillow_errors():
        if im.format in ("JPEG", "MPO"):
            im.draft(None, raw)
        icc = im.info.get("icc_profile")
        im.load()
        pixels, icc = to_rgb(im, icc, keep_alpha=True)
        if pixels.size != raw:
            pixels = pixels.resize(raw, RESAMPLE, reducing_gap=REDUCING_GAP)
        if info.orientation in TRANSPOSE:
            pixels = pixels.transpose(TRANSPOSE[info.orientation])
        return to_srgb(pixels, icc)  # a master is sRGB without a profile, like every derivative


def probe(data: bytes, limits: Limits) -> ImageInfo:
    """Check that ``data`` is a complete image within the limits.

    Raises ``InvalidImage`` or ``ImageTooLarge`` saying what is wrong. The
    header is checked before decoding; then the image is decoded once (at the
    smallest JPEG scale) so a truncated or corrupt file is refused at upload
    rather than at its first render.
    """
    return ingest(data, limits, 0).info
