#!/usr/bin/env python3
"""huimages benchmarks (not tests): cold renders, render memory, warm hits.

    .venv/bin/python scripts/bench.py [PHOTOS_DIR] [--repeat N] [--seconds S] [--skip-http] [--only SECTION]

Sections and their options: see docs/benchmarks.md (``--only scale --images 10000000``, say).

Without PHOTOS_DIR it generates photos-like JPEGs with Pillow. Every figure is
the best of --repeat runs (cold renders) or a --seconds load run (warm hits).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_focus
import bench_inputs
import bench_lookups
import bench_ops
import bench_quality
import bench_render
import bench_scale
import bench_slow
import bench_upload
from bench_render import best_ms, draft_decode

from huimages.config import DEFAULT_SIZES, Limits, Settings
from huimages.core.sizes import parse_size
from huimages.http.fronts.lighttpd import find_lighttpd
from huimages.imaging import render
from huimages.serving.service import ImageService
from tests.servers import free_port as _free_port

TARGETS = ("240x160", "150x150!", "1024x768")
LIMITS = Limits(max_pixels=100_000_000, max_upload_bytes=1 << 30)


def generated_photos(folder: Path) -> list[Path]:
    """Stand-ins for photos: detailed, noisy JPEGs, baseline and progressive."""
    paths = []
    for name, (w, h), progressive in (
        ("gen-2560x1600", (2560, 1600), False),
        ("gen-4000x3000-prog", (4000, 3000), True),
    ):
        im = Image.effect_mandelbrot((w, h), (-2.2, -1.2, 1.0, 1.2), 120).convert("RGB")
        noise = Image.effect_noise((w, h), 40).convert("RGB")
        im = Image.blend(im, noise, 0.3).filter(ImageFilter.SMOOTH)
        ImageDraw.Draw(im).ellipse([w // 4, h // 4, w // 2, h // 2], fill=(200, 60, 40))
        path = folder / f"{name}.jpg"
        im.save(path, "JPEG", quality=90, progressive=progressive)
        paths.append(path)
    return paths


def bench_cold(photos: list[Path], repeat: int) -> None:
    print("\n## Cold derivatives: render (decode+scale+encode) vs Pillow's bare draft decode, best of", repeat)
    print(f"{'photo':<22}{'size':>11}{'target':>10}{'decoded at':>12}{'decode ms':>11}{'render ms':>11}{'ratio':>7}")
    totals: dict[str, list[float]] = {t: [0.0, 0.0] for t in TARGETS}
    worst: dict[str, float] = dict.fromkeys(TARGETS, 0.0)
    for path in photos:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            dims = f"{im.width}x{im.height}"
        for token in TARGETS:
            size = parse_size(token, DEFAULT_SIZES, 4096)
            decode_ms = best_ms(lambda data=data, size=size: draft_decode(data, size), repeat)  # type: ignore[misc]
            render_ms = best_ms(lambda data=data, size=size: render(data, size, 85, LIMITS), repeat)  # type: ignore[misc]
            drafted = draft_decode(data, size).size
            ratio = render_ms / decode_ms
            totals[token][0] += decode_ms
            totals[token][1] += render_ms
            worst[token] = max(worst[token], ratio)
            print(
                f"{path.stem[:21]:<22}{dims:>11}{token:>10}{f'{drafted[0]}x{drafted[1]}':>12}"
                f"{decode_ms:>11.1f}{render_ms:>11.1f}{ratio:>7.2f}"
            )
    for token, (dec, ren) in totals.items():
        ratio = ren / dec
        print(f"all photos, {token:>9}: {ren:7.1f} ms render / {dec:7.1f} ms decode = {ratio:.2f}x", end="")
        print(f" (worst photo {worst[token]:.2f}x)")


def _proc_status(field: str) -> int:
    match = re.search(field + r":\s+(\d+) kB", Path("/proc/self/status").read_text())
    assert match, field
    return int(match.group(1)) * 1024


def peak_child(path: Path, token: str, what: str) -> None:
    """In a fresh process: the growth of peak RSS during one decode or render."""
    data = path.read_bytes()
    size = parse_size(token, DEFAULT_SIZES, 4096)

    def work() -> object:
        return render(data, size, 85, LIMITS) if what == "render" else draft_decode(data, size)

    work()  # warm up allocators and lazy imports; what follows is the steady state
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS counter (VmHWM)
    before = _proc_status("VmRSS")
    work()
    print(json.dumps({"peak": _proc_status("VmHWM") - before}))


def bench_memory(photos: list[Path]) -> None:
    print("\n## Peak memory of one render (growth of RSS above the steady state, fresh process)")
    columns = ("draft image", "output", "decode peak", "render peak")
    print(f"{'photo':<22}{'target':>10}" + "".join(f"{c:>13}" for c in columns) + f"{'/ bound':>9}")
    for path in photos:
        data = path.read_bytes()
        for token in ("240x160", "1024x768"):
            size = parse_size(token, DEFAULT_SIZES, 4096)
            drafted = draft_decode(data, size)
            out = Image.open(io.BytesIO(render(data, size, 85, LIMITS).data))
            draft_bytes = drafted.width * drafted.height * 4  # Pillow keeps RGB as 4 bytes a pixel
            out_bytes = out.width * out.height * 4
            peaks = {}
            for what in ("decode", "render"):
                proc = subprocess.run(
                    [sys.executable, __file__, "--peak-child", str(path), token, what],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                peaks[what] = json.loads(proc.stdout)["peak"]
            bound = 3 * draft_bytes + out_bytes
            print(
                f"{path.stem[:21]:<22}{token:>10}{_mb(draft_bytes):>13}{_mb(out_bytes):>13}"
                f"{_mb(peaks['decode']):>13}{_mb(peaks['render']):>13}{peaks['render'] / bound:>9.2f}"
            )
    print("bound = 3 x draft image + output; '/ bound' under 1.00 meets it")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def bench_warm(photos: list[Path], seconds: int) -> None:
    print(f"\n## Warm hits: `huimages serve` (gunicorn, {os.cpu_count()} workers), one cached 240x160, {seconds} s")
    wrk = shutil.which("wrk")
    with tempfile.TemporaryDirectory() as home:
        service = ImageService.from_settings(Settings.at(Path(home)))
        image_id = service.ingest(photos[0].read_bytes())
        service.derivative(service.parse_size("240x160"), image_id)
        port = _free_port()
        os.environ["HUIMAGES_HOME"] = home
        with _server([sys.executable, "-m", "huimages", "serve", "--port", str(port)], port):
            rps = _load(f"http://127.0.0.1:{port}/240x160/{image_id}.jpeg", seconds, wrk)
        del os.environ["HUIMAGES_HOME"]
        print(f"huimages serve: {rps:,.0f} requests/s ({'wrk -t2 -c32' if wrk else 'python client'})")


def bench_lighttpd(photos: list[Path], seconds: int) -> None:
    from huimages.http.fronts.lighttpd import missing_parts

    problems = missing_parts()
    if problems:
        print(f"\n## lighttpd front: skipped ({'; '.join(problems)})")
        return
    lighttpd = find_lighttpd()
    assert lighttpd
    bench_front_hits(photos, seconds, lighttpd)
    bench_front_renders(photos, lighttpd)


def bench_front_hits(photos: list[Path], seconds: int, lighttpd: str) -> None:
    """Warm hits through the generated lighttpd config against a plain static lighttpd, three runs."""
    from huimages.http.fronts.lighttpd import FrontConfig, write_config

    wrk = shutil.which("wrk")
    pinned = " (lighttpd on core 1, the client on core 0)" if _pins()[0] else ""
    client = ("wrk -t1 -c32" if _pins()[0] else "wrk -t2 -c32") if wrk else "python"
    print(f"\n## Warm hits through lighttpd, one cached 240x160, {seconds} s each ({client}){pinned}")
    with tempfile.TemporaryDirectory() as home_dir:
        home = Path(home_dir)
        service = ImageService.from_settings(Settings.at(home))
        image_id = service.ingest(photos[0].read_bytes())
        service.derivative(service.parse_size("240x160"), image_id)
        plain = home / "plain.conf"
        port = _free_port()
        plain.write_text(
            f'server.document-root = "{service.cache.root}"\nserver.bind = "127.0.0.1"\n'
            f'server.port = {port}\nmimetype.assign = ( ".jpeg" => "image/jpeg" )\n'
        )
        port2 = _free_port()
        conf = write_config(FrontConfig.from_settings(service.settings, environ={}, port=port2, processes=2))
        pin_server, pin_client = _pins()
        with (
            _server([*pin_server, lighttpd, "-D", "-f", str(plain)], port) as static_server,
            _server([*pin_server, lighttpd, "-D", "-f", str(conf)], port2) as front_server,
        ):
            targets = {
                "static": (static_server.pid, f"http://127.0.0.1:{port}/240x160/{image_id}.jpeg"),
                "front": (front_server.pid, f"http://127.0.0.1:{port2}/240x160/{image_id}.jpeg"),
            }
            for run in range(1, 4):
                # One-second slices, alternating which server goes first (ABBA): drift on a shared
                # machine then falls on both alike, within the run, not between runs.
                requests = dict.fromkeys(targets, 0.0)
                cpu = dict.fromkeys(targets, 0.0)
                for n in range(max(2, seconds)):
                    for name in sorted(targets, reverse=n % 2 == 1):
                        pid, url = targets[name]
                        rate, us = _load_cpu(pid, url, 1, wrk, pin_client)
                        requests[name] += rate
                        cpu[name] += rate * us
                static, front = requests["static"], requests["front"]
                s_cpu, f_cpu = cpu["static"] / static, cpu["front"] / front
                print(
                    f"run {run}: plain static {static / max(2, seconds):,.0f} req/s, {s_cpu:.1f} us CPU each;"
                    f" huimages front {front / max(2, seconds):,.0f} req/s, {f_cpu:.1f} us CPU each:"
                    f" {front / static:.2f}x the requests, {s_cpu / f_cpu:.2f}x the requests per CPU"
                )

        if shutil.which("valgrind") and shutil.which("callgrind_control"):
            # Instructions are not time, but they do not drift: the config's own cost per hit, exactly.
            plain_ir = _instructions_per_hit(lighttpd, plain, port, f"/240x160/{image_id}.jpeg")
            front_ir = _instructions_per_hit(lighttpd, conf, port2, f"/240x160/{image_id}.jpeg")
            print(
                f"lighttpd's own instructions per hit (callgrind, 2,000 hits, user space only): plain static"
                f" {plain_ir:,.0f}, huimages front {front_ir:,.0f} ({front_ir / plain_ir:.2f}x)"
            )


def _instructions_per_hit(lighttpd: str, conf: Path, port: int, path: str, hits: int = 2000) -> float:
    """User-space instructions lighttpd executes per request for ``path``, counted by valgrind's callgrind."""
    import http.client

    out = conf.with_suffix(".callgrind")
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", lighttpd, "-D", "-f", str(conf)]
    with _server(argv, port, ready=60) as proc:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(50):  # warm up: stat cache, buffers
            connection.request("GET", path)
            connection.getresponse().read()
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], capture_output=True, check=True)
        for _ in range(hits):
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            assert response.status == 200
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True, check=True)
        connection.close()
    dump = Path(f"{out}.1").read_text(errors="replace")
    match = re.search(r"^summary:\s+(\d+)", dump, re.M)
    assert match, f"no summary in {out}.1"
    return int(match.group(1)) / hits


