"""Opening an image within the limits.

Only a fixed set of decoders is ever tried; pixels and frames are counted
from the header before any pixel is decoded, with a guard against files that
declare far more pixels than their bytes can hold; Pillow's own failures
become ``InvalidImage``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import struct
import warnings
from collections.abc import Iterator

from PIL import Image, UnidentifiedImageError

from huimages.config import Limits
from huimages.errors import HuImagesError, ImageTooLarge, InvalidImage

logger = logging.getLogger(__name__)

#: Pillow format name -> content type. Nothing else is ever decoded: formats
#: such as EPS would hand the bytes to external programs.
CONTENT_TYPES: dict[str, str] = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # multi-picture JPEG written by many cameras
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
}


ACCEPTED = ("JPEG", "PNG", "GIF", "WEBP", "TIFF")  # the JPEG opener also yields MPO


ACCEPTED_NAMES = "JPEG, PNG, GIF, WebP, TIFF"


_EXIF_ORIENTATION = 0x0112


TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


SWAPS_AXES = frozenset({5, 6, 7, 8})


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """What ``probe`` learnt from an original, in its displayed orientation."""

    format: str
    content_type: str
    width: int
    height: int
    mode: str
    orientation: int


def describe(im: Image.Image) -> ImageInfo:
    orientation = orientation_of(im)
    return ImageInfo(
        format=im.format or "",
        content_type=CONTENT_TYPES[im.format or ""],
        width=im.height if orientation in SWAPS_AXES else im.width,
        height=im.width if orientation in SWAPS_AXES else im.height,
        mode=im.mode,
        orientation=orientation,
    )


def probe_header(data: bytes) -> tuple[str, int, int]:
    """Content type and displayed size from the first bytes of an original; no pixel is decoded.

    For records written by huImages, which held the stored (unrotated) size.
    Raises ``InvalidImage`` when the bytes do not start an accepted image.
    """
    with pillow_errors():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                im = Image.open(io.BytesIO(data), formats=ACCEPTED)
        except UnidentifiedImageError:
            raise InvalidImage(f"not an image in an accepted format ({ACCEPTED_NAMES})") from None
        with im:
            orientation = orientation_of(im)
            width, height = (im.height, im.width) if orientation in SWAPS_AXES else (im.width, im.height)
            return CONTENT_TYPES[im.format or ""], width, height


def open_checked(data: bytes, limits: Limits) -> Image.Image:
    """Open with the accepted decoders only and check the declared pixel count."""
    if not data:
        raise InvalidImage("the file is empty")
    with pillow_errors():
        try:
            with warnings.catch_warnings():
                # Pillow warns about bombs and corrupt metadata; we check and report those ourselves.
                warnings.simplefilter("ignore")
                im = Image.open(io.BytesIO(data), formats=ACCEPTED)
        except UnidentifiedImageError:  # an OSError: caught here, before the guard's generic message
            raise InvalidImage(f"not an image in an accepted format ({ACCEPTED_NAMES})") from None
    try:
        _check_pixels(im, limits)
    except HuImagesError:
        im.close()
        raise
    return im


def verify_decodes(im: Image.Image) -> None:
    """Decode once, at the smallest JPEG scale, so truncated or corrupt data is refused."""
    with pillow_errors():
        if im.format in ("JPEG", "MPO"):
            im.draft(None, (1, 1))
        im.load()


def _check_pixels(im: Image.Image, limits: Limits) -> None:
    """The declared pixels, over all frames (an animation's), against the limit; no pixel decoded."""
    if im.width <= 0 or im.height <= 0:
        raise InvalidImage(f"the image declares an empty size {im.width}x{im.height}")
    pixels = im.width * im.height
    if pixels > limits.max_pixels:
        raise ImageTooLarge(
            f"the image is {im.width}x{im.height} = {pixels} pixels, more than the limit of {limits.max_pixels}",
            limits.max_pixels,
            pixels,
        )
    _count_frames(im, limits)


def _count_frames(im: Image.Image, limits: Limits) -> int:
    """Frames (or TIFF pages), counted one by one and refused as soon as they pass a limit.

    Never all of them first: Pillow's ``n_frames`` reads every header before
    it answers, which for TIFF pages grows with their square (80,000 pages:
    about a minute). Counting stops at ``HUIMAGES_MAX_FRAMES``, or when the
    frames so far pass the pixel limit, so its cost is bounded whatever the
    file declares. Only the first frame is ever rendered.
    """
    pixels, frames = im.width * im.height, 1
    with pillow_errors():
        if not getattr(im, "is_animated", False):
            return frames
        try:
            while True:
                im.seek(frames)  # EOFError past the last frame
                frames += 1
                if frames > limits.max_frames:
                    raise ImageTooLarge(
                        f"the image has more than {limits.max_frames} frames or pages (the limit)",
                        limits.max_frames,
                        frames,
                    )
                if pixels * frames > limits.max_pixels:
                    raise ImageTooLarge(
                        f"the image has {frames} frames of {im.width}x{im.height} or more, over"
                        f" {limits.max_pixels} pixels in all (the limit)",
                        limits.max_pixels,
                        pixels * frames,
                    )
        except EOFError:
            pass
        finally:
            im.seek(0)
    return frames


#: Originals up to this many pixels are never refused for their compression ratio: they cost little to decode.
RATIO_FLOOR = 4_000_000


def check_ratio(im: Image.Image, length: int, limits: Limits) -> None:
    """Refuse a file that declares far more pixels than its bytes can hold in a real picture (at upload only)."""
    pixels = im.width * im.height
    limit = limits.max_pixels_per_byte
    if limit and pixels > RATIO_FLOOR and pixels > limit * length:
        raise ImageTooLarge(
            f"the file declares {im.width}x{im.height} = {pixels} pixels in only {length} bytes"
            f" ({pixels // length} pixels per byte; photos have under 100, the limit is {limit}): refused as a"
            " decompression bomb; raise HUIMAGES_MAX_PIXELS_PER_BYTE if such images are expected",
            limit,
            pixels // length,
        )


#: What Pillow's parsers and decoders raise on malformed input (found by tests and by scripts/fuzz.py).
_PILLOW_FAILURES = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error)


@contextlib.contextmanager
def pillow_errors() -> Iterator[None]:
    """Turn Pillow's many failure types on malformed data into ``InvalidImage``."""
    try:
        yield
    except HuImagesError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"the image declares too many pixels: {exc}", 0, 0) from None
    except _PILLOW_FAILURES as exc:
        raise InvalidImage(f"the image data is truncated or corrupt: {exc or type(exc).__name__}") from None


def orientation_of(im: Image.Image) -> int:
    """The EXIF orientation (1-8); anything missing or malformed counts as 1."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on every corrupt EXIF block it meets
            value = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a malformed EXIF block must not make the image unusable
        logger.debug("ignoring unreadable EXIF block", exc_info=True)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1
