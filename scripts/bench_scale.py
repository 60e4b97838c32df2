"""Scale: look-ups, listings at depth, the scrape, prune and the cache summary from 1,000 to 1,000,000 images.

Part of ``scripts/bench.py`` (``--only scale``; ``--images 10000000`` for ten
million). Figures, not tests. The embedded store (SQLite) is filled with
records in bulk through the project's own catalog and queue classes (one
uploaded CDN record an image), plus 20 real images that the look-ups read;
each checkpoint prints p50/p99 of every request, in process (no HTTP, so the
store's cost is what is measured), and its p99 against the first
checkpoint's. A cache of as many files (up to ``--files``) measures prune's
plan and the cache summary. CouchDB (pouchdb-server) is filled to
``--couch-images`` and measured for the listings.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import os
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from huimages.client import Client
from huimages.config import Settings

TOKEN = "bench-upload-token-of-scale"
CHECKPOINTS = (1_000, 100_000, 1_000_000, 10_000_000)


def _id(n: int) -> str:
    return base64.b32encode(hashlib.sha1(b"scale %d" % n).digest()).decode() + "01"


def _doc(n: int) -> dict[str, Any]:
    return {
        "_id": _id(n),
        "ctime": f"2026-12-07T{n:010d}",
        "title": [f"scale image {n} tag{n % 10}"],
        "width": 1024,
        "height": 768,
        "content_type": "image/jpeg",
        "length": 150_000,
    }


def _times(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, statistics.quantiles(times, n=100)[98] * 1000


def _call(app: Any, path: str, query: str = "") -> bytes:
    from tests.wsgi import call

    answer = call(app, path, QUERY_STRING=query, HTTP_AUTHORIZATION=f"Bearer {TOKEN}", REMOTE_ADDR="127.0.0.1")
    assert answer.status == 200, (path, query, answer.status, answer.body[:200])
    return bytes(answer.body)


def _image(n: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64 + n, 48), (n * 10 % 256, 90, 160)).save(out, "JPEG", quality=80)
    return out.getvalue()


def bench_scale(
    images: int = 1_000_000, files: int = 1_000_000, couch_images: int = 100_000, repeat: int = 200
) -> None:
    print(f"\n## Scale: requests at 1,000 to {images:,} images (SQLite), p50 / p99 in ms, in process")
    with tempfile.TemporaryDirectory() as tmp:
        _bench_sqlite(Path(tmp) / "sqlite", [c for c in CHECKPOINTS if c <= images], repeat)
        _bench_cache(Path(tmp) / "cache", [c for c in CHECKPOINTS if c <= files])
        if couch_images:
            _bench_couch(Path(tmp) / "couch", couch_images, repeat)


def _bench_sqlite(home: Path, checkpoints: list[int], repeat: int) -> None:
    from huimages.catalog.sqlite import SQLiteCatalog
    from huimages.cdn.records import UPLOADED, Derivative
    from huimages.http.app import create_app

    env = {
        "HUIMAGES_HOME": str(home),
        "IMAGESERVERURL": "http://img.test/",
        "HUIMAGES_UPLOAD_TOKEN": TOKEN,
        "CDN_BUCKET": "scale-bench",  # the CDN queue's figures and look-ups; nothing is uploaded
        "CDN_URL": "https://cdn.example.com",
    }
    client = Client(Settings.from_env(env))
    service = client.service
    app = create_app(service=service)
    real = [client.save_image(_image(n), title=f"real {n}") for n in range(20)]
    catalog, queue = service.catalog, service.queue
    assert isinstance(catalog, SQLiteCatalog) and queue is not None
    filled, first_p99 = 0, dict[int, float]()
    print(f"{'images':>10} {'request':52} {'p50':>8} {'p99':>8} {'p99 / at 1,000':>15}")
    for checkpoint in checkpoints:
        started = time.monotonic()
        while filled < checkpoint:
            batch = range(filled, min(checkpoint, filled + 20_000))
            catalog.put_many([_doc(n) for n in batch])
            keys = [f"derivative:240x160:{_id(n)}:jpeg" for n in batch]
            now = time.time()
            records = {
                k: Derivative("240x160", _id(n), 1, UPLOADED, queued_at=now).as_record()
                for k, n in zip(keys, batch, strict=True)
            }
            queue._update_many(keys, lambda key, _old, made=records: made[key])  # type: ignore[misc]
            filled = batch[-1] + 1
        fill_s = time.monotonic() - started
        with catalog.file.errors() as conn:
            ordered = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM images WHERE deleted = 0 ORDER BY id LIMIT 1 OFFSET ?", (int(checkpoint * 0.9),)
                )
            ]
        deep = ordered[0]
        newest_deep = _id(int(checkpoint * 0.1))  # 90 % of the way down, newest first
        middle = _id(checkpoint // 2)  # a search reads 500 records for 50 matches: at 1,000 images, all that is left
        spread = ",".join(_id(n * (checkpoint // 100)) for n in range(100))
        queries = [
            ("GET /images?limit=50 (ID order)", "limit=50"),
            ("  at depth 90 %", f"limit=50&after={deep}"),
            ("GET /images?order=newest&limit=50", "order=newest&limit=50"),
            ("  at depth 90 %", f"order=newest&limit=50&after={newest_deep}"),
            ("  with q= (1 in 10 matches), depth 50 %", f"order=newest&limit=50&q=tag7&after={middle}"),
            ("GET /images?ids= of 100 IDs", f"ids={spread}"),
        ]
        rows: list[tuple[str, Callable[[], object]]] = [
            ("GET /images/<id>", lambda: _call(app, f"/images/{real[3]}")),
            ("scaled_imageurl (a new client)", lambda: Client(service=service).scaled_imageurl(real[4], "small")),
            ("random", catalog.random_id),
            ("next", lambda: catalog.next_id(real[5])),
            *[(label, lambda q=query: _call(app, "/images", q)) for label, query in queries],
            ("GET /metrics (the scrape)", lambda: _call(app, "/metrics")),
        ]
        for row, (label, run) in enumerate(rows):
            p50, p99 = _times(run, repeat)
            first_p99.setdefault(row, p99)
            print(f"{checkpoint:>10,} {label:52} {p50:8.2f} {p99:8.2f} {p99 / first_p99[row]:14.2f}x")
        size = sum(f.stat().st_size for f in home.glob("catalog.sqlite*"))
        print(
            f"{checkpoint:>10,} {'bytes an image (catalog and queue file)':52} {size / checkpoint:8.0f}"
            f"   (filled in {fill_s:.0f} s)"
        )


def _bench_cache(root: Path, checkpoints: list[int]) -> None:
    from huimages.serving import census, prune

    print(f"\n{'files':>10} {'cache':52} {'value':>8}")
    sizes = ["240x160", "150x150!", "480x320", "1024x768", "75x75!", "800x600", "640x480", "179x600"]
    for folder in sizes:
        (root / folder).mkdir(parents=True, exist_ok=True)
    made, now = 0, time.time()
    for checkpoint in checkpoints:
        while made < checkpoint:
            path = root / sizes[made % len(sizes)] / f"{_id(made)}.jpeg"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, b"x")
            os.close(fd)
            os.utime(path, (now - made, now - made))
            made += 1
        tracemalloc.start()
        started = time.perf_counter()
        planned = prune.plan(root, max_bytes=planned_bound(checkpoint))
        plan_s = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        started = time.perf_counter()
        planned = prune.plan(root, max_bytes=planned_bound(checkpoint))
        plain_s = time.perf_counter() - started
        started = time.perf_counter()
        counted = census.count(root)
        walk_s = time.perf_counter() - started
        census.record(root, counted)
        started = time.perf_counter()
        summary = census.census(root)
        summary_s = time.perf_counter() - started
        print(f"{checkpoint:>10,} {'prune plan, s (a tenth of the files to go)':52} {plain_s:8.2f}")
        print(
            f"{checkpoint:>10,} {'prune plan, bytes a file at its peak (tracemalloc)':52} {peak / checkpoint:8.1f}"
            f"   ({planned.count:,} victims; {plan_s:.1f} s traced)"
        )
        print(f"{checkpoint:>10,} {'cache summary by a walk, s':52} {walk_s:8.2f}")
        source = "the record" if summary.recorded else "a walk"
        print(f"{checkpoint:>10,} {'huimages cache (' + source + '), s':52} {summary_s:8.3f}")


def planned_bound(files: int) -> int:
    return int(files * 4096 * 0.9)  # every file takes one 4 KiB block: a tenth goes


def _bench_couch(home: Path, count: int, repeat: int) -> None:
    from huimages.http.app import create_app
    from tests.servers import PouchCouch

    server = PouchCouch(home / "pouch")
    server.start()
    try:
        env = {
            "HUIMAGES_HOME": str(home),
            "IMAGESERVERURL": "http://img.test/",
            "HUIMAGES_UPLOAD_TOKEN": TOKEN,
            "COUCHSERVER": server.url,
            "HUIMAGES_COUCHDB_NAME": server.new_database(),
        }
        client = Client(Settings.from_env(env))
        service = client.service
        app = create_app(service=service)
        catalog = service.catalog
        db = catalog.couch.db(catalog.name)  # type: ignore[attr-defined]
        started = time.monotonic()
        for start in range(0, count, 5000):
            db.update([_doc(n) for n in range(start, min(count, start + 5000))])
        written = time.monotonic() - started
        started = time.monotonic()
        catalog.bring_up_to_date()
        print(
            f"\n## CouchDB (pouchdb-server), {count:,} images: written in bulk in {written:.0f} s,"
            f" views brought up to date in {time.monotonic() - started:.0f} s; p50 / p99 in ms"
        )
        ordered = sorted(_id(n) for n in range(count))
        rows = [
            ("GET /images?limit=50 (ID order), depth 100", f"limit=50&after={ordered[100]}"),
            ("  at depth 90 %", f"limit=50&after={ordered[int(count * 0.9)]}"),
            ("GET /images?order=newest&limit=50, depth 100", f"order=newest&limit=50&after={_id(count - 100)}"),
            ("  at depth 90 %", f"order=newest&limit=50&after={_id(int(count * 0.1))}"),
            ("GET /images?ids= of 100 IDs", "ids=" + ",".join(ordered[:: max(1, count // 100)][:100])),
        ]
        for label, query in rows:
            p50, p99 = _times(functools.partial(_call, app, "/images", query), max(20, repeat // 4))
            print(f"{'':>10} {label:52} {p50:8.2f} {p99:8.2f}")
    finally:
        server.kill()
