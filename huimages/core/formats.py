"""Formats: the ones accepted in (one table), the ones served, how a URL names them, and how each is encoded.

The output format is part of the URL (``/<size>/<id>.webp``), never negotiated from
the ``Accept`` header: a hit is a plain file, served by lighttpd or a CDN that
keys on the path alone, so one URL must always mean one file. Each format is
encoded by Pillow's own codec; ``available`` says which ones this Pillow has.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from PIL import features

from huimages.errors import FormatNotServed


@dataclasses.dataclass(frozen=True)
class Format:
    """An output format. ``name`` is also the extension of its URLs and cache files."""

    name: str
    content_type: str
    pillow: str  # Pillow's format name, for ``Image.save``
    feature: str | None  # Pillow's feature that must be present, or None when always built in
    alpha: bool  # keeps transparency (JPEG is flattened on white)
    max_side: int  # the largest width or height the format can hold
    animates: bool = False  # keeps an animated original's animation (else: its first frame)

    @property
    def extension(self) -> str:
        return self.name


JPEG = Format("jpeg", "image/jpeg", "JPEG", None, alpha=False, max_side=65535)
WEBP = Format("webp", "image/webp", "WEBP", "webp", alpha=True, max_side=16383, animates=True)
AVIF = Format("avif", "image/avif", "AVIF", "avif", alpha=True, max_side=65536, animates=True)
PNG = Format("png", "image/png", "PNG", None, alpha=True, max_side=2**31 - 1)
FORMATS: dict[str, Format] = {f.name: f for f in (JPEG, WEBP, AVIF, PNG)}
#: URL extensions and the format each names: huImages wrote ``.jpg`` too.
EXTENSIONS: dict[str, Format] = {**FORMATS, "jpg": JPEG}
DEFAULT_FORMATS = ("jpeg", "webp", "avif", "png")


@dataclasses.dataclass(frozen=True)
class InputFormat:
    """A format accepted as an original: what people call it, Pillow's names for it, its content type."""

    name: str
    pillow: tuple[str, ...]  # Pillow's format names: the decoder tried (the only ones ever), then what it also yields
    content_type: str
    extensions: tuple[str, ...]  # of its files (a file chooser's ``accept``)
    animated: bool = False  # may hold an animation (kept in the formats that animate)
    plugin: str = ""  # the package that decodes it, when Pillow does not


#: Every format an original may have; nothing else is ever decoded (formats such as EPS would hand the
#: bytes to external programs). The upload page, the README and every refusal name them from here.
INPUTS: tuple[InputFormat, ...] = (
    # MPO: the multi-picture JPEG of many cameras
    InputFormat("JPEG", ("JPEG", "MPO"), "image/jpeg", (".jpg", ".jpeg")),
    InputFormat("PNG", ("PNG",), "image/png", (".png", ".apng"), animated=True),  # APNG too
    InputFormat("GIF", ("GIF",), "image/gif", (".gif",), animated=True),
    InputFormat("WebP", ("WEBP",), "image/webp", (".webp",), animated=True),
    InputFormat("TIFF", ("TIFF",), "image/tiff", (".tif", ".tiff")),
    InputFormat("HEIC/HEIF", ("HEIF",), "image/heif", (".heic", ".heif"), plugin="pillow-heif"),
    InputFormat("AVIF", ("AVIF",), "image/avif", (".avif",), animated=True),
)

#: Content types of originals that may be animated.
ANIMATED_TYPES = frozenset(f.content_type for f in INPUTS if f.animated)


def accepted_names(inputs: Iterable[InputFormat] = INPUTS) -> str:
    """The accepted formats as a sentence names them: ``JPEG, PNG, ... and AVIF``."""
    names = [f.name for f in inputs]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


def split_format(token: str) -> tuple[str, str | None]:
    """A size with an optional format, as settings and commands take it: ``small.webp`` -> (``small``, ``webp``)."""
    size, dot, extension = token.rpartition(".")
    return (size, extension) if dot else (token, None)


def served_format(extension: str, served: tuple[str, ...]) -> Format:
    """The format a URL extension names, if it is among ``served``; else ``FormatNotServed`` (404)."""
    fmt = EXTENSIONS.get(extension)
    if fmt is None or fmt.name not in served:
        raise FormatNotServed(extension, served)
    return fmt


def available(fmt: Format) -> bool:
    """Whether this Pillow can encode ``fmt``."""
    return fmt.feature is None or bool(features.check(fmt.feature))


def parse_formats(names: Iterable[str]) -> tuple[str, ...]:
    """Check a list of format names (a setting); raise ``ValueError`` saying what is wrong."""
    chosen = tuple(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
    unknown = [n for n in chosen if n not in FORMATS]
    if unknown:
        raise ValueError(f"unknown format {unknown[0]!r}; known: {', '.join(FORMATS)}")
    if "jpeg" not in chosen:
        raise ValueError("jpeg cannot be left out: every URL huImages wrote, and every <img> fallback, is a JPEG")
    missing = [n for n in chosen if not available(FORMATS[n])]
    if missing:
        raise ValueError(
            f"this Pillow cannot encode {', '.join(missing)}; install Pillow 11.3 or newer, or leave it out"
        )
    return chosen


@dataclasses.dataclass(frozen=True)
class Encoding:
    """How a derivative is encoded: the format, its quality (1-100; PNG is lossless) and AVIF's speed (0-10)."""

    format: Format
    quality: int
    speed: int = 9

    @classmethod
    def of(cls, value: Encoding | int) -> Encoding:
        """An ``Encoding``; a bare number is a JPEG quality (how huImages' callers and the tests say it)."""
        return value if isinstance(value, Encoding) else cls(JPEG, value)

    def save_options(self) -> dict[str, object]:
        """The keyword arguments of Pillow's ``save`` for this encoding.

        No colour profile, ever: derivatives are sRGB (``huimages.imaging.colour``),
        and Pillow's AVIF encoder would otherwise copy the one in ``im.info``.
        """
        if self.format is JPEG:
            # Baseline with optimised Huffman tables: the bytes of a progressive JPEG (within 2 % on the
            # sample photos) for a third of its encode time.
            return {"quality": self.quality, "optimize": True, "icc_profile": None}
        if self.format is WEBP:
            return {"quality": self.quality, "method": 4, "icc_profile": None}
        if self.format is PNG:
            # zlib's level 6 (Pillow's default): within 1 % of level 9's bytes on the test graphics, in half the time.
            return {"compress_level": 6, "icc_profile": None}
        # One encoder thread: a render slot is one core (admission control counts renders, not threads).
        return {"quality": self.quality, "speed": self.speed, "max_threads": 1, "icc_profile": None}
