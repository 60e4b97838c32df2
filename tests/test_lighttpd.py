"""The production front: real lighttpd, FastCGI backends spawned from server.py."""

import concurrent.futures
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from huimages.client import Client
from huimages.config import Settings
from huimages.core.urls import LIGHTTPD_HIT_CACHE_CONTROL
from huimages.http.app import create_app
from huimages.http.fronts.lighttpd import FrontConfig, find_lighttpd, missing_parts, write_config
from huimages.serving.service import ImageService
from tests.imagetools import decode, encode, jpeg, transparent_png
from tests.servers import SeaweedS3, free_port, get, running
from tests.wsgi import call

pytestmark = pytest.mark.integration
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Front:
    port: int
    client: Client
    log: Path
    pid: int

    def backends(self) -> list[int]:
        """PIDs of the FastCGI backends lighttpd spawned."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                    cmdline = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.pid and b"server.py" in cmdline:
                    pids.append(int(entry.name))
        return pids

    def renders(self, key: str) -> int:
        return sum(f"rendered {key}" in line for line in self.log.read_text(errors="replace").splitlines())

    def get(self, path: str, **kw: object) -> tuple[int, dict[str, str], bytes]:
        return get(self.port, path, **kw)  # type: ignore[arg-type]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@contextlib.contextmanager
def defaults_front(tmp_path: Path, processes: int, env: dict[str, str] | None = None) -> Iterator[Front]:
    """A front of its own with the default settings, lighttpd started with ``env`` added to its environment."""
    port = free_port()
    settings = Settings.at(tmp_path, server_url=f"http://127.0.0.1:{port}/")
    conf = write_config(FrontConfig.from_settings(settings, environ={}, port=port, processes=processes))
    lighttpd = find_lighttpd()
    assert lighttpd
    log = tmp_path / "lighttpd.log"
    with running([lighttpd, "-D", "-f", str(conf)], port, log, env) as proc:
        yield Front(port, Client(settings), log, proc.pid)


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    problems = missing_parts()
    if problems:  # never a skip: ./scripts/test installs lighttpd
        pytest.fail("; ".join(problems))
    home = tmp_path_factory.mktemp("front")
    port = free_port()
    settings = Settings.at(home, server_url=f"http://127.0.0.1:{port}/")
    # These tests play a site's own traffic (floods, soaks, many sizes) from one address: no stranger budgets.
    # test_stranger_budgets_through_lighttpd runs a front with the defaults.
    unlimited = {
        "HUIMAGES_UNSIGNED_RENDERS_PER_MINUTE": "0",
        "HUIMAGES_UNSIGNED_MB_PER_MINUTE": "0",
        "HUIMAGES_UNSIGNED_SIZES_PER_IMAGE": "0",
    }
    cfg = FrontConfig.from_settings(settings, environ=unlimited, port=port, processes=2)
    conf = write_config(cfg)
    log = home / "lighttpd.log"
    lighttpd = find_lighttpd()
    assert lighttpd
    with running([lighttpd, "-D", "-f", str(conf)], port, log) as proc:
        yield Front(port, Client(settings), log, proc.pid)


def test_hit_is_served_without_python(front: Front) -> None:
    image_id = front.client.save_image(jpeg(900, 600))
    path = f"/240x160/{image_id}.jpeg"
    status, _headers, body = front.get(path)
    assert status == 200 and decode(body).size == (240, 160)
    assert front.renders(f"240x160/{image_id}") == 1
    backends = front.backends()
    assert len(backends) == 2
    for pid in backends:
        os.kill(pid, signal.SIGSTOP)  # Python cannot answer anything now
    try:
        status, hit_headers, hit_body = front.get(path, timeout=5)
        head = front.get(path, method="HEAD", timeout=5)
        not_modified = front.get(path, headers={"If-None-Match": hit_headers["etag"]}, timeout=5)
    finally:
        for pid in backends:
            os.kill(pid, signal.SIGCONT)
    assert (status, hit_body) == (200, body)
    assert hit_headers["cache-control"] == LIGHTTPD_HIT_CACHE_CONTROL
    assert hit_headers["content-type"] == "image/jpeg"
    assert "last-modified" in hit_headers and "etag" in hit_headers
    assert head[0] == 200 and head[2] == b"" and head[1]["content-length"] == str(len(body))
    assert not_modified[0] == 304
    assert front.renders(f"240x160/{image_id}") == 1


def test_huimages_url_forms_are_static_hits(front: Front) -> None:
    """Every URL form huImages wrote is served from the one cache file, without Python, once it exists."""
    image_id = front.client.save_image(jpeg(900, 600), title="Harbour at night")
    titled = front.client.scaled_imageurl(image_id, "small").removeprefix(front.client.settings.server_url[:-1])
    assert titled == f"/240x160/{image_id}/Harbour-at-night.jpeg"
    status, _headers, body = front.get(titled)  # a miss in the title form: the app renders it
    assert status == 200 and decode(body).size == (240, 160)
    forms = [
        titled,
        f"/240x160/{image_id}.jpeg",
        f"/240x160/{image_id}/any-other-title.jpg",
        f"/240x160/{image_id}.jpg",
        f"/240x160/{image_id}",
        f"/small/{image_id}.jpeg",
        f"/small/{image_id}/Harbour-at-night.jpeg",
    ]
    backends = front.backends()
    for pid in backends:
        os.kill(pid, signal.SIGSTOP)  # Python cannot answer anything now
    try:
        answers = [front.get(form, timeout=5) for form in forms]
    finally:
        for pid in backends:
            os.kill(pid, signal.SIGCONT)
    for form, (status, headers, hit) in zip(forms, answers, strict=True):
        assert (status, hit) == (200, body), form
        assert headers["cache-control"] == LIGHTTPD_HIT_CACHE_CONTROL, form
    assert front.renders(f"240x160/{image_id}") == 1  # one render for every form


def test_webp_avif_and_png_are_static_hits_with_their_types(front: Front) -> None:
    """Each format is its own cache file, served by lighttpd with its content type, validators and Cache-Control."""
    image_id = front.client.save_image(transparent_png(), title="Logo")
    paths = {
        fmt: front.client.scaled_imageurl(image_id, "small", format=fmt).removeprefix(
            front.client.settings.server_url[:-1]
        )
        for fmt in ("webp", "avif", "png")
    }
    misses = {fmt: front.get(path) for fmt, path in paths.items()}  # rendered by the app
    backends = front.backends()
    for pid in backends:
        os.kill(pid, signal.SIGSTOP)  # Python cannot answer anything now
    try:
        for fmt, path in paths.items():
            for form in (path, f"/small/{image_id}.{fmt}", f"/240x160/{image_id}.{fmt}"):
                status, headers, body = front.get(form, timeout=5)
                assert (status, body) == (200, misses[fmt][2]), form
                assert headers["content-type"] == f"image/{fmt}", form
                assert headers["cache-control"] == LIGHTTPD_HIT_CACHE_CONTROL, form
                assert front.get(form, headers={"If-None-Match": headers["etag"]}, timeout=5)[0] == 304
            assert misses[fmt][1]["etag"] == headers["etag"]  # the app's first answer and lighttpd's agree
            im = decode(misses[fmt][2])
            assert im.mode == "RGBA" and im.getpixel((2, 2))[3] == 0  # type: ignore[index]
    finally:
        for pid in backends:
            os.kill(pid, signal.SIGCONT)
    assert all(front.renders(f"240x160/{image_id}.{fmt}") == 1 for fmt in paths)
    status, headers, body = front.get(f"/small/{image_id}.gif")  # no such format: the app says which there are
    assert status == 404 and b"use one of: jpeg, webp, avif, png" in body and headers["cache-control"] == "no-store"


def test_only_get_and_head_read_a_cached_file(front: Front) -> None:
    """Other methods on a cached image answer 405 with Allow (from the app), as they do on a miss."""
    image_id = front.client.save_image(jpeg(400, 300))
    path = f"/small/{image_id}.jpeg"
    status, headers, _ = front.get(path)
    assert status == 200
    validator = headers["etag"]
    for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
        for target in (path, f"/small/{image_id}.webp"):  # cached, and a miss
            status, headers, body = front.get(target, method=method)
            assert status == 405, (method, target, status)
            assert headers["allow"] == "GET, HEAD" and headers["cache-control"] == "no-store"
            assert b"is not allowed here" in body
    status, headers, _ = front.get(path, headers={"If-None-Match": validator})
    assert status == 304
    app = create_app(service=ImageService.from_settings(front.client.settings))
    assert call(app, path).headers["ETag"] == validator  # the app derives the same validator


def test_stranger_budgets_through_lighttpd(tmp_path: Path) -> None:
    """With the defaults, lighttpd passes the client's address on and the per-image cap holds across backends."""
    with defaults_front(tmp_path, processes=2) as own:
        port = own.port
        image_id = own.client.save_image(jpeg(800, 600))
        statuses = [get(port, f"/{200 + n}x{100 + n}/{image_id}.jpeg")[0] for n in range(24)]
        refused = get(port, f"/300x300/{image_id}.webp")
        named = get(port, f"/small/{image_id}.jpeg")
    assert statuses == [200] * 20 + [403] * 4
    assert refused[0] == 403 and b"unsigned sizes besides the named ones" in refused[2]
    assert named[0] == 200


