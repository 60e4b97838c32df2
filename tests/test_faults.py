"""Fault injection: a full disk, backends that answer 503 or drop connections, workers stopped or killed.

Every case asserts what a user of the image server relies on: no data lost,
no partial file served, no image marked deleted, a defined status (a 503 with
``Retry-After`` while something is missing, never a 500), and recovery without
a restart. ``./scripts/test -m faults`` runs this suite and the other fault
cases, which live beside the feature they break: kill -9 of a queue run
(``test_cdn``), of a migration (``test_production``), S3 and CouchDB killed and
restarted (``test_production``), and a FastCGI backend killed mid-render
(``test_lighttpd``).
"""

import concurrent.futures
import io
import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

import huimages.serving.cache
from huimages.catalog.sqlite import SQLiteCatalog
from huimages.client import Client
from huimages.config import Settings
from huimages.core.ids import compute_id
from huimages.errors import BackendUnavailable, DiskFull
from huimages.http.app import create_app
from huimages.http.fronts.lighttpd import FrontConfig, find_lighttpd, write_config
from huimages.serving.service import ImageService
from tests.imagetools import decode, encode, jpeg
from tests.servers import FaultProxy, PouchCouch, SeaweedS3, free_port, get, running
from tests.test_lighttpd import Front
from tests.wsgi import call

