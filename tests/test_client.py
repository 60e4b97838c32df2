"""The huImages client API, through ``Client`` and the module functions."""

import dataclasses
import datetime
from pathlib import Path

import pytest

import huimages
from huimages.client import Client
from huimages.errors import EmptyStore, ImageNotFound, ImageTooLarge, InvalidImage, InvalidSize
from huimages.ids import compute_id
from huimages.service import ImageService
from tests.imagetools import decode, encode, jpeg, pattern, with_orientation


def test_save_image_returns_content_address(client: Client) -> None:
    data = jpeg(400, 300)
    image_id = client.save_image(data, title="Hello", references={"sku": "X"}, typ="product_image")
    assert image_id == compute_id(data)
    doc = client.get_imagedoc(image_id)
    assert (doc["width"], doc["height"]) == (400, 300)
    assert doc["title"] == ["Hello"]
    assert doc["types"] == ["product_image"]
    assert client.get_length(image_id) == len(data)


def test_saving_twice_merges(client: Client) -> None:
    data = jpeg(100, 100)
    first = client.save_image(data, title="one", timestamp=datetime.datetime(2020, 1, 2, 3, 4, 5, 6))
    second = client.save_image(data, title="two")
    assert first == second
    doc = client.get_imagedoc(first)
    assert doc["title"] == ["one", "two"]
    assert doc["ctime"] == "20200102T030405.000006"


def test_urls(client: Client) -> None:
    image_id = client.save_image(jpeg(), filename="DSC_0042.JPG")
    # huImages' URL forms: numeric sizes, the file name (without .jpg) as the title part
    assert client.imageurl(image_id) == f"http://img.test/o/{image_id}/DSC_0042.jpeg"
    assert client.imageurl(image_id, "small") == f"http://img.test/240x160/{image_id}/DSC_0042.jpeg"
    assert client.scaled_imageurl(image_id) == f"http://img.test/150x150/{image_id}/DSC_0042.jpeg"
    assert client.scaled_imageurl(image_id, "square") == f"http://img.test/75x75!/{image_id}/DSC_0042.jpeg"
    client.set_title(image_id, "Blick über den Hafen")
    assert (
        client.scaled_imageurl(image_id, "100x100") == f"http://img.test/100x100/{image_id}/Blick-_ber-den-Hafen.jpeg"
    )
    plain = dataclasses.replace(client.settings, title_urls=False)
    untitled = Client(service=dataclasses.replace(client.service, settings=plain))
    assert untitled.scaled_imageurl(image_id, "small") == f"http://img.test/240x160/{image_id}.jpeg"
    with pytest.raises(InvalidSize):
        client.scaled_imageurl(image_id, "nope")


@pytest.mark.parametrize(
    "token",
    ["o", "square", "small", "medium", "xvga", "mini", "thumb", "sidebar", "full", "1x1", "333x77!", "4000x4000"],
)
def test_scaled_dimensions_equal_what_is_served(client: Client, service: ImageService, token: str) -> None:
    image_id = client.save_image(with_orientation(pattern(640, 427), 6))
    size = service.parse_size(token)
    rendered = decode(service.derivative(size, image_id).read())
    assert client.scaled_dimensions(image_id, token) == rendered.size


def test_scaled_tag_escapes_everything(client: Client) -> None:
    image_id = client.save_image(jpeg(400, 200))
    tag = client.scaled_tag(image_id, "small", alt='A "quoted" <b>&', class_="hero")
    assert tag == (
        f'<img src="http://img.test/240x160/{image_id}/image.jpeg" width="240" height="120" '
        'alt="A &quot;quoted&quot; &lt;b&gt;&amp;" class="hero" />'
    )
    assert 'src="http://img.test/150x150/' in client.scaled_tag(image_id)


def test_browsing(client: Client) -> None:
    with pytest.raises(EmptyStore, match="save one"):
        client.get_random_imageid()
    ids = sorted(client.save_image(jpeg(50 + i, 50)) for i in range(3))
    assert client.get_next_imageid(ids[0]) == ids[1]
    assert client.get_next_imageid(ids[2]) == ids[0]
    assert client.get_previous_imageid(ids[0]) == ids[2]
    assert client.get_random_imageid() in ids


def test_set_title(client: Client) -> None:
    image_id = client.save_image(jpeg())
    client.set_title(image_id, "Renamed")
    assert client.get_imagedoc(image_id)["title"] == ["Renamed"]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"not an image", InvalidImage),
        (b"", InvalidImage),
        (jpeg(800, 600)[:5000], InvalidImage),
        (encode(pattern(9000, 6000), "JPEG", quality=20), ImageTooLarge),
    ],
)
def test_bad_input_stores_nothing(client: Client, settings: huimages.Settings, data: bytes, error: type) -> None:
    with pytest.raises(error):
        client.save_image(data)
    with pytest.raises(ImageNotFound):
        client.get_imagedoc(compute_id(data))
    assert not client.service.originals.exists(compute_id(data))
    assert client.service.catalog.count() == 0


def test_module_functions_use_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUIMAGES_HOME", str(tmp_path))
    monkeypatch.setenv("IMAGESERVERURL", "https://images.example.com")
    huimages.reset_default_client()
    try:
        image_id = huimages.save_image(jpeg(200, 100), title="env")
        assert (huimages.get_imagedoc(image_id) or {})["title"] == ["env"]
        assert huimages.scaled_imageurl(image_id, "small") == f"https://images.example.com/240x160/{image_id}/env.jpeg"
        assert huimages.scaled_dimensions(image_id, "small") == (200, 100)
        assert huimages.imageurl(image_id) == f"https://images.example.com/o/{image_id}/env.jpeg"
        assert "width=" in huimages.scaled_tag(image_id)
        assert huimages.get_length(image_id) > 0
        assert huimages.get_random_imageid() == image_id
        assert huimages.get_next_imageid(image_id) == image_id
        assert huimages.get_previous_imageid(image_id) == image_id
        huimages.set_title(image_id, "more")
        assert (tmp_path / "catalog.sqlite3").exists()
    finally:
        huimages.reset_default_client()


def test_importing_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    monkeypatch.setenv("HUIMAGES_JPEG_QUALITY", "not a number")
    importlib.reload(huimages)  # must not raise: settings are read on first use only
    huimages.reset_default_client()