def bench_front_renders(photos: list[Path], lighttpd: str) -> None:
    """Cold renders per second through lighttpd: one render at a time against the default backends.

    The sizes are the site's own (``HUIMAGES_ALLOWED_SIZES``), so the budgets
    for strangers' sizes do not apply. Runs go in ABBA order, twice (one,
    defaults, defaults, one, ...), so that drift of this shared machine falls
    on both; each run starts from an empty cache of the same store.
    """
    widths = range(200, 1000, 20)
    print(
        f"\n## Cold renders through lighttpd + FastCGI: {len(photos) * len(widths)} distinct misses a run"
        " (from masters), 8 keep-alive clients, runs in ABBA order"
    )
    sizes = [f"{w}x{w * 2 // 3}" for w in widths]
    room = {"HUIMAGES_RENDER_QUEUE": "16", "HUIMAGES_ALLOWED_SIZES": ",".join([*sizes, *_WARM_SIZES])}
    cores = os.cpu_count() or 1
    runs = {"one": (1, {"HUIMAGES_RENDER_CONCURRENCY": "1", **room}), "defaults": (cores, room)}
    done: dict[str, list[tuple[float, float]]] = {"one": [], "defaults": []}
    with tempfile.TemporaryDirectory() as home_dir:
        service = ImageService.from_settings(Settings.at(Path(home_dir)))
        ids = [service.ingest(p.read_bytes()) for p in photos]
        for which in ("one", "defaults", "defaults", "one") * 2:
            procs, environ = runs[which]
            done[which].append(_cold_throughput(service, ids, sizes, lighttpd, procs, environ))
        bare = _bare_scaling(service, ids, sizes, cores)
    for which, label in (("one", "1 backend, 1 render at a time"), ("defaults", f"defaults ({cores} backends)")):
        rates = ", ".join(f"{rate:.1f}" for rate, _ in done[which])
        busy = ", ".join(f"{busy:.2f}" for _, busy in done[which])
        print(f"{label}: {rates} renders/s, backends busy on {busy} cores")
    one, both = (sum(rate for rate, _ in done[w]) for w in ("one", "defaults"))
    print(f"defaults against one render at a time: {both / one:.2f}x", end="")
    halves = [sum(r for r, _ in done["defaults"][h::2]) / sum(r for r, _ in done["one"][h::2]) for h in (0, 1)]
    print(f" (each ABBA on its own: {halves[0]:.2f}x, {halves[1]:.2f}x)")
    print(
        f"the same renders without a server, {cores} processes against 1 (the machine's own scaling, ABBA):"
        f" {bare[0]:.2f}x; {bare[1]:.1f} ms of CPU a render"
    )
    bench_flood(photos, lighttpd)


