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

from PIL import Image, UnidentifiedImageError, features

from huimages.config import Limits
from huimages.core.formats import INPUTS, InputFormat, accepted_names
from huimages.errors import HuImagesError, ImageTooLarge, InvalidImage

logger = logging.getLogger(__name__)


def _register_plugins() -> tuple[InputFormat, ...]:
    """Make Pillow read every format of ``INPUTS`` it can; the ones it cannot read here are left out.

    HEIC/HEIF comes from pillow-heif (its wheels carry libheif): the primary
    image only (depth maps, auxiliary images and thumbnails are never read),
    brought to 8 bits, decoded on one thread (a render slot is one core). Its
    own transforms are applied by libheif, which resets the EXIF orientation,
    so an orientation is applied exactly once. Pillow's AVIF decoder turns the
    file's transforms into the EXIF orientation that every render applies.
    """
    readable = []
    for fmt in INPUTS:
        if fmt.plugin == "pillow-heif":
            try:
                import pillow_heif
            except ImportError:  # a core dependency; an install without it still reads everything else
                logger.warning("pillow-heif is not installed: HEIC/HEIF originals are refused")
                continue
            pillow_heif.options.DECODE_THREADS = 1
            pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
        if fmt.name == "AVIF":
            if not features.check("avif"):
                continue
            from PIL import AvifImagePlugin

            AvifImagePlugin.DEFAULT_MAX_THREADS = 1
        readable.append(fmt)
    return tuple(readable)


#: The formats this installation reads (``INPUTS`` less any whose decoder is missing).
READABLE: tuple[InputFormat, ...] = _register_plugins()
#: Pillow format name -> content type, of every format read.
CONTENT_TYPES: dict[str, str] = {name: fmt.content_type for fmt in READABLE for name in fmt.pillow}
#: The decoders ever tried (Pillow's ``formats=``).
ACCEPTED = tuple(fmt.pillow[0] for fmt in READABLE)
ACCEPTED_NAMES = accepted_names(READABLE)
#: A file chooser's ``accept``: every image type, and the extensions some systems give no image type (HEIC).
ACCEPT_ATTRIBUTE = ",".join(["image/*", *(e for fmt in READABLE for e in fmt.extensions)])
#: Pillow format names whose files may hold an animation.
ANIMATED = frozenset(name for fmt in READABLE if fmt.animated for name in fmt.pillow)


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
    frames: int = 1  # an animation's frames (1: a still image, or a HEIF file's primary image)


