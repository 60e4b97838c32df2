"""Focus points and placeholders: found at upload, set by hand, crops placed around them under URLs that name them."""

from __future__ import annotations

import base64
import concurrent.futures
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageOps

from huimages.client import Client
from huimages.config import Settings, SigningSettings
from huimages.core.focus import CENTRE, Focus, check_focus, focus_of, known_points, set_automatic, set_manual, to_stored
from huimages.core.formats import WEBP
from huimages.core.sizes import crop_box, parse_size
from huimages.errors import ConfigurationError, InvalidFocus, InvalidSize, SizeNotAllowed, UnknownFocus
from huimages.imaging import focus as detection
from huimages.imaging.placeholder import average_colour, decode_thumbhash, encode_thumbhash, preview_data_uri
from huimages.ops.cli import main
from huimages.serving.census import census
from tests.imagetools import (
    assert_similar,
    astronaut,
    backdrop,
    decode,
    encode,
    placed,
    with_orientation,
)

NAMED = {"square": "75x75!", "small": "240x160"}
#: The crop shapes sites ask for: a square, a 4:1 banner, a 1:2 tall card.
SHAPES = ((300, 300), (800, 200), (200, 400))


def holds(region: tuple[float, float, float, float], box: tuple[float, float, float, float]) -> bool:
    return region[0] <= box[0] and region[1] <= box[1] and region[2] >= box[2] and region[3] >= box[3]


def widened(box: tuple[float, float, float, float], by: float) -> tuple[float, float, float, float]:
    return (box[0] - by, box[1] - by, box[2] + by, box[3] + by)


def ideal_crop(picture: Image.Image, shape: tuple[int, int], at: tuple[float, float]) -> Image.Image:
    """The crop of ``shape`` around ``at`` made straight from the whole picture (LANCZOS)."""
    box = crop_box(picture.width, picture.height, shape[0], shape[1], at)
    return picture.convert("RGB").resize(shape, Image.Resampling.LANCZOS, box=box)


def crop_region(
    size: tuple[int, int], shape: tuple[int, int], at: tuple[float, float]
) -> tuple[float, float, float, float]:
    """The part of a ``size`` picture a ``shape`` crop around ``at`` keeps, as fractions."""
    left, top, right, bottom = crop_box(size[0], size[1], shape[0], shape[1], at)
    return (left / size[0], top / size[1], right / size[0], bottom / size[1])


@pytest.fixture
def focused_client(tmp_path: Path) -> Client:
    return Client(Settings.at(tmp_path / "data", server_url="http://img.test/"))


# -- the pure parts ------------------------------------------------------------------------------


def test_a_crop_around_a_focus_is_kept_inside_the_picture() -> None:
    assert crop_box(400, 300, 100, 100) == (50.0, 0.0, 350.0, 300.0)  # the centre, as huImages cut it
    assert crop_box(400, 300, 100, 100, (0.9, 0.5)) == (100.0, 0.0, 400.0, 300.0)  # pushed back inside
    assert crop_box(400, 300, 100, 100, (0.3, 0.5)) == (0.0, 0.0, 300.0, 300.0)
    assert crop_box(400, 300, 100, 100, (0.5, 0.5)) == crop_box(400, 300, 100, 100)
    left, top, right, bottom = crop_box(300, 400, 400, 100, (0.5, 0.25))
    assert (left, right) == (0.0, 300.0) and top == pytest.approx(100 - 75 / 2) and bottom - top == 75


@given(
    st.integers(10, 3000),
    st.integers(10, 3000),
    st.integers(1, 500),
    st.integers(1, 500),
    st.floats(0, 1),
    st.floats(0, 1),
)
def test_a_crop_box_has_the_shape_asked_for_and_stays_inside(
    w: int, h: int, bw: int, bh: int, x: float, y: float
) -> None:
    left, top, right, bottom = crop_box(w, h, bw, bh, (x, y))
    assert left >= -1e-9 and top >= -1e-9 and right <= w + 1e-9 and bottom <= h + 1e-9
    assert (right - left) * bh == pytest.approx((bottom - top) * bw, rel=1e-9)