def _bare_scaling(service: ImageService, ids: list[str], sizes: list[str], cores: int) -> tuple[float, float]:
    """Renders from the masters in ``cores`` processes against one, no server: the ratio, and CPU ms a render."""
    import concurrent.futures

    jobs = []
    for image_id in ids:
        doc = service.catalog.get_live(image_id)
        jobs.append((service.master(image_id), (int(doc["width"]), int(doc["height"]))))
    specs = [service.parse_size(size) for size in sizes]
    encoding, limits = service.settings.encoding("jpeg"), service.settings.limits
    rates: dict[int, float] = {1: 0.0, cores: 0.0}
    cpu = []
    with concurrent.futures.ProcessPoolExecutor(cores) as pool:
        list(pool.map(_render_all, [(jobs[:1], specs[:2], encoding, limits)] * cores))  # workers up and imported
        for procs in (1, cores, cores, 1):
            start = time.perf_counter()
            work = [pool.submit(_render_all, (jobs, specs, encoding, limits)) for _ in range(procs)]
            cpu += [f.result() for f in work]
            rates[procs] += procs * len(jobs) * len(specs) / (time.perf_counter() - start)
    return rates[cores] / rates[1], sum(cpu) / len(cpu) / (len(jobs) * len(specs)) * 1000


def _render_all(job: tuple[list[tuple[bytes, tuple[int, int]]], list[Any], Any, Limits]) -> float:
    """Render every size of every master once, in the order the server gets them; the CPU seconds it took.

    (Every size of one master in a row runs on hot caches: a third less CPU a render here.)
    """
    masters, sizes, encoding, limits = job
    started = time.process_time()
    for size in sizes:
        for master, source_size in masters:
            render(master, size, encoding, limits, None, source_size)
    return time.process_time() - started


