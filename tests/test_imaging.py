"""The Pillow pipeline, checked on decoded images made in code."""

import io

import pytest
from PIL import Image, ImageCms

from huimages.config import DEFAULT_SIZES, Limits
from huimages.core.sizes import parse_size
from huimages.errors import ImageTooLarge, InvalidImage
from huimages.imaging import probe, render, resample_filter
from tests.imagetools import assert_similar, decode, encode, jpeg, pattern, with_orientation

LIMITS = Limits(max_pixels=50_000_000, max_upload_bytes=64 << 20)


def size(token: str):
    return parse_size(token, DEFAULT_SIZES, 4096)


@pytest.mark.parametrize(
    ("fmt", "mode", "options"),
    [
        ("JPEG", "RGB", {}),
        ("JPEG", "L", {}),
        ("JPEG", "CMYK", {}),
        ("PNG", "RGB", {}),
        ("PNG", "RGBA", {}),
        ("PNG", "LA", {}),
        ("PNG", "P", {}),
        ("PNG", "I;16", {}),
        ("PNG", "1", {}),
        ("GIF", "P", {}),
        ("WEBP", "RGB", {}),
        ("WEBP", "RGBA", {}),
        ("TIFF", "RGB", {}),
        ("TIFF", "CMYK", {}),
    ],
)
@pytest.mark.parametrize("token", ["240x160", "75x75!", "o"])
def test_every_input_mode_renders_to_rgb_jpeg(fmt: str, mode: str, options: dict[str, object], token: str) -> None:
    source = pattern(600, 400, mode)
    data = encode(source, fmt, **options)
    info = probe(data, LIMITS)
    assert (info.width, info.height) == (600, 400)
    out = decode(render(data, size(token), 85, LIMITS).data)
    assert out.format == "JPEG"
    assert out.mode == "RGB"
    expected = {"240x160": (240, 160), "75x75!": (75, 75), "o": (600, 400)}[token]
    assert out.size == expected
    if token != "75x75!" and mode not in ("1", "RGBA", "LA", "P", "I;16"):
        assert_similar(out, source.convert("RGB"), tolerance=14)


def test_alpha_is_flattened_on_white() -> None:
    transparent = Image.new("RGBA", (200, 100), (255, 0, 0, 0))
    out = decode(render(encode(transparent, "PNG"), size("100x50"), 85, LIMITS).data)
    r, g, b = out.getpixel((50, 25))  # type: ignore[misc]
    assert min(r, g, b) > 245


def test_sixteen_bit_grey_keeps_its_tones() -> None:
    grey = Image.new("I;16", (64, 64), 32768)
    out = decode(render(encode(grey, "PNG"), size("32x32"), 90, LIMITS).data)
    r, g, b = out.getpixel((16, 16))  # type: ignore[misc]
    assert 120 <= r <= 136 and r == g == b


