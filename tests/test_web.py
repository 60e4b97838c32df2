"""HTTP semantics of the WSGI app, called in-process."""

import email.utils
import json
import os
import re
from pathlib import Path

import pytest

from huimages.catalog.sqlite import SQLiteCatalog
from huimages.client import Client
from huimages.config import Settings
from huimages.core.ids import compute_id
from huimages.http.app import ImageApp, create_app
from tests.imagetools import decode, jpeg
from tests.wsgi import call


@pytest.fixture
def image_id(client: Client) -> str:
    return client.save_image(jpeg(600, 400))


def test_render_then_hit(app: ImageApp, image_id: str) -> None:
    first = call(app, f"/240x160/{image_id}.jpeg")
    assert first.status == 200
    assert first.headers["Content-Type"] == "image/jpeg"
    assert first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert int(first.headers["Content-Length"]) == len(first.body)
    assert decode(first.body).size == (240, 160)
    second = call(app, f"/240x160/{image_id}.jpeg")
    assert second.body == first.body
    assert second.headers["ETag"] == first.headers["ETag"]
    assert (app.service.cache.root / "240x160" / f"{image_id}.jpeg").is_file()


def test_named_size_and_original(app: ImageApp, image_id: str) -> None:
    assert decode(call(app, f"/square/{image_id}.jpeg").body).size == (75, 75)
    assert decode(call(app, f"/75x75!/{image_id}.jpeg").body).size == (75, 75)
    assert decode(call(app, f"/o/{image_id}.jpeg").body).size == (600, 400)
    assert decode(call(app, f"/small/{image_id}.jpeg").body).size == (240, 160)


def test_head_has_headers_and_no_body(app: ImageApp, image_id: str) -> None:
    head = call(app, f"/medium/{image_id}.jpeg", method="HEAD")
    get = call(app, f"/medium/{image_id}.jpeg")
    assert head.status == 200 and head.body == b""
    assert head.headers["Content-Length"] == get.headers["Content-Length"]
    assert head.headers["ETag"] == get.headers["ETag"]


def test_conditional_requests(app: ImageApp, image_id: str) -> None:
    path = f"/100x100/{image_id}.jpeg"
    first = call(app, path)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert call(app, path, headers={"If-None-Match": etag}).status == 304
    assert call(app, path, headers={"If-None-Match": f'"other", {etag}'}).status == 304
    assert call(app, path, headers={"If-None-Match": '"other"'}).status == 200
    assert call(app, path, headers={"If-Modified-Since": modified}).status == 304
    earlier = email.utils.formatdate(email.utils.parsedate_to_datetime(modified).timestamp() - 10, usegmt=True)
    assert call(app, path, headers={"If-Modified-Since": earlier}).status == 200
    # If-None-Match decides when both are present
    assert call(app, path, headers={"If-None-Match": '"other"', "If-Modified-Since": modified}).status == 200
    not_modified = call(app, path, headers={"If-None-Match": etag})
    assert not_modified.body == b"" and not_modified.headers["ETag"] == etag


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/240x160/NOTANID.jpeg", 400, "34 characters"),
        ("/240x160/" + "a" * 32 + "01.jpeg", 400, "upper case"),
        ("/0x0/" + "A" * 32 + "01.jpeg", 400, "whole numbers"),
        ("/5000x10/" + "A" * 32 + "01.jpeg", 400, "4096"),
        ("/10x10!!/" + "A" * 32 + "01.jpeg", 400, "WxH"),
        ("/giant/" + "A" * 32 + "01.jpeg", 400, "unknown size name"),
        ("/../" + "A" * 32 + "01.jpeg", 400, r"'\.\.'"),
        ("/small/../../etc/passwd", 400, r"'\.\.'"),
        ("/small/%2e%2e/x.jpeg", 400, ""),
        ("/small/" + "A" * 32 + "01.gif", 404, "use one of: jpeg, webp, avif, png"),
        ("/small/A\x00.jpeg", 400, "control"),
        ("/sm\u00e4ll/" + "A" * 32 + "01.jpeg", 400, "non-ASCII"),
        ("/favicon.ico", 404, "no such resource"),
        ("/", 404, "no such resource"),
    ],
)
def test_bad_paths(app: ImageApp, path: str, status: int, message: str) -> None:
    response = call(app, path)
    assert response.status == status
    assert response.text.count("\n") == 1  # one line
    if message:
        assert re.search(message, response.text), response.text
    assert response.headers["Cache-Control"] == "no-store"


def test_encoded_traversal_behind_lighttpd_is_refused(app: ImageApp, tmp_path_factory: pytest.TempPathFactory) -> None:
    for raw in ("/small%2F..%2F..%2Fetc/passwd.jpeg", "/%2e%2e/%2e%2e/etc/passwd", "/small/%252e%252e/x.jpeg"):
        response = call(app, "/_fcgi", REDIRECT_STATUS="404", REQUEST_URI=raw)
        assert response.status == 400, raw
    before = set(os.listdir(app.service.cache.root)) if app.service.cache.root.exists() else set()
    assert before <= {".huimages"}


