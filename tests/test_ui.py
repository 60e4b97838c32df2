"""The web interface (/ui/): sessions, CSRF, escaping, pages; in process and through both fronts."""

from __future__ import annotations

import html
import html.parser
import io
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from huimages.client import Client
from huimages.config import Settings
from huimages.core.ids import compute_id
from huimages.http.app import ImageApp, create_app
from huimages.http.ui.session import COOKIE, Sessions
from huimages.imaging import ACCEPTED_NAMES
from tests.imagetools import encode, jpeg, pattern
from tests.servers import get, huimages_serve
from tests.test_api import multipart
from tests.wsgi import Response, call

ADMIN = "admin-token-of-the-ui-tests"
HOSTILE = '<script>alert("t")</script><b>bold</b> & co'


@pytest.fixture
def ui_app(tmp_path: Path) -> ImageApp:
    return create_app(Settings.at(tmp_path / "data", admin_token=ADMIN, server_url="http://img.test/"))


def post(app: ImageApp, path: str, fields: Mapping[str, str], cookie: str = "", **environ: str) -> Response:
    body = urllib.parse.urlencode(fields).encode()
    return call(
        app,
        path,
        method="POST",
        headers={"Cookie": cookie} if cookie else {},
        CONTENT_TYPE="application/x-www-form-urlencoded",
        CONTENT_LENGTH=str(len(body)),
        **{"wsgi.input": io.BytesIO(body)},
        **environ,
    )


def sign_in(app: ImageApp, token: str = ADMIN) -> tuple[str, str]:
    """The session cookie and the CSRF token of a fresh sign-in."""
    answer = post(app, "/ui/signin", {"token": token, "next": "/ui/"})
    assert answer.status == 303, answer.text
    cookie = answer.headers["Set-Cookie"].split(";", 1)[0]
    page = call(app, "/ui/", headers={"Cookie": cookie})
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, page.text
    return cookie, found.group(1)