def _pins() -> tuple[list[str], list[str]]:
    """taskset prefixes that give the server one core and the load generator another (none on one core).

    On two cores shared by a single-threaded lighttpd and a two-threaded wrk,
    the scheduler's placement decided a run more than the server did (the same
    server measured 0.6x to 1.3x of itself); pinned, each server has one core.
    """
    taskset = shutil.which("taskset")
    if taskset is None or (os.cpu_count() or 1) < 2:
        return [], []
    return [taskset, "-c", "1"], [taskset, "-c", "0"]


def _load_cpu(
    pid: int, url: str, seconds: int, wrk: str | None, prefix: list[str] | None = None
) -> tuple[float, float]:
    """Requests per second, and microseconds of the server process's CPU per request."""
    before, start = _cpu(pid), time.perf_counter()
    rate = _load(url, seconds, wrk, prefix)
    requests = rate * (time.perf_counter() - start)
    return rate, (_cpu(pid) - before) / max(requests, 1) * 1e6


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_rss(root: int) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            status = (entry / "status").read_text()
        except (OSError, IndexError):
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        rss[int(entry.name)] = int(match.group(1)) * 1024 if match else 0
    members, grew = {root}, True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in members and pid not in members:
                members.add(pid)
                grew = True
    return sum(rss.get(pid, 0) for pid in members)


