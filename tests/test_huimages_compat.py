"""huImages' last release, function by function, through ``import huimages`` (embedded store).

Written from huImages' documented behaviour: arguments, defaults and return
values of every module function, and every URL form it wrote into pages.
"""

import base64
import datetime
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import huimages
from huimages.http.app import create_app
from tests.imagetools import decode, jpeg, pattern, with_orientation
from tests.wsgi import call

SERVER = "http://images.example.com/"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The module functions on a default client built from the environment, as a site uses them."""
    monkeypatch.setenv("HUIMAGES_HOME", str(tmp_path))
    monkeypatch.setenv("IMAGESERVERURL", SERVER)
    for name in ("HUIMAGESALTADDITION", "HUIMAGES_TITLE_URLS", "HUIMAGES_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    huimages.reset_default_client()
    yield tmp_path
    huimages.reset_default_client()


def doc_of(image_id: str) -> dict[str, object]:
    doc = huimages.get_imagedoc(image_id)
    assert doc is not None
    return doc


def test_save_image_id_and_merge(home: Path) -> None:
    data = jpeg(320, 200)
    image_id = huimages.save_image(data, "image/png", datetime.datetime(2009, 1, 29, 10, 15, 30, 123), "First")
    assert image_id == base64.b32encode(hashlib.sha1(data).digest()).decode().rstrip("=") + "01"
    doc = doc_of(image_id)
    assert doc["content_type"] == "image/jpeg"  # the bytes win over the given content type
    assert doc["ctime"] == doc["mtime"] == "20090129T101530.000123"
    assert (doc["width"], doc["height"]) == (320, 200)
    assert doc["filename"] == "image.jpeg"  # the default file name is kept, as huImages kept its attachment name

    again = huimages.save_image(
        data,
        timestamp="20100101T000000.000000",
        title="Second",
        references={"sku": "A1"},
        filename="other.jpeg",
        typ="product_image",
    )
    huimages.save_image(data, title="First", references={"sku": "A1"}, typ="product_image")
    assert again == image_id
    doc = doc_of(image_id)
    assert doc["ctime"] == "20090129T101530.000123"  # set once
    assert doc["mtime"] != "20100101T000000.000000"  # every save sets it (the last one: now)
    assert doc["title"] == ["First", "Second"]
    assert doc["references"] == {"sku": ["A1"]}
    assert doc["types"] == ["product_image"]
    assert doc["filename"] == "image.jpeg"  # kept from the first save


def test_unknown_ids(home: Path) -> None:
    unknown = "A" * 32 + "01"
    assert huimages.get_imagedoc(unknown) == {}
    assert huimages.get_imagedoc("not an id") == {}
    assert huimages.scaled_dimensions(unknown) == (None, None)
    assert huimages.scaled_dimensions(unknown, "75x75!") == (75, 75)  # WxH! needs no lookup
    assert huimages.scaled_dimensions(unknown, "square") == (75, 75)
    assert huimages.scaled_dimensions(unknown, "no-such-size") == (None, None)
    assert huimages.scaled_imagedata(unknown) is None
    assert huimages.scaled_imageurl(unknown) == f"{SERVER}150x150/{unknown}.jpeg"
    assert huimages.scaled_tag(unknown) == f'<img src="{SERVER}150x150/{unknown}.jpeg" alt="" />'
    huimages.delete_image(unknown)  # silently ignored
    huimages.delete_image("not an id")
    with pytest.raises(huimages.ImageNotFound):
        huimages.update_metadata(unknown, title="x")


def test_get_imagedoc_is_none_when_the_catalog_cannot_be_reached(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = home / "blocked"
    blocked.write_text("a file where a folder should be")
    monkeypatch.setenv("HUIMAGES_CATALOG", str(blocked / "catalog.sqlite3"))
    huimages.reset_default_client()
    assert huimages.get_imagedoc("A" * 32 + "01") is None


def test_urls_as_huimages_wrote_them(home: Path) -> None:
    titled = huimages.save_image(jpeg(400, 300), title="Blick über den Hafen, 2009")
    named = huimages.save_image(jpeg(401, 300), filename="DSC 0042.JPG")
    plain = huimages.save_image(jpeg(402, 300), filename="")
    assert huimages.scaled_imageurl(titled) == f"{SERVER}150x150/{titled}/Blick-_ber-den-Hafen,-2009.jpeg"
    assert huimages.scaled_imageurl(titled, "small") == f"{SERVER}240x160/{titled}/Blick-_ber-den-Hafen,-2009.jpeg"
    assert huimages.imageurl(titled) == f"{SERVER}o/{titled}/Blick-_ber-den-Hafen,-2009.jpeg"
    assert huimages.imageurl(titled, "square") == huimages.scaled_imageurl(titled, "square")
    assert huimages.scaled_imageurl(named, "100x100") == f"{SERVER}100x100/{named}/DSC-0042.jpeg"
    assert huimages.scaled_imageurl(plain) == f"{SERVER}150x150/{plain}.jpeg"
    huimages.set_title(named, "A title")
    assert huimages.scaled_imageurl(named) == f"{SERVER}150x150/{named}/A-title.jpeg"  # the first title


def test_title_urls_can_be_switched_off(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUIMAGES_TITLE_URLS", "off")
    huimages.reset_default_client()
    image_id = huimages.save_image(jpeg(), title="Harbour")
    assert huimages.scaled_imageurl(image_id) == f"{SERVER}150x150/{image_id}.jpeg"


def test_dimensions_and_data_default_to_150x150(home: Path) -> None:
    image_id = huimages.save_image(jpeg(800, 400))
    assert huimages.scaled_dimensions(image_id) == (150, 75)
    assert huimages.scaled_dimensions(image_id, "small") == (240, 120)
    assert huimages.scaled_dimensions(image_id, "2000x2000") == (800, 400)  # never upscaled
    data = huimages.scaled_imagedata(image_id)
    assert data is not None and decode(data).size == (150, 75)
    crop = huimages.scaled_imagedata(image_id, "square")
    assert crop is not None and decode(crop).size == (75, 75)


def test_scaled_tag_alt_texts_and_arguments(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUIMAGESALTADDITION", " - Example Shop")
    huimages.reset_default_client()
    image_id = huimages.save_image(jpeg(300, 200), title="Old <title>")
    huimages.set_title(image_id, 'Newest "title"')
    url = huimages.scaled_imageurl(image_id)
    tag = huimages.scaled_tag(image_id, "150x150", 'data-zoom="1"', "hidden", id="pic", title="a & b")
    assert tag == (
        f'<img src="{url}" width="150" height="100" data-zoom="1" hidden id="pic" title="a &amp; b" '
        'alt="Newest &quot;title&quot; - Example Shop" />'
    )
    assert huimages.scaled_tag(image_id, alt="given").endswith('alt="given" />')

    named = huimages.save_image(jpeg(301, 200), filename="red_shoes.jpeg")
    assert 'alt="red shoes - Example Shop"' in huimages.scaled_tag(named)
    bare = huimages.save_image(jpeg(302, 200), filename="")
    assert huimages.scaled_tag(bare).endswith('alt="- Example Shop" />')  # the addition alone, stripped


def test_update_metadata_and_set_title(home: Path) -> None:
    image_id = huimages.save_image(jpeg(), title="one", timestamp="20090101T000000.000000")
    assert huimages.update_metadata(image_id, title="two", references={"order": 7}, typ="t") == image_id
    doc = doc_of(image_id)
    assert (doc["title"], doc["references"], doc["types"]) == (["one", "two"], {"order": [7]}, ["t"])
    assert doc["mtime"] == "20090101T000000.000000"  # no timestamp given: unchanged
    huimages.update_metadata(image_id, timestamp=datetime.datetime(2011, 2, 3))
    assert doc_of(image_id)["mtime"] == "20110203T000000.000000"
    huimages.set_title(image_id, "two")
    huimages.set_title(image_id, "three")
    assert doc_of(image_id)["title"] == ["one", "two", "three"]


def test_length_and_browsing(home: Path) -> None:
    stored = {huimages.save_image(data): data for data in (jpeg(100 + n, 80) for n in range(3))}
    ids = sorted(stored)
    assert all(huimages.get_length(i) == len(stored[i]) for i in ids)
    assert huimages.get_next_imageid(ids[0]) == ids[1]
    assert huimages.get_previous_imageid(ids[0]) == ids[2]  # wraps
    assert huimages.get_random_imageid() in ids


def test_delete_image(home: Path) -> None:
    image_id = huimages.save_image(jpeg(500, 400), title="gone soon")
    app = create_app(service=huimages.default_client().service)
    assert call(app, f"/small/{image_id}.jpeg").status == 200
    cache = home / "cache"
    assert (cache / "240x160" / f"{image_id}.jpeg").is_file()
    huimages.delete_image(image_id)
    assert huimages.get_imagedoc(image_id) == {}
    assert not (cache / "240x160" / f"{image_id}.jpeg").exists()
    assert not list((home / "originals").rglob(image_id))
    assert call(app, f"/small/{image_id}.jpeg").status == 404
    assert call(app, f"/240x160/{image_id}/gone-soon.jpeg").status == 404


def test_every_url_form_is_one_derivative(home: Path) -> None:
    image_id = huimages.save_image(jpeg(900, 600), title="Harbour at night")
    app = create_app(service=huimages.default_client().service)
    forms = [
        f"/240x160/{image_id}.jpeg",
        f"/240x160/{image_id}/Harbour-at-night.jpeg",
        f"/240x160/{image_id}/anything-else.jpg",
        f"/240x160/{image_id}.jpg",
        f"/240x160/{image_id}",
        f"/small/{image_id}.jpeg",
        f"/small/{image_id}/Harbour-at-night.jpeg",
    ]
    bodies = {call(app, form).body for form in forms}
    assert len(bodies) == 1 and decode(bodies.pop()).size == (240, 160)
    cache = home / "cache"
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == ["240x160", "small"]
    assert os.readlink(cache / "small") == "240x160"  # the name's folder is a link: one file, one render
    assert [p.name for p in (cache / "240x160").iterdir()] == [f"{image_id}.jpeg"]


def test_named_size_folder_of_an_earlier_release_is_merged(home: Path) -> None:
    image_id = huimages.save_image(jpeg(900, 600))
    old = home / "cache" / "small"
    old.mkdir(parents=True)
    (old / f"{image_id}.jpeg").write_bytes(huimages.scaled_imagedata(image_id, "240x160") or b"")
    (home / "cache" / "240x160" / f"{image_id}.jpeg").unlink()
    app = create_app(service=huimages.default_client().service)
    assert decode(call(app, f"/small/{image_id}.jpeg").body).size == (240, 160)
    assert os.readlink(old) == "240x160"
    assert (home / "cache" / "240x160" / f"{image_id}.jpeg").is_file()


def test_legacy_dimensions_are_corrected_on_first_render(home: Path) -> None:
    image_id = huimages.save_image(with_orientation(pattern(300, 200), 6))
    assert huimages.scaled_dimensions(image_id, "o") == (300, 200)
    client = huimages.default_client()
    # as huImages stored it: the stored (unrotated) size, no length or content type
    legacy = {"width": 200, "height": 300}
    client.service.catalog.update(
        image_id, lambda doc: {k: v for k, v in doc.items() if k not in ("length", "content_type")} | legacy
    )
    assert huimages.scaled_dimensions(image_id, "small") == (107, 160)  # what the old record says
    rendered = huimages.scaled_imagedata(image_id, "small")
    assert rendered is not None and decode(rendered).size == (240, 160)
    assert huimages.scaled_dimensions(image_id, "small") == (240, 160)  # corrected by the render
    assert doc_of(image_id)["length"] and doc_of(image_id)["content_type"] == "image/jpeg"
