"""Originals in HEIC/HEIF and AVIF: every output format, fitted and cropped, upright once, 10 and 12 bit, alpha.

Files are made in code: pillow-heif writes HEIF (the transform an EXIF
orientation asks for becomes the file's own ``irot``), Pillow writes AVIF.
Broken and oversized files of both are in the hostile suite (test_hostile.py).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageOps

from huimages.client import Client
from huimages.config import Settings
from huimages.core.formats import INPUTS, WEBP, accepted_names
from huimages.errors import InvalidImage
from huimages.http.app import ImageApp, create_app
from huimages.imaging import ACCEPTED_NAMES
from huimages.serving.service import ImageService
from tests.imagetools import assert_similar, decode, encode, pattern
from tests.wsgi import call

OUTPUTS = ("jpeg", "webp", "avif", "png")


def heic(im: Image.Image, **options: object) -> bytes:
    return encode(im, "HEIF", quality=92, **options)


def avif(im: Image.Image, **options: object) -> bytes:
    return encode(im, "AVIF", quality=92, **options)


WRITERS: dict[str, Callable[..., bytes]] = {"HEIC": heic, "AVIF": avif}
#: Every accepted format, for the matrix of inputs, fit and crop, and outputs.
EVERY: dict[str, tuple[Callable[[Image.Image], bytes], str]] = {
    "JPEG": (lambda im: encode(im, "JPEG", quality=92), "image/jpeg"),
    "PNG": (lambda im: encode(im, "PNG"), "image/png"),
    "GIF": (lambda im: encode(im, "GIF"), "image/gif"),
    "WebP": (lambda im: encode(im, "WEBP", quality=92), "image/webp"),
    "TIFF": (lambda im: encode(im, "TIFF"), "image/tiff"),
    "HEIC": (heic, "image/heic"),
    "AVIF": (avif, "image/avif"),
}


def oriented(upright: Image.Image, writer: Callable[..., bytes], orientation: int) -> bytes:
    """The picture stored turned as a camera stores it, with the orientation that turns it upright again."""
    inverse = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270, 3: Image.Transpose.ROTATE_180}
    exif = Image.Exif()
    exif[0x0112] = orientation
    return writer(upright.transpose(inverse[orientation]), exif=exif.tobytes())


def high_bit_heic(im: Image.Image, twelve: bool) -> bytes:
    """A 10-bit (or 12-bit) HEIC of ``im``'s pixels, as phones and cameras write them."""
    data = (np.asarray(im.convert("RGB")).astype(np.uint16) * 257).tobytes()
    deep = pillow_heif.from_bytes(mode="RGB;16", size=im.size, data=data)
    before = pillow_heif.options.SAVE_HDR_TO_12_BIT
    pillow_heif.options.SAVE_HDR_TO_12_BIT = twelve
    try:
        out = io.BytesIO()
        deep.save(out, quality=92)
    finally:
        pillow_heif.options.SAVE_HDR_TO_12_BIT = before
    return out.getvalue()


@pytest.fixture
def site(tmp_path: Path) -> tuple[Client, ImageApp]:
    service = ImageService.from_settings(Settings.at(tmp_path, server_url="http://img.test/"))
    return Client(service=service), create_app(service=service)


def served(app: ImageApp, path: str, fmt: str) -> Image.Image:
    answer = call(app, path)
    assert answer.status == 200, (path, answer.text)
    assert answer.headers["Content-Type"] == f"image/{fmt}", path
    return decode(answer.body)


@pytest.mark.parametrize("name", list(EVERY))
def test_each_input_in_each_output_fitted_and_cropped(site: tuple[Client, ImageApp], name: str) -> None:
    client, app = site
    picture = pattern(640, 480)
    writer, content_type = EVERY[name]
    image_id = client.save_image(writer(picture))
    record = client.service.catalog.get(image_id)
    assert (record["width"], record["height"], record["content_type"], record["frames"]) == (640, 480, content_type, 1)
    for fmt in OUTPUTS:
        fitted = served(app, f"/240x160/{image_id}.{fmt}", fmt)
        assert fitted.size == (213, 160) == client.scaled_dimensions(image_id, "240x160")
        assert_similar(fitted, picture.resize((213, 160)), 8)
        cropped = served(app, f"/150x150!/{image_id}.{fmt}", fmt)
        assert cropped.size == (150, 150)
        assert_similar(cropped, ImageOps.fit(picture, (150, 150)), 8)
    whole = served(app, f"/o/{image_id}.jpeg", "jpeg")  # a JPEG rendering, as for every original not an upright JPEG
    assert whole.size == (640, 480) and whole.format == "JPEG"
    assert_similar(whole, picture, 6)


