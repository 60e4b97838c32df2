"""``huimages serve``: the real multi-process server on a loopback port."""

import concurrent.futures
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from huimages.client import Client
from huimages.config import Settings
from tests.imagetools import decode, jpeg
from tests.servers import free_port, get, running

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Client, Path]]:
    home = tmp_path_factory.mktemp("serve")
    port = free_port()
    log = home / "server.log"
    env = {"HUIMAGES_HOME": str(home), "IMAGESERVERURL": f"http://127.0.0.1:{port}/"}
    with running(
        [sys.executable, "-m", "huimages", "-v", "serve", "--port", str(port), "--workers", "2"], port, log, env
    ):
        yield port, Client(Settings.at(home, server_url=env["IMAGESERVERURL"])), log


def test_render_and_hit_over_http(live: tuple[int, Client, Path]) -> None:
    port, client, _ = live
    image_id = client.save_image(jpeg(800, 600))
    url = client.scaled_imageurl(image_id, "small").removeprefix(f"http://127.0.0.1:{port}")
    status, headers, body = get(port, url)
    assert status == 200
    assert headers["content-type"] == "image/jpeg"
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert decode(body).size == client.scaled_dimensions(image_id, "small") == (213, 160)
    status, again, body2 = get(port, url)
    assert (status, body2) == (200, body)
    assert get(port, url, headers={"If-None-Match": again["etag"]})[0] == 304
    head_status, head_headers, head_body = get(port, url, method="HEAD")
    assert (head_status, head_body, head_headers["content-length"]) == (200, b"", str(len(body)))


def test_webp_avif_and_png_over_http(live: tuple[int, Client, Path]) -> None:
    port, client, _ = live
    image_id = client.save_image(jpeg(800, 600))
    for fmt in ("webp", "avif", "png"):
        path = f"/small/{image_id}.{fmt}"
        status, headers, body = get(port, path)
        assert status == 200 and headers["content-type"] == f"image/{fmt}"
        assert headers["cache-control"] == "public, max-age=31536000, immutable"
        assert decode(body).size == (213, 160)
        assert get(port, path, headers={"If-None-Match": headers["etag"]})[0] == 304


def test_errors_over_http(live: tuple[int, Client, Path]) -> None:
    port, _, _ = live
    status, _, body = get(port, "/0x0/" + "A" * 32 + "01.jpeg")
    assert status == 400 and b"whole numbers" in body
    assert get(port, "/small/" + "A" * 32 + "01.jpeg")[0] == 404
    assert get(port, "/small/..%2F..%2Fetc%2Fpasswd")[0] == 400
    assert get(port, "/healthz")[0] == 200


def test_concurrent_requests_render_once(live: tuple[int, Client, Path]) -> None:
    port, client, log = live
    image_id = client.save_image(jpeg(2400, 1800))
    path = f"/640x480/{image_id}.jpeg"
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        responses = list(pool.map(lambda _: get(port, path), range(24)))
    assert all(status == 200 for status, _, _ in responses)
    bodies = {body for _, _, body in responses}
    assert len(bodies) == 1
    assert decode(bodies.pop()).size == (640, 480)
    rendered = [line for line in log.read_text().splitlines() if f"rendered 640x480/{image_id}" in line]
    assert len(rendered) == 1, rendered
