"""Masters: made by ingest's one decode, used for every derivative they cover, made again when missing."""

import concurrent.futures
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from huimages.client import Client
from huimages.config import DEFAULT_SIZES, Limits, Settings
from huimages.core.focus import focus_of
from huimages.core.sizes import parse_size
from huimages.errors import ConfigurationError, ImageNotFound
from huimages.http.app import create_app
from huimages.imaging import render
from huimages.imaging.render import is_detailed
from huimages.ops.cli import main
from tests.imagetools import decode, encode, gravel, pattern, photo, ssim, with_orientation
from tests.servers import site_settings
from tests.wsgi import call

SIDE = 1024  # small masters keep the test quick; the default is 2048


def site(tmp_path: Path, **env: str) -> Client:
    return Client(site_settings(tmp_path, **{"HUIMAGES_MASTER_SIDE": str(SIDE), **env}))


def master_of(client: Client, image_id: str, side: int = SIDE) -> Image.Image:
    data = client.service.originals.get_master(image_id, side)
    assert data is not None
    return decode(data)


def test_ingest_makes_an_upright_master(tmp_path: Path) -> None:
    client = site(tmp_path)
    image_id = client.save_image(with_orientation(photo(1800, 1200), 6))
    master = master_of(client, image_id)
    assert master.size == (900, 600) and master.mode == "RGB"  # upright (stored turned), the JPEG at 1/2 scale
    assert not master.getexif()
    assert (tmp_path / "masters" / str(SIDE) / image_id[:2] / image_id).is_file()  # under the data folder
    small = client.save_image(encode(photo(300, 200), "PNG"))
    assert master_of(client, small).size == (300, 200)  # never enlarged
    large_png = client.save_image(encode(photo(1500, 600), "PNG"))
    assert master_of(client, large_png).size == (SIDE, 410)  # other formats: fitted into SIDE
    logo = Image.new("RGBA", (400, 200), (0, 0, 0, 0))
    logo.paste((200, 0, 0, 255), (100, 50, 300, 150))
    transparent = client.save_image(encode(logo, "PNG"))
    assert master_of(client, transparent).mode == "RGBA"  # transparency kept for formats that have it
    off = Client(Settings.from_env({"HUIMAGES_HOME": str(tmp_path / "off"), "HUIMAGES_MASTER_SIDE": "0"}))
    plain = off.save_image(encode(photo(600, 400), "JPEG"))
    assert off.service.originals.get_master(plain, 2048) is None
    assert decode(off.scaled_imagedata(plain, "small")).size == (240, 160)


