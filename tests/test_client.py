"""The huImages client API, through ``Client`` and the module functions.

Every test runs twice: with a local client (this process reaches the store)
and with a remote one, whose environment names only the server's URL and the
upload token, against a running server over the images API.
"""

import dataclasses
import datetime
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import huimages
from huimages.client import Client
from huimages.config import Settings
from huimages.core.focus import focus_of
from huimages.core.ids import compute_id
from huimages.errors import (
    ConfigurationError,
    EmptyStore,
    ImageNotFound,
    ImageTooLarge,
    InvalidImage,
    InvalidSize,
    UnknownImage,
)
from huimages.http.app import create_app
from huimages.serving.service import ImageService
from tests.imagetools import decode, encode, jpeg, pattern, photo, with_orientation
from tests.servers import FaultProxy, wsgi_thread

TOKEN = "client-suite-upload-token"


@pytest.fixture(params=["local", "remote"])
def client(request: pytest.FixtureRequest, service: ImageService) -> Iterator[Client]:
    if request.param == "local":
        yield Client(service=service)
        return
    served = dataclasses.replace(service, settings=dataclasses.replace(service.settings, upload_token=TOKEN))
    with wsgi_thread(create_app(service=served)) as base:
        settings = Settings.from_env({"IMAGESERVERURL": base, "HUIMAGES_UPLOAD_TOKEN": TOKEN})
        assert settings.client_mode == "remote"
        yield Client(settings)


def without_title_urls(client: Client) -> Client:
    plain = dataclasses.replace(client.settings, title_urls=False)
    if client.remote:
        return Client(plain)
    return Client(service=dataclasses.replace(client.service, settings=plain))


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
    base = client.settings.server_url
    image_id = client.save_image(jpeg(), filename="DSC_0042.JPG")
    # huImages' URL forms: numeric sizes, the file name (without .jpg) as the title part
    assert client.imageurl(image_id) == f"{base}o/{image_id}/DSC_0042.jpeg"
    assert client.imageurl(image_id, "small") == f"{base}240x160/{image_id}/DSC_0042.jpeg"
    assert client.scaled_imageurl(image_id) == f"{base}150x150/{image_id}/DSC_0042.jpeg"
    focus = focus_of(client.get_imagedoc(image_id)).token  # a crop names the focus it is placed around
    assert client.scaled_imageurl(image_id, "square") == f"{base}75x75!{focus}/{image_id}/DSC_0042.jpeg"
    client.set_title(image_id, "Blick über den Hafen")
    assert client.scaled_imageurl(image_id, "100x100") == f"{base}100x100/{image_id}/Blick-_ber-den-Hafen.jpeg"
    assert without_title_urls(client).scaled_imageurl(image_id, "small") == f"{base}240x160/{image_id}.jpeg"
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
    base = client.settings.server_url
    tag = client.scaled_tag(image_id, "small", alt='A "quoted" <b>&', class_="hero")
    assert tag == (
        f'<img src="{base}240x160/{image_id}/image.jpeg" width="240" height="120" '
        'alt="A &quot;quoted&quot; &lt;b&gt;&amp;" class="hero" />'
    )
    assert f'src="{base}150x150/' in client.scaled_tag(image_id)


def test_a_page_client_reads_each_record_once(client: Client) -> None:
    image_id = client.save_image(jpeg(400, 200), title="Before")
    page = client.for_one_page()
    for size in ("small", "150x150!", "medium"):
        assert page.scaled_tag(image_id, size) == client.scaled_tag(image_id, size)
        assert page.scaled_picture(image_id, size) == client.scaled_picture(image_id, size)
        assert page.imageurl(image_id, size) == client.imageurl(image_id, size)
    client.set_title(image_id, "After")  # the page keeps what it read; the client sees the change
    assert 'alt="Before"' in page.scaled_tag(image_id, "small")
    assert 'alt="After"' in client.scaled_tag(image_id, "small")
    assert 'alt="After"' in client.for_one_page().scaled_tag(image_id, "small")


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
def test_bad_input_stores_nothing(client: Client, service: ImageService, data: bytes, error: type) -> None:
    with pytest.raises(error):
        client.save_image(data)
    with pytest.raises(ImageNotFound):
        client.get_imagedoc(compute_id(data))
    assert not service.originals.exists(compute_id(data))
    assert service.catalog.count() == 0


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


def test_imagedata_metadata_and_delete(client: Client) -> None:
    image_id = client.save_image(jpeg(400, 300), title="first", references={"sku": "A1"})
    assert decode(client.scaled_imagedata(image_id, "small")).size == (213, 160)
    assert client.update_metadata(image_id, title="second", references={"ean": "4005"}, typ="detail") == image_id
    doc = client.get_imagedoc(image_id)
    assert doc["title"] == ["first", "second"]
    assert doc["references"] == {"sku": ["A1"], "ean": ["4005"]}
    assert doc["types"] == ["detail"]  # references merge into lists, as in huImages
    assert 'alt="second"' in client.scaled_tag(image_id, "small")  # the newest title, fresh after our own write
    assert "<source" in client.scaled_picture(image_id, "small")
    assert client.scaled_srcset(image_id, "100x100!").endswith(" 2x")
    client.delete_image(image_id)
    client.delete_image(image_id)  # an unknown ID is not an error
    with pytest.raises(ImageNotFound):
        client.scaled_tag(image_id)
    with pytest.raises(UnknownImage):
        client.update_metadata(image_id, title="gone")