def test_unknown_id_is_404(app: ImageApp) -> None:
    response = call(app, f"/small/{compute_id(b'nothing')}.jpeg")
    assert response.status == 404
    assert "no image" in response.text
    assert not app.service.cache.root.joinpath("small").exists() or not any(
        app.service.cache.root.joinpath("small").iterdir()
    )


def test_method_not_allowed(app: ImageApp, image_id: str) -> None:
    response = call(app, f"/small/{image_id}.jpeg", method="POST")
    assert response.status == 405 and response.headers["Allow"] == "GET, HEAD"


def test_corrupt_original_is_422_and_nothing_cached(app: ImageApp, client: Client) -> None:
    data = jpeg(300, 200)
    image_id = client.save_image(data)
    # The stored original goes bad on disk after it was accepted, on a host that has no master of it.
    path = client.service.originals.root / image_id[:2] / image_id  # type: ignore[attr-defined]
    path.write_bytes(data[: len(data) // 2])
    client.service.originals.delete_master(image_id, client.settings.master_side)
    response = call(app, f"/small/{image_id}.jpeg")
    assert response.status == 422
    assert "truncated or corrupt" in response.text
    assert not client.service.cache.path("small", image_id).exists()
    assert not client.get_imagedoc(image_id).get("deleted")
    # the worker keeps serving other images
    other = client.save_image(jpeg(120, 80))
    assert call(app, f"/small/{other}.jpeg").status == 200


def test_io_fault_is_500_not_deleted(app: ImageApp, client: Client) -> None:
    image_id = client.save_image(jpeg(300, 200))
    path = client.service.originals.root / image_id[:2] / image_id  # type: ignore[attr-defined]
    path.unlink()
    path.mkdir()  # reading a directory: EISDIR, an I/O fault rather than a bad image
    client.service.originals.delete_master(image_id, client.settings.master_side)
    response = call(app, f"/small/{image_id}.jpeg")
    assert response.status == 500
    assert "cannot read" in response.text
    assert not client.get_imagedoc(image_id).get("deleted")


def test_healthz(app: ImageApp) -> None:
    response = call(app, "/healthz")
    assert response.status == 200
    report = json.loads(response.body)
    assert report["ok"] is True
    assert report["backends"]["catalog"] == {"backend": "sqlite catalog", "ok": True}
    assert report["backends"]["originals"]["ok"] is True


def test_healthz_reports_a_failing_backend(app: ImageApp) -> None:
    blocked = app.service.cache.root / "missing-dir"
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("a file where a folder should be")
    app.service.catalog = SQLiteCatalog(blocked / "x" / "catalog.sqlite3")
    response = call(app, "/healthz")
    assert response.status == 503
    assert json.loads(response.body)["backends"]["catalog"]["ok"] is False


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/healthz", "GET, HEAD"),
        ("POST", "/metrics", "GET, HEAD"),
        ("DELETE", "/processqueue", "GET, HEAD, POST"),
        ("PUT", "/images", "GET, HEAD, POST"),
        ("PUT", f"/images/{'A' * 32}01", "GET, HEAD, PATCH, DELETE"),
        ("POST", f"/images/{'A' * 32}01/next", "GET, HEAD"),
        ("DELETE", "/ui/status", "GET, HEAD"),
        ("GET", "/ui/status/requeue", "POST"),
        ("PUT", f"/ui/images/{'A' * 32}01", "GET, HEAD"),
        ("PATCH", f"/ui/images/{'A' * 32}01/delete", "GET, HEAD, POST"),
        ("POST", f"/small/{'A' * 32}01.jpeg", "GET, HEAD"),
    ],
)
def test_one_routing_table_answers_405_with_allow_everywhere(
    tmp_path: Path, method: str, path: str, allow: str
) -> None:
    app = create_app(
        Settings.at(tmp_path, upload_token="upload-token-of-the-405s", admin_token="admin-token-of-the-405s")
    )
    answer = call(app, path, method=method, headers={"Authorization": "Bearer upload-token-of-the-405s"})
    assert answer.status == 405 and answer.headers["Allow"] == allow, (answer.status, answer.text)


@pytest.mark.parametrize("path", ["/nothing", "/ui/no-such-page", "/ui/static/../x", "/images/a/b", "/images/x/y/z"])
def test_paths_no_route_takes_answer_404(tmp_path: Path, path: str) -> None:
    app = create_app(Settings.at(tmp_path, admin_token="admin-token-of-the-404s"))
    assert call(app, path).status == 404
