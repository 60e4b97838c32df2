"""Colour profiles: every derivative and master is sRGB, and carries no profile.

An original's embedded ICC profile is applied once, when its pixels are
converted to sRGB, and then dropped. So nothing an uploader embeds can make a
derivative larger than its pixels (a 1 MB profile would otherwise ride along
in every thumbnail), and every browser shows the same colours, with or
without colour management. sRGB profiles need no conversion; profiles larger
than ``MAX_PROFILE_BYTES`` (real RGB profiles are a few KB, large LUT profiles
a few hundred) and unreadable ones are ignored: the pixels are taken as sRGB.
"""

from __future__ import annotations

import functools
import io
import logging

from PIL import Image, ImageCms

logger = logging.getLogger(__name__)

MAX_PROFILE_BYTES = 256 * 1024
_SRGB = ImageCms.createProfile("sRGB")


def to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """``im`` (RGB, RGBA or CMYK) converted from the colour space of ``icc`` into sRGB (RGB or RGBA)."""
    out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
    transform = _transform(icc, im.mode, out_mode) if icc else None
    if transform is None:
        return im if im.mode == out_mode else im.convert(out_mode)
    try:
        return ImageCms.applyTransform(im, transform) or im
    except (ImageCms.PyCMSError, OSError, ValueError):
        logger.debug("colour profile not applicable; pixels taken as sRGB", exc_info=True)
        return im if im.mode == out_mode else im.convert(out_mode)


@functools.lru_cache(maxsize=32)
def _transform(icc: bytes, in_mode: str, out_mode: str) -> ImageCms.ImageCmsTransform | None:
    """The transform from ``icc`` into sRGB; None for sRGB itself, or a profile that is too large or unreadable."""
    if len(icc) > MAX_PROFILE_BYTES:
        logger.info("ignoring an embedded colour profile of %d bytes (limit %d)", len(icc), MAX_PROFILE_BYTES)
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(profile).lower().replace(" ", ""):
            return None
        return ImageCms.buildTransform(profile, _SRGB, in_mode, out_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        logger.debug("unreadable colour profile; pixels taken as sRGB", exc_info=True)
        return None