def test_focus_tokens_in_sizes() -> None:
    size = parse_size("150x150!@42-31", NAMED, 4000)
    assert (size.width, size.height, size.crop, size.focus, size.spec) == (150, 150, True, (42, 31), "150x150!@42-31")
    assert size.unfocused.spec == "150x150!" and size.focus_at == (0.42, 0.31)
    named = parse_size("square@0-100", NAMED, 4000)
    assert named.spec == "75x75!@0-100" and named.unfocused.token == "square"
    assert parse_size("square", NAMED, 4000).focused((42, 31)).spec == "75x75!@42-31"
    assert parse_size("small", NAMED, 4000).focused((42, 31)).spec == "240x160"  # a fit has no focus
    assert parse_size("square", NAMED, 4000).focused((50, 50)).spec == "75x75!"  # nor has the centre
    for wrong, why in (
        ("240x160@42-31", "only a crop"),
        ("150x150!@50-50", "centre"),
        ("150x150!@101-0", "whole percents"),
        ("150x150!@4231", "whole percents"),
        ("150x150!@-1-2", "whole percents"),
    ):
        with pytest.raises(InvalidSize, match=why):
            parse_size(wrong, NAMED, 4000)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_point_of_the_upright_picture_maps_onto_the_stored_one(orientation: int) -> None:
    stored = Image.new("L", (40, 30))
    stored.putpixel((30, 6), 255)  # a point of the stored pixels...
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.info["exif"] = exif.tobytes()
    upright = ImageOps.exif_transpose(stored)
    assert upright is not None
    x, y = next((x, y) for x in range(upright.width) for y in range(upright.height) if upright.getpixel((x, y)))
    sx, sy = to_stored(((x + 0.5) / upright.width, (y + 0.5) / upright.height), orientation)  # ...found again
    assert (int(sx * 40), int(sy * 30)) == (30, 6)


def test_a_record_keeps_the_focus_set_by_hand_and_remembers_the_ones_before() -> None:
    found = Focus(0.7, 0.2, "face", (0.6, 0.1, 0.8, 0.3))
    doc = set_automatic({}, found)
    assert focus_of(doc) == found and known_points(doc) == {(70, 20)}
    doc = set_manual(doc, Focus(0.1, 0.9))
    assert focus_of(doc).point == (10, 90) and focus_of(doc).source == "manual"
    assert doc["focus_past"] == ["70-20"] and known_points(doc) == {(10, 90), (70, 20)}
    again = set_automatic(doc, Focus(0.65, 0.25, "face"))  # the same bytes stored again: the hand's focus stays
    assert focus_of(again).point == (10, 90) and again["auto_focus"]["x"] == 0.65
    back = set_manual(again, None)
    assert focus_of(back).point == (65, 25) and "auto_focus" not in back
    assert set(back["focus_past"]) == {"70-20", "10-90"}
    assert focus_of({}) == CENTRE and focus_of({"focus": {"x": "left"}}) == CENTRE  # written by hand: ignored


