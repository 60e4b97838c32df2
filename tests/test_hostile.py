"""Hostile inputs, each with an asserted outcome through save_image and through HTTP.

The tables in docs/security.md list these cases. For the HTTP path the bytes are
placed in the originals store directly (as a legacy or migrated original could
arrive), since save_image refuses them.
"""

import io
import random
import re
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

from huimages.client import Client
from huimages.config import Limits, Settings, SigningSettings
from huimages.core.ids import compute_id
from huimages.errors import BackendUnavailable, ImageTooLarge, InvalidImage, Overloaded, StorageError
from huimages.http.app import ImageApp, create_app
from huimages.ops.cli import main
from huimages.serving.failures import FailureMemory
from huimages.serving.policy import sign
from huimages.serving.service import ImageService
from tests.imagetools import decode, encode, jpeg, pattern, with_orientation
from tests.wsgi import call

KEY = "hostile-key-0123456789"
HOSTILE_DIR = Path(__file__).parent / "hostile"


def forged_png(width: int, height: int) -> bytes:
    data = encode(Image.new("L", (1, 1)), "PNG")
    at = data.index(b"IHDR")
    chunk = b"IHDR" + struct.pack(">II", width, height) + data[at + 12 : at + 17]
    return data[: at - 4] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[at + 21 :]


def forged_gif(width: int, height: int) -> bytes:
    screen = struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return b"GIF89a" + screen + frame + b";"


def forged_jpeg(width: int, height: int) -> bytes:
    data = bytearray(jpeg(64, 48))
    at = data.index(b"\xff\xc2") if b"\xff\xc2" in data else data.index(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def forged_webp(width: int, height: int) -> bytes:
    data = bytearray(encode(pattern(64, 48), "WEBP", quality=50))
    assert data[12:16] == b"VP8 "
    data[26:30] = struct.pack("<HH", width & 0x3FFF, height & 0x3FFF)
    return bytes(data)


def forged_tiff(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("L", (4, 4)), "TIFF"))
    assert data[:4] == b"II*\x00"
    ifd = struct.unpack("<I", data[4:8])[0]
    for n in range(struct.unpack("<H", data[ifd : ifd + 2])[0]):
        entry = ifd + 2 + 12 * n
        tag = struct.unpack("<H", data[entry : entry + 2])[0]
        if tag in (256, 257):
            data[entry + 2 : entry + 12] = struct.pack("<HII", 4, 1, width if tag == 256 else height)
    return bytes(data)


def forged_isobmff(fmt: str, width: int, height: int) -> bytes:
    """A HEIC or AVIF whose image spatial extents box (``ispe``) declares ``width`` x ``height``.

    The picture is 256x128 (a whole number of HEVC blocks, so no clean aperture box crops it back).
    """
    data = bytearray(encode(pattern(256, 128), fmt, quality=50))
    at = data.index(b"ispe")
    assert struct.unpack(">II", data[at + 8 : at + 16]) == (256, 128)
    data[at + 8 : at + 16] = struct.pack(">II", width, height)
    return bytes(data)


def noisy(fmt: str) -> bytes:
    return encode(Image.effect_noise((256, 128), 60).convert("RGB"), fmt, quality=80)


def scrambled(fmt: str) -> bytes:
    """A HEIC or AVIF whose coded picture (the ``mdat`` box) is random bytes: the boxes parse, the picture cannot."""
    data = bytearray(noisy(fmt))
    at = data.index(b"mdat") + 4
    data[at:] = random.Random(7).randbytes(len(data) - at)
    return bytes(data)


def damaged(fmt: str, truncate: bool = False, **options: object) -> bytes:
    """A noisy picture's file cut in half, or with 64 random bytes in the middle of its picture data."""
    data = bytearray(encode(Image.effect_noise((256, 192), 60).convert("RGB"), fmt, **options))
    middle = len(data) // 2
    if truncate:
        return bytes(data[:middle])
    data[middle : middle + 64] = random.Random(5).randbytes(64)
    return bytes(data)


