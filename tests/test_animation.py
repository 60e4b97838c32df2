"""Animated GIF, WebP, APNG and AVIF: kept in WebP and AVIF, the first frame in JPEG and PNG, within the limits.

Each animation is made in code with frames whose whole picture is known, so
every frame served is compared with the frame a browser would show (GIF
frames are written as the changed rectangle only; APNG frames are blended
over the ones before).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageOps, ImageSequence, PngImagePlugin

from huimages.client import Client
from huimages.config import Limits, Settings
from huimages.core.formats import WEBP
from huimages.errors import InvalidImage, RenderTimeout
from huimages.http.app import ImageApp, create_app
from huimages.serving.service import ImageService
from tests.imagetools import assert_similar, decode, encode
from tests.wsgi import call

DURATIONS = [40, 60, 80, 100, 120, 140]


def scene(index: int) -> Image.Image:
    """Frame ``index``: a still background, a disc that moves and changes colour."""
    im = Image.new("RGB", (320, 240), (240, 240, 230))
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 180, 320, 240), fill=(40, 120, 40))
    x = 20 + index * 45
    draw.ellipse((x, 60, x + 70, 130), fill=(200, 30 + index * 35, 30))
    return im


FRAMES = [scene(n) for n in range(len(DURATIONS))]


def animation(fmt: str) -> bytes:
    options: dict[str, object] = {"save_all": True, "append_images": FRAMES[1:], "duration": DURATIONS, "loop": 3}
    if fmt == "WEBP":
        options["lossless"] = True
    if fmt == "AVIF":
        options["quality"] = 95
    return encode(FRAMES[0], fmt, **options)


def blended_apng() -> tuple[bytes, list[Image.Image]]:
    """An APNG whose frames are transparent but for one disc each, blended over what came before."""
    layers, shown = [], []
    canvas = Image.new("RGBA", (320, 240), (0, 0, 0, 0))
    for n in range(4):
        layer = Image.new("RGBA", (320, 240), (0, 0, 0, 0))
        ImageDraw.Draw(layer).ellipse((20 + n * 70, 80, 90 + n * 70, 150), fill=(30, 60 * n, 200, 255))
        layers.append(layer)
        canvas = Image.alpha_composite(canvas, layer)
        shown.append(canvas)
    data = encode(
        layers[0],
        "PNG",
        save_all=True,
        append_images=layers[1:],
        duration=100,
        loop=0,
        disposal=PngImagePlugin.Disposal.OP_NONE,
        blend=PngImagePlugin.Blend.OP_OVER,
    )
    return data, shown


@pytest.fixture
def site(tmp_path: Path) -> tuple[Client, ImageApp]:
    service = ImageService.from_settings(Settings.at(tmp_path, server_url="http://img.test/"))
    return Client(service=service), create_app(service=service)


def frames_of(data: bytes) -> list[tuple[Image.Image, int]]:
    im = Image.open(io.BytesIO(data))
    return [(frame.convert("RGBA"), int(frame.info.get("duration", 0))) for frame in ImageSequence.Iterator(im)]


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG", "AVIF"])
def test_animations_are_kept_frame_by_frame(site: tuple[Client, ImageApp], fmt: str) -> None:
    client, app = site
    image_id = client.save_image(animation(fmt))
    assert client.service.catalog.get(image_id)["frames"] == len(FRAMES)
    for out in ("webp", "avif"):
        for size, dims, expect in (
            ("240x160", (213, 160), [f.resize((213, 160)) for f in FRAMES]),
            ("150x150!", (150, 150), [ImageOps.fit(f, (150, 150)) for f in FRAMES]),  # the same box every frame
        ):
            answer = call(app, f"/{size}/{image_id}.{out}")
            assert answer.status == 200 and answer.headers["Content-Type"] == f"image/{out}"
            served = frames_of(answer.body)
            assert len(served) == len(FRAMES), (fmt, out, size)
            assert [duration for _, duration in served] == DURATIONS
            if out == "webp":  # (Pillow's AVIF writer has no loop count: its animations loop forever)
                assert Image.open(io.BytesIO(answer.body)).info.get("loop") == (0 if fmt == "AVIF" else 3)
            for (frame, _), expected in zip(served, expect, strict=True):
                assert frame.size == dims
                assert_similar(frame, expected, 10)
    for still in ("jpeg", "png"):  # the first frame
        answer = call(app, f"/240x160/{image_id}.{still}")
        im = Image.open(io.BytesIO(answer.body))
        assert answer.status == 200 and getattr(im, "n_frames", 1) == 1
        assert_similar(im, FRAMES[0].resize((213, 160)), 10)


def test_blending_and_disposal_are_resolved(site: tuple[Client, ImageApp]) -> None:
    client, app = site
    data, shown = blended_apng()
    image_id = client.save_image(data)
    served = frames_of(call(app, f"/o/{image_id}.webp").body)
    assert len(served) == len(shown)
    for (frame, _), expected in zip(served, shown, strict=True):
        assert_similar(frame, expected, 4)
        assert frame.getchannel("A").getextrema() == (0, 255)  # transparency kept


def test_the_output_pixel_cap_names_itself_and_stills_still_serve(tmp_path: Path) -> None:
    settings = Settings.at(tmp_path, server_url="http://img.test/", limits=Limits(max_animation_pixels=150_000))
    service = ImageService.from_settings(settings)
    app = create_app(service=service)
    image_id = Client(service=service).save_image(animation("GIF"))
    refused = call(app, f"/240x160/{image_id}.webp")  # 6 frames of 213x160: 204,480 pixels
    assert refused.status == 422 and "HUIMAGES_MAX_ANIMATION_PIXELS (150000)" in refused.text
    assert "204480 pixels" in refused.text and ".jpeg or .png for its first frame" in refused.text
    assert call(app, f"/150x150!/{image_id}.webp").status == 200  # 135,000 pixels
    assert call(app, f"/240x160/{image_id}.jpeg").status == 200


def test_the_render_deadline_applies_between_frames(tmp_path: Path) -> None:
    settings = Settings.at(tmp_path, server_url="http://img.test/", limits=Limits(render_timeout=0.000_001))
    service = ImageService.from_settings(settings)
    image_id = Client(service=service).save_image(animation("GIF"))
    with pytest.raises(RenderTimeout):
        service.derivative(service.parse_size("240x160"), image_id, WEBP)


def test_a_record_from_before_frames_were_counted_learns_them(site: tuple[Client, ImageApp]) -> None:
    client, app = site
    image_id = client.save_image(animation("GIF"))
    catalog = client.service.catalog
    catalog.update(image_id, lambda doc: {k: v for k, v in doc.items() if k != "frames"})
    assert len(frames_of(call(app, f"/240x160/{image_id}.webp").body)) == len(FRAMES)
    assert catalog.get(image_id)["frames"] == len(FRAMES)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_a_truncated_animation_is_refused_and_nothing_stored(site: tuple[Client, ImageApp], fmt: str) -> None:
    client, _ = site
    noisy = [Image.effect_noise((200, 150), 80 + n * 10).convert("RGB") for n in range(6)]
    whole = encode(noisy[0], fmt, save_all=True, append_images=noisy[1:], duration=50, lossless=True)
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        client.save_image(whole[: int(len(whole) * 0.8)])  # the last frame cut short
    assert client.service.catalog.count() == 0
    assert not any(p.is_file() for p in (client.settings.paths.home / "originals").rglob("*"))


def test_a_gif_without_a_loop_plays_once(site: tuple[Client, ImageApp]) -> None:
    client, app = site
    data = encode(FRAMES[0], "GIF", save_all=True, append_images=FRAMES[1:3], duration=80)
    assert "loop" not in Image.open(io.BytesIO(data)).info
    image_id = client.save_image(data)
    assert decode(call(app, f"/240x160/{image_id}.webp").body).info.get("loop") == 1


def test_an_animated_crop_is_cut_around_the_focus_in_every_frame(client: Client) -> None:
    from huimages.core.sizes import crop_box

    image_id = client.save_image(animation("GIF"))
    client.set_focus(image_id, (0.5, 0.2))  # above the middle: the sky the disc moves across, not the ground
    url = client.scaled_imageurl(image_id, "200x100!", format="webp")
    assert "/200x100!@50-20/" in url
    size = client.service.parse_size("200x100!@50-20")
    served = decode(client.service.derivative(size, image_id, WEBP).read())
    frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(served)]
    assert len(frames) == len(FRAMES)
    box = crop_box(320, 240, 200, 100, (0.5, 0.2))
    assert box[1] == 0.0  # the top edge: around y = 20 %, kept inside the picture
    for shown, made in zip(frames, FRAMES, strict=True):
        assert_similar(shown, made.resize((200, 100), Image.Resampling.LANCZOS, box=box), 10)