def test_a_flood_of_cold_urls_is_bounded_and_hits_keep_answering(front: Front) -> None:
    """40 distinct cold sizes at once: each answers 200 or 503 (admission control), hits never wait."""
    from tests.imagetools import photo

    image_id = front.client.save_image(encode(photo(2400, 1600), "JPEG", quality=90))
    hit = f"/240x160/{image_id}.jpeg"
    assert front.get(hit)[0] == 200
    flood = [f"/{300 + 7 * n}x{200 + 5 * n}!/{image_id}.jpeg" for n in range(40)]
    with concurrent.futures.ThreadPoolExecutor(48) as pool:
        misses = [pool.submit(front.get, path) for path in flood]
        hits = [pool.submit(front.get, hit, timeout=10) for _ in range(40)]
        miss_statuses = [m.result()[0] for m in misses]
        hit_answers = [h.result() for h in hits]
    assert set(miss_statuses) <= {200, 503}, miss_statuses
    assert all(status == 200 and body for status, _, body in hit_answers)


def test_same_answers_as_the_python_server(front: Front) -> None:
    image_id = front.client.save_image(jpeg(640, 480))
    unknown = "A" * 32 + "01"
    app = create_app(service=ImageService.from_settings(front.client.settings))
    writing = front.client.service.cache.root / "240x160" / f".{image_id}.jpeg.x7k2q.tmp"  # a write in progress
    writing.parent.mkdir(parents=True, exist_ok=True)
    writing.write_bytes(b"half a JPEG")
    cases = [
        ("GET", f"/small/{image_id}.jpeg", f"/small/{image_id}.jpeg"),
        ("HEAD", f"/medium/{image_id}.jpeg", f"/medium/{image_id}.jpeg"),
        ("HEAD", f"/300x300!/{image_id}.jpeg", f"/300x300!/{image_id}.jpeg"),
        ("GET", f"/0x0/{image_id}.jpeg", f"/0x0/{image_id}.jpeg"),
        ("GET", f"/small/{image_id[:-1]}.jpeg", f"/small/{image_id[:-1]}.jpeg"),
        ("GET", f"/5000x5000/{image_id}.jpeg", f"/5000x5000/{image_id}.jpeg"),
        ("GET", "/small/../../etc/passwd", "/small/../../etc/passwd"),
        ("GET", "/small%2F..%2F..%2Fetc/passwd.jpeg", "/small/../../etc/passwd.jpeg"),
        ("GET", f"/481x321%2F{image_id}.jpeg", f"/481x321/{image_id}.jpeg"),  # an encoded slash is a slash
        ("GET", f"/small/{unknown}.jpeg", f"/small/{unknown}.jpeg"),
        ("GET", "/favicon.ico", "/favicon.ico"),
        ("GET", "/.huimages/locks/0001", "/.huimages/locks/0001"),
        ("GET", "//.huimages/locks/0001", "//.huimages/locks/0001"),
        ("GET", "/small/../.huimages/locks/0001", "/small/../.huimages/locks/0001"),
        ("GET", f"/240x160/{writing.name}", f"/240x160/{writing.name}"),
        ("GET", f"/240x160//{writing.name}", f"/240x160//{writing.name}"),
    ]
    for method, raw, decoded in cases:
        status, headers, body = front.get(raw, method=method)
        expected = call(app, decoded, method=method)
        assert status == expected.status, (raw, status, body)
        assert headers["cache-control"] == expected.headers["Cache-Control"], raw
        if status == 200:
            assert headers["content-type"] == "image/jpeg"
            assert headers["content-length"] == expected.headers["Content-Length"]
        else:
            assert body == expected.body, raw
    encoded = front.get(f"/481x321%2F{image_id}.jpeg")  # rendered above: now lighttpd's own static hit
    assert encoded[0] == 200 and encoded[1]["cache-control"] == LIGHTTPD_HIT_CACHE_CONTROL
    # conditional requests: each server with its own validators
    path = f"/small/{image_id}.jpeg"
    _, headers, _ = front.get(path)
    assert front.get(path, headers={"If-None-Match": headers["etag"]})[0] == 304
    assert front.get(path, headers={"If-Modified-Since": headers["last-modified"]})[0] == 304
    assert front.get(path, headers={"If-None-Match": '"stale"'})[0] == 200