def bench_flood(photos: list[Path], lighttpd: str, count: int = 200) -> None:
    """``count`` distinct cold URLs at once, while a client keeps asking for a cached one."""
    from huimages.http.fronts.lighttpd import FrontConfig, write_config

    print(f"\n## A flood of {count} distinct cold URLs at once; a cached URL asked for throughout")
    print("## (admission control alone: the stranger budgets, which would answer most of it 429, are off)")
    unlimited = {
        "HUIMAGES_UNSIGNED_RENDERS_PER_MINUTE": "0",
        "HUIMAGES_UNSIGNED_MB_PER_MINUTE": "0",
        "HUIMAGES_UNSIGNED_SIZES_PER_IMAGE": "0",
    }
    with tempfile.TemporaryDirectory() as home_dir:
        home = Path(home_dir)
        service = ImageService.from_settings(Settings.at(home))
        ids = [service.ingest(p.read_bytes()) for p in photos]
        service.derivative(service.parse_size("240x160"), ids[0]).close()
        flood = [f"/{200 + 3 * n}x{150 + 2 * n}!/{ids[n % len(ids)]}.jpeg" for n in range(count)]
        port = _free_port()
        conf = write_config(FrontConfig.from_settings(service.settings, environ=unlimited, port=port, processes=2))
        with _server([lighttpd, "-D", "-f", str(conf)], port) as front:
            _flood_run("lighttpd", port, front.pid, flood, f"/240x160/{ids[0]}.jpeg")
        port = _free_port()
        os.environ.update(HUIMAGES_HOME=str(home), **unlimited)
        service.cache.remove_size("240x160")
        for token in {p.split("/")[1] for p in flood}:
            service.cache.remove_size(token)
        service.derivative(service.parse_size("240x160"), ids[0]).close()
        argv = [sys.executable, "-m", "huimages", "serve", "--port", str(port)]
        with _server(argv, port) as serve:
            _flood_run("huimages serve", port, serve.pid, flood, f"/240x160/{ids[0]}.jpeg")
        for name in ("HUIMAGES_HOME", *unlimited):
            del os.environ[name]


def _flood_run(label: str, port: int, root: int, flood: list[str], hit: str) -> None:
    import concurrent.futures
    import http.client
    import threading

    def fetch(path: str) -> tuple[int, float]:
        start = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            conn.close()
            return response.status, time.perf_counter() - start
        except OSError:
            return 0, time.perf_counter() - start

    for _ in range(20):
        fetch(hit)  # every worker up and warm
    time.sleep(0.5)
    idle = _tree_rss(root)
    done, peak, latencies = threading.Event(), [idle], []

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(root))
            time.sleep(0.02)

    def hits() -> None:
        while not done.is_set():
            status, seconds = fetch(hit)
            latencies.append(seconds if status == 200 else float("inf"))

    watchers = [threading.Thread(target=sample), threading.Thread(target=hits)]
    for w in watchers:
        w.start()
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(len(flood)) as pool:
        statuses = [status for status, _ in pool.map(fetch, flood)]
    wall = time.perf_counter() - start
    done.set()
    for w in watchers:
        w.join()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    time.sleep(1.0)
    after = _tree_rss(root)  # what the processes keep once the flood is over
    print(
        f"{label}: answers {counts} in {wall:.1f} s; memory of all its processes {idle / 1e6:.0f} MB idle,"
        f" {peak[0] / 1e6:.0f} MB at the peak, {after / 1e6:.0f} MB a second after;"
        f" {len(latencies)} hits meanwhile, p99 {p99:.0f} ms"
    )


