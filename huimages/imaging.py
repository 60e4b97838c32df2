"""The Pillow pipeline: probe an upload, render a derivative.

``render`` reads as the pipeline itself: open with a draft (DCT-scaled JPEG
decoding), normalise the colour mode, fit or crop, orient, encode. Geometry is
computed by the pure functions in ``huimages.sizes``, in the image's displayed
(EXIF-oriented) frame, so ``scaled_dimensions`` always equals what is served.

Limits live here too: only a fixed set of decoders is ever tried, and the
pixel count is checked from the header before any pixel is decoded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import struct
import time
import warnings
from collections.abc import Iterator

from PIL import Image, ImageCms, UnidentifiedImageError

from huimages.config import Limits
from huimages.errors import HuImagesError, ImageTooLarge, InvalidImage, RenderTimeout
from huimages.sizes import Size, crop_box, decode_target, output_dimensions

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
_ACCEPTED = ("JPEG", "PNG", "GIF", "WEBP", "TIFF")  # the JPEG opener also yields MPO
_ACCEPTED_NAMES = "JPEG, PNG, GIF, WebP, TIFF"

_EXIF_ORIENTATION = 0x0112
_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = frozenset({5, 6, 7, 8})
_WHITE = (255, 255, 255)
_RESAMPLE = Image.Resampling.LANCZOS
# Pillow first shrinks by an integer factor with a box filter when the ratio is
# at least this large; at 3.0 the result is indistinguishable from a pure
# LANCZOS resize (Pillow's documentation) and large non-JPEG sources get cheap.
_REDUCING_GAP = 3.0


@dataclasses.dataclass(frozen=True)
class Rendered:
    """A rendered derivative and what it cost: the decoded size tells whether draft decoding worked.

    ``source_size`` is the original's size as displayed (EXIF orientation applied).
    """

    data: bytes
    decoded_size: tuple[int, int]
    decode_seconds: float
    source_size: tuple[int, int]


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """What ``probe`` learnt from an original, in its displayed orientation."""

    format: str
    content_type: str
    width: int
    height: int
    mode: str
    orientation: int
    frames: int


def probe(data: bytes, limits: Limits) -> ImageInfo:
    """Check that ``data`` is a complete image within the limits.

    Raises ``InvalidImage`` or ``ImageTooLarge`` saying what is wrong. The
    header is checked before decoding; then the image is decoded once (at the
    smallest JPEG scale) so a truncated or corrupt file is refused at upload
    rather than at its first render.
    """
    if len(data) > limits.max_upload_bytes:
        raise ImageTooLarge(
            f"the file has {len(data)} bytes, more than the limit of {limits.max_upload_bytes}",
            limits.max_upload_bytes,
            len(data),
        )
    with _open(data, limits) as im:
        orientation = _orientation(im)
        info = ImageInfo(
            format=im.format or "",
            content_type=CONTENT_TYPES[im.format or ""],
            width=im.height if orientation in _SWAPS_AXES else im.width,
            height=im.width if orientation in _SWAPS_AXES else im.height,
            mode=im.mode,
            orientation=orientation,
            frames=getattr(im, "n_frames", 1),
        )
        _verify_decodes(im)
    return info


def probe_header(data: bytes) -> tuple[str, int, int]:
    """Content type and displayed size from the first bytes of an original; no pixel is decoded.

    For records written by huImages, which held the stored (unrotated) size.
    Raises ``InvalidImage`` when the bytes do not start an accepted image.
    """
    with _pillow_errors():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                im = Image.open(io.BytesIO(data), formats=_ACCEPTED)
        except UnidentifiedImageError:
            raise InvalidImage(f"not an image in an accepted format ({_ACCEPTED_NAMES})") from None
        with im:
            orientation = _orientation(im)
            width, height = (im.height, im.width) if orientation in _SWAPS_AXES else (im.width, im.height)
            return CONTENT_TYPES[im.format or ""], width, height


def render(data: bytes, size: Size, quality: int, limits: Limits, deadline: Deadline | None = None) -> Rendered:
    """Render ``size`` of the original ``data`` as JPEG.

    ``o`` returns the original bytes unchanged when they already are an
    upright RGB JPEG (as huImages served them); anything else is rendered at
    full size, so every ``.jpeg`` URL serves a JPEG. ``deadline`` is checked
    between the steps (a single Pillow call is not interrupted).
    """
    deadline = deadline or Deadline.none()
    with _open(data, limits) as im:
        orientation = _orientation(im)
        if size.is_original and im.format in ("JPEG", "MPO") and im.mode == "RGB" and orientation == 1:
            started, stored_size = time.perf_counter(), im.size
            _verify_decodes(im)  # served as stored, but only once it decodes completely (at 1/8 scale)
            return Rendered(data, im.size, time.perf_counter() - started, stored_size)
        swap = orientation in _SWAPS_AXES
        src_w, src_h = (im.height, im.width) if swap else (im.width, im.height)
        out_w, out_h = output_dimensions(size, src_w, src_h)
        need_w, need_h = decode_target(size, src_w, src_h)
        started = time.perf_counter()
        with _pillow_errors():
            if im.format in ("JPEG", "MPO"):
                im.draft(None, (need_h, need_w) if swap else (need_w, need_h))
            icc = im.info.get("icc_profile")
            im.load()
            decoded_size = im.size
            rgb, icc = _to_rgb(im, icc)
        decode_seconds = time.perf_counter() - started
        deadline.check("decoding")
        # Work in the stored (unrotated) frame; rotate the small result last.
        raw_out = (out_h, out_w) if swap else (out_w, out_h)
        box = None
        if size.crop:
            box = crop_box(rgb.width, rgb.height, *raw_out)
        if rgb.size != raw_out or box is not None:
            rgb = rgb.resize(raw_out, _RESAMPLE, box=box, reducing_gap=_REDUCING_GAP)
        if orientation in _TRANSPOSE:
            rgb = rgb.transpose(_TRANSPOSE[orientation])
        deadline.check("scaling")
        return Rendered(_encode(rgb, quality, icc), decoded_size, decode_seconds, (src_w, src_h))


def _open(data: bytes, limits: Limits) -> Image.Image:
    """Open with the accepted decoders only and check the declared pixel count."""
    if not data:
        raise InvalidImage("the file is empty")
    with _pillow_errors():
        try:
            with warnings.catch_warnings():
                # Pillow warns about bombs and corrupt metadata; we check and report those ourselves.
                warnings.simplefilter("ignore")
                im = Image.open(io.BytesIO(data), formats=_ACCEPTED)
        except UnidentifiedImageError:  # an OSError: caught here, before the guard's generic message
            raise InvalidImage(f"not an image in an accepted format ({_ACCEPTED_NAMES})") from None
    try:
        _check_pixels(im, limits)
    except HuImagesError:
        im.close()
        raise
    return im


def _verify_decodes(im: Image.Image) -> None:
    """Decode once, at the smallest JPEG scale, so truncated or corrupt data is refused."""
    with _pillow_errors():
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
    with _pillow_errors():
        frames = int(getattr(im, "n_frames", 1))  # GIF: reads every frame header, decodes nothing
        im.seek(0)
    if pixels * frames > limits.max_pixels:
        raise ImageTooLarge(
            f"the image has {frames} frames of {im.width}x{im.height} = {pixels * frames} pixels, "
            f"more than the limit of {limits.max_pixels}",
            limits.max_pixels,
            pixels * frames,
        )


#: What Pillow's parsers and decoders raise on malformed input (found by tests and by scripts/fuzz.py).
_PILLOW_FAILURES = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error)


@contextlib.contextmanager
def _pillow_errors() -> Iterator[None]:
    """Turn Pillow's many failure types on malformed data into ``InvalidImage``."""
    try:
        yield
    except HuImagesError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"the image declares too many pixels: {exc}", 0, 0) from None
    except _PILLOW_FAILURES as exc:
        raise InvalidImage(f"the image data is truncated or corrupt: {exc or type(exc).__name__}") from None