class Images(html.parser.HTMLParser):
    """Every <img> of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))


def images_of(page: str) -> list[dict[str, str | None]]:
    parser = Images()
    parser.feed(page)
    return parser.images


# -- in process ------------------------------------------------------------------------


def test_pages_need_a_session(ui_app: ImageApp) -> None:
    answer = call(ui_app, "/ui/status")
    assert answer.status == 303 and answer.headers["Location"] == "/ui/signin?next=%2Fui%2Fstatus"
    answer = call(ui_app, "/ui/upload", method="POST", headers={"Accept": "application/json"})
    assert answer.status == 401 and "sign in again" in answer.text
    forged = f"{COOKIE}=9999999999.abc.{'0' * 64}"
    assert call(ui_app, "/ui/", headers={"Cookie": forged}).status == 303
    expired, _ = Sessions(ADMIN).issue(False)
    stale = expired.split(";", 1)[0].replace("=", "=1000", 1)  # an expiry long past, the MAC no longer fits
    assert call(ui_app, "/ui/", headers={"Cookie": stale}).status == 303
    signin = call(ui_app, "/ui/signin")
    assert signin.status == 200 and 'type="password"' in signin.text


def test_sign_in_sets_a_strict_session_cookie(ui_app: ImageApp) -> None:
    wrong = post(ui_app, "/ui/signin", {"token": "guess", "next": "/ui/"})
    assert wrong.status == 403 and "not the admin token" in wrong.text and "Set-Cookie" not in wrong.headers
    right = post(ui_app, "/ui/signin", {"token": ADMIN, "next": "/ui/status"})
    assert right.status == 303 and right.headers["Location"] == "/ui/status"
    flags = [f.strip() for f in right.headers["Set-Cookie"].split(";")]
    assert {"HttpOnly", "SameSite=Strict", "Path=/ui/"} <= set(flags) and "Secure" not in flags
    secure = post(
        ui_app, "/ui/signin", {"token": ADMIN, "next": "https://evil.example/"}, **{"wsgi.url_scheme": "https"}
    )
    assert "Secure" in secure.headers["Set-Cookie"] and secure.headers["Location"] == "/ui/"  # never another site
    cookie = right.headers["Set-Cookie"].split(";", 1)[0]
    assert call(ui_app, "/ui/status", headers={"Cookie": cookie}).status == 200
    _, csrf = sign_in(ui_app)
    out = post(ui_app, "/ui/signout", {"csrf": Sessions(ADMIN).csrf(cookie.split(".")[1])}, cookie)
    assert out.status == 303 and "Max-Age=0" in out.headers["Set-Cookie"]
    assert csrf


def test_without_an_admin_token_the_interface_is_off(tmp_path: Path) -> None:
    app = create_app(Settings.at(tmp_path))
    answer = call(app, "/ui/signin")
    assert answer.status == 403 and "set HUIMAGES_ADMIN_TOKEN" in answer.text
    assert post(app, "/ui/signin", {"token": ""}).status == 403
    assert call(app, "/ui/").status == 303


def test_changes_need_the_csrf_token_and_this_origin(ui_app: ImageApp) -> None:
    cookie, csrf = sign_in(ui_app)
    client = Client(service=ui_app.service)
    image_id = client.save_image(jpeg(300, 200), title="before")
    path = f"/ui/images/{image_id}/title"
    assert post(ui_app, path, {"title": "no token"}, cookie).status == 403
    assert post(ui_app, path, {"title": "wrong", "csrf": "0" * 64}, cookie).status == 403
    other_site = post(
        ui_app, path, {"title": "x", "csrf": csrf}, cookie, HTTP_ORIGIN="https://evil.example", HTTP_HOST="img.test"
    )
    assert other_site.status == 403 and "another site" in other_site.text
    assert post(ui_app, f"/ui/images/{image_id}/delete", {}, cookie).status == 403
    assert client.get_imagedoc(image_id)["title"] == ["before"]
    done = post(
        ui_app, path, {"title": "after", "csrf": csrf}, cookie, HTTP_ORIGIN="http://img.test", HTTP_HOST="img.test"
    )
    assert done.status == 303 and done.headers["Location"] == f"/ui/images/{image_id}?done=title"
    assert client.get_imagedoc(image_id)["title"] == ["before", "after"]
    path, _, query = done.headers["Location"].partition("?")
    page = call(ui_app, path, headers={"Cookie": cookie}, QUERY_STRING=query)
    assert "The title was saved." in page.text and "<h1>after</h1>" in page.text


def test_titles_and_references_are_escaped_and_every_img_has_alt(ui_app: ImageApp) -> None:
    cookie, _ = sign_in(ui_app)
    client = Client(service=ui_app.service)
    image_id = client.save_image(jpeg(400, 300), title=HOSTILE, references={"<i>ref</i>": "<img src=x onerror=1>"})
    untitled = client.save_image(jpeg(120, 90), filename="")
    pages = ["/ui/", f"/ui/images/{image_id}", f"/ui/images/{image_id}/delete", "/ui/?q=bold", f"/ui/images/{untitled}"]
    for target in pages:
        path, _, query = target.partition("?")
        answer = call(ui_app, path, headers={"Cookie": cookie}, QUERY_STRING=query)
        assert answer.status == 200, (path, answer.text)
        assert "<script>alert" not in answer.text and "<b>bold" not in answer.text and "<i>ref" not in answer.text
        assert "<img src=x" not in answer.text
        assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
        found = images_of(answer.text)
        assert found and all(img.get("alt") for img in found), (path, found)
    page = call(ui_app, f"/ui/images/{image_id}", headers={"Cookie": cookie}).text
    assert "&lt;script&gt;alert" in page and "&lt;i&gt;ref&lt;/i&gt;" in page


def test_an_image_page_reads_the_record_once_for_all_its_urls_and_tags(ui_app: ImageApp) -> None:
    cookie, _ = sign_in(ui_app)
    client = Client(service=ui_app.service)
    image_id = client.save_image(jpeg(800, 600), title="Harbour")
    catalog, reads = ui_app.service.catalog, []
    for name in ("get", "find_many"):  # get_live reads through get
        real = getattr(catalog, name)

        def counted(*args: object, _real: object = real, _name: str = name, **kwargs: object) -> object:
            reads.append(_name)
            return _real(*args, **kwargs)  # type: ignore[operator]

        setattr(catalog, name, counted)
    page = call(ui_app, f"/ui/images/{image_id}", headers={"Cookie": cookie})
    assert page.status == 200
    assert len(reads) <= 2, reads  # the page's own read, and the client's (11 sizes: URL, tag, <picture> each)
    for name in ui_app.service.settings.sizes:  # what the page shows is what the plain client makes
        assert html.unescape(client.scaled_tag(image_id, name)) in html.unescape(page.text)


def test_browse_pages_and_searches_newest_first(ui_app: ImageApp) -> None:
    cookie, _ = sign_in(ui_app)
    empty = call(ui_app, "/ui/random", headers={"Cookie": cookie})
    assert empty.status == 303 and empty.headers["Location"] == "/ui/upload?done=empty"
    assert call(ui_app, "/images/random", headers={"Authorization": f"Bearer {ADMIN}"}).status == 404
    client = Client(service=ui_app.service)
    ids = [
        client.save_image(jpeg(100 + i, 80), title=f"photo {i}", references={"set": "odd" if i % 2 else "even"})
        for i in range(30)
    ]
    first = call(ui_app, "/ui/", headers={"Cookie": cookie}).text
    shown = re.findall(r'data-id="([A-Z0-9]+)"', first)
    assert shown == ids[::-1][:24]  # newest first, a page of 24
    older = re.search(r'href="/ui/\?after=([A-Z0-9]+)"', first)
    assert older and older.group(1) == ids[6]
    second = call(ui_app, "/ui/", headers={"Cookie": cookie}, QUERY_STRING=f"after={older.group(1)}").text
    assert re.findall(r'data-id="([A-Z0-9]+)"', second) == ids[::-1][24:]
    odd = call(ui_app, "/ui/", headers={"Cookie": cookie}, QUERY_STRING="q=odd").text
    assert set(re.findall(r'data-id="([A-Z0-9]+)"', odd)) == set(ids[1::2])
    nothing = call(ui_app, "/ui/", headers={"Cookie": cookie}, QUERY_STRING="q=%3Cnone%3E").text
    assert "No image matches “&lt;none&gt;”" in nothing
    nxt = call(ui_app, f"/ui/images/{ids[0]}/next", headers={"Cookie": cookie})
    assert nxt.status == 303 and nxt.headers["Location"].startswith("/ui/images/")
    assert call(ui_app, "/ui/random", headers={"Cookie": cookie}).headers["Location"].removeprefix("/ui/images/") in ids


def test_upload_without_script_stores_the_good_files(ui_app: ImageApp) -> None:
    cookie, csrf = sign_in(ui_app)
    page = call(ui_app, "/ui/upload", headers={"Cookie": cookie}).text
    assert f"{ACCEPTED_NAMES}, up to 64.0 MB each" in page and 'accept="image/*,.jpg,.jpeg,' in page
    good, phone = encode(pattern(320, 240), "PNG"), encode(pattern(400, 300), "HEIF")
    body, content_type = multipart(
        [
            ("good.png", "image/png", good),
            ("IMG_0001.HEIC", "application/octet-stream", phone),  # what a browser sends for a type it does not know
            ("bad.jpg", "image/jpeg", b"not an image"),
        ],
        {"csrf": csrf, "title": "Form"},
    )
    answer = call(
        ui_app,
        "/ui/upload",
        method="POST",
        headers={"Cookie": cookie},
        CONTENT_TYPE=content_type,
        CONTENT_LENGTH=str(len(body)),
        **{"wsgi.input": io.BytesIO(body)},
    )
    assert answer.status == 200, answer.text
    assert "good.png: stored as" in answer.text and "bad.jpg was not stored" in answer.text
    assert "IMG_0001.HEIC: stored as" in answer.text
    assert ui_app.service.catalog.get(compute_id(good))["title"] == ["Form"]
    assert ui_app.service.catalog.get(compute_id(phone))["content_type"] == "image/heic"
    assert ui_app.service.catalog.count() == 2


def test_status_page(ui_app: ImageApp) -> None:
    cookie, _ = sign_in(ui_app)
    client = Client(service=ui_app.service)
    image_id = client.save_image(jpeg(400, 300))
    assert call(ui_app, f"/small/{image_id}.jpeg").status == 200
    page = call(ui_app, "/ui/status", headers={"Cookie": cookie}).text
    assert "No CDN is configured" in page
    assert re.search(r"240x160 \(small\)</th><td>jpeg</td><td>1</td>", page), page
    assert page.count("answers") == 2  # originals and catalog


def test_static_files_and_errors(ui_app: ImageApp) -> None:
    css = call(ui_app, "/ui/static/ui.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    script = call(ui_app, "/ui/static/ui.js")
    assert script.status == 200 and b"XMLHttpRequest" in script.body
    assert call(ui_app, "/ui/static/../../etc/passwd").status == 404
    cookie, _ = sign_in(ui_app)
    missing = call(ui_app, "/ui/images/" + "A" * 32 + "01", headers={"Cookie": cookie})
    assert missing.status == 404 and missing.headers["Content-Type"].startswith("text/html")
    assert "Back to the images" in missing.text
    assert call(ui_app, "/ui").headers["Location"] == "/ui/"


# -- through both fronts -----------------------------------------------------------------


@dataclass
class Browser:
    """A minimal HTTP user agent: keeps the session cookie, follows nothing by itself."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        status, answer, raw = get(self.port, path, method, sent, body=body)
        if "set-cookie" in answer:
            name, _, value = answer["set-cookie"].split(";", 1)[0].partition("=")
            self.cookies[name] = value
        return status, answer, raw

    def form(self, path: str, fields: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        body = urllib.parse.urlencode(fields).encode()
        return self.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})


