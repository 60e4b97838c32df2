"""huimages in Django and Jinja2: a real Django project configured in code (SQLite, migrations run).

Templates render the four helpers; a form uploads through Django's test
client into a local store and into a remote one (a real ``huimages serve``);
the admin's list and change form are used in a real browser (chromium).
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import threading
import wsgiref.simple_server
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django
import pytest
from django.conf import settings

from huimages.core.ids import compute_id
from tests.imagetools import decode, encode, jpeg, photo
from tests.servers import huimages_serve
from tests.test_browser import chromium_binary

pytestmark = pytest.mark.integration

TOKEN = "upload-token-of-the-django-site"
PASSWORD = "a password for the django admin"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Django configured once for this module: the test app, the admin, both template engines."""
    from django.core.management import call_command

    home = tmp_path_factory.mktemp("django")
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="a key for the tests of huimages.django only",
            ALLOWED_HOSTS=["127.0.0.1", "testserver"],
            INSTALLED_APPS=[
                "django.contrib.admin",
                "django.contrib.auth",
                "django.contrib.contenttypes",
                "django.contrib.sessions",
                "django.contrib.messages",
                "django.contrib.staticfiles",
                "huimages.django",
                "tests.djangoapp.apps.PhotosConfig",
            ],
            MIDDLEWARE=[
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.middleware.common.CommonMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "django.contrib.messages.middleware.MessageMiddleware",
            ],
            ROOT_URLCONF="tests.djangoapp.urls",
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(home / "site.sqlite3")}},
            TEMPLATES=[
                {
                    "BACKEND": "django.template.backends.django.DjangoTemplates",
                    "APP_DIRS": True,
                    "OPTIONS": {
                        "context_processors": [
                            "django.template.context_processors.request",
                            "django.contrib.auth.context_processors.auth",
                            "django.contrib.messages.context_processors.messages",
                        ]
                    },
                },
                {
                    "BACKEND": "django.template.backends.jinja2.Jinja2",
                    "DIRS": [],
                    "APP_DIRS": False,
                    "OPTIONS": {"extensions": ["huimages.jinja.HuImagesExtension"]},
                },
            ],
            STATIC_URL="/static/",
            USE_TZ=True,
            DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
            HUIMAGES={"HUIMAGES_HOME": str(home / "images"), "IMAGESERVERURL": "http://img.test/"},
        )
        django.setup()
    call_command("migrate", verbosity=0)
    return home


@pytest.fixture
def local(project: Path, tmp_path: Path) -> Iterator[Any]:
    """A local store of its own for one test."""
    from django.test import override_settings

    from huimages.django import client

    with override_settings(HUIMAGES={"HUIMAGES_HOME": str(tmp_path / "images"), "IMAGESERVERURL": "http://img.test/"}):
        yield client()


