"""Rendering a derivative: open with a draft, normalise the colour mode, fit or crop, orient, encode.

Geometry comes from the pure functions of ``huimages.core.sizes``, in the image's
displayed (EXIF-oriented) frame, so ``scaled_dimensions`` always equals what is served.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import time

from PIL import Image, ImageChops

from huimages.config import Limits
from huimages.core.focus import to_stored
from huimages.core.formats import JPEG, PNG, Encoding
from huimages.core.sizes import Size, crop_box, decode_target, output_dimensions
from huimages.errors import AnimationTooLarge, EncodeFailed, InvalidSize, RenderTimeout
from huimages.imaging.checks import (
    SWAPS_AXES,
    TRANSPOSE,
    open_counted,
    orientation_of,
    pillow_errors,
    verify_decodes,
)
from huimages.imaging.colour import to_srgb

logger = logging.getLogger(__name__)

_WHITE = (255, 255, 255)


RESAMPLE = Image.Resampling.LANCZOS


# Pillow first shrinks by an integer factor with a box filter when the ratio is
# at least this large; at 3.0 the result is indistinguishable from a pure
# LANCZOS resize (Pillow's documentation) and large non-JPEG sources get cheap.
REDUCING_GAP = 3.0


# A large output made by a mild downscale (to more than half the decoded size,
# e.g. 1024x768 from a 1280-pixel master) is where LANCZOS's wide kernel costs
# most (a million output pixels, eight taps a side) and shows least: HAMMING is
# within 0.9965 to 0.9994 SSIM of it on the sample photos, in half the time
# (docs/benchmarks.md). Thumbnails, where every pixel shows, keep LANCZOS.
_MILD_FILTER = Image.Resampling.HAMMING


_MILD_BELOW = 2.0


_MILD_MIN_PIXELS = 500_000


# A master of this many bits a pixel or more is full of fine detail (grain, foliage, gravel): there HAMMING,
# and a DCT-scaled decode that leaves LANCZOS little to do, lose up to 0.044 SSIM (Debian's wallpapers: 1024x768
# from a 1280-pixel master), so its renders decode at twice the output or more and use LANCZOS throughout.
# Below it (the benchmark photos' masters hold 0.8 to 1.2, the smoother wallpapers' 0.5 to 1.4) HAMMING costs
# at most 0.0021 SSIM more than LANCZOS at 1024x768, but for fine periodic patterns, which compress well and which the
# measure misses (ripples at 1.15 bits: 0.0096; docs/benchmarks.md).
DETAILED_BITS_PER_PIXEL = 1.6


def is_detailed(data_length: int, stored_size: tuple[int, int]) -> bool:
    """Whether a JPEG of ``data_length`` bytes holding ``stored_size`` pixels is full of fine detail."""
    return data_length * 8 >= DETAILED_BITS_PER_PIXEL * stored_size[0] * stored_size[1]


def resample_filter(
    box_size: tuple[float, float], out_size: tuple[int, int], detailed: bool = False
) -> Image.Resampling:
    """The filter for resizing ``box_size`` (the decoded content) to ``out_size``; LANCZOS for ``detailed`` sources."""
    factor = min(box_size[0] / out_size[0], box_size[1] / out_size[1])
    large = out_size[0] * out_size[1] >= _MILD_MIN_PIXELS
    return _MILD_FILTER if large and not detailed and 1.0 < factor < _MILD_BELOW else RESAMPLE


@dataclasses.dataclass(frozen=True)
class Rendered:
    """A rendered derivative and what it cost: the decoded size tells whether draft decoding worked.

    ``source_size`` is the original's size as displayed (EXIF orientation applied).
    """

    data: bytes
    decoded_size: tuple[int, int]
    decode_seconds: float
    source_size: tuple[int, int]
    frames: int = 1  # the original's (an animation's, even when one frame was rendered)


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
    ``deadline`` is checked between the steps (and the frames of an
    animation; a single Pillow call is not interrupted). An animation keeps
    its animation in the formats that animate (``Format.animates``); the
    others get its first frame.
    """
    deadline = deadline or Deadline.none()
    encoding = Encoding.of(output)
    im, frames = open_counted(data, limits)
    with im:
        orientation = orientation_of(im)
        as_stored = encoding.format is JPEG and im.format in ("JPEG", "MPO") and im.mode == "RGB"
        if size.is_original and as_stored and orientation == 1:
            started, stored_size = time.perf_counter(), im.size
            verify_decodes(im)  # served as stored, but only once it decodes completely (at 1/8 scale)
            return Rendered(data, im.size, time.perf_counter() - started, stored_size, frames)
        swap = orientation in SWAPS_AXES
        stored_w, stored_h = im.size
        src_w, src_h = (stored_h, stored_w) if swap else (stored_w, stored_h)
        out_w, out_h = output_dimensions(size, *(source_size or (src_w, src_h)))
        if max(out_w, out_h) > encoding.format.max_side:
            raise InvalidSize(
                size.token,
                f"{encoding.format.name} holds at most {encoding.format.max_side} pixels a side and this would be"
                f" {out_w}x{out_h}; ask for a smaller size or another format",
            )
        if frames > 1 and encoding.format.animates:
            source = source_size or (src_w, src_h)
            return animate(im, frames, orientation, (out_w, out_h), size, encoding, limits, deadline, source)
        need_w, need_h = decode_target(size, src_w, src_h)
        # A master's bits a pixel measure its detail (it is always quality 92); an original's also grow with its
        # quality, so only its large renders (sizes beyond its master) take the careful path on that measure.
        careful = source_size is not None or out_w * out_h >= _MILD_MIN_PIXELS
        detailed = careful and im.format in ("JPEG", "MPO") and is_detailed(len(data), im.size)
        if detailed:  # a DCT-scaled decode leaves LANCZOS at least 2x to do
            need_w, need_h = min(src_w, 2 * need_w), min(src_h, 2 * need_h)
        started = time.perf_counter()
        with pillow_errors():
            if im.format in ("JPEG", "MPO"):
                im.draft(None, (need_h, need_w) if swap else (need_w, need_h))
            icc = im.info.get("icc_profile")
            im.load()
            decoded_size = im.size
            rgb, icc = to_rgb(im, icc, keep_alpha=encoding.format.alpha)
        decode_seconds = time.perf_counter() - started
        deadline.check("decoding")
        # Work in the stored (unrotated) frame; rotate the small result last.
        raw_out = (out_h, out_w) if swap else (out_w, out_h)
        # A DCT-scaled decode rounds its size up (1365 rows at 1/4 are 342, of which the last is a quarter):
        # resample from the exact content, or every derivative is shifted and stretched by part of a pixel.
        scale = max(1, round(stored_w / rgb.width))
        content_w, content_h = stored_w / scale, stored_h / scale
        focus = to_stored(size.focus_at, orientation)
        box = crop_box(content_w, content_h, *raw_out, focus) if size.crop else (0.0, 0.0, content_w, content_h)
        if rgb.size != raw_out or box != (0.0, 0.0, rgb.width, rgb.height):
            box_size = (box[2] - box[0], box[3] - box[1])
            flt = resample_filter(box_size, raw_out, detailed)
            rgb = rgb.resize(raw_out, flt, box=box, reducing_gap=REDUCING_GAP)
        if orientation in TRANSPOSE:
            rgb = rgb.transpose(TRANSPOSE[orientation])
        rgb = to_srgb(rgb, icc)  # on the small result: cheap, and the output needs no profile
        deadline.check("scaling")
        return Rendered(encode(rgb, encoding), decoded_size, decode_seconds, source_size or (src_w, src_h), frames)