@pytest.fixture(scope="module", params=["gunicorn", "lighttpd"])
def front(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Client]]:
    home = tmp_path_factory.mktemp(f"ui-{request.param}")
    with huimages_serve(home, request.param, {"HUIMAGES_ADMIN_TOKEN": ADMIN}) as (port, env):
        yield port, Client(Settings.from_env(env))


@pytest.mark.integration
def test_every_page_through_the_front(front: tuple[int, Client]) -> None:
    port, client = front
    agent = Browser(port)
    status, headers, _ = agent.request("GET", "/ui/")
    assert status == 303 and headers["location"].startswith("/ui/signin")
    status, headers, _ = agent.form("/ui/signin", {"token": ADMIN, "next": "/ui/upload"})
    assert status == 303 and headers["location"] == "/ui/upload" and COOKIE in agent.cookies
    status, _, page = agent.request("GET", "/ui/upload")
    csrf = re.search(rb'name="csrf" value="([0-9a-f]+)"', page)
    assert status == 200 and csrf
    data = jpeg(640, 480)
    body, content_type = multipart([("front.jpg", "image/jpeg", data)], {"csrf": csrf.group(1).decode()})
    status, _, answer = agent.request(
        "POST", "/ui/upload", body, {"Content-Type": content_type, "Accept": "application/json"}
    )
    assert status == 200, answer
    image_id = compute_id(data)
    assert image_id.encode() in answer
    status, _, grid = agent.request("GET", "/ui/")
    assert status == 200 and f'data-id="{image_id}"'.encode() in grid
    thumb = images_of(grid.decode())[0]["src"]
    assert thumb is not None
    status, headers, _ = agent.request("GET", thumb)
    assert status == 200 and headers["content-type"] == "image/jpeg"
    status, _, page = agent.request("GET", f"/ui/images/{image_id}")
    assert status == 200 and b"Copy tag" in page and b"640 \xc3\x97 480" in page
    fields = {"csrf": csrf.group(1).decode(), "title": "Through the front"}
    status, headers, _ = agent.form(f"/ui/images/{image_id}/title", fields)
    assert status == 303 and client.get_imagedoc(image_id)["title"] == ["Through the front"]
    status, _, page = agent.request("GET", "/ui/status")
    assert status == 200 and b"answers" in page
    for asset in ("/ui/static/ui.css", "/ui/static/ui.js"):
        assert agent.request("GET", asset)[0] == 200
    status, headers, _ = agent.form(f"/ui/images/{image_id}/delete", {"csrf": csrf.group(1).decode()})
    assert status == 303 and headers["location"] == "/ui/?done=deleted"
    status, _, grid = agent.request("GET", "/ui/?done=deleted")
    assert b"The image was deleted." in grid and image_id.encode() not in grid