def test_concurrent_cold_requests(front: Front) -> None:
    image_id = front.client.save_image(jpeg(2000, 1500))
    one = f"/700x500/{image_id}.jpeg"
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: front.get(one), range(16)))
    assert {status for status, _, _ in results} == {200}
    assert len({body for _, _, body in results}) == 1
    assert front.renders(f"700x500/{image_id}") == 1

    ids = [front.client.save_image(jpeg(300 + n, 200)) for n in range(12)]
    paths = [f"/{size}/{i}.jpeg" for i in ids for size in ("120x120", "50x50!")]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        results = list(pool.map(front.get, paths))
    for path, (status, _, body) in zip(paths, results, strict=True):
        assert status == 200, path
        assert decode(body).size == (50, 50) if "50x50!" in path else decode(body).size[0] == 120


@pytest.mark.faults
def test_backend_killed_mid_request(front: Front, tmp_path: Path) -> None:
    big = Image.effect_noise((7000, 5000), 60).convert("RGB")
    image_id = front.client.save_image(encode(big, "JPEG", quality=95, progressive=True))
    path = f"/3500x2500/{image_id}.jpeg"
    cache_file = front.client.service.cache.path("3500x2500", image_id)
    before = {pid: cpu_seconds(pid) for pid in front.backends()}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(front.get, path)
        deadline = time.monotonic() + 20
        while max(cpu_seconds(pid) - used for pid, used in before.items()) < 0.2:  # a backend is rendering
            assert time.monotonic() < deadline and not pending.done(), "the render never started"
            time.sleep(0.01)
        for pid in before:
            os.kill(pid, signal.SIGKILL)
        status, headers, body = pending.result(60)
    assert status == 503 and headers["retry-after"] == "5"  # not lighttpd's 500 page
    assert headers["content-type"].startswith("text/plain") and b"try again" in body
    assert not cache_file.exists()  # nothing partial was left under the real name
    status, _, body = front.get(path)  # lighttpd respawns the backends
    assert status == 200
    assert decode(body).size == (3500, 2500)
    assert decode(cache_file.read_bytes()).size == (3500, 2500)