# -- found at upload -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "left", "top"),
    [(1800, 900, 1000, 100), (1800, 900, 20, 120), (900, 1800, 100, 1000), (900, 1800, 120, 30), (1000, 1000, 0, 0)],
)
def test_a_face_off_the_centre_is_found_and_every_crop_shape_holds_it(
    focused_client: Client, width: int, height: int, left: int, top: int
) -> None:
    data, face = placed(width, height, left, top)
    image_id = focused_client.save_image(data)
    focus = focus_of(focused_client.get_imagedoc(image_id))
    assert focus.source == "face" and focus.box is not None
    assert face[0] <= focus.x <= face[2] and face[1] <= focus.y <= face[3]
    for shape in SHAPES:
        spec = f"{shape[0]}x{shape[1]}!"
        url = focused_client.scaled_imageurl(image_id, spec)
        assert f"/{spec}{focus.token}/" in url
        # the whole face, within the 1 % a URL's focus is rounded to (a banner of a portrait is barely taller)
        assert holds(crop_region((width, height), shape, focus.point_fractions), widened(face, -0.01)), shape
        if shape == (300, 300) and width > height:  # the centred crop of a landscape cut the face, or missed it
            assert not holds(crop_region((width, height), shape, (0.5, 0.5)), face)
        # the render is that region: compare with the ideal crop of the picture
        rendered = decode(focused_client.scaled_imagedata(image_id, spec))
        assert rendered.size == shape
        assert_similar(rendered, ideal_crop(decode(data), shape, focus.point_fractions), 6)


def test_faces_are_searched_in_several_threads_at_once() -> None:
    """Uploads and migrate's workers search at once, images of different sizes: each thread has its own cascade
    (one shared cascade failed here with OpenCV's assertion on its scale data)."""
    pictures = [detection.shrink(decode(placed(w, h, 40, 30)[0])) for w, h in ((900, 600), (600, 900), (700, 700))]
    alone = [detection.detect_faces(picture) for picture in pictures]
    assert all(alone) or detection._cascade() is None  # (without the faces extra: no face anywhere)

    def search(turn: int) -> list[list[tuple[int, int, int, int]]]:
        return [detection.detect_faces(pictures[(turn + k) % 3]) for k in range(30)]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for turn, found in enumerate(pool.map(search, range(4))):
            assert found == [alone[(turn + k) % 3] for k in range(30)]


def test_without_the_detector_saliency_places_the_crop(focused_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detection, "_cascade", lambda: None)
    assert detection.detector().startswith("none, saliency only") and "huimages[faces]" in detection.detector()
    data, face = placed(1800, 900, 1000, 100)
    focus = focus_of(focused_client.get_imagedoc(focused_client.save_image(data)))
    assert focus.source == "saliency"
    assert face[0] - 0.05 <= focus.x <= face[2] + 0.05  # the busy region is the astronaut


def test_saliency_finds_what_stands_out_and_a_flat_picture_keeps_the_centre() -> None:
    canvas = backdrop(800, 400)
    draw = ImageDraw.Draw(canvas)
    for k in range(12):  # a busy, colourful object at the left
        draw.rectangle([60 + 9 * k, 150 + 5 * k, 90 + 9 * k, 200 + 5 * k], fill=(200, 40 + 15 * k, 30), outline=0)
    found = detection.saliency_focus(canvas)
    assert found is not None and found.x < 0.3 and 0.3 < found.y < 0.8
    assert detection.saliency_focus(backdrop(800, 400)) is None
    assert detection.find_focus(Image.new("RGB", (300, 200), (10, 120, 200))) == CENTRE


# -- crops, URLs and the cache ------------------------------------------------------------------


