"""The bench's ``slow`` section: `huimages serve`'s worker against gunicorn's own gthread, and slow clients.

`huimages serve` runs gunicorn with ``huimages.http.fronts.headfirst.HeadFirstWorker``
(a request's head is read in the event loop before a thread takes the
connection). This measures what that costs and what it buys, in ABBA order
against the same server with gunicorn's plain ``gthread`` worker: warm hits,
cold renders (distinct sizes, four clients at once), and cached hits while 50
connections send a header line every 5 s (how Slowloris works).
"""

from __future__ import annotations

import contextlib
import http.client
import math
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from huimages.config import Settings
from huimages.serving.service import ImageService

#: `huimages serve` with gunicorn's plain gthread worker in place of the headfirst one.
_GTHREAD = """
import sys
from huimages.config import Settings
from huimages.http.fronts import standalone

class Plain(standalone.StandaloneServer):
    def load_config(self):
        self.options["worker_class"] = "gthread"
        super().load_config()

standalone.StandaloneServer = Plain
standalone.serve(Settings.from_env(), "127.0.0.1", int(sys.argv[1]), int(sys.argv[2]))
"""
SLOW_CONNECTIONS = 50
COLD_RENDERS = 40


def bench_slow(
    photos: list[Path], seconds: int, server: Any, free_port: Callable[[], int], load: Callable[..., float]
) -> None:
    workers = len(os.sched_getaffinity(0))
    print(f"\n## huimages serve's worker against gunicorn's gthread ({workers} workers x 16 threads), ABBA")
    print(f"warm hits of one cached 240x160 for {seconds} s; {COLD_RENDERS} cold renders, 4 clients;")
    print(
        f"cached hits every 0.25 s for {2 * seconds} s, {SLOW_CONNECTIONS} connections sending a header line every 5 s"
    )
    with tempfile.TemporaryDirectory() as home, _environment(home):
        service = ImageService.from_settings(Settings.from_env())
        image_id = service.ingest(photos[0].read_bytes())
        hit = f"/240x160/{image_id}.jpeg"
        service.derivative(service.parse_size("240x160"), image_id)
        results: dict[str, list[tuple[float, float]]] = {"huimages serve": [], "gthread": []}
        for run, kind in enumerate(["huimages serve", "gthread", "gthread", "huimages serve"]):
            port = free_port()
            argv = [sys.executable, "-m", "huimages", "serve", "--port", str(port)]
            if kind == "gthread":  # the same server, settings and logs, with gunicorn's own worker
                argv = [sys.executable, "-c", _GTHREAD, str(port), str(workers)]
            with server(argv, port):
                hits = load(f"http://127.0.0.1:{port}{hit}", seconds, None)
                cold = _cold(port, image_id, offset=run * COLD_RENDERS)
                slow = _slow_probes(port, hit, 2 * seconds)
            results[kind].append((hits, cold))
            print(f"{kind}: {hits:,.0f} hits/s, {cold:.1f} cold renders/s; under slow clients: {slow}")
        for index, name in ((0, "warm hits"), (1, "cold renders")):
            mine = sum(r[index] for r in results["huimages serve"])
            theirs = sum(r[index] for r in results["gthread"])
            print(f"{name}: huimages serve / gthread = {mine / theirs:.2f}x")


@contextlib.contextmanager
def _environment(home: str) -> Iterator[None]:
    """The servers' settings: a data folder of their own, no stranger budgets (the bench asks for many sizes)."""
    names = {
        "HUIMAGES_HOME": home,
        "HUIMAGES_UNSIGNED_RENDERS_PER_MINUTE": "0",
        "HUIMAGES_UNSIGNED_MB_PER_MINUTE": "0",
        "HUIMAGES_UNSIGNED_SIZES_PER_IMAGE": "0",
    }
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _cold(port: int, image_id: str, offset: int) -> float:
    """Cold renders per second: distinct sizes, four clients at once."""
    paths = [f"/{300 + offset + n}x{200 + offset + n}/{image_id}.jpeg" for n in range(COLD_RENDERS)]

    def fetch(path: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        conn.close()
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}")

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(fetch, paths))
    return COLD_RENDERS / (time.perf_counter() - started)


def _slow_probes(port: int, path: str, seconds: float) -> str:
    """Cached hits while slow clients hold connections: how many answered within 5 s, p50, p99 and the slowest."""
    slow = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(SLOW_CONNECTIONS)]
    for sock in slow:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n")
    stop = threading.Event()

    def drip() -> None:
        line = 0
        while not stop.wait(5.0):
            line += 1
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.sendall(f"X-Slow-{line}: y\r\n".encode())

    dripping = threading.Thread(target=drip)
    dripping.start()
    times: list[float] = []
    failed = 0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", path)
                conn.getresponse().read()
                conn.close()
                times.append((time.perf_counter() - started) * 1000)
            except OSError:
                failed += 1
            time.sleep(0.25)
    finally:
        stop.set()
        dripping.join()
        for sock in slow:
            sock.close()
    if not times:
        return f"0 answered, {failed} timed out"
    times.sort()
    p99 = times[math.ceil(len(times) * 0.99) - 1]  # nearest rank
    return (
        f"{len(times)} answered, {failed} timed out; p50 {statistics.median(times):.1f} ms,"
        f" p99 {p99:.1f} ms, slowest {times[-1]:.1f} ms"
    )