pytestmark = [pytest.mark.integration, pytest.mark.faults]


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs mounted at ``path``: a disk that fills reliably. Needs root (CI and ./scripts/test run so)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        message = f"cannot mount a tmpfs for the full-disk test: {mounted.stderr.decode().strip()}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message + " (run as root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(folder: Path, leave: int) -> Path:
    """Fill the filesystem of ``folder`` up to ``leave`` free bytes; returns the filler file."""
    filler = folder / "filler"
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with filler.open("wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return filler


def test_a_full_disk_answers_503_before_rendering_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(huimages.serving.cache, "DISK_FULL_PAUSE", 1.0)
    with tmpfs(tmp_path / "cache", "4m") as cache:
        settings = Settings.from_env({"HUIMAGES_HOME": str(tmp_path / "home"), "HUIMAGES_CACHE_DIR": str(cache)})
        service = ImageService.from_settings(settings)
        app = create_app(service=service)
        noise = Image.effect_noise((1600, 1200), 80).convert("RGB")
        image_id = service.ingest(encode(noise, "JPEG", quality=95))
        assert call(app, f"/small/{image_id}.jpeg").status == 200  # a hit from now on
        filler = fill(cache, 64 * 1024)

        with caplog.at_level("ERROR"):
            full = call(app, f"/1200x900/{image_id}.jpeg")
        assert full.status == 503 and full.headers["Retry-After"] == "1", full.text
        assert "no space left" in full.text and str(cache) not in full.text and "1200x900" not in full.text
        assert any(str(cache / "1200x900") in r.getMessage() for r in caplog.records)  # the log names the file
        assert not [p for p in cache.rglob("*") if p.is_file() and p.name.endswith(".tmp")]  # nothing partial
        assert not (cache / "1200x900" / f"{image_id}.jpeg").exists()

        caplog.clear()
        with caplog.at_level("INFO"):
            again = call(app, f"/1100x800/{image_id}.jpeg")
        assert again.status == 503 and "Retry-After" in again.headers
        assert not any("rendered" in r.getMessage() or "left to write" in r.getMessage() for r in caplog.records)
        assert call(app, f"/small/{image_id}.jpeg").status == 200  # hits go on
        assert not service.failures.recent()  # a full disk is not the image's fault

        filler.unlink()
        time.sleep(1.1)
        recovered = call(app, f"/1200x900/{image_id}.jpeg")
        assert recovered.status == 200 and decode(recovered.body).size == (1200, 900)
        assert not service.catalog.get(image_id).get("deleted")


def test_a_full_disk_refuses_an_upload_and_keeps_nothing(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "home", "2m") as home:
        settings = Settings.from_env({"HUIMAGES_HOME": str(home)})
        client = Client(settings)
        kept = client.save_image(jpeg(200, 150))
        filler = fill(home, 16 * 1024)
        big = encode(Image.effect_noise((600, 600), 80).convert("RGB"), "JPEG", quality=95)
        with pytest.raises(DiskFull, match="no space left"):
            client.save_image(big)
        assert not client.service.originals.exists(compute_id(big))
        assert client.service.catalog.find_many([compute_id(big)]) == {}
        assert not [p for p in home.rglob("*.tmp")]
        filler.unlink()
        assert client.save_image(big) == compute_id(big)
        assert client.service.originals.verified(kept)


@pytest.fixture
def faulty(
    tmp_path: Path, seaweed: SeaweedS3, pouch: PouchCouch
) -> Iterator[tuple[Client, Client, dict[str, FaultProxy]]]:
    """Two hosts of one site (bucket and CouchDB shared); the second reaches both backends through fault proxies."""
    env = {
        **seaweed.settings_env(seaweed.new_bucket()),
        "COUCHSERVER": pouch.url,
        "HUIMAGES_COUCHDB_NAME": pouch.new_database(),
        "IMAGESERVERURL": "http://img.test/",
        "HUIMAGES_BACKEND_TIMEOUT": "2",
    }
    first = Client(Settings.from_env(env | {"HUIMAGES_HOME": str(tmp_path / "a")}))
    proxies = {"s3": FaultProxy(seaweed.port), "couchdb": FaultProxy(pouch.port)}
    second_env = env | {
        "HUIMAGES_HOME": str(tmp_path / "b"),
        "AWS_ENDPOINT_URL_S3": proxies["s3"].endpoint,
        "COUCHSERVER": pouch.url.replace(str(pouch.port), str(proxies["couchdb"].port)),
    }
    yield first, Client(Settings.from_env(second_env)), proxies


@pytest.mark.parametrize("backend", ["s3", "couchdb"])
@pytest.mark.parametrize("fault", ["503", "drop", "hang"])
def test_a_backend_answering_503_dropping_connections_or_hung(
    faulty: tuple[Client, Client, dict[str, FaultProxy]], backend: str, fault: str
) -> None:
    """Every call is bounded by HUIMAGES_BACKEND_TIMEOUT (2 s here), retries included, whatever the fault."""
    first, second, proxies = faulty
    image_id = first.save_image(jpeg(3000, 2000))  # larger than its master
    app = create_app(service=second.service)
    for ext in ("jpeg", "png"):
        assert call(app, f"/small/{image_id}.{ext}").status == 200  # cached on the second host
    bound = second.settings.backend_timeout + 1.5  # the second, and half a second for a busy machine

    proxies[backend].mode = fault
    started = time.monotonic()
    miss = call(app, f"/o/{image_id}.jpeg")  # the original: this host has only the master (from small)
    assert miss.status == 503 and "Retry-After" in miss.headers, miss.status
    assert time.monotonic() - started < bound
    for ext in ("jpeg", "png"):
        hit = call(app, f"/small/{image_id}.{ext}")  # hits go on
        assert hit.status == 200 and hit.headers["Content-Type"] == f"image/{ext}"
    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        second.save_image(jpeg(901, 600))
    assert time.monotonic() - started < bound
    health = call(app, "/healthz")
    assert health.status == 503 and json.loads(health.body)["ok"] is False

    proxies[backend].mode = "pass"  # recovery without a restart
    recovered = call(app, f"/o/{image_id}.jpeg")
    assert recovered.status == 200 and decode(recovered.body).size == (3000, 2000)
    assert not first.service.catalog.get(image_id).get("deleted")
    assert first.service.catalog.find_many([compute_id(jpeg(901, 600))]) == {}  # the failed save left no record
    assert second.save_image(jpeg(901, 600)) == compute_id(jpeg(901, 600))


def lighttpd_front(home: Path, read_timeout: int, extra: dict[str, str]) -> tuple[list[str], int, Path, Settings]:
    port = free_port()
    settings = Settings.from_env({"HUIMAGES_HOME": str(home), "IMAGESERVERURL": f"http://127.0.0.1:{port}/"} | extra)
    cfg = FrontConfig.from_settings(settings, environ=extra, port=port, processes=2, read_timeout=read_timeout)
    lighttpd = find_lighttpd()
    assert lighttpd
    return [lighttpd, "-D", "-f", str(write_config(cfg))], port, home / "lighttpd.log", settings


def test_stopped_backends_answer_503_after_the_read_timeout_but_a_queue_run_may_take_longer(
    tmp_path: Path, seaweed: SeaweedS3
) -> None:
    cdn = {
        "CDN_BUCKET": seaweed.new_bucket(),
        "CDN_URL": "https://cdn.test",
        **{k: v for k, v in seaweed.settings_env("unused").items() if k != "S3BUCKET"},
    }
    argv, port, log, settings = lighttpd_front(tmp_path, 2, cdn)
    client = Client(settings)
    image_id = client.save_image(jpeg(800, 600))
    with running(argv, port, log, cdn) as proc:  # lighttpd passes the S3 secrets on to its backends
        front = Front(port, client, log, proc.pid)
        assert front.get(f"/small/{image_id}.jpeg")[0] == 200
        backends = front.backends()
        for pid in backends:
            os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            status, headers, body = front.get(f"/medium/{image_id}.jpeg")
            assert status == 503 and headers["retry-after"] == "5" and headers["cache-control"] == "no-store"
            assert body.startswith(b"the image server's worker") and time.monotonic() - started < 10
            assert front.get(f"/small/{image_id}.jpeg")[0] == 200  # hits never needed a backend
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                run = pool.submit(lambda: front.get("/processqueue", method="POST"))
                time.sleep(4)  # twice the read timeout: a queue run is not cut off by it
                assert not run.done()
                for pid in backends:
                    os.kill(pid, signal.SIGCONT)
                status, _, body = run.result(60)
            assert status == 200 and json.loads(body)["uploaded"] >= 1, body  # small (and medium, if rendered)
        finally:
            for pid in backends:
                os.kill(pid, signal.SIGCONT)
        status, _, body = front.get(f"/medium/{image_id}.jpeg")
        assert status == 200 and decode(body).size == (427, 320)


def test_busy_queue_answers_through_lighttpd_with_1500_queued(
    tmp_path: Path, seaweed: SeaweedS3, pouch: PouchCouch
) -> None:
    """20 cron hits at once through lighttpd, CouchDB queue of 1,500 items: one run, 19 fast busy answers."""
    extra = {
        "CDN_BUCKET": seaweed.new_bucket(),
        "CDN_URL": "https://cdn.test",
        **{k: v for k, v in seaweed.settings_env("unused").items() if k != "S3BUCKET"},
        "COUCHSERVER": pouch.url,
        "HUIMAGES_COUCHDB_NAME": pouch.new_database(),
    }
    argv, port, log, settings = lighttpd_front(tmp_path, 130, extra)
    client = Client(settings)
    image_id = client.save_image(jpeg(300, 200))
    publisher = client.service.publisher
    assert publisher is not None
    strangers = [compute_id(f"never stored {n}".encode()) for n in range(1499)]  # deleted meanwhile: dropped
    publisher.enqueue_many("100x100", [image_id, *strangers])
    assert publisher.store.queue_stats().counts["queued"] == 1500

    def hit(_n: int) -> tuple[int, float, dict[str, object]]:
        started = time.monotonic()
        status, _headers, body = get(port, "/processqueue", method="POST", timeout=300)
        return status, time.monotonic() - started, json.loads(body)

    with running(argv, port, log, extra):
        assert get(port, "/healthz")[0] == 200
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(hit, range(20)))
    assert [status for status, _, _ in answers] == [200] * 20
    runs = [report for _, _, report in answers if not report["busy"]]
    busy = [(seconds, report) for _, seconds, report in answers if report["busy"]]
    assert len(runs) == 1 and len(busy) == 19
    assert runs[0]["uploaded"] == 1 and runs[0]["queued"] == 0
    assert max(seconds for seconds, _ in busy) < 1.0, sorted(seconds for seconds, _ in busy)  # at the client
    assert all(report["holder"] and report["queued"] is None for _, report in busy)


def test_backends_killed_at_random_points_of_a_burst_of_misses(tmp_path: Path) -> None:
    """kill -9 of a rendering backend, at a random moment: every answer is a whole image or a 503; none is lost."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    argv, port, log, settings = lighttpd_front(tmp_path, 130, {"HUIMAGES_UNSIGNED_RENDERS_PER_MINUTE": "0"})
    client = Client(settings)
    noise = Image.effect_noise((3000, 2000), 60).convert("RGB")
    image_id = client.save_image(encode(noise, "JPEG", quality=92))
    paths = [f"/{900 + 37 * n}x{600 + 23 * n}/{image_id}.jpeg" for n in range(12)]
    with running(argv, port, log) as proc:
        front = Front(port, client, log, proc.pid)
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            pending = [pool.submit(front.get, path) for path in paths]
            for _ in range(2):
                time.sleep(rng.uniform(0.05, 0.6))
                victims = front.backends()
                if victims:
                    os.kill(rng.choice(victims), signal.SIGKILL)
            answers = [future.result(120) for future in pending]
        for (status, headers, body), path in zip(answers, paths, strict=True):
            assert status in (200, 503), f"seed {seed}: {path} answered {status}"
            if status == 503:
                assert headers["retry-after"], f"seed {seed}"
            else:
                width = int(path.split("/")[1].split("x")[0])
                assert decode(body).size[0] <= width, f"seed {seed}"
        for folder in client.service.cache.sizes():  # whatever is cached is whole
            for image in (client.service.cache.root / folder).glob("*.jpeg"):
                with Image.open(image) as opened:
                    opened.load()
        deadline = time.monotonic() + 30
        for path in paths:  # every one renders once asked again
            while (status := front.get(path)[0]) == 503 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert status == 200, f"seed {seed}: {path}"
    assert not client.service.catalog.get(image_id).get("deleted")


def peak_rss(pid: int) -> int:
    """The highest resident memory a process has had (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def test_24_concurrent_misses_of_a_7000x7000_image_stay_bounded_through_lighttpd(tmp_path: Path) -> None:
    """A stranger who knows one ID asks for 24 sizes at once (default settings): memory stays bounded."""
    from tests.imagetools import photo

    argv, port, log, settings = lighttpd_front(tmp_path, 130, {})
    client = Client(settings)
    image_id = client.save_image(encode(photo(7000, 7000), "JPEG", quality=85))
    sizes = [f"{300 + 160 * n}x{300 + 160 * n}" for n in range(24)]  # up to 3980: some need the original
    with running(argv, port, log) as proc:
        front = Front(port, client, log, proc.pid)
        assert front.get(f"/small/{image_id}.jpeg")[0] == 200
        backends = front.backends()
        with concurrent.futures.ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(lambda size: front.get(f"/{size}/{image_id}.jpeg"), sizes))
        peaks = [peak_rss(pid) for pid in backends]
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 403, 429, 503}, statuses
    assert statuses.count(403) == 4  # 20 unsigned sizes of one image, then the per-image budget
    assert sum(peaks) < 1200 * 2**20, f"backends peaked at {[p // 2**20 for p in peaks]} MB (2,760 MB before)"


