"""The images API over HTTP (/images), through both fronts: huimages serve and lighttpd with FastCGI."""

import http.client
import json
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from huimages.client import Client
from huimages.config import Settings
from huimages.core.ids import compute_id
from huimages.imaging import ACCEPTED_NAMES
from tests.imagetools import decode, encode, jpeg, pattern, placed
from tests.servers import LOOPBACK, get, huimages_serve

pytestmark = pytest.mark.integration

TOKEN = "upload-token-for-tests"
ADMIN = "admin-token-for-tests"
LIMIT = 300_000


@dataclass
class Server:
    port: int
    client: Client
    front: str
    home: Path

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        token: str | None = TOKEN,
    ) -> tuple[int, dict[str, str], Any]:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        status, answer, raw = get(self.port, path, method, sent, body=body)
        decoded = json.loads(raw) if answer.get("content-type", "").startswith("application/json") else raw
        return status, answer, decoded

    def stored(self) -> set[str]:
        return {str(doc["_id"]) for docs in self.client.service.catalog.pages() for doc in docs}


@pytest.fixture(scope="module", params=["gunicorn", "lighttpd"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp(f"api-{request.param}")
    env = {"HUIMAGES_UPLOAD_TOKEN": TOKEN, "HUIMAGES_ADMIN_TOKEN": ADMIN, "HUIMAGES_MAX_UPLOAD_BYTES": str(LIMIT)}
    with huimages_serve(home, request.param, env) as (port, environ):
        yield Server(port, Client(Settings.from_env(environ)), request.param, home)


def multipart(files: list[tuple[str, str, bytes]], fields: Mapping[str, str]) -> tuple[bytes, str]:
    boundary = "huimages-test-boundary-7f3a"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for filename, kind, data in files:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        parts.append(head.encode() + f"Content-Type: {kind}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_upload_an_image_then_the_same_bytes_again(server: Server) -> None:
    data = jpeg(640, 480)
    status, headers, answer = server.request(
        "POST", "/images?title=Harbour&typ=photo", data, {"Content-Type": "image/jpeg"}
    )
    assert status == 201, answer
    image_id = compute_id(data)
    assert answer["id"] == image_id and answer["created"] is True
    assert (answer["width"], answer["height"], answer["content_type"], answer["length"]) == (
        640,
        480,
        "image/jpeg",
        len(data),
    )
    assert headers["location"] == f"/images/{image_id}"
    assert answer["urls"]["small"].endswith(f"/240x160/{image_id}/Harbour.jpeg")
    status, _, again = server.request("POST", "/images?title=Quay", data, {"Content-Type": "image/jpeg"})
    assert status == 200 and again["created"] is False  # known bytes: metadata merged, as save_image does
    status, _, record = server.request("GET", f"/images/{image_id}")
    assert status == 200 and record["title"] == ["Harbour", "Quay"] and record["types"] == ["photo"]
    status, _, body = server.request("GET", answer["urls"]["small"].split(f":{server.port}", 1)[1], token=None)
    assert status == 200 and decode(body).size == (213, 160)


def test_a_raw_body_typed_octet_stream_is_read_by_its_bytes(server: Server) -> None:
    phone = encode(pattern(400, 300), "HEIF", quality=80)
    status, _, answer = server.request("POST", "/images", phone, {"Content-Type": "application/octet-stream"})
    assert status == 201, answer
    assert (answer["content_type"], answer["width"], answer["height"]) == ("image/heic", 400, 300)
    status, _, refused = server.request(
        "POST", "/images", b"%PDF-1.7 not an image", {"Content-Type": "application/octet-stream"}
    )
    assert status == 422 and ACCEPTED_NAMES in refused["error"], refused
    status, _, refused = server.request("POST", "/images", phone, {"Content-Type": "text/plain"})
    assert status == 415 and "application/octet-stream" in refused["error"] and ACCEPTED_NAMES in refused["error"]
    assert compute_id(b"%PDF-1.7 not an image") not in server.stored()


def test_multipart_with_several_files_and_fields(server: Server) -> None:
    first, second = jpeg(300, 200), jpeg(301, 200)
    body, kind = multipart(
        [("a.jpg", "image/jpeg", first), ("b.jpg", "application/octet-stream", second)],
        {"title": "Two <b>boats</b>", "references": json.dumps({"article": "A-17"}), "typ": "product"},
    )
    status, _, answer = server.request("POST", "/images", body, {"Content-Type": kind})
    assert status == 201, answer
    assert [image["id"] for image in answer["images"]] == [compute_id(first), compute_id(second)]
    record = server.request("GET", f"/images/{compute_id(second)}")[2]
    assert record["title"] == ["Two <b>boats</b>"] and record["references"] == {"article": ["A-17"]}
    assert record["filename"] == "b.jpg" and record["types"] == ["product"]


def test_errors_are_json_and_store_nothing(server: Server) -> None:
    before = server.stored()
    image = jpeg(200, 150)
    status, headers, answer = server.request("POST", "/images", image, {"Content-Type": "image/jpeg"}, token=None)
    assert (
        status == 401
        and headers["www-authenticate"].startswith("Bearer")
        and "HUIMAGES_UPLOAD_TOKEN" in answer["error"]
    )
    status, _, answer = server.request("POST", "/images", image, {"Content-Type": "image/jpeg"}, token="wrong")
    assert status == 403 and "wrong" not in answer["error"]
    status, _, answer = server.request("POST", "/images", b"hello", {"Content-Type": "text/plain"})
    assert status == 415 and "text/plain" in answer["error"]
    status, _, answer = server.request("POST", "/images", b"\xff\xd8 not a jpeg", {"Content-Type": "image/jpeg"})
    assert status == 422 and answer["error"]
    body, kind = multipart([("good.jpg", "image/jpeg", image), ("bad.jpg", "image/jpeg", image[:300])], {})
    status, _, answer = server.request("POST", "/images", body, {"Content-Type": kind})
    assert status == 422, answer  # the good file is not stored either
    status, _, answer = server.request("POST", "/images", b"x" * (LIMIT + 1), {"Content-Type": "image/jpeg"})
    assert status == 413, answer
    status, _, answer = server.request("GET", "/images/not-an-id")
    assert status == 400 and answer["error"]
    status, _, answer = server.request("GET", f"/images/{compute_id(b'never stored')}")
    assert status == 404 and answer["error"]
    assert server.request("PUT", "/images")[0] == 405
    assert server.stored() == before
    # the admin token works too
    status, _, answer = server.request("POST", "/images", image, {"Content-Type": "image/jpeg"}, token=ADMIN)
    assert status == 201


def test_a_body_over_the_limit_is_refused_before_it_is_sent(server: Server) -> None:
    conn = http.client.HTTPConnection(LOOPBACK, server.port, timeout=30)
    try:
        conn.putrequest("POST", "/images")
        for name, value in (
            ("Authorization", f"Bearer {TOKEN}"),
            ("Content-Type", "image/jpeg"),
            ("Content-Length", str(50 * LIMIT)),
        ):
            conn.putheader(name, value)
        conn.endheaders()  # and no body: the answer must not wait for it
        response = conn.getresponse()
        assert response.status == 413
    finally:
        conn.close()


def chunks(total: int) -> Iterator[bytes]:
    for _ in range(total // 10_000):
        yield b"\xff" * 10_000


def test_a_chunked_body_is_counted_while_read(server: Server) -> None:
    """huimages serve counts a chunked body as it reads it; lighttpd refuses one before reading it (below)."""
    if server.front == "lighttpd":
        refuse_chunked_bodies_unread(server)
        return
    conn = http.client.HTTPConnection(LOOPBACK, server.port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "image/jpeg", "Transfer-Encoding": "chunked"}
        conn.request("POST", "/images", body=chunks(2 * LIMIT), headers=headers, encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 413 and "upload limit" in json.loads(response.read())["error"]
    finally:
        conn.close()
    image = jpeg(222, 111)
    conn = http.client.HTTPConnection(LOOPBACK, server.port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "image/jpeg", "Transfer-Encoding": "chunked"}
        conn.request("POST", "/images", body=iter([image[:1000], image[1000:]]), headers=headers, encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 201 and json.loads(response.read())["id"] == compute_id(image)
    finally:
        conn.close()


def test_a_client_that_goes_away_mid_body_leaves_nothing(server: Server) -> None:
    before = server.stored()
    image = jpeg(333, 222)
    with socket.create_connection((LOOPBACK, server.port), timeout=10) as sock:
        head = (
            f"POST /images HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: image/jpeg\r\nContent-Length: {len(image)}\r\n\r\n"
        )
        sock.sendall(head.encode() + image[: len(image) // 2])
    assert server.request("GET", "/healthz", token=None)[0] == 200
    assert server.stored() == before
    assert not server.client.service.originals.exists(compute_id(image))


def test_patch_delete_and_browse(server: Server) -> None:
    ids = []
    for n in range(5):
        data = jpeg(120 + n, 90)
        status, _, answer = server.request("POST", f"/images?title=browse-{n}", data, {"Content-Type": "image/jpeg"})
        assert status in (200, 201)
        ids.append(answer["id"])
    status, _, record = server.request(
        "PATCH", f"/images/{ids[0]}", json.dumps({"title": "renamed", "references": {"sku": "X-9"}}).encode()
    )
    assert status == 200 and record["title"] == ["browse-0", "renamed"] and record["references"] == {"sku": ["X-9"]}
    assert server.request("PATCH", f"/images/{ids[0]}", b"[1, 2]")[0] == 400
    status, _, refused = server.request("PATCH", f"/images/{ids[0]}", b'{"title": "x", "tittle": "y"}')
    assert status == 400 and "unknown field 'tittle'" in refused["error"] and "title, references" in refused["error"]
    assert server.request("GET", f"/images/{ids[0]}")[2]["title"] == ["browse-0", "renamed"]  # nothing changed

    status, _, found = server.request("GET", "/images?q=x-9")
    assert status == 200 and [image["id"] for image in found["images"]] == [ids[0]]
    found = server.request("GET", "/images?q=BROWSE-")[2]
    assert sorted(image["id"] for image in found["images"]) == sorted(ids)
    first = server.request("GET", "/images?q=browse-&limit=2")[2]
    rest = server.request("GET", f"/images?q=browse-&limit=10&after={first['next']}")[2]
    assert [i["id"] for i in first["images"] + rest["images"]] == sorted(ids)  # ID order, no repeats

    newest = server.request("GET", "/images?q=browse-&order=newest&limit=3")[2]
    assert [i["id"] for i in newest["images"]] == ids[::-1][:3]  # stored one after the other
    more = server.request("GET", f"/images?q=browse-&order=newest&after={newest['next']}")[2]
    assert [i["id"] for i in more["images"]] == ids[::-1][3:]
    assert server.request("GET", "/images?order=oldest")[0] == 400

    assert server.request("DELETE", f"/images/{ids[1]}")[0] == 204
    assert server.request("GET", f"/images/{ids[1]}")[0] == 404
    assert server.request("DELETE", f"/images/{ids[1]}")[0] == 204  # again: not an error
    assert ids[1] not in {i["id"] for i in server.request("GET", "/images?q=browse-")[2]["images"]}


def test_browsing_neighbours_and_records_by_id(server: Server) -> None:
    ids = sorted(server.client.save_image(jpeg(90 + i, 60)) for i in range(3))
    status, _, answer = server.request("GET", f"/images/{ids[0]}/next")
    assert status == 200 and answer["id"] > ids[0]
    status, _, answer = server.request("GET", f"/images/{answer['id']}/previous")
    assert status == 200 and answer["id"] == ids[0]
    status, _, answer = server.request("GET", "/images/random")
    assert status == 200 and answer["id"] in server.stored()
    unknown = "A" * 32 + "01"
    status, _, answer = server.request("GET", "/images?ids=" + ",".join([*ids, unknown]))
    assert status == 200 and sorted(r["_id"] for r in answer["images"]) == ids
    assert all(r["cdn"] == {} and r["length"] > 0 for r in answer["images"])
    status, _, answer = server.request("GET", f"/images/{unknown}")
    assert (status, answer["kind"]) == (404, "UnknownImage")  # a remote client raises what a local one would
    status, _, answer = server.request("PATCH", f"/images/{ids[0]}", b'{"timestamp": "yesterday"}')
    assert status == 400 and "20240131T235959" in answer["error"]


def test_remote_client_through_the_front(server: Server) -> None:
    base = f"http://127.0.0.1:{server.port}/"
    remote = Client(Settings.from_env({"IMAGESERVERURL": base, "HUIMAGES_UPLOAD_TOKEN": TOKEN}))
    assert remote.remote
    data = jpeg(500, 250)
    image_id = remote.save_image(data, title="Über <Remote>", filename="remote.jpg")
    assert server.client.get_imagedoc(image_id)["title"] == ["Über <Remote>"]
    assert remote.get_length(image_id) == len(data)
    assert remote.scaled_dimensions(image_id, "small") == (240, 120)
    assert decode(remote.scaled_imagedata(image_id, "small")).size == (240, 120)
    assert 'alt="Über &lt;Remote&gt;"' in remote.scaled_tag(image_id, "small")
    remote.delete_image(image_id)
    assert image_id not in server.stored()


def refuse_chunked_bodies_unread(server: Server) -> None:
    """lighttpd would store a chunked body whole before the app could check its token: it answers 411 at once."""
    uploads = server.home / "run" / "uploads"
    for token in (None, "a-wrong-token-guessed", TOKEN):
        conn = http.client.HTTPConnection(LOOPBACK, server.port, timeout=30)
        try:
            headers = {"Content-Type": "image/jpeg", "Transfer-Encoding": "chunked"}
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            conn.putrequest("POST", "/images")
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            conn.send(b"2710\r\n" + b"\xff" * 10_000 + b"\r\n")  # one chunk, and the body never ends
            response = conn.getresponse()
            answer = json.loads(response.read())
            assert response.status == 411 and "Content-Length" in answer["error"], answer
            assert not any(uploads.iterdir())  # nothing buffered
        finally:
            conn.close()


def test_a_search_reads_a_bounded_number_of_records_a_request_and_goes_on_from_its_cursor(tmp_path: Path) -> None:
    from huimages.catalog.sqlite import SQLiteCatalog
    from huimages.http.app import create_app
    from tests.wsgi import call

    client = Client(Settings.from_env({"HUIMAGES_HOME": str(tmp_path), "HUIMAGES_UPLOAD_TOKEN": TOKEN}))
    catalog = client.service.catalog
    assert isinstance(catalog, SQLiteCatalog)
    docs = [{"_id": compute_id(b"plain %d" % n), "title": ["plain"], "ctime": f"2026-{n:06d}"} for n in range(600)]
    needle = max(str(doc["_id"]) for doc in docs)  # the last in ID order
    docs = [{**doc, "title": ["needle"]} if doc["_id"] == needle else doc for doc in docs]
    catalog.put_many(docs)
    app = create_app(service=client.service)
    after, requests = "", 0
    found: list[dict[str, object]] = []
    while not found:
        query = "q=needle&limit=5" + (f"&after={after}" if after else "")
        answer = json.loads(call(app, "/images", QUERY_STRING=query, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").body)
        found, after, requests = answer["images"], answer["next"], requests + 1
        assert found or after, answer  # nothing yet, and a cursor to go on from
    assert [image["id"] for image in found] == [needle]
    assert requests >= 3  # 600 records, at most 20 pages' worth (here 100 to 199) read a request


def test_a_focus_set_by_patch_names_new_crop_urls_and_the_old_ones_keep_answering(server: Server) -> None:
    data, face = placed(1800, 900, 1000, 100)
    status, _, stored = server.request("POST", "/images", data, {"Content-Type": "image/jpeg"})
    assert status in (200, 201)
    image_id = stored["id"]
    record = server.request("GET", f"/images/{image_id}")[2]
    found = record["focus"]
    assert found["source"] == "face" and face[0] <= found["x"] <= face[2]
    assert set(record["placeholder"]) == {"color", "thumbhash"}
    old_url = record["urls"]["square"]
    token = f"@{round(found['x'] * 100)}-{round(found['y'] * 100)}"
    assert f"/75x75!{token}/" in old_url and "/240x160/" in record["urls"]["small"]
    old_path = old_url.split(str(server.port), 1)[1]
    status, _, first = get(server.port, old_path)
    assert status == 200 and decode(first).size == (75, 75)

    status, _, changed = server.request("PATCH", f"/images/{image_id}", json.dumps({"focus": [0.1, 0.5]}).encode())
    assert status == 200 and changed["focus"] == {"x": 0.1, "y": 0.5, "source": "manual"}
    assert "/75x75!@10-50/" in changed["urls"]["square"] and changed["focus_past"] == [token[1:]]
    new_path = changed["urls"]["square"].split(str(server.port), 1)[1]
    assert get(server.port, new_path)[0] == 200
    for _ in range(2):  # the old URL: a hit (lighttpd's own, on that front), and again
        status, _, again = get(server.port, old_path)
        assert status == 200 and decode(again).size == (75, 75)
    status, _, refused = get(server.port, f"/75x75!@33-33/{image_id}.jpeg")
    assert status == 404 and b"no focus '33-33'" in refused
    status, _, wrong = server.request("PATCH", f"/images/{image_id}", b'{"focus": [2, 0.5], "title": "x"}')
    assert status == 400 and "[x, y]" in wrong["error"]
    assert server.request("GET", f"/images/{image_id}")[2]["title"] == []  # nothing changed
    status, _, back = server.request("PATCH", f"/images/{image_id}", b'{"focus": null}')
    assert status == 200 and back["focus"]["source"] == "face" and back["urls"]["square"] == old_url
    remote = Client(
        Settings.from_env({"IMAGESERVERURL": f"http://127.0.0.1:{server.port}/", "HUIMAGES_UPLOAD_TOKEN": TOKEN})
    )
    assert remote.set_focus(image_id, (0.9, 0.1))["source"] == "manual"
    assert "/75x75!@90-10/" in remote.scaled_imageurl(image_id, "square")