def test_an_upload_decodes_the_original_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check, the colour conversion, the master, the focus and the placeholders all come from one decode."""
    client = site(tmp_path, HUIMAGES_MASTER_SIDE="2048")
    jpeg, png = encode(photo(3000, 2000), "JPEG", quality=92), encode(photo(1200, 800), "PNG")
    decoders: list[str] = []
    real = Image._getdecoder

    def counted(mode: str, decoder_name: str, args: object, extra: tuple[object, ...] = ()) -> object:
        decoders.append(decoder_name)
        return real(mode, decoder_name, args, extra)

    monkeypatch.setattr(Image, "_getdecoder", counted)
    jpeg_id = client.save_image(jpeg)
    assert decoders.count("jpeg") == 1  # at the master's DCT scale (1/2 here), and nothing decoded again
    assert master_of(client, jpeg_id, 2048).size == (1500, 1000)
    decoders.clear()
    client.save_image(png)
    assert decoders.count("zip") == 1  # (the CRC check reads the chunks, it does not inflate the pixels again)


@pytest.mark.parametrize("token", ["240x160", "150x150!", "480x320", "1024x768", "75x75!", "33x999"])
def test_derivatives_from_the_master_match_the_direct_render(tmp_path: Path, token: str) -> None:
    """SSIM against the same derivative rendered straight from the original (the bench does this on photos)."""
    client = site(tmp_path, HUIMAGES_MASTER_SIDE="2048")
    original = encode(photo(3000, 2000), "JPEG", quality=92)
    image_id = client.save_image(original)
    size = parse_size(token, DEFAULT_SIZES, 4096)
    focus = focus_of(client.get_imagedoc(image_id)).point  # a crop is placed around the image's focus
    direct = decode(render(original, size.focused(focus), 85, Limits()).data)
    served = decode(client.scaled_imagedata(image_id, token))
    assert served.size == direct.size == client.scaled_dimensions(image_id, token)
    assert ssim(served, direct) >= 0.98


def test_a_detailed_master_keeps_its_detail_at_large_sizes(tmp_path: Path) -> None:
    """A master full of fine detail is decoded at twice the output or more and resampled with LANCZOS.

    The mild HAMMING downscale (1024x768 from a 1280-pixel master) lost 0.058 SSIM here; the bound
    is the issue's: at most 0.015 beyond what JPEG loses on the ideal render at the same quality.
    """
    client = site(tmp_path, HUIMAGES_MASTER_SIDE="2048")
    original = encode(gravel(2560, 1600), "JPEG", quality=90)
    image_id = client.save_image(original)
    master = client.service.originals.get_master(image_id, 2048)
    assert master is not None and is_detailed(len(master), (1280, 800))
    ideal = decode(original).resize((1024, 640), Image.Resampling.LANCZOS)
    served = decode(client.scaled_imagedata(image_id, "1024x768"))
    jpeg_loss = 1 - ssim(decode(encode(ideal, "JPEG", quality=85, optimize=True)), ideal)
    assert 1 - ssim(served, ideal) - jpeg_loss <= 0.015
    thumbnail = render(master, parse_size("240x160", DEFAULT_SIZES, 4096), 85, Limits(), source_size=(2560, 1600))
    assert thumbnail.decoded_size == (640, 400)  # 1/2, not the 1/4 (320x200) that covers 240x150
    plain = encode(photo(2560, 1600), "JPEG", quality=85)
    smooth = client.service.originals.get_master(client.save_image(plain), 2048)
    assert smooth is not None and not is_detailed(len(smooth), (1280, 800))
    fast = render(smooth, parse_size("240x160", DEFAULT_SIZES, 4096), 85, Limits(), source_size=(2560, 1600))
    assert fast.decoded_size == (320, 200)  # a smooth master keeps the smallest DCT scale


def test_renders_read_the_master_not_the_original(tmp_path: Path) -> None:
    client = site(tmp_path)
    image_id = client.save_image(encode(photo(2400, 1600), "JPEG"))
    assert master_of(client, image_id).size == (600, 400)  # 1/4: the first DCT scale within SIDE
    client.service.originals.delete(image_id)  # only the master is left
    assert decode(client.scaled_imagedata(image_id, "small")).size == (240, 160)
    assert decode(client.scaled_imagedata(image_id, "300x300!")).size == (300, 300)  # needs 450x300 of 600x400
    with pytest.raises(ImageNotFound):  # larger than the master: from the original, which is gone
        client.scaled_imagedata(image_id, "2000x2000")
    with pytest.raises(ImageNotFound):
        client.scaled_imagedata(image_id, "o")  # never from the master


def test_a_missing_or_unreadable_master_is_made_again(tmp_path: Path) -> None:
    client = site(tmp_path)
    image_id = client.save_image(encode(photo(2000, 1500), "JPEG"))
    client.service.originals.delete_master(image_id, SIDE)  # a host that never had it, a wiped folder
    assert decode(client.scaled_imagedata(image_id, "small")).size == (213, 160)
    assert master_of(client, image_id).size == (1000, 750)
    client.service.originals.put_master(image_id, SIDE, b"\xff\xd8 not a jpeg any more")
    assert decode(client.scaled_imagedata(image_id, "medium")).size == (427, 320)
    assert master_of(client, image_id).size == (1000, 750)


def test_prerender_at_ingest_and_for_a_store(tmp_path: Path) -> None:
    client = site(tmp_path, HUIMAGES_PRERENDER="small,square,150x150,small.avif,75x75!.webp")
    image_id = client.save_image(encode(pattern(900, 600), "JPEG"))
    cache = tmp_path / "cache"
    square = f"75x75!{focus_of(client.get_imagedoc(image_id)).token}"  # a crop around the image's focus
    for folder in ("240x160", square, "150x150"):
        assert (cache / folder / f"{image_id}.jpeg").is_file(), folder
    assert (cache / "240x160" / f"{image_id}.avif").is_file() and (cache / square / f"{image_id}.webp").is_file()
    with pytest.raises(ConfigurationError, match="'png' is not a format served here"):
        Settings.from_env({"HUIMAGES_PRERENDER": "small.png", "HUIMAGES_FORMATS": "jpeg,webp"})

    later = Client(Settings.from_env({"HUIMAGES_HOME": str(tmp_path), "HUIMAGES_MASTER_SIDE": str(SIDE)}))
    other = later.save_image(encode(pattern(901, 600), "JPEG"))
    runner = CliRunner(env={"HUIMAGES_HOME": str(tmp_path), "HUIMAGES_MASTER_SIDE": str(SIDE)})
    result = runner.invoke(main, ["prerender", "medium", "50x50!", "--all-images"])
    assert result.exit_code == 0, result.output
    assert "4 derivatives rendered, 0 were cached already, 0 failed" in result.output
    crop = f"50x50!{focus_of(client.get_imagedoc(image_id)).token}"
    assert (cache / "480x320" / f"{other}.jpeg").is_file() and (cache / crop / f"{image_id}.jpeg").is_file()
    result = runner.invoke(main, ["prerender", "medium", "--id", other])
    assert "0 derivatives rendered, 1 were cached already" in result.output
    result = runner.invoke(main, ["prerender", "medium.webp", "--id", other])
    assert "1 derivatives rendered" in result.output and (cache / "480x320" / f"{other}.webp").is_file()


def test_masters_build_is_resumable(tmp_path: Path) -> None:
    env = {"HUIMAGES_HOME": str(tmp_path), "HUIMAGES_MASTER_SIDE": "0"}
    before = Client(Settings.from_env(env))  # images stored before masters existed
    ids = [before.save_image(encode(pattern(700 + n, 500), "JPEG")) for n in range(3)]
    runner = CliRunner(env={**env, "HUIMAGES_MASTER_SIDE": str(SIDE)})
    result = runner.invoke(main, ["masters", "build", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "masters made: 3, already there: 0, failed: 0" in result.output
    assert "masters made: 0, already there: 3, failed: 0" in runner.invoke(main, ["masters", "build"]).output
    client = Client(Settings.from_env({**env, "HUIMAGES_MASTER_SIDE": str(SIDE)}))
    assert all(client.service.originals.get_master(i, SIDE) for i in ids)


def test_admission_control_refuses_with_503_and_keeps_hits_answering(tmp_path: Path) -> None:
    client = site(tmp_path, HUIMAGES_RENDER_CONCURRENCY="1", HUIMAGES_RENDER_WAIT="0.05")
    image_id = client.save_image(encode(photo(1600, 1200), "JPEG"))
    app = create_app(service=client.service)
    assert call(app, f"/small/{image_id}.jpeg").status == 200  # a hit from now on
    release = threading.Event()
    original_render = client.service._render

    def slow_render(*args, **kwargs):
        release.wait(10)  # holds the only slot until the flood has arrived
        return original_render(*args, **kwargs)

    client.service._render = slow_render  # type: ignore[method-assign]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        flood = [pool.submit(call, app, f"/{100 + n}x{100 + n}/{image_id}.jpeg") for n in range(10)]
        hits = [call(app, f"/small/{image_id}.jpeg") for _ in range(20)]  # while every slot is taken
        answered, _ = concurrent.futures.wait(flood, timeout=2)  # the one in the slot cannot answer yet
        release.set()  # the one render in its slot goes on
        answers = [f.result() for f in flood]
    assert all(h.status == 200 for h in hits)  # hits never wait for a slot
    statuses = [a.status for a in answers]
    assert statuses.count(200) == 1 and statuses.count(503) == 9, statuses  # nothing else failed
    busy = next(a for a in answers if a.status == 503)
    assert busy.headers["Retry-After"] == "2" and "render slots" in busy.text
    assert len(answered) == 9  # the refused ones answered without waiting for the render


def test_the_cache_write_does_not_hold_a_render_slot(tmp_path: Path) -> None:
    """Decode, scale and encode take a slot; the write (an fsync) does not keep the next render waiting."""
    client = site(tmp_path, HUIMAGES_RENDER_CONCURRENCY="1")
    image_id = client.save_image(encode(photo(800, 600), "JPEG"))
    service = client.service
    real_write, slots_during_write = service.cache.write, []

    def observed_write(*args, **kwargs):
        slots_during_write.append(service.slots.in_flight)
        return real_write(*args, **kwargs)

    service.cache.write = observed_write  # type: ignore[method-assign]
    cached = service.derivative(service.parse_size("200x150"), image_id)
    assert decode(cached.read()).size == (200, 150)
    assert slots_during_write == [0] and service.slots.in_flight == 0