def _backend_cpu(parent: int) -> float:
    """CPU seconds used so far by the FastCGI backends lighttpd ``parent`` spawned."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.name.isdigit() and int(fields[1]) == parent:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


_WARM_SIZES = [f"{100 + i}x100" for i in range(8)]


def _cold_throughput(
    service: ImageService, ids: list[str], sizes: list[str], lighttpd: str, procs: int, environ: dict[str, str]
) -> tuple[float, float]:
    """Renders per second of every size of every image, and the cores the backends were busy on."""
    import concurrent.futures
    import threading

    from huimages.http.fronts.lighttpd import FrontConfig, write_config

    for token in [*sizes, *_WARM_SIZES]:
        service.cache.remove_size(token)
    paths = [f"/{size}/{i}.jpeg" for size in sizes for i in ids]
    port = _free_port()
    conf = write_config(FrontConfig.from_settings(service.settings, environ=environ, port=port, processes=procs))
    connections = threading.local()  # one keep-alive connection per client thread, as a browser or a CDN keeps

    def fetch(path: str) -> None:
        if getattr(connections, "client", None) is None:
            connections.client = _LeanClient(port)
        status = connections.client.get(path)
        if status != 200:
            raise RuntimeError(f"{status} for {path}")

    with _server([lighttpd, "-D", "-f", str(conf)], port) as front:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(fetch, [f"/{size}/{i}.jpeg" for size in _WARM_SIZES for i in ids]))  # backends warm
            cpu_before, start = _backend_cpu(front.pid), time.perf_counter()
            list(pool.map(fetch, paths))
            wall = time.perf_counter() - start
        return len(paths) / wall, (_backend_cpu(front.pid) - cpu_before) / wall


class _LeanClient:
    """A keep-alive HTTP/1.1 GET client that costs little CPU (http.client's header parsing cost
    about 0.3 ms a request, 5 % of a core at these rates, on the cores the servers share)."""

    def __init__(self, port: int) -> None:
        import socket

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)

    def get(self, path: str) -> int:
        """The status of ``GET path``; the body is read and dropped."""
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"the server closed the connection during {path}")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        match = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
        if match is None:
            raise RuntimeError(f"no Content-Length in the answer to {path}: {head!r}")
        left = int(match.group(1)) - len(body)
        while left > 0:
            chunk = self.sock.recv(min(left, 1 << 20))
            if not chunk:
                raise ConnectionError(f"the server closed the connection during {path}")
            left -= len(chunk)
        return int(head.split(None, 2)[1])


class _server:
    """Run a server process for the duration of a with-block, stopped by PID."""

    def __init__(self, argv: list[str], port: int, ready: float | None = None) -> None:
        self.argv, self.port, self.ready = argv, port, ready

    def __enter__(self) -> subprocess.Popen[bytes]:
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        _wait_port(self.port, self.ready or 30)
        return self.proc

    def __exit__(self, *exc: object) -> None:
        os.killpg(self.proc.pid, 15)
        self.proc.wait(20)


def bench_migrate(count: int = 200) -> None:
    """`huimages migrate` from pouchdb-server to SeaweedFS, as the test fixtures start them."""
    import couchdb

    from huimages.core.ids import compute_id
    from huimages.ops.migrate import migrate_attachments
    from huimages.originals import open_legacy
    from huimages.originals.s3 import S3Store
    from tests.servers import PouchCouch, SeaweedS3

    print(f"\n## huimages migrate: {count} legacy originals of about 200 KB, pouchdb-server -> SeaweedFS")
    originals = []
    for n in range(count):
        noise = Image.effect_noise((600 + n % 7, 420), 64).convert("RGB")
        originals.append(_jpeg_bytes(noise, 92))
    size = sum(len(o) for o in originals) / count
    with tempfile.TemporaryDirectory() as tmp:
        s3, couch = SeaweedS3(Path(tmp) / "s3"), PouchCouch(Path(tmp) / "couch")
        s3.start()
        couch.start()
        try:
            for workers in (1, 8):
                dbname = couch.new_database()
                db = couchdb.Server(couch.url).create(dbname)
                for data in originals:
                    doc = {"_id": compute_id(data), "title": ["bench"]}
                    db.save(doc)
                    db.put_attachment(doc, data, "image.jpeg", "image/jpeg")
                bucket = s3.new_bucket()
                settings = Settings.from_env(
                    {
                        **s3.settings_env(bucket),
                        "HUIMAGES_HOME": str(Path(tmp) / dbname),
                        "COUCHSERVER": couch.url,
                        "HUIMAGES_COUCHDB_NAME": dbname,
                    }
                )
                legacy = open_legacy(settings)
                start = time.perf_counter()
                report = migrate_attachments(legacy, S3Store.from_settings(settings), workers=workers)
                seconds = time.perf_counter() - start
                assert report.copied == count and not report.failed, report
                print(f"{workers} transfer{'s' if workers > 1 else ''} at once: {count / seconds:.1f} originals/s")
        finally:
            s3.kill()
            couch.kill()
    print(f"(average original {size / 1000:.0f} KB)")


def bench_cdn(count: int = 1000) -> None:
    """One process-queue run against uploading the same derivatives one by one."""
    from tests.servers import FaultProxy, SeaweedS3

    small = [_jpeg_bytes(Image.effect_noise((80 + n % 20, 60), 40).convert("RGB"), 80) for n in range(count)]
    with tempfile.TemporaryDirectory() as tmp:
        s3 = SeaweedS3(Path(tmp) / "s3")
        s3.start()
        try:
            print(f"\n## CDN queue: {count} queued small derivatives to SeaweedFS (SQLite catalog)")
            _cdn_runs(s3, s3.endpoint, small, Path(tmp) / "direct")
            proxy = FaultProxy(s3.port, 0.020)
            print(f"\n## CDN queue: the first {count // 4} again, every S3 answer 20 ms late (a remote S3)")
            _cdn_runs(s3, f"http://127.0.0.1:{proxy.port}", small[: count // 4], Path(tmp) / "delayed")
        finally:
            s3.kill()


def _cdn_runs(s3: Any, endpoint: str, small: list[bytes], home: Path) -> None:
    from huimages.core.ids import compute_id

    count = len(small)
    rates = {}
    for label, concurrency, batch in (("one by one", 1, 1), ("one run (defaults)", 8, 200)):
        env = {
            "HUIMAGES_HOME": str(home / label.replace(" ", "-")),
            "CDN_BUCKET": s3.new_bucket(),
            "CDN_URL": "https://cdn.example.com",
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ACCESS_KEY_ID": s3.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": s3.SECRET_KEY,
            "CDN_CONCURRENCY": str(concurrency),
            "CDN_BATCH": str(batch),
        }
        service = ImageService.from_settings(Settings.from_env(env))
        assert service.publisher is not None
        now = time.time()
        for data in small:
            image_id = compute_id(data)
            service.cache.write("80x60", image_id, data).close()
            service.publisher.store.enqueue("80x60", image_id, 1, now)
        start = time.perf_counter()
        report = service.publisher.run()
        seconds = time.perf_counter() - start
        assert report.uploaded == count and report.queued == 0, report
        rates[label] = count / seconds
        print(f"{label:20}: {seconds:6.2f} s, {count / seconds:6.1f} derivatives/s")
    print(f"one run / one by one: {rates['one run (defaults)'] / rates['one by one']:.1f}x")


def _jpeg_bytes(im: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _load(url: str, seconds: int, wrk: str | None, prefix: list[str] | None = None) -> float:
    """Requests per second at ``url``; ``prefix`` (taskset) pins the client to one core, then one wrk thread."""
    if wrk:
        threads = "-t1" if prefix else "-t2"
        out = subprocess.run(
            [*(prefix or []), wrk, threads, "-c32", f"-d{seconds}s", url], capture_output=True, text=True, check=True
        ).stdout
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if errors:
            raise RuntimeError(f"{errors.group(1)} failed requests during the load run:\n{out}")
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        assert match, out
        return float(match.group(1))
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    count, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        conn.request("GET", parts.path)
        conn.getresponse().read()
        count += 1
    return count / seconds


def _wait_port(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import PIL

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, Pillow {PIL.__version__}"


# thumbor runs only when named (--only thumbor, or --thumbor)
_SECTIONS = [
    *["cold", "masters", "formats", "ingest", "memory", "http", "hits", "renders", "slow", "migrate", "cdn", "ops"],
    "lookups",
    "inputs",
    "quality",
    "focus",
    "upload",
    "scale",
    "thumbor",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", nargs="?", type=Path, help="folder of JPEG photos (default: generated)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per cold measurement (best is kept)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each load run")
    parser.add_argument("--skip-http", action="store_true", help="skip the server load runs")
    parser.add_argument(
        "--only",
        choices=_SECTIONS,
        help="run one section only",
    )
    parser.add_argument("--thumbor", action="store_true", help="also compare cold renders with thumbor over HTTP")
    parser.add_argument("--images", type=int, default=1_000_000, help="images the scale section grows to")
    parser.add_argument("--files", type=int, default=1_000_000, help="cache files the scale section grows to")
    parser.add_argument("--couch-images", type=int, default=100_000, help="images of the scale section's CouchDB")
    parser.add_argument("--samples", type=int, default=200, help="requests timed per row of the scale section")
    parser.add_argument(
        "--against", metavar="REV", help="with --only quality: also serve every size by git revision REV and compare"
    )
    parser.add_argument("--peak-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_child:
        peak_child(Path(args.peak_child[0]), args.peak_child[1], args.peak_child[2])
        return
    print(f"# huimages benchmark on {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.photos:
            photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
            print(f"photos: {len(photos)} from {args.photos}")
        else:
            photos = generated_photos(Path(tmp))
            print("photos: generated with Pillow")
        sections = (
            {args.only}
            if args.only
            else {
                "cold",
                "masters",
                "formats",
                "ingest",
                "memory",
                "http",
                "migrate",
                "cdn",
                "ops",
                "lookups",
                "inputs",
            }
        )
        if args.thumbor:
            sections.add("thumbor")
        if args.skip_http:
            sections.discard("http")
        if "cold" in sections:
            bench_cold(photos, args.repeat)
        if "masters" in sections:
            bench_render.bench_masters(photos, args.repeat)
        if "formats" in sections:
            bench_render.bench_formats(photos, args.repeat)
        if "ingest" in sections:
            bench_render.bench_ingest(photos, args.repeat)
        if "thumbor" in sections:
            bench_render.bench_thumbor(photos, args.repeat, _server, _free_port)
        if "memory" in sections:
            bench_memory(photos)
        if "http" in sections:
            bench_warm(photos, args.seconds)
            bench_lighttpd(photos, args.seconds)
        lighttpd = find_lighttpd() or "lighttpd"
        if "hits" in sections:  # warm hits through lighttpd against static lighttpd alone
            bench_front_hits(photos, args.seconds, lighttpd)
        if "renders" in sections:  # cold renders through lighttpd on every core against one at a time, and the flood
            bench_front_renders(photos, lighttpd)
        if "slow" in sections:  # huimages serve's worker against gunicorn's gthread, and slow clients
            bench_slow.bench_slow(photos, args.seconds, _server, _free_port, _load)
        if "migrate" in sections:
            bench_migrate()
        if "cdn" in sections:
            bench_cdn()
        if "ops" in sections:
            bench_ops.bench_ops(photos[0], _free_port, _wait_port)
        if "lookups" in sections:
            bench_lookups.bench_lookups(_free_port, _wait_port)
        if "upload" in sections:  # an upload's cost against a bare decode and against ipx's renders
            bench_upload.bench_upload(photos, args.repeat, _server, _free_port)
        if "focus" in sections:  # what focus points and placeholders cost an upload, and the crops they save
            bench_focus.bench_focus(photos, args.repeat)
        if "quality" in sections:  # detail kept at every size against the ideal render
            bench_quality.bench_quality(photos)
            if args.against:
                bench_quality.bench_against(photos, args.against)
        if "inputs" in sections:  # HEIC and AVIF originals, animations, PNG for graphics
            bench_inputs.bench_inputs(photos, args.repeat)
        if "scale" in sections:  # only when named: it fills a million records and a million files
            bench_scale.bench_scale(args.images, args.files, args.couch_images, args.samples)


if __name__ == "__main__":
    main()