def test_a_new_focus_names_new_urls_and_the_old_ones_keep_answering(focused_client: Client) -> None:
    service = focused_client.service
    data, _ = placed(1800, 900, 1000, 100)
    image_id = focused_client.save_image(data)
    found = focus_of(focused_client.get_imagedoc(image_id))
    before = service.parse_size(f"square{found.token}")
    first = service.serve(before, image_id, None).read()
    assert focused_client.set_focus(image_id, (0.1, 0.5)) == {"x": 0.1, "y": 0.5, "source": "manual"}
    assert "/75x75!@10-50/" in focused_client.scaled_imageurl(image_id, "square")
    after = service.parse_size("square@10-50")
    assert difference_of(service.serve(after, image_id, None).read(), first) > 20  # another part of the picture
    service.cache.remove_image(image_id)  # another host, or a pruned cache: the old URL renders as before
    assert difference_of(service.serve(before, image_id, None).read(), first) < 3
    service.serve(after, image_id, None).close()
    with pytest.raises(UnknownFocus, match="no focus '33-33'"):  # no other focus is rendered
        service.serve(service.parse_size("square@33-33"), image_id, None)
    centred = service.serve(service.parse_size("square"), image_id, None).read()  # huImages' URL: centred
    assert difference_of(centred, first) > 20
    assert focused_client.set_focus(image_id, None)["source"] == "face"
    assert f"/75x75!{found.token}/" in focused_client.scaled_imageurl(image_id, "square")
    with pytest.raises(InvalidFocus):
        focused_client.set_focus(image_id, (1.5, 0.2))
    # a delete removes the files of every focus the record names (and of none it does not: no walk of them)
    focused = list(service.cache.root.glob(f"75x75!@*/{image_id}.jpeg"))
    assert len(focused) == 2
    other = focused_client.save_image(encode(backdrop(400, 300), "JPEG"))
    stray = service.cache.write("75x75!@33-33", other, b"x")  # a focus folder of another image only
    stray.close()
    focused_client.delete_image(image_id)
    assert not any(path.exists() for path in focused)
    assert service.cache.exists("75x75!@33-33", other)
    # another host learns only the ID of a deleted image (its sweep): every focus folder is tried
    assert service.cache.remove_image(other) == 1 and not service.cache.exists("75x75!@33-33", other)


def difference_of(a: bytes, b: bytes) -> float:
    from tests.imagetools import difference

    return difference(decode(a), decode(b))


def test_srcsets_pictures_and_tags_name_the_focus(focused_client: Client) -> None:
    data, _ = placed(1800, 900, 1000, 100)
    image_id = focused_client.save_image(data)
    token = focus_of(focused_client.get_imagedoc(image_id)).token
    assert token
    srcset = focused_client.scaled_srcset(image_id, "150x150!")
    assert f"/150x150!{token}/" in srcset and f"/300x300!{token}/" in srcset
    picture = focused_client.scaled_picture(image_id, "square")
    assert picture.count(f"/75x75!{token}/") == 4  # 1x of AVIF, WebP and the <img>'s srcset, and its src
    assert picture.count(f"/150x150!{token}/") == 3  # and 2x
    assert f'src="http://img.test/75x75!{token}/' in picture
    assert f"/240x160/{image_id}" in focused_client.scaled_tag(image_id, "small")  # fit sizes never change


def test_the_focus_survives_a_change_of_master_side(tmp_path: Path) -> None:
    data, _ = placed(1800, 900, 1000, 100)
    first = Client(Settings.at(tmp_path / "data", server_url="http://img.test/", master_side=2048))
    image_id = first.save_image(data)
    focus = focus_of(first.get_imagedoc(image_id))
    smaller = Client(Settings.at(tmp_path / "data", server_url="http://img.test/", master_side=640))
    assert smaller.scaled_imageurl(image_id, "200x400!") == first.scaled_imageurl(image_id, "200x400!")
    rendered = decode(smaller.scaled_imagedata(image_id, "200x400!"))
    ideal = ideal_crop(decode(data), (200, 400), focus.point_fractions)
    assert_similar(rendered, ideal, 8)


# -- placeholders --------------------------------------------------------------------------------