SOAK_SECONDS = float(os.environ.get("HUIMAGES_SOAK_SECONDS", "60"))
MEMORY_BOUND = 64 * 1024 * 1024  # growth allowed per backend over the soak


def test_mixed_load_soak(front: Front) -> None:
    """Mostly hits, some misses, for a minute: no failed request, backend memory flat."""
    ids = [front.client.save_image(jpeg(640 + n, 480)) for n in range(8)]
    hits = [f"/{size}/{i}.jpeg" for i in ids for size in ("small", "square", "medium")]
    for path in hits:
        assert front.get(path)[0] == 200
    # warm every backend's allocator before measuring
    warm = [front.get(f"/{w}x{w}/{i}.jpeg")[0] for w in range(100, 140) for i in ids[:2]]
    assert set(warm) == {200}
    start_rss = {pid: rss_bytes(pid) for pid in front.backends()}
    rng = random.Random(1)
    end = time.monotonic() + SOAK_SECONDS

    def worker(seed: int) -> tuple[int, list[str]]:
        local = random.Random(seed)
        done, failures = 0, []
        while time.monotonic() < end:
            if local.random() < 0.1:
                path = f"/{local.randint(150, 900)}x{local.randint(150, 900)}/{local.choice(ids)}.jpeg"
            else:
                path = local.choice(hits)
            status, _, body = front.get(path, timeout=30)
            if status != 200 or not body:
                failures.append(f"{status} {path}")
            done += 1
        return done, failures

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(worker, [rng.randint(0, 10**6) for _ in range(8)]))
    total = sum(done for done, _ in outcomes)
    failures = [f for _, fs in outcomes for f in fs]
    assert total > 100
    assert failures == []
    for pid, rss in start_rss.items():
        assert rss_bytes(pid) - rss < MEMORY_BOUND, f"backend {pid} grew from {rss} to {rss_bytes(pid)} bytes"


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "lighttpd.conf"


