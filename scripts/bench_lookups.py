"""Batch look-ups: ``GET /images?ids=`` of 100 IDs, ``scaled_imageurls`` of 250, local and remote.

Part of ``scripts/bench.py`` (``--only lookups``); figures, not tests. Each
store (SQLite; CouchDB on pouchdb-server) holds 250 images, 100 of them with
a derivative on the CDN (a SeaweedFS bucket); ``huimages serve`` answers the
HTTP requests. Look-ups are cold: ``CDN_LOOKUP_TTL=0``, and a fresh page
client (local) or client (remote) for each measurement, so every one reads
the stores.
"""

from __future__ import annotations

import http.client
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from huimages.client import Client
from huimages.config import Settings

TOKEN = "bench-upload-token-of-lookups"


def bench_lookups(free_port: Callable[[], int], wait_port: Callable[[int], None], repeat: int = 30) -> None:
    from tests.servers import PouchCouch, SeaweedS3

    print("\n## Batch look-ups: 250 images, 100 of them on the CDN; cold (no look-up cached), p50 / p99 in ms")
    print(f"{'store':8} {'look-up':44} {'p50':>7} {'p99':>7}  target")
    with tempfile.TemporaryDirectory() as tmp:
        s3, couch = SeaweedS3(Path(tmp) / "s3"), PouchCouch(Path(tmp) / "couch")
        s3.start()
        couch.start()
        try:
            for store in ("SQLite", "CouchDB"):
                port = free_port()
                env = {
                    "HUIMAGES_HOME": str(Path(tmp) / store),
                    "IMAGESERVERURL": f"http://127.0.0.1:{port}/",
                    "CDN_BUCKET": s3.new_bucket(),
                    "CDN_URL": "https://cdn.example.com",
                    "CDN_LOOKUP_TTL": "0",
                    "AWS_ENDPOINT_URL_S3": s3.endpoint,
                    "AWS_ACCESS_KEY_ID": s3.ACCESS_KEY,
                    "AWS_SECRET_ACCESS_KEY": s3.SECRET_KEY,
                    "HUIMAGES_UPLOAD_TOKEN": TOKEN,
                }
                if store == "CouchDB":
                    env |= {"COUCHSERVER": couch.url, "HUIMAGES_COUCHDB_NAME": couch.new_database()}
                _bench_store(store, env, port, wait_port, repeat)
        finally:
            s3.kill()
            couch.kill()


def _bench_store(store: str, env: dict[str, str], port: int, wait_port: Callable[[int], None], repeat: int) -> None:
    settings = Settings.from_env(env)
    client = Client(settings)
    ids = [client.save_image(_image(n), title=f"look-up {n}") for n in range(250)]
    service = client.service
    for image_id in ids[:100]:
        service.derivative(service.parse_size("small"), image_id).close()
    assert service.publisher is not None and service.publisher.run().uploaded == 100
    argv = [sys.executable, "-m", "huimages", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    server = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_port(port)
        remote_env = {"IMAGESERVERURL": env["IMAGESERVERURL"], "HUIMAGES_UPLOAD_TOKEN": TOKEN}
        query = "/images?ids=" + ",".join(ids[:100])
        rows: list[tuple[str, Callable[[], object], float]] = [
            ("local scaled_imageurls, 250 IDs", lambda: client.for_one_page().scaled_imageurls(ids, "small"), 0.5),
            ("GET /images?ids= of 100 IDs (huimages serve)", lambda: _get(port, query), 0.2),
            (
                "remote scaled_imageurls, 250 IDs (3 requests)",
                lambda: Client(Settings.from_env(remote_env)).scaled_imageurls(ids, "small"),
                0.5,
            ),
        ]
        for label, run, target in rows:
            run()  # a warm-up: connections, imports, the server's first request
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                run()
                times.append(time.perf_counter() - started)
            p50, p99 = statistics.median(times), max(times) if repeat < 100 else statistics.quantiles(times, n=100)[98]
            print(f"{store:8} {label:44} {p50 * 1000:7.1f} {p99 * 1000:7.1f}  {target * 1000:.0f}")
    finally:
        os.killpg(server.pid, 15)
        server.wait(20)


def _get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, (response.status, body[:200])
        return body
    finally:
        conn.close()


def _image(n: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64 + n % 50, 48 + n // 50), (n % 256, 90, 160)).save(out, "JPEG", quality=80)
    return out.getvalue()