def test_remote_records_are_cached_for_the_configured_time(service: ImageService) -> None:
    served = dataclasses.replace(service, settings=dataclasses.replace(service.settings, upload_token=TOKEN))
    with wsgi_thread(create_app(service=served)) as base:
        env = {"IMAGESERVERURL": base, "HUIMAGES_UPLOAD_TOKEN": TOKEN}
        cached = Client(Settings.from_env({**env, "HUIMAGES_REMOTE_CACHE_SECONDS": "600"}))
        fresh = Client(Settings.from_env({**env, "HUIMAGES_REMOTE_CACHE_SECONDS": "0"}))
        image_id = cached.save_image(jpeg(300, 200), title="old")
        assert cached.scaled_imageurl(image_id).endswith("/old.jpeg")
        service.catalog.update_metadata(image_id, timestamp=None, title="new")  # another site renames it
        assert 'alt="old"' in cached.scaled_tag(image_id)  # within its 600 s
        assert 'alt="new"' in fresh.scaled_tag(image_id)


def test_remote_errors_say_what_to_do(service: ImageService) -> None:
    served = dataclasses.replace(service, settings=dataclasses.replace(service.settings, upload_token=TOKEN))
    with wsgi_thread(create_app(service=served)) as base:
        wrong = Client(Settings.from_env({"IMAGESERVERURL": base, "HUIMAGES_UPLOAD_TOKEN": "not-the-token-at-all"}))
        with pytest.raises(ConfigurationError, match=r"HUIMAGES_UPLOAD_TOKEN.*refused"):
            wrong.save_image(jpeg())
        with pytest.raises(ConfigurationError, match="no local store"):
            _ = wrong.service
    gone = Client(Settings.from_env({"IMAGESERVERURL": base, "HUIMAGES_UPLOAD_TOKEN": TOKEN}))
    with pytest.raises(huimages.BackendUnavailable, match="did not answer"):
        gone.save_image(jpeg())
    assert service.catalog.count() == 0


def test_client_mode_follows_the_environment() -> None:
    remote = {"IMAGESERVERURL": "http://images.test/", "HUIMAGES_UPLOAD_TOKEN": "t" * 16}
    assert Settings.from_env(remote).client_mode == "remote"
    assert Settings.from_env({**remote, "HUIMAGES_HOME": "/srv/images"}).client_mode == "local"
    assert Settings.from_env({**remote, "S3BUCKET": "originals"}).client_mode == "local"
    assert Settings.from_env({**remote, "HUIMAGES_CLIENT": "local"}).client_mode == "local"
    assert Settings.from_env({"HUIMAGES_HOME": "/srv", "HUIMAGES_CLIENT": "remote"}).client_mode == "remote"
    assert Settings.from_env({}).client_mode == "local"
    with pytest.raises(ConfigurationError, match="HUIMAGES_CLIENT"):
        Settings.from_env({"HUIMAGES_CLIENT": "sideways"})
    with pytest.raises(ConfigurationError, match="HUIMAGES_UPLOAD_TOKEN"):
        Client(Settings.from_env({"HUIMAGES_CLIENT": "remote"}))


def test_module_functions_over_http(service: ImageService, monkeypatch: pytest.MonkeyPatch) -> None:
    served = dataclasses.replace(service, settings=dataclasses.replace(service.settings, upload_token=TOKEN))
    with wsgi_thread(create_app(service=served)) as base:
        for name in ("HUIMAGES_HOME", "HUIMAGES_CONFIG", "S3BUCKET", "COUCHSERVER"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("IMAGESERVERURL", base)
        monkeypatch.setenv("HUIMAGES_UPLOAD_TOKEN", TOKEN)
        huimages.reset_default_client()
        try:
            image_id = huimages.save_image(jpeg(200, 100), title="remote")
            assert service.catalog.get(image_id)["title"] == ["remote"]  # stored by the server
            assert huimages.scaled_imageurl(image_id, "small") == f"{base}240x160/{image_id}/remote.jpeg"
            assert huimages.scaled_dimensions(image_id, "small") == (200, 100)
            assert huimages.get_imagedoc("A" * 32 + "01") == {}
            assert huimages.get_length(image_id) > 0
            assert huimages.get_random_imageid() == image_id
            huimages.delete_image(image_id)
            assert service.catalog.count() == 0
        finally:
            huimages.reset_default_client()


@pytest.mark.faults
def test_a_slow_upload_is_waited_for_and_one_stored_anyway_is_reported_stored(service: ImageService) -> None:
    """Each answer of the server comes 1.5 s late (a slow link), against a backend timeout of 1 s."""
    served = dataclasses.replace(service, settings=dataclasses.replace(service.settings, upload_token=TOKEN))
    with wsgi_thread(create_app(service=served)) as base:
        proxy = FaultProxy(int(base.rstrip("/").rsplit(":", 1)[1]), delay=1.5)
        env = {"IMAGESERVERURL": proxy.endpoint + "/", "HUIMAGES_UPLOAD_TOKEN": TOKEN, "HUIMAGES_BACKEND_TIMEOUT": "1"}
        client = Client(Settings.from_env(env))
        large = encode(photo(2000, 1500, seed=7), "JPEG", quality=98)  # over 1 MB: the wait grows past 2 s
        assert len(large) > 1_000_000
        assert client.save_image(large) == compute_id(large)
        # A small upload waits about 1 s only; the answer comes at 3 s. The server has stored it
        # meanwhile, and a look-up by its ID (on a link that is fast again) says so.
        proxy.delay = 3.0
        small = jpeg(300, 200)
        threading.Timer(0.5, lambda: setattr(proxy, "delay", 0.0)).start()
        assert client.save_image(small) == compute_id(small)
    assert service.catalog.find_many([compute_id(large), compute_id(small)]).keys() == {
        compute_id(large),
        compute_id(small),
    }