def test_example_config_is_the_generated_one() -> None:
    assert EXAMPLE.read_text() == example_config(), "regenerate it: .venv/bin/python -m tests.test_lighttpd"


def example_config() -> str:
    from huimages.http.fronts.lighttpd import render_config

    settings = Settings.at(Path("/var/lib/huimages"), server_url="https://images.example.com/")
    cfg = FrontConfig.from_settings(
        settings,
        environ={},
        host="0.0.0.0",
        port=80,
        processes=4,
        python="/opt/huimages/.venv/bin/python",
        server_py=Path("/opt/huimages/huimages/server.py"),
    )
    return render_config(cfg)


def test_secrets_never_enter_the_config(tmp_path: Path) -> None:
    from huimages.http.fronts.lighttpd import render_config

    environ = {
        "S3BUCKET": "originals",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "very-secret-key",
        "COUCHSERVER": "http://admin:couch-password@127.0.0.1:5984/",
    }
    settings = Settings.from_env({**environ, "HUIMAGES_HOME": str(tmp_path)})
    text = render_config(FrontConfig.from_settings(settings, environ=environ))
    assert "very-secret-key" not in text and "couch-password" not in text and "AKIDEXAMPLE" not in text
    assert '"S3BUCKET" => "originals"' in text
    assert '"AWS_SECRET_ACCESS_KEY"' in text  # copied from lighttpd's own environment instead


def test_the_backends_get_the_operators_malloc_arena_max(tmp_path: Path) -> None:
    """lighttpd hands its MALLOC_ARENA_MAX to the backends it spawns (which then keep glibc's own reading)."""
    with defaults_front(tmp_path, processes=1, env={"MALLOC_ARENA_MAX": "3"}) as own:
        assert own.get("/healthz")[0] == 200  # answered by a backend
        backends = own.backends()
        assert backends
        for pid in backends:
            assert b"MALLOC_ARENA_MAX=3" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")


if __name__ == "__main__":
    EXAMPLE.write_text(example_config())


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_serve_lighttpd_runs_and_stops_everything(tmp_path: Path) -> None:
    port = free_port()
    env = {"HUIMAGES_HOME": str(tmp_path), "IMAGESERVERURL": f"http://127.0.0.1:{port}/"}
    image_id = Client(Settings.from_env(env)).save_image(jpeg(500, 400))
    argv = [sys.executable, "-m", "huimages", "serve", "--lighttpd", "--port", str(port), "--workers", "2"]
    with running(argv, port, tmp_path / "serve.log", env) as proc:
        status, _, body = get(port, f"/small/{image_id}.jpeg")
        assert status == 200 and decode(body).size == (200, 160)
        [lighttpd] = children(proc.pid)
        backends = children(lighttpd)
        assert len(backends) == 2  # max-procs = --workers
        os.kill(proc.pid, signal.SIGTERM)  # what Ctrl-C or a service manager sends
        assert proc.wait(20) == 0
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in (lighttpd, *backends)):
        assert time.monotonic() < deadline, "lighttpd or a backend outlived huimages serve"
        time.sleep(0.1)