def test_gif_first_frame_is_used() -> None:
    frames = [Image.new("RGB", (120, 80), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    out = decode(render(data, size("60x40"), 90, LIMITS).data)
    r, _g, b = out.getpixel((30, 20))  # type: ignore[misc]
    assert r > 200 and b < 60


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_and_dropped(orientation: int) -> None:
    upright = pattern(300, 200)
    data = with_orientation(upright, orientation)
    info = probe(data, LIMITS)
    assert (info.width, info.height) == (300, 200)
    for token, expected in (("150x150", (150, 100)), ("60x60!", (60, 60)), ("o", (300, 200))):
        rendered = render(data, size(token), 90, LIMITS).data
        out = decode(rendered)
        assert out.size == expected
        assert out.getexif().get(0x0112) in (None, 1)
        reference = upright.resize(expected) if token != "60x60!" else upright.crop((50, 0, 250, 200)).resize(expected)
        assert_similar(out, reference, tolerance=14)


def test_crop_is_centred() -> None:
    im = Image.new("RGB", (300, 100), (0, 0, 255))
    im.paste((255, 0, 0), (100, 0, 200, 100))  # red centre third
    out = decode(render(encode(im, "PNG"), size("50x50!"), 90, LIMITS).data)
    r, _g, b = out.getpixel((25, 25))  # type: ignore[misc]
    assert r > 200 and b < 60
    assert out.getpixel((2, 25))[0] > 150  # type: ignore[index]


def test_small_original_is_upscaled_for_crop_not_for_fit() -> None:
    data = jpeg(40, 30)
    assert decode(render(data, size("200x200!"), 85, LIMITS).data).size == (200, 200)
    assert decode(render(data, size("200x200"), 85, LIMITS).data).size == (40, 30)


def test_metadata_and_an_srgb_profile_are_stripped() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    picture = pattern(300, 200)
    data = encode(picture, "JPEG", exif=exif.tobytes(), icc_profile=srgb)
    out = decode(render(data, size("150x100"), 85, LIMITS).data)
    assert out.info.get("icc_profile") is None  # the output is sRGB: no profile needed
    assert not out.getexif()
    assert_similar(out, picture.resize((150, 100)))


def test_output_is_optimised_baseline_with_configured_quality() -> None:
    data = jpeg(800, 600)
    low = render(data, size("400x300"), 30, LIMITS).data
    high = render(data, size("400x300"), 95, LIMITS).data
    assert not (decode(high).info.get("progressive") or decode(high).info.get("progression"))
    assert len(low) < len(high)
    plain = io.BytesIO()
    decode(high).save(plain, "JPEG", quality=95)  # the same pixels without optimised tables
    assert len(high) < len(plain.getvalue())


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        ((1280, 800), (1024, 640), "HAMMING"),
        ((1280, 800), (240, 150), "LANCZOS"),
        ((1280, 800), (640, 400), "LANCZOS"),
        ((800, 600), (800, 600), "LANCZOS"),
    ],
)
def test_large_mild_downscales_use_hamming(source: tuple[int, int], target: tuple[int, int], expected: str) -> None:
    assert resample_filter(source, target).name == expected


def test_o_of_an_upright_rgb_jpeg_is_the_original_bytes() -> None:
    data = jpeg(320, 200)
    assert render(data, size("o"), 85, LIMITS).data == data


def test_large_jpeg_is_decoded_at_draft_scale() -> None:
    """A 240x160 from a 4000x3000 JPEG decodes at 1/8 scale (500x375), never 12 megapixels."""
    data = jpeg(4000, 3000)
    rendered = render(data, size("240x160"), 85, LIMITS)
    assert rendered.decoded_size == (500, 375)  # what the decoder delivered: without draft, 4000x3000
    assert decode(rendered.data).size == (213, 160)
    crop = render(data, size("150x150!"), 85, LIMITS)
    assert crop.decoded_size == (500, 375)  # 1/8 still covers 200x150 of the crop's target
    large = render(data, size("1024x768"), 85, LIMITS)
    assert large.decoded_size == (2000, 1500)  # 1/4 (1000x750) is too small for 1024x768: 1/2
    assert decode(large.data).size == (1024, 768)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"x", "accepted format"),
        (b"GIF89a" + b"\0" * 4, "accepted format|corrupt"),
        (b"hello, this is not an image at all" * 10, "accepted format"),
        (jpeg(200, 200)[:600], "truncated|corrupt"),
        (jpeg(800, 600)[: len(jpeg(800, 600)) * 6 // 10], "truncated or corrupt"),
        (encode(pattern(200, 200), "PNG")[:300], "truncated or corrupt"),
        (encode(pattern(50, 50), "BMP"), "accepted format"),
    ],
)
def test_bad_bytes_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(InvalidImage, match=message):
        probe(data, LIMITS)


def test_pixel_limit_is_checked_before_decoding() -> None:
    # A 1x1 PNG whose header claims 60000 x 60000: refused from the header alone.
    data = encode(Image.new("L", (1, 1)), "PNG")
    ihdr = data.index(b"IHDR")
    import struct
    import zlib

    header = struct.pack(">II", 60000, 60000) + data[ihdr + 12 : ihdr + 17]
    chunk = b"IHDR" + header
    forged = data[: ihdr - 4] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[ihdr + 21 :]
    with pytest.raises(ImageTooLarge, match=r"more than the limit|too many pixels"):
        probe(forged, LIMITS)
    small_limit = Limits(max_pixels=1000, max_upload_bytes=1 << 20)
    with pytest.raises(ImageTooLarge, match="1600 pixels, more than the limit of 1000"):
        probe(jpeg(40, 40), small_limit)
    with pytest.raises(ImageTooLarge, match="bytes"):
        probe(jpeg(40, 40), Limits(max_pixels=10_000, max_upload_bytes=100))