def many_frames(count: int, side: int = 16) -> bytes:
    frames = [Image.new("RGB", (side, side), (n % 256, n // 256 % 256, 128)) for n in range(count)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=20)


def tiff_pages(count: int) -> bytes:
    """A TIFF of ``count`` 1x1 grey pages (about 100 bytes each), all sharing one pixel."""
    entries = ((256, 3, 1), (257, 3, 1), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 8), (278, 3, 1), (279, 4, 1))
    size = 2 + 12 * len(entries) + 4
    pages = []
    for n in range(count):
        following = 0 if n == count - 1 else 16 + size * (n + 1)
        fields = b"".join(struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in entries)
        pages.append(struct.pack("<H", len(entries)) + fields + struct.pack("<I", following))
    return b"II*\x00" + struct.pack("<I", 16) + b"\x80" + bytes(7) + b"".join(pages)


def gif_frames(count: int) -> bytes:
    """A GIF of ``count`` 1x1 frames (15 bytes each): the million-frame GIF is 15 MB."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"  # clear, pixel 0, end
    return screen + frame * count + b"\x3b"


def bad_orientation(value: object) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return encode(pattern(300, 200), "JPEG", exif=exif.tobytes())


def bad_exif_block() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "a maker name long enough to need an offset"
    return exif.tobytes()[:20]


# name: (bytes factory, exception from save_image or None if accepted, message, HTTP status)
BAD: dict[str, tuple[Callable[[], bytes], type[Exception], str, int]] = {
    "empty file": (lambda: b"", InvalidImage, "empty", 422),
    "one byte": (lambda: b"\xff", InvalidImage, "accepted format", 422),
    "wrong magic": (lambda: b"\x89PNX" + encode(pattern(20, 20), "PNG")[4:], InvalidImage, "accepted format", 422),
    "BMP (not accepted)": (lambda: encode(pattern(20, 20), "BMP"), InvalidImage, "accepted format", 422),
    "truncated JPEG": (lambda: jpeg(800, 600)[:9000], InvalidImage, "truncated or corrupt", 422),
    "truncated PNG": (
        lambda: encode(Image.effect_noise((300, 300), 60), "PNG")[:2000],
        InvalidImage,
        "truncated|corrupt",
        422,
    ),
    "truncated GIF": (lambda: damaged("GIF", truncate=True), InvalidImage, "truncated or corrupt", 422),
    "truncated WebP": (lambda: damaged("WEBP", truncate=True), InvalidImage, "truncated or corrupt", 422),
    "truncated TIFF": (lambda: damaged("TIFF", truncate=True), InvalidImage, "truncated or corrupt", 422),
    "JPEG with damaged picture data": (lambda: damaged("JPEG", quality=80), InvalidImage, "truncated or corrupt", 422),
    "GIF with damaged picture data": (lambda: damaged("GIF"), InvalidImage, "truncated or corrupt", 422),
    "deflated TIFF with damaged picture data": (
        lambda: damaged("TIFF", compression="tiff_deflate"),
        InvalidImage,
        "truncated or corrupt",
        422,
    ),
    "PNG bomb 60000x60000": (lambda: forged_png(60000, 60000), ImageTooLarge, "pixels", 422),
    "GIF bomb 65535x65535": (lambda: forged_gif(65535, 65535), ImageTooLarge, "pixels", 422),
    "JPEG bomb 65000x65000": (lambda: forged_jpeg(65000, 65000), ImageTooLarge, "pixels", 422),
    "WebP bomb 16383x16383": (lambda: forged_webp(16383, 16383), ImageTooLarge, "pixels", 422),
    "TIFF bomb 100000x100000": (lambda: forged_tiff(100000, 100000), ImageTooLarge, "pixels", 422),
    "HEIC bomb 20000x10000": (lambda: forged_isobmff("HEIF", 20000, 10000), ImageTooLarge, "pixels", 422),
    "HEIC bomb 60000x60000": (lambda: forged_isobmff("HEIF", 60000, 60000), ImageTooLarge, "pixels", 422),
    "AVIF bomb 20000x10000": (lambda: forged_isobmff("AVIF", 20000, 10000), ImageTooLarge, "pixels", 422),
    "AVIF 7100x7100 (over the pixel limit)": (
        lambda: forged_isobmff("AVIF", 7100, 7100),
        ImageTooLarge,
        "more than the limit",
        422,
    ),
    "AVIF bomb 60000x60000 (refused by libavif)": (
        lambda: forged_isobmff("AVIF", 60000, 60000),
        InvalidImage,
        "truncated or corrupt: an AVIF file",
        422,
    ),
    "truncated HEIC": (lambda: noisy("HEIF")[:3000], InvalidImage, "truncated or corrupt", 422),
    "truncated AVIF": (lambda: noisy("AVIF")[:3000], InvalidImage, "truncated or corrupt", 422),
    "HEIC with a scrambled picture": (lambda: scrambled("HEIF"), InvalidImage, "truncated or corrupt", 422),
    "AVIF with a scrambled picture": (lambda: scrambled("AVIF"), InvalidImage, "truncated or corrupt", 422),
    "10000x6000 in a tiny PNG": (lambda: forged_png(10000, 6000), ImageTooLarge, "more than the limit", 422),
    "GIF of 4000 frames over the pixel limit": (
        lambda: many_frames(4000, 120),
        ImageTooLarge,
        "more than 3000 frames or pages",
        422,
    ),
    "TIFF of 80,000 pages": (lambda: tiff_pages(80_000), ImageTooLarge, "more than 3000 frames or pages", 422),
    "GIF of a million frames": (lambda: gif_frames(1_000_000), ImageTooLarge, "more than 3000 frames or pages", 422),
    "GIF whose second frame grows the canvas to 3043x32059 (fuzzer)": (
        lambda: (HOSTILE_DIR / "fuzz-gif-frame-grows-canvas.gif").read_bytes(),
        ImageTooLarge,
        "frame 2 of the image is 3043x32059",
        422,
    ),
    "GIF with a truncated frame (fuzzer)": (
        lambda: (HOSTILE_DIR / "fuzz-gif-truncated-frame.gif").read_bytes(),
        InvalidImage,
        "truncated or corrupt",
        422,
    ),
}

# name: (bytes factory, size of the 240x160 rendering)
ACCEPTED: dict[str, tuple[Callable[[], bytes], tuple[int, int]]] = {
    "1 x 10000 aspect": (lambda: encode(Image.new("L", (1, 10000), 90), "PNG"), (1, 160)),
    "10000 x 1 aspect": (lambda: encode(Image.new("L", (10000, 1), 90), "PNG"), (240, 1)),
    "CMYK JPEG": (lambda: encode(pattern(300, 200, "CMYK"), "JPEG"), (240, 160)),
    "16-bit PNG": (lambda: encode(pattern(300, 200, "I;16"), "PNG"), (240, 160)),
    "EXIF orientation 9": (lambda: bad_orientation(9), (240, 160)),
    "EXIF orientation 0": (lambda: bad_orientation(0), (240, 160)),
    "EXIF orientation 65535": (lambda: bad_orientation(65535), (240, 160)),
    "EXIF block cut short": (lambda: encode(pattern(300, 200), "JPEG", exif=bad_exif_block()), (240, 160)),
    "GIF of 3000 frames": (lambda: many_frames(3000), (16, 16)),
    "rotated JPEG (orientation 8)": (lambda: with_orientation(pattern(300, 200), 8), (240, 160)),
}


@pytest.fixture
def site(tmp_path: Path) -> tuple[Client, ImageApp]:
    settings = Settings.at(
        tmp_path,
        server_url="http://img.test/",
        signing=SigningSettings(keys=(KEY,)),
        limits=Limits(max_pixels=50_000_000),
    )
    service = ImageService.from_settings(settings)
    return Client(service=service), create_app(service=service)


def assert_still_serving(client: Client, app: ImageApp) -> None:
    good = client.save_image(jpeg(320, 240))
    response = call(app, f"/small/{good}.jpeg")
    assert response.status == 200 and decode(response.body).size == (213, 160)


def smuggle(client: Client, data: bytes) -> str:
    """Store bytes as an original without the upload checks (a legacy original)."""
    image_id = compute_id(data)
    client.service.originals.put(image_id, data, "application/octet-stream")
    client.service.catalog.record_image(
        image_id, width=1, height=1, content_type="image/jpeg", length=len(data), timestamp="20260101T000000.000000"
    )
    return image_id


@pytest.mark.parametrize("name", list(BAD))
def test_refused_by_save_image(site: tuple[Client, ImageApp], name: str) -> None:
    client, app = site
    factory, error, message, _ = BAD[name]
    data = factory()
    with pytest.raises(error, match=message):
        client.save_image(data)
    assert not client.service.originals.exists(compute_id(data))
    assert client.service.catalog.count() == 0
    assert_still_serving(client, app)


@pytest.mark.parametrize("name", list(BAD))
def test_refused_over_http(site: tuple[Client, ImageApp], name: str) -> None:
    client, app = site
    factory, _, message, status = BAD[name]
    image_id = smuggle(client, factory())
    for size in ("small", "75x75!", "o"):
        response = call(app, f"/{size}/{image_id}.jpeg")
        assert response.status == status, (size, response.text)
        assert re.search(message, response.text) and response.text.count("\n") == 1, response.text
        assert not client.service.cache.path(size, image_id).exists()
    assert not client.service.catalog.get(image_id).get("deleted")
    assert_still_serving(client, app)


def test_files_declaring_far_more_pixels_than_their_bytes_hold_are_refused_at_upload(tmp_path: Path) -> None:
    """The decompression-ratio guard: at upload only (originals stored earlier keep rendering)."""
    client = Client(Settings.at(tmp_path / "strict"))
    for data in (forged_jpeg(7000, 7000), encode(Image.new("1", (6000, 6000)), "PNG")):
        assert len(data) < 5000
        with pytest.raises(ImageTooLarge, match=r"pixels per byte.*raise HUIMAGES_MAX_PIXELS_PER_BYTE"):
            client.save_image(data)
    assert client.service.catalog.count() == 0 and not list((tmp_path / "strict").rglob("originals/**/*.*"))
    flat = encode(Image.new("RGB", (2000, 1900), (250, 250, 250)), "PNG")  # under the 4 MP floor: accepted
    assert client.save_image(flat)
    relaxed = Client(
        Settings.from_env({"HUIMAGES_HOME": str(tmp_path / "relaxed"), "HUIMAGES_MAX_PIXELS_PER_BYTE": "0"})
    )
    assert relaxed.save_image(encode(Image.new("1", (6000, 6000)), "PNG"))


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_odd_but_valid_images(site: tuple[Client, ImageApp], name: str) -> None:
    client, app = site
    factory, expected = ACCEPTED[name]
    image_id = client.save_image(factory())
    response = call(app, f"/240x160/{image_id}.jpeg")
    assert response.status == 200
    out = decode(response.body)
    assert out.mode == "RGB" and out.size == expected == client.scaled_dimensions(image_id, "240x160")
    square = decode(call(app, f"/75x75!/{image_id}.jpeg").body)
    assert square.size == (75, 75)


def test_a_png_whose_picture_data_is_damaged_is_refused_at_upload_by_its_checksums(
    site: tuple[Client, ImageApp],
) -> None:
    """zlib may inflate damaged data into wrong pixels without an error; the chunks' CRCs do not match."""
    client, _ = site
    data = damaged("PNG")
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        client.save_image(data)
    assert client.service.catalog.count() == 0 and not client.service.originals.exists(compute_id(data))


def test_frames_count_against_the_pixel_limit(tmp_path: Path) -> None:
    client = Client(Settings.at(tmp_path, limits=Limits(max_pixels=100_000)))
    with pytest.raises(ImageTooLarge, match=r"391 frames or more of 100096 pixels in all, over the limit of 100000"):
        client.save_image(many_frames(500))
    assert client.save_image(many_frames(300))


ID = "A" * 32 + "01"
# raw request target (as a client sends it): (status, message)
URLS: dict[str, tuple[int, str]] = {
    "/small/%2e%2e/%2e%2e/etc/passwd": (400, "'..'"),
    f"/%2e%2e/{ID}.jpeg": (400, "'..'"),
    f"/small%2F..%2F{ID}.jpeg": (400, "'..'"),
    f"/small/%252e%252e/{ID}.jpeg": (400, "percent-encoding"),
    f"/sm%00all/{ID}.jpeg": (400, "control"),
    f"/\u0662\u0664\u0660x160/{ID}.jpeg": (400, "non-ASCII"),
    f"/%D9%A2%D9%A4%D9%A0x160/{ID}.jpeg": (400, "non-ASCII"),
    f"/\uff12\uff14\uff10x160/{ID}.jpeg": (400, "non-ASCII"),
    "/" + "9" * 5000 + f"/{ID}.jpeg": (400, "at most 200"),
    f"/10x10!!/{ID}.jpeg": (400, "WxH"),
    f"/0x0/{ID}.jpeg": (400, "whole numbers"),
    f"/-10x10/{ID}.jpeg": (400, "WxH"),
    f"/99999999999999999999x1/{ID}.jpeg": (400, "a size is"),
    f"/4097x1/{ID}.jpeg": (400, "4096"),
    f"/10x10/{ID.lower()}.jpeg": (400, "upper case"),
    f"/10x10/{ID}.jpg": (403, "needs a signed URL"),  # huImages' .jpg form: the same derivative
    f"/10x10/{ID}/some-title.jpeg?s={sign('/10x10/' + ID + '.jpeg', KEY)}": (404, "no image"),
    f"/10x10/{ID}.jpeg?s={sign('/11x11/' + ID + '.jpeg', KEY)}": (403, "does not match this path"),
    f"/10x10/{ID}.jpeg?s=": (403, "does not match"),
    f"/10x10/{ID}.jpeg": (403, "needs a signed URL"),
    f"/10x10/{ID}.jpeg?s={sign('/10x10/' + ID + '.jpeg', KEY)}": (404, "no image"),
}


@pytest.mark.parametrize("target", list(URLS))
def test_url_edge_cases(site: tuple[Client, ImageApp], target: str) -> None:
    client, app = site
    status, message = URLS[target]
    response = call(app, "/_huimages", REQUEST_URI=target)
    assert response.status == status, response.text
    assert message in response.text and response.text.count("\n") == 1
    assert not any(p.name != ".huimages" for p in client.service.cache.root.glob("*"))  # nothing cached
    assert_still_serving(client, app)


TOKEN = "hostile-upload-token-0123"
# hostile request bodies and sign-in targets (PATCH /images/<id> and POST /ui/signin): (status, message or Location)
REQUESTS: dict[str, tuple[bytes, int, str]] = {
    "title with a lone surrogate": (b'{"title": "\\ud800"}', 400, "title: character 1 is a lone surrogate"),
    "title with a control character": (b'{"title": "a\\u0000b"}', 400, "title: character 2 is a control character"),
    "reference key with a surrogate": (b'{"references": {"\\udfff": "x"}}', 400, "references: character 1"),
    "type with a noncharacter": (b'{"typ": "\\uffff"}', 400, "typ: character 1 is a noncharacter"),
    "JSON nested 1,000 levels": (b'{"title": ' + b"[" * 1000 + b"]" * 1000 + b"}", 400, "nested deeper than 20"),
    "JSON nested 60,000 levels": (b"[" * 60_000, 400, "nested deeper than 20"),
    "next with CR LF and a header": (b"/ui/\r\nLocation: //evil.example", 303, "/ui/"),
    "next with an encoded LF": (b"/ui/%0aSet-Cookie: a=b", 303, "/ui/"),
    "next leaving /ui/": (b"/ui/../../evil", 303, "/ui/"),
    "next to another host": (b"//evil.example/ui/", 303, "/ui/"),
    "next with a broken IPv6 host (fuzzer)": (b"//[evil/ui/", 303, "/ui/"),
    "next with a surrogate": (
        "/ui/images/\ud800".encode("utf-8", "surrogatepass"),
        303,
        "/ui/images/" + "%EF%BF%BD" * 3,
    ),
}


@pytest.mark.parametrize("name", list(REQUESTS))
def test_hostile_requests(tmp_path: Path, name: str) -> None:
    body, status, expected = REQUESTS[name]
    settings = Settings.at(tmp_path, server_url="http://img.test/", upload_token=TOKEN, admin_token=TOKEN)
    client = Client(settings)
    image_id = client.save_image(jpeg(120, 90))
    app = create_app(service=client.service)
    if name.startswith("next"):
        form = b"token=" + TOKEN.encode() + b"&next=" + body
        environ: dict[str, Any] = {
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(form)),
            "wsgi.input": io.BytesIO(form),
        }
        response = call(app, "/ui/signin", method="POST", **environ)
        assert response.status == status and response.headers["Location"] == expected, response.headers
        return
    headers = {"Authorization": f"Bearer {TOKEN}"}
    environ = {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    response = call(app, f"/images/{image_id}", method="PATCH", headers=headers, **environ)
    assert response.status == status and expected in response.text, response.text
    assert client.service.catalog.get_live(image_id)["title"] == []  # nothing stored


def test_hostile_files_are_reproducible() -> None:
    """The fuzzer's findings are kept as files, so their cases stay in the suite."""
    assert (HOSTILE_DIR / "fuzz-gif-truncated-frame.gif").stat().st_size > 0
    assert (HOSTILE_DIR / "fuzz-gif-frame-grows-canvas.gif").stat().st_size > 0
    assert io.BytesIO((HOSTILE_DIR / "fuzz-gif-truncated-frame.gif").read_bytes()).read(6) == b"GIF87a"


def test_a_failed_original_is_remembered_by_every_process_then_tried_again(tmp_path: Path) -> None:
    """One bounded attempt; then the same answer at once, in this process and the others, until the TTL."""
    settings = Settings.at(tmp_path)
    client = Client(settings)
    image_id = smuggle(client, tiff_pages(80_000))
    first = call(create_app(service=client.service), f"/small/{image_id}.jpeg")
    assert first.status == 422 and "more than 3000 frames" in first.text
    # A second attempt would now succeed: so an answer that still fails was not an attempt.
    (settings.paths.originals_dir / image_id[:2] / image_id).write_bytes(jpeg(320, 240))
    other = ImageService.from_settings(settings)  # another process of the same host
    for service in (client.service, other):
        for path in (f"/small/{image_id}.jpeg", f"/75x75!/{image_id}.webp", f"/o/{image_id}.avif"):
            again = call(create_app(service=service), path)
            assert again.status == 422, (path, again.text)
            assert "more than 3000 frames" in again.text and "tried again after 600 s" in again.text
    result = CliRunner(env={"HUIMAGES_HOME": str(tmp_path)}).invoke(main, ["check"])
    assert result.exit_code == 1 and f"{image_id}: " in result.output and "failing" in result.output
    other.failures.clock = lambda: time.time() + 601  # ten minutes later
    assert call(create_app(service=other), f"/small/{image_id}.jpeg").status == 200
    assert not list(other.failures.recent())


def test_a_render_over_the_deadline_is_remembered_for_that_derivative_only(tmp_path: Path) -> None:
    settings = Settings.at(tmp_path, limits=Limits(render_timeout=1e-6))
    client = Client(settings)
    image_id = client.save_image(jpeg(640, 480))
    app = create_app(service=client.service)
    first = call(app, f"/300x200/{image_id}.jpeg")
    assert first.status == 503 and "over the limit" in first.text
    again = call(app, f"/300x200/{image_id}.jpeg")
    assert again.status == 503 and "ago" in again.text and int(again.headers["Retry-After"]) > 500
    other_size = call(app, f"/301x200/{image_id}.jpeg")
    assert other_size.status == 503 and "ago" not in other_size.text  # tried: only that derivative is remembered


def test_passing_faults_are_never_held_against_an_image(tmp_path: Path) -> None:
    memory = FailureMemory(tmp_path, ttl=600)
    for fault in (BackendUnavailable("s3", "timed out"), StorageError("cache", "disk full"), Overloaded("k", 10, 2)):
        memory.remember(ID, "240x160.jpeg", fault)
        memory.check(ID, "240x160.jpeg")  # nothing remembered
    assert memory.recent() == []