def test_serve_lighttpd_says_how_to_install_it(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from huimages.ops.cli import main

    env = {"HUIMAGES_HOME": str(tmp_path), "HUIMAGES_LIGHTTPD": str(tmp_path / "no-lighttpd-here")}
    result = CliRunner(env=env).invoke(main, ["serve", "--lighttpd"])
    assert result.exit_code == 1
    assert "apt-get install lighttpd" in result.output


def test_separately_started_fcgi_backend(tmp_path: Path) -> None:
    socket_path = tmp_path / "run" / "backend.sock"
    port = free_port()
    env = {"HUIMAGES_HOME": str(tmp_path), "IMAGESERVERURL": f"http://127.0.0.1:{port}/"}
    settings = Settings.from_env(env)
    image_id = Client(settings).save_image(jpeg(640, 480))
    backend = [sys.executable, "-m", "huimages", "fcgi", "--socket", str(socket_path)]
    log = tmp_path / "backend.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(backend, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not socket_path.exists():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        cfg = FrontConfig.from_settings(settings, environ={}, port=port, external_socket=socket_path)
        conf = write_config(cfg)
        assert "bin-path" not in conf.read_text()
        lighttpd = find_lighttpd()
        assert lighttpd
        with running([lighttpd, "-D", "-f", str(conf)], port, tmp_path / "lighttpd.log"):
            status, _, body = get(port, f"/square/{image_id}.jpeg")
            assert status == 200 and decode(body).size == (75, 75)
            assert get(port, "/healthz")[0] == 200
    finally:
        proc.terminate()
        proc.wait(10)


def readme_cron_line() -> str:
    """The cron line of the manual's CDN section (docs/deployment.md), as a site copies it."""
    readme = (Path(__file__).resolve().parent.parent / "docs" / "deployment.md").read_text()
    [line] = [line for line in readme.splitlines() if "curl" in line and "/processqueue" in line]
    return line.split("  ", 1)[1].split(" >", 1)[0]  # without the schedule and the redirection


@pytest.mark.parametrize("front_kind", ["lighttpd", "serve"])
def test_the_readme_cron_line_runs_the_queue(tmp_path: Path, seaweed: SeaweedS3, front_kind: str) -> None:
    """The manual's line, with only the port of the test server, makes a queue run through each front."""
    import json
    import shlex

    port = free_port()
    env = {
        "HUIMAGES_HOME": str(tmp_path),
        "IMAGESERVERURL": f"http://127.0.0.1:{port}/",
        "CDN_BUCKET": seaweed.new_bucket(),
        "CDN_URL": "https://cdn.test",
        **{k: v for k, v in seaweed.settings_env("unused").items() if k != "S3BUCKET"},
    }
    client = Client(Settings.from_env(env))
    image_id = client.save_image(jpeg(300, 200))
    argv = [sys.executable, "-m", "huimages", "serve", "--port", str(port), "--workers", "1"]
    if front_kind == "lighttpd":
        argv.append("--lighttpd")
    command = shlex.split(readme_cron_line().replace("http://127.0.0.1/", f"http://127.0.0.1:{port}/"))
    with running(argv, port, tmp_path / "front.log", env):
        assert get(port, f"/small/{image_id}.jpeg")[0] == 200  # rendered and queued
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert (report["busy"], report["uploaded"], report["queued"]) == (False, 1, 0)
        again = subprocess.run(
            ["curl", "-fsS", f"http://127.0.0.1:{port}/processqueue"], capture_output=True, text=True
        )
        assert json.loads(again.stdout)["uploaded"] == 0  # GET works too, as the Drupal module's cron loaded it
