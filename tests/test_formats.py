"""WebP and AVIF by URL extension, transparency, the format settings, srcset and <picture>."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageChops, ImageDraw

from huimages.client import Client
from huimages.config import Settings, SigningSettings
from huimages.core.focus import focus_of
from huimages.core.formats import AVIF, JPEG, PNG, WEBP, Format
from huimages.core.urls import image_path, parse_image_path
from huimages.errors import ConfigurationError, FormatNotServed
from huimages.http.app import create_app
from huimages.ops.cli import main
from huimages.serving.service import ImageService
from tests.imagetools import decode, encode, jpeg, pattern, ssim, transparent_png
from tests.wsgi import call

KEY = "k" * 32


# -- URLs and the app -------------------------------------------------------------


def test_the_extension_names_the_format() -> None:
    image_id = "A" * 32 + "01"
    assert parse_image_path(f"/small/{image_id}.webp") == ("small", image_id, "webp")
    assert parse_image_path(f"/small/{image_id}/A-title.avif") == ("small", image_id, "avif")
    assert parse_image_path(f"/small/{image_id}.jpg") == ("small", image_id, "jpg")
    assert parse_image_path(f"/small/{image_id}") == ("small", image_id, "jpeg")
    assert parse_image_path(f"/small/{image_id}.png") == ("small", image_id, "png")
    assert image_path("75x75!", image_id, AVIF) == f"/75x75!/{image_id}.avif"


@pytest.mark.parametrize("fmt", [WEBP, AVIF, PNG])
def test_each_format_is_served_with_its_type_and_cached_once(client: Client, settings: Settings, fmt: Format) -> None:
    image_id = client.save_image(jpeg(800, 600))
    app = create_app(service=client.service)
    first = call(app, f"/small/{image_id}.{fmt.name}")
    assert first.status == 200, first.text
    assert first.headers["Content-Type"] == fmt.content_type
    assert first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert decode(first.body).format == fmt.pillow
    assert decode(first.body).size == (213, 160)
    cached = settings.paths.cache_dir / "240x160" / f"{image_id}.{fmt.name}"
    assert cached.read_bytes() == first.body
    again = call(app, f"/small/{image_id}.{fmt.name}", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304
    jpeg_answer = call(app, f"/small/{image_id}.jpeg")
    assert decode(jpeg_answer.body).format == "JPEG"
    assert ssim(decode(first.body).convert("RGB"), decode(jpeg_answer.body).convert("RGB")) > 0.95


def test_o_in_webp_and_avif_is_a_full_size_rendering(client: Client) -> None:
    original = jpeg(640, 480)
    image_id = client.save_image(original)
    app = create_app(service=client.service)
    for fmt in ("webp", "avif"):
        answer = call(app, f"/o/{image_id}.{fmt}")
        assert answer.status == 200
        assert decode(answer.body).size == (640, 480)
        assert ssim(decode(answer.body).convert("RGB"), decode(original).convert("RGB")) > 0.95
    assert call(app, f"/o/{image_id}.jpeg").body == original  # as huImages served it


def test_transparency_is_kept_in_webp_avif_and_png_and_flattened_on_white_in_jpeg(client: Client) -> None:
    image_id = client.save_image(transparent_png())
    app = create_app(service=client.service)
    for fmt in ("webp", "avif", "png"):
        for size in ("small", "o"):
            im = decode(call(app, f"/{size}/{image_id}.{fmt}").body).convert("RGBA")
            left, right = im.getpixel((5, 5)), im.getpixel((im.width - 5, 5))
            assert isinstance(left, tuple) and isinstance(right, tuple)
            assert left[3] == 0, (fmt, size, left)  # transparent stays transparent
            assert right[3] == 255 and right[0] > 180 and right[2] < 60, (fmt, size, right)
    im = decode(call(app, f"/small/{image_id}.jpeg").body)
    assert im.mode == "RGB"
    assert min(im.getpixel((5, 5))) > 240  # type: ignore[arg-type]


def test_png_is_lossless_with_a_palette_only_where_it_is_exact(client: Client) -> None:
    """A graphic of few colours keeps them in a palette; a photo stays truecolour; both decode to the same pixels."""
    app = create_app(service=client.service)
    logo = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    draw = ImageDraw.Draw(logo)
    for n in range(12):
        draw.rectangle((n * 25, n * 10, n * 25 + 40, n * 10 + 60), fill=(n * 20, 200 - n * 15, 90, 255 - n * 10))
    photo = pattern(320, 240)
    photo.paste(Image.effect_noise((320, 240), 40).convert("RGB"), mask=Image.new("L", (320, 240), 60))
    for original, mode in ((logo, "P"), (photo, "RGB")):
        image_id = client.save_image(encode(original, "PNG"))
        answer = call(app, f"/o/{image_id}.png")
        assert answer.status == 200 and answer.headers["Content-Type"] == "image/png"
        served = decode(answer.body)
        assert served.mode == mode and served.size == original.size
        assert ImageChops.difference(served.convert(original.mode), original).getbbox() is None  # every pixel kept
        assert decode(call(app, f"/small/{image_id}.png").body).size == client.scaled_dimensions(image_id, "small")


def test_picture_with_a_png_fallback_for_graphics(client: Client, tmp_path: Path) -> None:
    image_id = client.save_image(transparent_png())
    markup = client.scaled_picture(image_id, "small", fallback="png")
    parser = _Tags()
    parser.feed(markup)
    assert [tag for tag, _ in parser.tags] == ["picture", "source", "source", "img"]
    img = parser.tags[-1][1]
    assert img["src"] == client.scaled_imageurl(image_id, "small", format="png")
    assert str(img["srcset"]).endswith(".png 1x") and ".jpeg" not in markup
    assert client.scaled_picture(image_id, "small").count(".png") == 0  # the default stays JPEG
    without = Client(Settings.at(tmp_path / "other", formats=("jpeg", "webp")))
    other = without.save_image(transparent_png())
    with pytest.raises(FormatNotServed):
        without.scaled_picture(other, "small", fallback="png")


def test_a_format_not_served_answers_404_naming_the_allowed_ones(tmp_path: Path) -> None:
    settings = Settings.at(tmp_path, formats=("jpeg", "webp"))
    client = Client(settings)
    image_id = client.save_image(jpeg(300, 200))
    app = create_app(service=client.service)
    for ext in ("avif", "png", "gif"):
        answer = call(app, f"/small/{image_id}.{ext}")
        assert answer.status == 404, ext
        assert f"'{ext}' is not served here; use one of: jpeg, webp" in answer.text
        assert answer.headers["Cache-Control"] == "no-store"
    assert not list(settings.paths.cache_dir.rglob("*.avif"))
    with pytest.raises(FormatNotServed):
        client.scaled_imageurl(image_id, "small", format="avif")


def test_format_settings_are_checked() -> None:
    assert Settings.from_env({}).formats == ("jpeg", "webp", "avif", "png")
    assert Settings.from_env({"HUIMAGES_FORMATS": "jpeg, WEBP"}).formats == ("jpeg", "webp")
    for value, words in (("webp,avif", "jpeg cannot be left out"), ("jpeg,heic", "unknown format 'heic'")):
        with pytest.raises(ConfigurationError, match=words):
            Settings.from_env({"HUIMAGES_FORMATS": value})
    for name, value in (
        ("HUIMAGES_WEBP_QUALITY", "0"),
        ("HUIMAGES_AVIF_QUALITY", "101"),
        ("HUIMAGES_AVIF_SPEED", "11"),
    ):
        with pytest.raises(ConfigurationError, match=name):
            Settings.from_env({name: value})
    custom = Settings.from_env(
        {"HUIMAGES_WEBP_QUALITY": "70", "HUIMAGES_AVIF_QUALITY": "40", "HUIMAGES_AVIF_SPEED": "6"}
    )
    assert (custom.encoding("webp").quality, custom.encoding("avif").quality, custom.encoding("avif").speed) == (
        70,
        40,
        6,
    )
    assert custom.encoding("jpeg").format is JPEG


def test_quality_settings_change_the_files(tmp_path: Path) -> None:
    data = encode(pattern(1200, 900), "JPEG", quality=95)
    sizes = {}
    for quality in (30, 90):
        service = ImageService.from_settings(
            Settings.at(tmp_path / str(quality), webp_quality=quality, avif_quality=quality)
        )
        image_id = service.ingest(data)
        for fmt in (WEBP, AVIF):
            sizes[(fmt.name, quality)] = len(service.derivative(service.parse_size("640x480"), image_id, fmt).read())
    assert sizes[("webp", 30)] < sizes[("webp", 90)] and sizes[("avif", 30)] < sizes[("avif", 90)]


def test_signatures_cover_the_extension(tmp_path: Path) -> None:
    settings = Settings.at(tmp_path, signing=SigningSettings("named", keys=(KEY,)), server_url="http://img.test/")
    client = Client(settings)
    image_id = client.save_image(jpeg(800, 600))
    app = create_app(service=client.service)
    webp_url = client.scaled_imageurl(image_id, "300x200", format="webp")
    path, _, query = webp_url.removeprefix("http://img.test").partition("?")
    assert path.endswith(".webp") and query.startswith("s=")
    assert call(app, path, QUERY_STRING=query).status == 200
    avif_path = path.replace(".webp", ".avif")
    assert call(app, avif_path, QUERY_STRING=query).status == 403  # the webp signature does not sign the avif
    assert call(app, f"/small/{image_id}.avif").status == 200  # named sizes need no signature, in any format


# -- srcset and <picture> -----------------------------------------------------------


def test_density_srcset(client: Client) -> None:
    image_id = client.save_image(jpeg(1000, 700), title="Boat")
    assert client.scaled_srcset(image_id, "small") == (
        f"http://img.test/240x160/{image_id}/Boat.jpeg 1x, http://img.test/480x320/{image_id}/Boat.jpeg 2x"
    )
    crop = client.scaled_srcset(image_id, "75x75!", (1, 2, 3), format="webp")
    focus = focus_of(client.get_imagedoc(image_id)).token  # every density placed around the image's focus
    assert crop.split(", ") == [
        f"http://img.test/75x75!{focus}/{image_id}/Boat.webp 1x",
        f"http://img.test/150x150!{focus}/{image_id}/Boat.webp 2x",
        f"http://img.test/225x225!{focus}/{image_id}/Boat.webp 3x",
    ]
    # densities the original is too small for are left out
    small = client.save_image(jpeg(300, 200))
    assert client.scaled_srcset(small, "240x160", (1, 2)).count(" 2x") == 0
    assert client.scaled_srcset(small, "150x100", (1, 1.5, 2)).endswith(" 2x")
    assert client.scaled_srcset(small, "200x200!", (1, 2)).count(", ") == 0


def test_width_srcset(client: Client) -> None:
    image_id = client.save_image(jpeg(1200, 800))
    srcset = client.scaled_srcset(image_id, "300x200", widths=(320, 640, 1024, 2048))
    entries = [entry.rsplit(" ", 1) for entry in srcset.split(", ")]
    assert [descriptor for _, descriptor in entries] == ["320w", "640w", "1024w", "1200w"]
    app = create_app(service=client.service)
    for url, descriptor in entries:
        answer = call(app, url.removeprefix("http://img.test").split("?")[0])
        assert decode(answer.body).width == int(descriptor[:-1])


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def test_picture_markup(client: Client) -> None:
    image_id = client.save_image(jpeg(1000, 700), title='Say "cheese" & <smile>')
    markup = client.scaled_picture(image_id, "small", class_="hero", data_x="a&b")
    parser = _Tags()
    parser.feed(markup)
    names = [tag for tag, _ in parser.tags]
    assert names == ["picture", "source", "source", "img"]
    (_, avif), (_, webp), (_, img) = parser.tags[1:]
    assert avif["type"] == "image/avif" and webp["type"] == "image/webp"
    assert str(avif["srcset"]).count(".avif") == 2 and str(webp["srcset"]).count(".webp") == 2
    assert img["src"] == client.scaled_imageurl(image_id, "small")
    assert img["srcset"] == client.scaled_srcset(image_id, "small")
    assert (img["width"], img["height"]) == ("229", "160")
    assert img["alt"] == 'Say "cheese" & <smile>'  # escaped in the markup, the same text once parsed
    assert (img["class"], img["data_x"]) == ("hero", "a&b")
    assert "<smile>" not in markup and 'a&b"' not in markup
    fluid = client.scaled_picture(image_id, "640x480", widths=(320, 640), sizes="(max-width: 600px) 100vw, 600px")
    parser = _Tags()
    parser.feed(fluid)
    assert all(attrs.get("sizes") == "(max-width: 600px) 100vw, 600px" for tag, attrs in parser.tags[1:])
    assert re.search(r"640x480!?/[^ ]+\.avif 640w", fluid)


def test_picture_leaves_out_formats_not_served_and_sizes_the_policy_refuses(tmp_path: Path) -> None:
    settings = Settings.at(tmp_path, formats=("jpeg", "webp"), signing=SigningSettings("named"))
    client = Client(settings)
    image_id = client.save_image(jpeg(1400, 1000))
    assert " 2x" in client.scaled_picture(image_id, "small")  # 480x320 is "medium", a named size
    markup = client.scaled_picture(image_id, "vga")
    assert "image/avif" not in markup and "image/webp" in markup
    assert " 2x" not in markup  # 1280x960 is not a named size: under 'named' it would not render
    signed = dataclasses.replace(settings, signing=SigningSettings("named", keys=(KEY,)))
    markup = Client(signed).scaled_picture(image_id, "vga")
    assert markup.count(" 2x") == 2 and "?s=" in markup


def test_module_functions_and_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huimages

    env = {"HUIMAGES_HOME": str(tmp_path), "IMAGESERVERURL": "http://img.test/"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    huimages.reset_default_client()
    try:
        image_id = huimages.save_image(jpeg(1000, 700))
        assert huimages.scaled_imageurl(image_id, "small", format="avif").endswith(".avif")
        assert huimages.imageurl(image_id, format="webp").endswith(f"/o/{image_id}/image.webp")
        assert huimages.scaled_srcset(image_id, "small").count(".jpeg") == 2
        assert 'alt="A boat"' in huimages.scaled_picture(image_id, "small", alt="A boat")
        runner = CliRunner(env=env)
        picture = runner.invoke(main, ["tag", image_id, "--size", "small", "--picture"])
        assert picture.exit_code == 0 and picture.stdout.strip() == huimages.scaled_picture(image_id, "small")
        srcset = runner.invoke(main, ["tag", image_id, "--size", "small", "--srcset", "--format", "webp"])
        assert srcset.exit_code == 0 and srcset.stdout.strip() == huimages.scaled_srcset(
            image_id, "small", format="webp"
        )
        refused = runner.invoke(main, ["tag", image_id, "--srcset", "--format", "gif"])
        assert refused.exit_code != 0 and "use one of: jpeg, webp, avif, png" in refused.output
    finally:
        huimages.reset_default_client()