#: (picture made in code, its ThumbHash from the reference implementation: npm thumbhash 0.1.1, rgbaToThumbHash).
def _reference_pictures() -> list[tuple[Image.Image, str]]:
    a = Image.linear_gradient("L").resize((32, 24)).convert("RGB")
    ImageDraw.Draw(a).ellipse((4, 4, 20, 18), fill=(200, 40, 90))
    b = Image.new("RGBA", (20, 32), (0, 0, 0, 0))
    draw = ImageDraw.Draw(b)
    draw.rectangle((3, 5, 15, 25), fill=(30, 160, 220, 255))
    draw.ellipse((0, 0, 10, 10), fill=(250, 200, 0, 128))
    grey = Image.radial_gradient("L").resize((32, 32))
    c = Image.merge("RGB", (grey, grey.rotate(90), grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    return [
        (a.convert("RGBA"), "H1gaDYyHeIiAd4iId2iHdxuIsIEI"),
        (b, "IjaBKwY3rM/3amesz8/6/AlIiYiBm1g="),
        (c.convert("RGBA"), "IggOBwD4h4iId3h/hniHh4iI+EeHh38H"),
    ]


def test_thumbhash_matches_the_reference_implementation() -> None:
    for picture, expected in _reference_pictures():
        assert base64.b64encode(encode_thumbhash(picture)).decode() == expected


def test_thumbhash_decodes_into_a_blurred_picture_of_the_image() -> None:
    picture = Image.new("RGB", (40, 20), (200, 30, 30))
    picture.paste((30, 30, 200), (20, 0, 40, 20))  # red left, blue right
    decoded = decode_thumbhash(encode_thumbhash(picture))
    assert decoded.mode == "RGBA" and decoded.size == (32, 18)  # its aspect ratio, as the hash keeps it (7:4)
    left, right = decoded.getpixel((2, 8)), decoded.getpixel((29, 8))
    assert isinstance(left, tuple) and isinstance(right, tuple)
    assert left[0] > left[2] + 60 and right[2] > right[0] + 60
    uri = preview_data_uri(base64.b64encode(encode_thumbhash(picture)).decode())
    assert uri.startswith("data:image/png;base64,") and len(uri) < 2000
    assert decode(base64.b64decode(uri.split(",", 1)[1])).size == (32, 18)


def test_placeholders_are_stored_at_upload_and_shown_by_tags(focused_client: Client) -> None:
    picture = Image.new("RGB", (300, 200), (40, 120, 200))
    image_id = focused_client.save_image(encode(picture, "PNG"))
    placeholder = focused_client.get_imagedoc(image_id)["placeholder"]
    assert placeholder["color"] == "#2878c8" and len(base64.b64decode(placeholder["thumbhash"])) <= 25
    assert average_colour(Image.new("RGBA", (2, 1), (0, 0, 0, 0))) == "#ffffff"
    tag = focused_client.scaled_tag(image_id, "small", placeholder=True)
    assert 'style="background-color:#2878c8"' in tag
    tag = focused_client.scaled_tag(image_id, "small", placeholder="preview", style="border:0")
    assert "background-image:url(data:image/png;base64," in tag and tag.count("style=") == 1 and "border:0" in tag
    assert "background-color:#2878c8" in focused_client.scaled_picture(image_id, "small", placeholder=True)
    assert "style=" not in focused_client.scaled_tag(image_id, "small")
    with pytest.raises(ValueError, match="placeholder is True"):
        focused_client.scaled_tag(image_id, "small", placeholder="blurry")


def test_an_oriented_photo_gets_its_focus_upright(focused_client: Client) -> None:
    canvas = backdrop(1600, 1000)
    canvas.paste(astronaut(), (800, 200))
    data = with_orientation(canvas, 6)
    image_id = focused_client.save_image(data)
    focus = focus_of(focused_client.get_imagedoc(image_id))
    assert focus.source == "face" and focus.x > 0.6
    rendered = decode(focused_client.scaled_imagedata(image_id, "300x300!"))
    ideal = ideal_crop(canvas, (300, 300), focus.point_fractions)
    assert_similar(rendered, ideal, 8)


# -- the command line ----------------------------------------------------------------------------


def forget_focus(client: Client, image_id: str) -> None:
    """Make the record look as it did before focus points (a store from an earlier release)."""
    fields = ("focus", "auto_focus", "focus_past", "placeholder")
    client.service.catalog.update(image_id, lambda doc: {k: v for k, v in doc.items() if k not in fields})


def test_the_focus_command_shows_sets_and_finds_for_every_image(tmp_path: Path) -> None:
    env = {"HUIMAGES_HOME": str(tmp_path), "IMAGESERVERURL": "http://img.test/"}
    client = Client(Settings.from_env(env))
    data, _ = placed(1800, 900, 1000, 100)
    with_face = client.save_image(data)
    plain = client.save_image(encode(backdrop(400, 300), "JPEG"))
    runner = CliRunner(env=env)
    shown = runner.invoke(main, ["focus", with_face])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["source"] == "face"
    result = runner.invoke(main, ["focus", with_face, "0.25", "0.75"])
    assert result.exit_code == 0 and json.loads(result.stdout) == {"source": "manual", "x": 0.25, "y": 0.75}
    assert "/75x75!@25-75/" in runner.invoke(main, ["url", with_face, "--size", "square"]).stdout
    assert json.loads(runner.invoke(main, ["focus", with_face, "--auto"]).stdout)["source"] == "face"
    refused = runner.invoke(main, ["focus", with_face, "1.5", "0.2"])
    assert refused.exit_code == 2 and "1.5" in refused.output
    assert runner.invoke(main, ["focus"]).exit_code == 2

    for image_id in (with_face, plain):  # stored before focus points
        forget_focus(client, image_id)
    assert "/75x75!/" in client.scaled_imageurl(with_face, "square")  # centred until it has one
    result = runner.invoke(main, ["focus", "--all"])
    assert result.exit_code == 0, result.output
    assert "focus points centre: 1, face: 1; failed: 0" in result.stdout
    assert "focus points already: 2; failed: 0" in runner.invoke(main, ["focus", "--all"]).stdout  # resumable
    assert focus_of(client.get_imagedoc(with_face)).source == "face"
    assert client.get_imagedoc(plain)["placeholder"]["color"].startswith("#")
    checked = runner.invoke(main, ["check"])
    assert "focus     found at upload by: OpenCV" in checked.stdout


def test_masters_build_finds_the_focus_of_images_stored_before_both(tmp_path: Path) -> None:
    env = {"HUIMAGES_HOME": str(tmp_path), "IMAGESERVERURL": "http://img.test/", "HUIMAGES_MASTER_SIDE": "0"}
    before = Client(Settings.from_env(env))
    image_id = before.save_image(placed(1800, 900, 1000, 100)[0])
    assert focus_of(before.get_imagedoc(image_id)).source == "face"  # without masters too, from a small decode
    forget_focus(before, image_id)
    result = CliRunner(env={**env, "HUIMAGES_MASTER_SIDE": "1024"}).invoke(main, ["masters", "build"])
    assert result.exit_code == 0 and "masters made: 1" in result.stdout, result.output
    after = Client(Settings.from_env({**env, "HUIMAGES_MASTER_SIDE": "1024"}))
    assert after.service.originals.get_master(image_id, 1024) is not None
    assert focus_of(after.get_imagedoc(image_id)).source == "face"


def test_the_focus_setting_chooses_how_uploads_find_it(tmp_path: Path) -> None:
    data, _ = placed(1800, 900, 1000, 100)
    for mode, source in (("saliency", "saliency"), ("centre", "centre")):
        client = Client(Settings.at(tmp_path / mode, server_url="http://img.test/", focus=mode))
        image_id = client.save_image(data)
        assert focus_of(client.get_imagedoc(image_id)).source == source
        assert (
            mode
            in CliRunner(env={"HUIMAGES_HOME": str(tmp_path / mode), "HUIMAGES_FOCUS": mode})
            .invoke(main, ["check"])
            .stdout
        )
    assert "/75x75!/" in client.scaled_imageurl(image_id, "square")  # centre: crops as huImages cut them
    assert "placeholder" in client.get_imagedoc(image_id)  # placeholders are made whatever the focus
    with pytest.raises(ConfigurationError, match="HUIMAGES_FOCUS"):
        Settings.from_env({"HUIMAGES_HOME": str(tmp_path), "HUIMAGES_FOCUS": "faces"})


def test_the_template_tags_take_the_placeholder(focused_client: Client) -> None:
    import jinja2

    from huimages.jinja import install

    image_id = focused_client.save_image(encode(Image.new("RGB", (300, 200), (40, 120, 200)), "PNG"))
    environment = jinja2.Environment(autoescape=True)
    install(environment, focused_client)
    page = environment.from_string('{{ scaled_tag(id, "small", placeholder=True) }}').render(id=image_id)
    assert 'style="background-color:#2878c8"' in page
    unknown = "A" * 32 + "01"  # huImages' fallback tag for an image it cannot read: no placeholder to show
    page = environment.from_string('{{ scaled_tag(id, "small", placeholder=True) }}').render(id=unknown)
    assert "placeholder" not in page and "style" not in page and unknown in page


@pytest.mark.parametrize("wrong", [[2, 0.5], [0.5], [0.1, 0.2, 0.3], "0.5,0.5", [True, False], [float("nan"), 0.5], {}])
def test_a_focus_is_two_fractions(wrong: object) -> None:
    with pytest.raises(InvalidFocus, match=r"\[x, y\]"):
        check_focus(wrong)
    assert check_focus([0, 1]) == (0.0, 1.0) and check_focus((0.25, "0.5")) == (0.25, 0.5)


def test_signed_crops_sign_their_focus_and_the_cache_counts_them_with_their_size(tmp_path: Path) -> None:
    key = "k" * 32
    client = Client(Settings.at(tmp_path / "data", server_url="http://img.test/", signing=SigningSettings(keys=(key,))))
    service = client.service
    image_id = client.save_image(placed(1800, 900, 1000, 100)[0])
    token = focus_of(client.get_imagedoc(image_id)).token
    url = client.scaled_imageurl(image_id, "300x100!")  # not a named size: signed, over the path with its focus
    path, _, signature = url.removeprefix("http://img.test").partition("?s=")
    assert f"/300x100!{token}/" in path and signature
    size = service.parse_size(f"300x100!{token}")
    assert decode(service.serve(size, image_id, signature).read()).size == (300, 100)
    with pytest.raises(SizeNotAllowed, match="does not match"):  # the same signature for the centred crop
        service.serve(service.parse_size("300x100!"), image_id, signature)
    assert "?s=" not in client.scaled_imageurl(image_id, "square")  # a named crop around its focus is free
    service.serve(service.parse_size(f"square{token}"), image_id, None).close()
    shelves = census(service.cache.root).shelves
    assert shelves[("300x100!", "jpeg")].files == 1 and shelves[("75x75!", "jpeg")].files == 1


def test_prerendered_crops_are_cut_around_the_focus_a_new_one_too(tmp_path: Path) -> None:
    client = Client(Settings.at(tmp_path / "data", server_url="http://img.test/", prerender=("square", "small.webp")))
    image_id = client.save_image(placed(1800, 900, 1000, 100)[0])
    token = focus_of(client.get_imagedoc(image_id)).token
    cache = client.service.cache
    assert cache.exists(f"75x75!{token}", image_id) and cache.exists("240x160", image_id, WEBP)
    assert not cache.exists("75x75!", image_id)  # the centred crop, which no helper names, is not made
    client.set_focus(image_id, (0.1, 0.5))
    assert cache.exists("75x75!@10-50", image_id)


def test_a_placeholder_edited_by_hand_adds_no_css(focused_client: Client) -> None:
    image_id = focused_client.save_image(encode(Image.new("RGB", (300, 200), (40, 120, 200)), "PNG"))
    focused_client.service.catalog.update(
        image_id, lambda doc: {**doc, "placeholder": {"color": "red;background:url(//x)", "thumbhash": "a)"}}
    )
    assert "style=" not in focused_client.scaled_tag(image_id, "small", placeholder="preview")