def animate(
    im: Image.Image,
    frames: int,
    orientation: int,
    out: tuple[int, int],
    size: Size,
    encoding: Encoding,
    limits: Limits,
    deadline: Deadline,
    source: tuple[int, int],
) -> Rendered:
    """An animated original rendered frame by frame into one animated derivative of displayed size ``out``.

    Pillow hands over each frame as the browser shows it (GIF disposal, APNG
    dispose and blend ops and WebP blending resolved onto the canvas), so
    every frame is the whole picture: each gets the same box (around the
    size's focus), the same filter and the same orientation; durations and
    the loop count are kept.
    """
    out_w, out_h = out
    pixels = frames * out_w * out_h
    if pixels > limits.max_animation_pixels:
        raise AnimationTooLarge(
            f"this animation at {out_w}x{out_h} would hold {frames} frames of {out_w * out_h} pixels ="
            f" {pixels} pixels, more than HUIMAGES_MAX_ANIMATION_PIXELS ({limits.max_animation_pixels}):"
            f" ask for a smaller size, or .jpeg or .png for its first frame",
            limits.max_animation_pixels,
            pixels,
        )
    raw_out = (out_h, out_w) if orientation in SWAPS_AXES else (out_w, out_h)
    focus = to_stored(size.focus_at, orientation)
    whole = (0.0, 0.0, float(im.width), float(im.height))
    box = crop_box(im.width, im.height, *raw_out, focus) if size.crop else whole
    flt = resample_filter((box[2] - box[0], box[3] - box[1]), raw_out)
    icc = im.info.get("icc_profile")
    loop = im.info.get("loop", 1 if im.format == "GIF" else 0)  # a GIF without a loop count plays once
    made: list[Image.Image] = []
    durations: list[int] = []
    decode_seconds = 0.0
    with pillow_errors():
        for index in range(frames):
            decoding = time.perf_counter()
            im.seek(index)
            im.load()
            durations.append(int(im.info.get("duration") or 0))
            frame = im.convert("RGBA")
            decode_seconds += time.perf_counter() - decoding
            if frame.size != raw_out or box != (0.0, 0.0, frame.width, frame.height):
                frame = frame.resize(raw_out, flt, box=box, reducing_gap=REDUCING_GAP)
            if orientation in TRANSPOSE:
                frame = frame.transpose(TRANSPOSE[orientation])
            made.append(to_srgb(frame, icc if im.mode.startswith("RGB") else None))
            deadline.check(f"frame {index + 1} of {frames}")
    out_file = io.BytesIO()
    try:
        made[0].save(
            out_file,
            encoding.format.pillow,
            save_all=True,
            append_images=made[1:],
            duration=durations,
            loop=int(loop),
            **encoding.save_options(),
        )
    except (OSError, ValueError) as exc:
        raise EncodeFailed(f"cannot encode this animation as {encoding.format.name}: {exc}") from None
    return Rendered(out_file.getvalue(), im.size, decode_seconds, source, frames)


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


