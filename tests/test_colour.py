"""Colour profiles: applied once into sRGB, never copied into derivatives."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from huimages.config import Settings
from huimages.imaging.colour import MAX_PROFILE_BYTES
from huimages.serving.service import ImageService
from tests.imagetools import ADOBE_RGB, decode, encode, matrix_profile

ADOBE = matrix_profile(ADOBE_RGB, 563 / 256, "Adobe RGB (1998) compatible, test")
_TO_LAB = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")


def lab(rgb: tuple[int, ...]) -> tuple[float, float, float]:
    """CIE Lab of an sRGB colour (Pillow's 8-bit Lab: L 0-255, a and b offset by 128)."""
    pixel = ImageCms.applyTransform(Image.new("RGB", (1, 1), rgb[:3]), _TO_LAB)
    assert pixel is not None
    value = pixel.getpixel((0, 0))
    assert isinstance(value, tuple)
    return value[0] * 100 / 255, value[1] - 128.0, value[2] - 128.0


def delta_e(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    return math.dist(lab(a), lab(b))


def adobe_in_srgb(rgb: tuple[int, int, int]) -> tuple[int, ...]:
    """What ``rgb`` in Adobe RGB looks like in sRGB (the colour a managed viewer shows)."""
    source = ImageCms.ImageCmsProfile(io.BytesIO(ADOBE))
    converted = ImageCms.profileToProfile(Image.new("RGB", (1, 1), rgb), source, ImageCms.createProfile("sRGB"))
    assert converted is not None
    value = converted.getpixel((0, 0))
    assert isinstance(value, tuple)
    return value


@pytest.mark.parametrize("master_side", [2048, 0])
def test_a_wide_gamut_original_comes_out_in_srgb_with_the_right_colours(tmp_path: Path, master_side: int) -> None:
    colour = (40, 180, 60)  # a green well inside Adobe RGB, partly outside sRGB
    data = encode(Image.new("RGB", (600, 400), colour), "JPEG", quality=95, icc_profile=ADOBE)
    service = ImageService.from_settings(Settings.at(tmp_path, master_side=master_side))
    image_id = service.ingest(data)
    expected = adobe_in_srgb(colour)
    assert delta_e(expected, colour) > 5  # ignoring the profile would be a visible error (a JND is about 2.3)
    for fmt in ("jpeg", "webp", "avif"):
        for token in ("240x160", "75x75!"):
            out = decode(service.derivative(service.parse_size(token), image_id, service.output_format(fmt)).read())
            assert out.info.get("icc_profile") is None, (fmt, token)
            pixel = out.convert("RGB").getpixel((out.width // 2, out.height // 2))
            assert isinstance(pixel, tuple)
            assert delta_e(pixel, expected) < 3, (fmt, token, pixel, expected)


def test_a_transparent_original_keeps_its_alpha_through_the_conversion(tmp_path: Path) -> None:
    im = Image.new("RGBA", (400, 300), (40, 180, 60, 255))
    im.paste((0, 0, 0, 0), (0, 0, 200, 300))
    service = ImageService.from_settings(Settings.at(tmp_path))
    image_id = service.ingest(encode(im, "PNG", icc_profile=ADOBE))
    out = decode(service.derivative(service.parse_size("200x150"), image_id, service.output_format("webp")).read())
    left, right = out.getpixel((5, 75)), out.getpixel((195, 75))
    assert isinstance(left, tuple) and isinstance(right, tuple)
    assert left[3] == 0 and right[3] == 255
    assert delta_e(right, adobe_in_srgb((40, 180, 60))) < 3


def test_a_huge_or_broken_profile_cannot_inflate_derivatives(tmp_path: Path) -> None:
    """A 1 MB profile compresses to almost nothing in a PNG; it must not ride along in every derivative."""
    huge = ADOBE[:128] + bytes(1_000_000)  # an RGB header, then a megabyte of nothing (Pillow refuses 1 MiB+)
    broken = ADOBE[:128] + bytes(MAX_PROFILE_BYTES // 2)  # under the size limit, but unreadable
    service = ImageService.from_settings(Settings.at(tmp_path))
    red = Image.new("RGB", (300, 200), (200, 30, 30))
    uploads = [encode(red, "PNG", icc_profile=huge), encode(red, "PNG", icc_profile=broken)]
    assert all(len(data) < 4000 for data in uploads)
    uploads.append(encode(red, "JPEG", icc_profile=ADOBE[:128] + bytes(3_000_000)))  # 46 APP2 segments
    for data in uploads:
        image_id = service.ingest(data)
        for fmt in ("jpeg", "webp", "avif"):
            for token in ("240x160", "1x1", "o"):
                if token == "o" and fmt == "jpeg" and data[:2] == b"\xff\xd8":
                    continue  # o.jpeg of an upright JPEG is the stored upload itself, as huImages served it
                body = service.derivative(service.parse_size(token), image_id, service.output_format(fmt)).read()
                assert len(body) < 50_000, (fmt, token, len(body))
                out = decode(body)
                assert out.info.get("icc_profile") is None
                assert delta_e(out.convert("RGB").getpixel((0, 0)), (200, 30, 30)) < 3  # type: ignore[arg-type]