def test_a_full_catalog_disk_is_named_so_never_as_a_rollback_error(tmp_path: Path) -> None:
    """SQLite rolls a transaction back itself when the disk is full: the answer names the full disk (503)."""
    settings = Settings.at(tmp_path, upload_token="upload-token-of-the-full-disk", server_url="http://img.test/")
    client = Client(settings)
    image_id = client.save_image(jpeg(320, 240))
    catalog = client.service.catalog
    assert isinstance(catalog, SQLiteCatalog)
    with catalog.file.errors() as conn:  # the file may not grow by a page more: SQLite's SQLITE_FULL, as on a full disk
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
    app = create_app(service=client.service)
    body = json.dumps({"title": "x" * 60_000}).encode()
    answer = call(
        app,
        f"/images/{image_id}",
        method="PATCH",
        headers={"Authorization": "Bearer upload-token-of-the-full-disk"},
        CONTENT_TYPE="application/json",
        CONTENT_LENGTH=str(len(body)),
        **{"wsgi.input": io.BytesIO(body)},
    )
    assert answer.status == 503 and answer.headers["Retry-After"], answer.text
    assert "no space left" in answer.text and "rollback" not in answer.text
    with pytest.raises(DiskFull):
        client.save_image(jpeg(900, 700), title="y" * 60_000)
    assert catalog.get(image_id)["title"] == []  # nothing half-written
    assert not client.service.originals.exists(compute_id(jpeg(900, 700)))  # nor an original without its record