def to_rgb(im: Image.Image, icc: bytes | None, keep_alpha: bool = False) -> tuple[Image.Image, bytes | None]:
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


def encode(im: Image.Image, encoding: Encoding) -> bytes:
    """Encode as ``encoding`` says (JPEG: baseline, optimised Huffman tables), with no metadata (pixels are sRGB)."""
    if encoding.format is PNG:
        im = exact_palette(im) or im
    out = io.BytesIO()
    options = encoding.save_options()
    try:
        im.save(out, encoding.format.pillow, **options)
    except (OSError, ValueError) as exc:
        raise EncodeFailed(f"cannot encode this image as {encoding.format.name}: {exc}") from None
    return out.getvalue()


def exact_palette(im: Image.Image) -> Image.Image | None:
    """The image with a palette, when it has at most 256 colours and the palette holds them exactly; else None.

    PNG stays lossless: a palette is used only when converting back gives
    every pixel unchanged (flat graphics and pixel art, mostly at their own
    size: a resampled edge makes new colours).
    """
    if im.mode not in ("RGB", "RGBA"):
        return None
    colours = im.getcolors(256)
    if colours is None:
        return None
    method = Image.Quantize.FASTOCTREE if im.mode == "RGBA" else Image.Quantize.MEDIANCUT
    paletted = im.quantize(colors=len(colours), method=method, dither=Image.Dither.NONE)
    return paletted if ImageChops.difference(paletted.convert(im.mode), im).getbbox() is None else None


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info)