@dataclasses.dataclass
class Deadline:
    """A wall-time budget for one render, checked between the pipeline's steps."""

    key: str
    limit: float
    started: float = dataclasses.field(default_factory=time.monotonic)

    @classmethod
    def none(cls) -> Deadline:
        return cls("", float("inf"))

    def check(self, step: str) -> None:
        elapsed = time.monotonic() - self.started
        if elapsed > self.limit:
            logger.warning("render of %s over its time limit after %s", self.key, step)
            raise RenderTimeout(self.key, elapsed, self.limit)


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1-8); anything missing or malformed counts as 1."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on every corrupt EXIF block it meets
            value = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a malformed EXIF block must not make the image unusable
        logger.debug("ignoring unreadable EXIF block", exc_info=True)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_rgb(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """Any mode to RGB; returns the image and the ICC profile still valid for it."""
    mode = im.mode
    if mode == "RGB":
        return im, icc
    if mode == "CMYK":
        return _cmyk_to_rgb(im, icc), None
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, _WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat, icc if mode.startswith("RGB") else None
    if mode.startswith("I;16"):
        # 16-bit grey: map the full range onto 8 bits.
        return im.convert("I").point(lambda v: v / 256).convert("L").convert("RGB"), None
    return im.convert("RGB"), None  # L, 1, I, F, P without transparency, YCbCr, LAB, HSV


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """CMYK through its embedded profile into sRGB when there is one."""
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            result = ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
            if result is not None:
                return result
        except (ImageCms.PyCMSError, OSError, ValueError):
            logger.debug("CMYK profile unusable, converting naively", exc_info=True)
    return im.convert("RGB")


def _encode(im: Image.Image, quality: int, icc: bytes | None) -> bytes:
    """Progressive JPEG; metadata stripped but for the colour profile."""
    out = io.BytesIO()
    options: dict[str, object] = {"quality": quality, "progressive": True}
    if icc and _is_rgb_profile(icc):
        options["icc_profile"] = icc
    im.save(out, "JPEG", **options)
    return out.getvalue()


def _is_rgb_profile(icc: bytes) -> bool:
    # The ICC header names the profile's colour space at bytes 16-19.
    return len(icc) >= 20 and icc[16:20] == b"RGB "