@pytest.fixture(scope="module")
def served(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A real ``huimages serve``, and the HUIMAGES of a Django site that stores through its images API."""
    home = tmp_path_factory.mktemp("django-remote")
    with huimages_serve(home, "gunicorn", {"HUIMAGES_UPLOAD_TOKEN": TOKEN}) as (port, _):
        base = f"http://127.0.0.1:{port}/"
        yield base, {"IMAGESERVERURL": base, "HUIMAGES_UPLOAD_TOKEN": TOKEN}


def test_migrations_are_generated_cleanly_and_the_column_holds_an_id(project: Path) -> None:
    from django.core.management import call_command
    from django.db import connection

    out = io.StringIO()
    call_command("makemigrations", "photos", "--check", "--dry-run", stdout=out)  # exits 1 when a change is missing
    assert "No changes detected" in out.getvalue()
    with connection.cursor() as cursor:
        columns = {c.name: c for c in connection.introspection.get_table_description(cursor, "photos_photo")}
    assert columns["image"].null_ok and not columns["cover"].null_ok
    from huimages.django import HuImageField
    from tests.djangoapp.models import Photo

    field = Photo._meta.get_field("image")
    assert isinstance(field, HuImageField)
    assert field.max_length == 34 and field.db_index
    _, path, _, kwargs = field.deconstruct()
    assert path == "huimages.django.HuImageField" and "max_length" not in kwargs


def test_templates_render_the_helpers_escaped_and_an_unknown_id_never_raises(local: Any) -> None:
    from django.template import engines

    from tests.djangoapp.models import Photo

    image_id = local.save_image(jpeg(800, 600), title='Harbour <b>"at dusk"</b>')
    photo_record = Photo.objects.create(title="harbour", image=image_id)
    fetched = Photo.objects.get(pk=photo_record.pk)
    assert fetched.image == image_id and fetched.image.url("small") == local.scaled_imageurl(image_id, "small")
    assert fetched.image.dimensions("small") == (213, 160) and fetched.image.dimensions("150x150!") == (150, 150)
    assert str(fetched.image.tag("small")) == local.scaled_tag(image_id, "small")
    assert "<picture>" in fetched.image.picture("small") and " 2x" in fetched.image.srcset("small")

    django_engine, jinja_engine = engines["django"], engines["jinja2"]
    page = django_engine.get_template("photos/show.html").render({"photo": fetched})
    tag = _between(page, "tag")
    assert tag.startswith("<img ") and 'class="thumb"' in tag and 'width="213" height="160"' in tag
    assert 'alt="Harbour &lt;b&gt;&quot;at dusk&quot;&lt;/b&gt;"' in tag  # escaped once, by huimages
    assert _between(page, "url") == local.scaled_imageurl(image_id, "240x160!")
    assert _between(page, "srcset").replace("&amp;", "&") == local.scaled_srcset(image_id, "small")
    assert _between(page, "picture").startswith('<picture><source type="image/avif"')
    assert _between(page, "field") == local.scaled_tag(image_id)  # a template calls tag() with the default size

    source = (
        '{{ scaled_tag(id, "small", class="thumb") }}|{{ scaled_imageurl(id, "240x160!") }}|'
        '{{ scaled_srcset(id, "small") }}|{{ scaled_picture(id, "small") }}'
    )
    tag, url, srcset, picture = jinja_engine.from_string(source).render({"id": image_id}).split("|")
    assert tag == local.scaled_tag(image_id, "small", class_="thumb")
    assert url == local.scaled_imageurl(image_id, "240x160!")
    assert srcset.replace("&amp;", "&") == local.scaled_srcset(image_id, "small")
    assert picture == local.scaled_picture(image_id, "small")

    unknown = "A" * 32 + "01"
    template = django_engine.from_string(
        '{% load huimages %}{% scaled_tag id "small" %}|{% scaled_imageurl id %}|{% scaled_srcset id %}|'
        "{% scaled_picture id %}"
    )
    tag, url, srcset, picture = template.render({"id": unknown}).split("|")
    assert tag == f'<img src="http://img.test/240x160/{unknown}.jpeg" alt="" />'  # what huImages wrote
    assert url == f"http://img.test/150x150/{unknown}.jpeg" and srcset == picture == ""
    for nothing in (None, "", "not an id"):
        assert template.render({"id": nothing}) == "|||"
        assert jinja_engine.from_string(source).render({"id": nothing}) == "|||"


def test_jinja2_outside_django(tmp_path: Path) -> None:
    """A Flask site's environment: install() over a client of its own."""
    from jinja2 import Environment

    from huimages.client import Client
    from huimages.config import Settings
    from huimages.jinja import install

    client = Client(Settings.at(tmp_path, server_url="http://img.test/"))
    image_id = client.save_image(jpeg(300, 200), title="<script>")
    env = Environment(autoescape=True)
    install(env, client)
    rendered = env.from_string('{{ scaled_tag(id, "small") }}').render(id=image_id)
    assert rendered == client.scaled_tag(image_id, "small") and "&lt;script&gt;" in rendered


def _between(page: str, name: str) -> str:
    found = re.search(rf'<div id="{name}">(.*?)</div>', page, re.S)
    assert found, page
    return found.group(1)


def _form_upload(remote_env: dict[str, str] | None, store: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client as Browser

    from tests.djangoapp.models import Photo

    browser = Browser()
    data = jpeg(640, 480)
    answer = browser.post(
        "/photos/new/", {"title": "upload", "image": SimpleUploadedFile("dock.jpg", data, "image/jpeg")}
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    saved = Photo.objects.get(pk=int(answer["Location"].strip("/").rsplit("/", 1)[1]))
    assert saved.image == compute_id(data)
    assert decode(store.scaled_imagedata(saved.image, "o")).size == (640, 480)  # stored through the client

    refused = browser.post(
        f"/photos/{saved.pk}/edit/",
        {"title": "broken", "image": SimpleUploadedFile("notes.jpg", b"not an image at all", "image/jpeg")},
    )
    assert refused.status_code == 400
    text = refused.content.decode()
    assert "not an image" in text or "accepted format" in text, text[:2000]
    saved.refresh_from_db()
    assert saved.title == "upload" and saved.image == compute_id(data)

    edit = browser.get(f"/photos/{saved.pk}/edit/").content.decode()
    assert 'class="huimages-preview"' in edit and saved.image in edit  # the current image, previewed
    cleared = browser.post(f"/photos/{saved.pk}/edit/", {"title": "no image", "image-clear": "on"})
    assert cleared.status_code == 302
    saved.refresh_from_db()
    assert saved.image is None  # the field is cleared ...
    assert store.get_imagedoc(compute_id(data))["_id"] == compute_id(data)  # ... never the stored image


def test_a_form_uploads_into_a_local_store(local: Any) -> None:
    _form_upload(None, local)


def test_a_form_uploads_through_the_images_api_of_a_remote_store(served: tuple[str, dict[str, str]]) -> None:
    from django.test import override_settings

    from huimages.django import client

    _, remote_env = served
    with override_settings(HUIMAGES=remote_env):
        store = client()
        assert store.remote
        _form_upload(remote_env, store)


class _Threaded(wsgiref.simple_server.WSGIServer):
    daemon_threads = True

    def process_request(self, request: Any, client_address: Any) -> None:
        threading.Thread(target=self._serve_one, args=(request, client_address), daemon=True).start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        finally:
            self.shutdown_request(request)


class _Quiet(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_the_admin_in_a_real_browser(served: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    """Sign in, add a photo with the upload widget, see its thumbnail in the list, its preview, clear it."""
    from django.contrib.auth.models import User
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.wsgi import get_wsgi_application
    from django.test import override_settings
    from playwright.sync_api import sync_playwright

    from tests.djangoapp.models import Photo

    _, remote_env = served
    Photo.objects.all().delete()  # the other tests' photos: the list shows this one only
    if not User.objects.filter(username="editor").exists():
        User.objects.create_superuser("editor", "editor@example.test", PASSWORD)
    data = encode(photo(900, 600, seed=3), "JPEG", quality=88)
    upload = tmp_path / "harbour.jpg"
    upload.write_bytes(data)
    with override_settings(HUIMAGES=remote_env, DEBUG=True):
        server = wsgiref.simple_server.make_server(
            "127.0.0.1", 0, StaticFilesHandler(get_wsgi_application()), server_class=_Threaded, handler_class=_Quiet
        )
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium_binary(), args=["--no-sandbox"])
                page = browser.new_page()
                try:
                    page.goto(f"{base}/admin/login/?next=/admin/photos/photo/add/")
                    page.fill("#id_username", "editor")
                    page.fill("#id_password", PASSWORD)
                    page.click("input[type=submit]")
                    page.wait_for_url(f"{base}/admin/photos/photo/add/")
                    page.fill("#id_title", "Harbour")
                    page.set_input_files("#id_image", str(upload))
                    page.click("input[name=_save]")
                    page.wait_for_url(f"{base}/admin/photos/photo/")
                    thumb = page.locator("td.field-image_thumbnail img")
                    thumb.wait_for()
                    assert compute_id(data) in (thumb.get_attribute("src") or "")
                    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
                    assert thumb.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [240, 160]

                    page.click("th.field-title a")
                    preview = page.locator("img.huimages-preview")
                    preview.wait_for()
                    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=preview.element_handle())
                    page.check("#image-clear_id")
                    page.click("input[name=_save]")
                    page.wait_for_url(f"{base}/admin/photos/photo/")
                    assert page.locator("td.field-image_thumbnail").first.inner_text().strip() == "-"
                finally:
                    browser.close()
        finally:
            server.shutdown()
            server.server_close()
    saved = Photo.objects.get(title="Harbour")
    assert saved.image is None
    from huimages.client import Client
    from huimages.config import Settings

    assert Client(Settings.from_env(remote_env)).get_imagedoc(compute_id(data))["width"] == 900  # still stored


def test_without_django_the_app_says_what_to_install() -> None:
    code = "import sys; sys.modules['django'] = None; import huimages.django"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1 and "pip install 'huimages[django]'" in done.stderr
    core = "import sys; sys.modules['django'] = None; import huimages; print(huimages.scaled_imageurl)"
    assert subprocess.run([sys.executable, "-c", core], capture_output=True, text=True).returncode == 0
