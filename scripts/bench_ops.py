"""Operations benchmarks: prune at scale, /metrics with a long queue, the self-pruning cache under load.

Part of ``scripts/bench.py`` (``--only ops``); figures, not tests.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from huimages.core.ids import compute_id


def bench_ops(photo: Path, free_port: Callable[[], int], wait_port: Callable[[int], None]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bench_prune(Path(tmp) / "prune")
        bench_metrics(Path(tmp) / "metrics")
        bench_self_pruning(photo, Path(tmp) / "serve", free_port, wait_port)


def bench_prune(home: Path, files: int = 200_000, folders: int = 40) -> None:
    """``huimages prune`` of a cache of ``files`` small files, to half its size: wall time and peak memory."""
    cache = home / "cache"
    now = time.time()
    body = b"\xff\xd8" + b"x" * 1500 + b"\xff\xd9"
    started = time.perf_counter()
    for folder in range(folders):
        target = cache / f"{100 + folder}x{100 + folder}"
        target.mkdir(parents=True)
        for n in range(files // folders):
            path = target / f"{compute_id(f'{folder}-{n}'.encode())}.jpeg"
            path.write_bytes(body)
            stamp = now - random.uniform(0, 30 * 86400)
            os.utime(path, (stamp, stamp))
    made = time.perf_counter() - started
    held = sum(1 for _ in cache.rglob("*.jpeg"))
    env = {**os.environ, "HUIMAGES_HOME": str(home)}
    # The peak is the process's own VmHWM, read as it exits (a fork's rusage would count this parent's pages).
    code = (
        "import atexit, sys\n"
        "def peak():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'): print('peak-kb', line.split()[1], file=sys.stderr)\n"
        "atexit.register(peak)\n"
        f"sys.argv = ['huimages', 'prune', '--max-bytes', '{held * 4096 // 2}']\n"
        "from huimages.ops.cli import main\n"
        "main()\n"
    )
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    peak_kb = int(done.stderr.split("peak-kb", 1)[1].split()[0])
    print(f"\n## prune: a cache of {held:,} files in {folders} size folders (made in {made:.0f} s), to half its size")
    print(f"prune: {seconds:.1f} s, peak memory {peak_kb / 1024:.0f} MB (target: under 30 s and 100 MB)")
    print("  " + done.stdout.strip().splitlines()[-1])


def bench_metrics(home: Path, queued: int = 100_000, scrapes: int = 30) -> None:
    """/metrics with ``queued`` items in the SQLite CDN queue (its counts are computed when scraped)."""
    from huimages.config import Settings
    from huimages.http.app import create_app
    from huimages.serving.service import ImageService
    from tests.wsgi import call

    settings = Settings.from_env(
        {
            "HUIMAGES_HOME": str(home),
            "CDN_BUCKET": "bench",
            "CDN_URL": "https://cdn.example.com",
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",  # never contacted: nothing is uploaded here
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
        }
    )
    service = ImageService.from_settings(settings)
    assert service.publisher is not None
    ids = [compute_id(f"queued {n}".encode()) for n in range(queued)]
    for start in range(0, queued, 10_000):
        service.publisher.enqueue_many("240x160", ids[start : start + 10_000])
    app = create_app(service=service)
    times = []
    for _ in range(scrapes):
        started = time.perf_counter()
        response = call(app, "/metrics", REMOTE_ADDR="127.0.0.1")
        times.append((time.perf_counter() - started) * 1000)
        assert response.status == 200
    print(f"\n## /metrics with {queued:,} queued CDN items (SQLite), {scrapes} scrapes")
    print(f"median {statistics.median(times):.1f} ms, max {max(times):.1f} ms (target: under 50 ms)")


def bench_self_pruning(
    photo: Path, home: Path, free_port: Callable[[], int], wait_port: Callable[[int], None], seconds: float = 40
) -> None:
    """Renders and hits of ``huimages serve`` without a cache bound, then with one that makes it prune all along."""
    from huimages.client import Client
    from huimages.config import Settings

    print(f"\n## a self-pruning cache: huimages serve (2 workers), {seconds:.0f} s of renders and hits each")
    results = {}
    for label, bound in (("no bound", None), ("HUIMAGES_CACHE_MAX_BYTES=5M", "5M")):
        port = free_port()
        folder = home / label.split("=")[0].replace(" ", "-")
        env = {
            **os.environ,
            "HUIMAGES_HOME": str(folder),
            "IMAGESERVERURL": f"http://127.0.0.1:{port}/",
            "HUIMAGES_UNSIGNED_RENDERS_PER_MINUTE": "0",
            "HUIMAGES_UNSIGNED_MB_PER_MINUTE": "0",
            "HUIMAGES_UNSIGNED_SIZES_PER_IMAGE": "0",
        }
        if bound:
            env["HUIMAGES_CACHE_MAX_BYTES"] = bound
        image_id = Client(Settings.from_env(env)).save_image(photo.read_bytes())
        proc = subprocess.Popen(
            [sys.executable, "-m", "huimages", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_port(port)
            results[label] = _load(port, image_id, seconds)
        finally:
            proc.terminate()
            proc.wait(20)
    base = results["no bound"]
    for label, (renders, hits) in results.items():
        print(f"{label:30} renders {renders / seconds:6.1f}/s  hits {hits / seconds:7.0f}/s", end="")
        if label != "no bound":
            print(f"  ({renders / max(base[0], 1):.2f}x and {hits / max(base[1], 1):.2f}x of no bound)", end="")
        print()


def _load(port: int, image_id: str, seconds: float) -> tuple[int, int]:
    """One thread renders new sizes, three fetch a hit, for ``seconds``: (renders, hits) answered 200."""
    deadline = time.monotonic() + seconds
    counts = {"renders": 0, "hits": 0}
    lock = threading.Lock()

    def fetch(path: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    fetch(f"/small/{image_id}.jpeg")

    def renderer() -> None:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            if fetch(f"/{200 + n}x{200 + n}/{image_id}.jpeg") == 200:
                with lock:
                    counts["renders"] += 1

    def hitter() -> None:
        while time.monotonic() < deadline:
            if fetch(f"/small/{image_id}.jpeg") == 200:
                with lock:
                    counts["hits"] += 1

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(renderer)] + [pool.submit(hitter) for _ in range(3)]
        for future in futures:
            future.result()
    return counts["renders"], counts["hits"]