@pytest.mark.parametrize("name", list(WRITERS))
@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_orientation_is_applied_exactly_once(site: tuple[Client, ImageApp], name: str, orientation: int) -> None:
    client, app = site
    upright = pattern(300, 400)
    image_id = client.save_image(oriented(upright, WRITERS[name], orientation))
    record = client.service.catalog.get(image_id)
    assert (record["width"], record["height"]) == (300, 400)
    for fmt in ("jpeg", "webp"):
        fitted = served(app, f"/240x160/{image_id}.{fmt}", fmt)
        assert fitted.size == (120, 160)
        assert_similar(fitted, upright.resize((120, 160)), 10)
    assert_similar(served(app, f"/o/{image_id}.png", "png"), upright, 8)


@pytest.mark.parametrize("twelve", [False, True], ids=["10 bit", "12 bit"])
def test_deep_heic_is_brought_to_8_bits(site: tuple[Client, ImageApp], twelve: bool) -> None:
    client, app = site
    picture = pattern(320, 240)
    data = high_bit_heic(picture, twelve)
    assert Image.open(io.BytesIO(data)).info["bit_depth"] == (12 if twelve else 10)
    image_id = client.save_image(data)
    for fmt in ("jpeg", "png"):
        fitted = served(app, f"/240x160/{image_id}.{fmt}", fmt)
        assert fitted.mode in ("RGB", "P") and fitted.size == (213, 160)
        assert_similar(fitted, picture.resize((213, 160)), 8)


@pytest.mark.parametrize("name", list(WRITERS))
def test_alpha_is_kept_where_the_format_holds_it(site: tuple[Client, ImageApp], name: str) -> None:
    client, app = site
    picture = Image.new("RGBA", (400, 300), (220, 20, 20, 255))
    picture.paste((0, 0, 255, 0), (0, 0, 200, 300))  # the left half transparent
    image_id = client.save_image(WRITERS[name](picture))
    for fmt in ("webp", "avif", "png"):
        im = served(app, f"/240x160/{image_id}.{fmt}", fmt).convert("RGBA")
        assert im.getpixel((10, 80))[3] < 10 and im.getpixel((200, 80))[3] > 245, fmt  # type: ignore[index]
    flat = served(app, f"/240x160/{image_id}.jpeg", "jpeg")
    assert flat.mode == "RGB" and min(flat.getpixel((10, 80))) > 240  # type: ignore[arg-type]  # on white


def test_a_heif_with_several_images_serves_its_primary(site: tuple[Client, ImageApp]) -> None:
    client, app = site
    first, primary = pattern(200, 100), Image.new("RGB", (320, 240), (30, 160, 60))
    container = pillow_heif.from_pillow(first)
    container.add_from_pillow(primary)
    out = io.BytesIO()
    container.save(out, quality=92, primary_index=1)
    assert Image.open(io.BytesIO(out.getvalue())).size == (320, 240)
    image_id = client.save_image(out.getvalue())
    record = client.service.catalog.get(image_id)
    assert (record["width"], record["height"], record["frames"]) == (320, 240, 1)
    assert_similar(served(app, f"/o/{image_id}.png", "png"), primary, 6)


def test_a_tiff_of_several_pages_is_a_still_image_rendered_from_its_master(site: tuple[Client, ImageApp]) -> None:
    """Its pages count against the limits, but only the first is served: no animation, so WebP comes from the master."""
    client, app = site
    first, second = pattern(600, 400), Image.new("RGB", (600, 400), (20, 40, 200))
    image_id = client.save_image(encode(first, "TIFF", save_all=True, append_images=[second]))
    assert client.service.catalog.get(image_id)["frames"] == 1
    assert_similar(served(app, f"/240x160/{image_id}.webp", "webp"), first.resize((240, 160)), 8)
    _, source, _ = client.service._render(client.service.parse_size("480x320"), image_id, WEBP)
    assert source == "master"


def test_the_accepted_formats_are_named_from_one_table(site: tuple[Client, ImageApp]) -> None:
    client, _ = site
    assert ACCEPTED_NAMES == accepted_names(INPUTS) == "JPEG, PNG, GIF, WebP, TIFF, HEIC/HEIF and AVIF"
    with pytest.raises(InvalidImage) as refused:
        client.save_image(encode(pattern(20, 20), "BMP"))
    assert ACCEPTED_NAMES in str(refused.value)
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert ACCEPTED_NAMES in readme