def describe(im: Image.Image, frames: int = 1) -> ImageInfo:
    orientation = orientation_of(im)
    content_type = CONTENT_TYPES[im.format or ""]
    if im.format == "HEIF":  # image/heic for HEVC-coded files (an iPhone's), image/heif otherwise
        content_type = getattr(im, "custom_mimetype", None) or content_type
    return ImageInfo(
        format=im.format or "",
        content_type=content_type,
        width=im.height if orientation in SWAPS_AXES else im.width,
        height=im.width if orientation in SWAPS_AXES else im.height,
        mode=im.mode,
        orientation=orientation,
        frames=frames,
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
            raise unidentified(data) from None
        with im:
            orientation = orientation_of(im)
            width, height = (im.height, im.width) if orientation in SWAPS_AXES else (im.width, im.height)
            return CONTENT_TYPES[im.format or ""], width, height


#: Major brands of the ``ftyp`` box (``....ftyp<brand>``) that start an AVIF or a HEIF file, and its decoder.
_ISOBMFF_BRANDS = {b"avif": "AVIF", b"avis": "AVIF", b"heic": "HEIF", b"heix": "HEIF", b"mif1": "HEIF", b"msf1": "HEIF"}


def unidentified(data: bytes) -> InvalidImage:
    """The error for bytes no accepted decoder opened: an AVIF or HEIF file its decoder cannot parse says so."""
    decoder = _ISOBMFF_BRANDS.get(data[8:12]) if data[4:8] == b"ftyp" else None
    if decoder in ACCEPTED:
        return InvalidImage(f"the image data is truncated or corrupt: an {decoder} file its decoder cannot read")
    return InvalidImage(f"not an image in an accepted format ({ACCEPTED_NAMES})")


def open_checked(data: bytes, limits: Limits) -> Image.Image:
    """Open with the accepted decoders only and check the declared pixel count."""
    return open_counted(data, limits)[0]


def open_counted(data: bytes, limits: Limits) -> tuple[Image.Image, int]:
    """``open_checked``, and the frames of an animation (1 for a still image, and for a TIFF's pages: only
    its first is ever served, though every page counts against the limits)."""
    if not data:
        raise InvalidImage("the file is empty")
    with pillow_errors():
        try:
            with warnings.catch_warnings():
                # Pillow warns about bombs and corrupt metadata; we check and report those ourselves.
                warnings.simplefilter("ignore")
                im = Image.open(io.BytesIO(data), formats=ACCEPTED)
        except UnidentifiedImageError:  # an OSError: caught here, before the guard's generic message
            raise unidentified(data) from None
    try:
        frames = _check_pixels(im, limits)
        return im, frames if im.format in ANIMATED else 1
    except HuImagesError:
        im.close()
        raise


def verify_decodes(im: Image.Image) -> None:
    """Decode once, at the smallest JPEG scale, so truncated or corrupt data is refused."""
    with pillow_errors():
        if im.format in ("JPEG", "MPO"):
            im.draft(None, (1, 1))
        im.load()


def verify_checksums(data: bytes) -> None:
    """Check a PNG's chunk checksums (CRC-32 over the file: about a millisecond a megabyte).

    Damage inside a PNG's compressed pixels may still inflate to wrong
    pixels without an error; its CRCs catch it. (WebP and uncompressed TIFF
    carry no checksum: damage there decodes as damaged pixels, as it would
    in a browser.)
    """
    with pillow_errors(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Image.open(io.BytesIO(data), formats=("PNG",)).verify()


def verify_frames(im: Image.Image, frames: int) -> None:
    """Decode every frame after the first, so a truncated or corrupt animation is refused; back at the first."""
    with pillow_errors():
        try:
            for frame in range(1, frames):
                im.seek(frame)
                im.load()
        finally:
            im.seek(0)


def _check_pixels(im: Image.Image, limits: Limits) -> int:
    """The declared pixels, over all frames (an animation's), against the limit; the frames counted."""
    if im.width <= 0 or im.height <= 0:
        raise InvalidImage(f"the image declares an empty size {im.width}x{im.height}")
    pixels = im.width * im.height
    if pixels > limits.max_pixels:
        raise ImageTooLarge(
            f"the image is {im.width}x{im.height} = {pixels} pixels, more than the limit of {limits.max_pixels}",
            limits.max_pixels,
            pixels,
        )
    return _count_frames(im, limits)


def _count_frames(im: Image.Image, limits: Limits) -> int:
    """Frames (or TIFF pages), counted one by one and refused as soon as they pass a limit.

    Never all of them first: Pillow's ``n_frames`` reads every header before
    it answers, which for TIFF pages grows with their square (80,000 pages:
    about a minute). Counting stops at ``HUIMAGES_MAX_FRAMES``, or when the
    frames so far pass the pixel limit, so its cost is bounded whatever the
    file declares. Each frame's own size counts (a GIF frame may grow the
    canvas, which Pillow decodes whole before it seeks further). A HEIF
    file's other images (a burst, say) are never decoded: it counts as its
    primary image alone.
    """
    pixels, frames = im.width * im.height, 1
    if im.format == "HEIF":
        return frames
    with pillow_errors(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's bomb warning on a frame that grows the canvas: checked below
        if not getattr(im, "is_animated", False):
            return frames
        try:
            while True:
                im.seek(frames)  # EOFError past the last frame
                frames += 1
                frame = im.width * im.height
                if frame > limits.max_pixels:
                    raise ImageTooLarge(
                        f"frame {frames} of the image is {im.width}x{im.height} = {frame} pixels, more than the"
                        f" limit of {limits.max_pixels}",
                        limits.max_pixels,
                        frame,
                    )
                pixels += frame
                if frames > limits.max_frames:
                    raise ImageTooLarge(
                        f"the image has more than {limits.max_frames} frames or pages (the limit)",
                        limits.max_frames,
                        frames,
                    )
                if pixels > limits.max_pixels:
                    raise ImageTooLarge(
                        f"the image has {frames} frames or more of {pixels} pixels in all, over the limit of"
                        f" {limits.max_pixels}",
                        limits.max_pixels,
                        pixels,
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


#: What Pillow's parsers and decoders raise on malformed input (found by tests and by scripts/fuzz.py);
#: RuntimeError: the AVIF and HEIF decoders' failures (libavif, libheif).
_PILLOW_FAILURES = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    RuntimeError,
)


@contextlib.contextmanager
def pillow_errors() -> Iterator[None]:
    """Turn Pillow's many failure types on malformed data into ``InvalidImage``."""
    try:
        yield
    except HuImagesError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"the image declares too many pixels: {exc}", 0, 0) from None
    except RuntimeError as exc:
        if "security limit" in str(exc).lower():  # libheif's own bounds, passed before ours were checked
            raise ImageTooLarge(f"the image declares too much: {str(exc).strip()}", 0, 0) from None
        raise InvalidImage(f"the image data is truncated or corrupt: {str(exc).strip()}") from None
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
