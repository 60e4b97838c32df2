"""The Pillow pipeline: probe an upload, render a derivative.

``render`` reads as the pipeline itself: open with a draft (DCT-scaled JPEG
decoding), normalise the colour mode, fit or crop, orient, encode. Geometry is
computed by the pure functions in ``huimages.core.sizes``, in the image's displayed
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

from PIL import Image, UnidentifiedImageError

from huimages.config import Limits
from huimages.core.formats import JPEG, Encoding
from huimages.core.sizes import Size, crop_box, decode_target, fit_dimensions, output_dimensions
from huimages.errors import EncodeFailed, HuImagesError, ImageTooLarge, InvalidImage, InvalidSize, RenderTimeout
from huimages.imaging.colour import to_srgb

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
# A large output made by a mild downscale (to more than half the decoded size,
# e.g. 1024x768 from a 1280-pixel master) is where LANCZOS's wide kernel costs
# most (a million output pixels, eight taps a side) and shows least: HAMMING is
# within 0.9965 to 0.9994 SSIM of it on the sample photos, in half the time
# (docs/benchmarks.md). Thumbnails, where every pixel shows, keep LANCZOS.
_MILD_FILTER = Image.Resampling.HAMMING
_MILD_BELOW = 2.0
_MILD_MIN_PIXELS = 500_000


def resample_filter(box_size: tuple[float, float], out_size: tuple[int, int]) -> Image.Resampling:
    """The filter for resizing ``box_size`` (the decoded content) to ``out_size``."""
    factor = min(box_size[0] / out_size[0], box_size[1] / out_size[1])
    large = out_size[0] * out_size[1] >= _MILD_MIN_PIXELS
    return _MILD_FILTER if large and 1.0 < factor < _MILD_BELOW else _RESAMPLE


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


# Masters are JPEGs of quality 92 with 4:2:0 chroma: on the sample photos as close to direct renders
# (SSIM) as quality 95 with 4:4:4, and a third cheaper to decode, which is most of a small render's cost.
# (Decoding a master at twice the target before LANCZOS was tried too: +0.0005 SSIM for twice the time.)
MASTER_QUALITY = 92


@dataclasses.dataclass(frozen=True)
class Ingested:
    """What storing an original learnt and made: its description, and its master (None: masters are off)."""

    info: ImageInfo
    master: bytes | None


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


def ingest(data: bytes, limits: Limits, master_side: int) -> Ingested:
    """Check an original completely and make its master, from one decode.

    The decode that proves the file is complete and uncorrupted (at the
    smallest JPEG scale that still covers the master) is the one the master
    is made from: the image upright, in RGB (RGBA when it has transparency),
    fitted into ``master_side`` pixels. ``master_side`` 0: no master, the
    verify decode runs at the smallest scale. Raises ``InvalidImage`` or
    ``ImageTooLarge`` saying what is wrong.
    """
    if len(data) > limits.max_upload_bytes:
        raise ImageTooLarge(
            f"the file has {len(data)} bytes, more than the limit of {limits.max_upload_bytes}",
            limits.max_upload_bytes,
            len(data),
        )
    with _open(data, limits) as im:
        _check_ratio(im, len(data), limits)
        info = _describe(im)
        if master_side <= 0:
            _verify_decodes(im)
            return Ingested(info, None)
        return Ingested(info, _make_master(im, info, master_side))


def ingest_stored(data: bytes, limits: Limits, master_side: int) -> Ingested:
    """``ingest`` of an original already stored (whatever upload and ratio limits held when it came)."""
    stored = dataclasses.replace(limits, max_upload_bytes=max(len(data), 1), max_pixels_per_byte=0)
    return ingest(data, stored, master_side)


def make_master(data: bytes, limits: Limits, master_side: int) -> bytes:
    """The master of a stored original (for images stored before masters, or a host that lost one)."""
    master = ingest_stored(data, limits, master_side).master
    assert master is not None
    return master


def _describe(im: Image.Image) -> ImageInfo:
    orientation = _orientation(im)
    return ImageInfo(
        format=im.format or "",
        content_type=CONTENT_TYPES[im.format or ""],
        width=im.height if orientation in _SWAPS_AXES else im.width,
        height=im.width if orientation in _SWAPS_AXES else im.height,
        mode=im.mode,
        orientation=orientation,
    )


def _make_master(im: Image.Image, info: ImageInfo, side: int) -> bytes:
    swap = info.orientation in _SWAPS_AXES
    master_w, master_h = master_dimensions(info.width, info.height, side, info.content_type)
    raw = (master_h, master_w) if swap else (master_w, master_h)
    with _pillow_errors():
        if im.format in ("JPEG", "MPO"):
            im.draft(None, raw)  # the smallest DCT scale that still covers the master
        icc = im.info.get("icc_profile")
        im.load()
        pixels, icc = _to_rgb(im, icc, keep_alpha=True)
        if pixels.size != raw:
            pixels = pixels.resize(raw, _RESAMPLE, reducing_gap=_REDUCING_GAP)
        if info.orientation in _TRANSPOSE:
            pixels = pixels.transpose(_TRANSPOSE[info.orientation])
        pixels = to_srgb(pixels, icc)  # a master is sRGB without a profile, like every derivative
        out = io.BytesIO()
        if pixels.mode == "RGBA":
            pixels.save(out, "PNG", compress_level=3)
        else:
            pixels.save(out, "JPEG", quality=MASTER_QUALITY)
        return out.getvalue()


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info)


def probe(data: bytes, limits: Limits) -> ImageInfo:
    """Check that ``data`` is a complete image within the limits.

    Raises ``InvalidImage`` or ``ImageTooLarge`` saying what is wrong. The
    header is checked before decoding; then the image is decoded once (at the
    smallest JPEG scale) so a truncated or corrupt file is refused at upload
    rather than at its first render.
    """
    return ingest(data, limits, 0).info


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


def render(
    data: bytes,
    size: Size,
    output: Encoding | int,
    limits: Limits,
    deadline: Deadline | None = None,
    source_size: tuple[int, int] | None = None,
) -> Rendered:
    """Render ``size`` of the original (or of its master) ``data`` in the ``output`` encoding.

    ``output`` is an ``Encoding`` (format, quality, speed), or a JPEG quality.
    WebP and AVIF keep an original's transparency; JPEG flattens it on white.
    ``o`` as JPEG returns the original bytes unchanged when they already are
    an upright RGB JPEG (as huImages served them); anything else is rendered
    at full size, so every ``.jpeg`` URL serves a JPEG. From a master, pass the
    original's displayed size as ``source_size``: the output has exactly the
    size the original would give (what ``scaled_dimensions`` says).
    ``deadline`` is checked between the steps (a single Pillow call is not
    interrupted).
    """
    deadline = deadline or Deadline.none()
    encoding = Encoding.of(output)
    with _open(data, limits) as im:
        orientation = _orientation(im)
        as_stored = encoding.format is JPEG and im.format in ("JPEG", "MPO") and im.mode == "RGB"
        if size.is_original and as_stored and orientation == 1:
            started, stored_size = time.perf_counter(), im.size
            _verify_decodes(im)  # served as stored, but only once it decodes completely (at 1/8 scale)
            return Rendered(data, im.size, time.perf_counter() - started, stored_size)
        swap = orientation in _SWAPS_AXES
        stored_w, stored_h = im.size
        src_w, src_h = (stored_h, stored_w) if swap else (stored_w, stored_h)
        out_w, out_h = output_dimensions(size, *(source_size or (src_w, src_h)))
        if max(out_w, out_h) > encoding.format.max_side:
            raise InvalidSize(
                size.token,
                f"{encoding.format.name} holds at most {encoding.format.max_side} pixels a side and this would be"
                f" {out_w}x{out_h}; ask for a smaller size or another format",
            )
        need_w, need_h = decode_target(size, src_w, src_h)
        started = time.perf_counter()
        with _pillow_errors():
            if im.format in ("JPEG", "MPO"):
                im.draft(None, (need_h, need_w) if swap else (need_w, need_h))
            icc = im.info.get("icc_profile")
            im.load()
            decoded_size = im.size
            rgb, icc = _to_rgb(im, icc, keep_alpha=encoding.format.alpha)
        decode_seconds = time.perf_counter() - started
        deadline.check("decoding")
        # Work in the stored (unrotated) frame; rotate the small result last.
        raw_out = (out_h, out_w) if swap else (out_w, out_h)
        # A DCT-scaled decode rounds its size up (1365 rows at 1/4 are 342, of which the last is a quarter):
        # resample from the exact content, or every derivative is shifted and stretched by part of a pixel.
        scale = max(1, round(stored_w / rgb.width))
        content_w, content_h = stored_w / scale, stored_h / scale
        box = crop_box(content_w, content_h, *raw_out) if size.crop else (0.0, 0.0, content_w, content_h)
        if rgb.size != raw_out or box != (0.0, 0.0, rgb.width, rgb.height):
            box_size = (box[2] - box[0], box[3] - box[1])
            rgb = rgb.resize(raw_out, resample_filter(box_size, raw_out), box=box, reducing_gap=_REDUCING_GAP)
        if orientation in _TRANSPOSE:
            rgb = rgb.transpose(_TRANSPOSE[orientation])
        rgb = to_srgb(rgb, icc)  # on the small result: cheap, and the output needs no profile
        deadline.check("scaling")
        return Rendered(_encode(rgb, encoding), decoded_size, decode_seconds, source_size or (src_w, src_h))


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
    with _pillow_errors():
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


def _check_ratio(im: Image.Image, length: int, limits: Limits) -> None:
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


def _to_rgb(im: Image.Image, icc: bytes | None, keep_alpha: bool = False) -> tuple[Image.Image, bytes | None]:
    """Any mode to RGB (RGBA if it has transparency and ``keep_alpha``), and the ICC profile still valid for it."""
    mode = im.mode
    if mode == "RGB":
        return im, icc
    if mode == "CMYK":
        return to_srgb(im, icc), None  # through its profile when it has a usable one
    if _has_alpha(im):
        rgba = im.convert("RGBA")
        if keep_alpha:
            return rgba, icc if mode.startswith("RGB") else None
        flat = Image.new("RGB", rgba.size, _WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat, icc if mode.startswith("RGB") else None
    if mode.startswith("I;16"):
        # 16-bit grey: map the full range onto 8 bits.
        return im.convert("I").point(lambda v: v / 256).convert("L").convert("RGB"), None
    return im.convert("RGB"), None  # L, 1, I, F, P without transparency, YCbCr, LAB, HSV


def _encode(im: Image.Image, encoding: Encoding) -> bytes:
    """Encode as ``encoding`` says (JPEG: baseline, optimised Huffman tables), with no metadata (pixels are sRGB)."""
    out = io.BytesIO()
    options = encoding.save_options()
    try:
        im.save(out, encoding.format.pillow, **options)
    except (OSError, ValueError) as exc:
        raise EncodeFailed(f"cannot encode this image as {encoding.format.name}: {exc}") from None
    return out.getvalue()
