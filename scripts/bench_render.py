"""Render benchmarks for scripts/bench.py: masters against direct renders, ingest, and thumbor over HTTP."""

from __future__ import annotations

import http.client
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from huimages.config import DEFAULT_SIZES, Limits, Settings
from huimages.core.sizes import Size, decode_target, output_dimensions, parse_size
from huimages.imaging import ingest, render
from huimages.serving.service import ImageService
from tests.imagetools import ssim

LIMITS = Limits(max_pixels=100_000_000, max_upload_bytes=1 << 30)
MASTER_SIDE = 2048
SIZES = ("240x160", "150x150!", "480x320", "1024x768")


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def draft_decode(data: bytes, size: Size) -> Image.Image:
    """What Pillow alone needs: open, draft to the render's decode target, decode."""
    im = Image.open(io.BytesIO(data))
    need = decode_target(size, im.width, im.height)
    if im.format == "JPEG":
        im.draft(None, need)
    im.load()
    return im


def bench_masters(photos: list[Path], repeat: int) -> None:
    """A cold derivative from the master against the bare decode of the original, and its SSIM."""
    print(f"\n## Cold derivatives from masters ({MASTER_SIDE} px): render ms, ratio to Pillow's bare draft decode")
    print("## of the original, and SSIM against the same derivative rendered straight from the original")
    print(f"{'photo':<16}{'size':>10}{'decode':>9}{'direct':>9}{'master':>9}{'ratio':>7}{'SSIM':>8}")
    totals = {token: [0.0, 0.0, 0.0] for token in SIZES}
    scores: dict[str, list[float]] = {token: [] for token in SIZES}
    for path in photos:
        data = path.read_bytes()
        made = ingest(data, LIMITS, MASTER_SIDE)
        assert made.master is not None
        source = (made.info.width, made.info.height)
        for token in SIZES:
            size = parse_size(token, DEFAULT_SIZES, 4096)
            decode_ms = best_ms(lambda d=data, s=size: draft_decode(d, s), repeat)  # type: ignore[misc]
            direct_ms = best_ms(lambda d=data, s=size: render(d, s, 85, LIMITS), repeat)  # type: ignore[misc]
            master = made.master

            def from_master(m: bytes = master, s: Size = size, src: tuple[int, int] = source) -> Any:
                return render(m, s, 85, LIMITS, source_size=src)

            master_ms = best_ms(from_master, repeat)
            score = ssim(_decode(from_master().data), _decode(render(data, size, 85, LIMITS).data))
            scores[token].append(score)
            for i, value in enumerate((decode_ms, direct_ms, master_ms)):
                totals[token][i] += value
            print(
                f"{path.stem[:15]:<16}{token:>10}{decode_ms:>9.1f}{direct_ms:>9.1f}{master_ms:>9.1f}"
                f"{master_ms / decode_ms:>7.2f}{score:>8.4f}"
            )
    for token, (dec, direct, from_masters) in totals.items():
        low, mean = min(scores[token]), sum(scores[token]) / len(scores[token])
        print(
            f"all photos {token:>9}: master {from_masters:7.1f} ms / bare decode {dec:7.1f} ms"
            f" = {from_masters / dec:.3f}x"
            f" (direct render {direct / dec:.2f}x); SSIM min {low:.4f}, mean {mean:.4f}"
        )


def bench_ingest(photos: list[Path], repeat: int) -> None:
    """Ingest with a master against ingest without one plus one cold 1024x768 render (the issue's budget)."""
    print(f"\n## Ingest (check + master, no I/O), best of {repeat}: with a master vs the checking decode alone")
    print(f"{'photo':<16}{'check only':>11}{'+ master':>10}{'1024x768':>10}{'budget':>9}{'master KB':>10}")
    size = parse_size("1024x768", DEFAULT_SIZES, 4096)
    for path in photos:
        data = path.read_bytes()
        check_ms = best_ms(lambda d=data: ingest(d, LIMITS, 0), repeat)  # type: ignore[misc]
        master_ms = best_ms(lambda d=data: ingest(d, LIMITS, MASTER_SIDE), repeat)  # type: ignore[misc]
        render_ms = best_ms(lambda d=data: render(d, size, 85, LIMITS), repeat)  # type: ignore[misc]
        kilobytes = len(ingest(data, LIMITS, MASTER_SIDE).master or b"") / 1000
        print(
            f"{path.stem[:15]:<16}{check_ms:>11.1f}{master_ms:>10.1f}{render_ms:>10.1f}"
            f"{master_ms / (check_ms + render_ms):>8.2f}x{kilobytes:>10.0f}"
        )
    print("budget: ingest with a master / (checking decode + cold 1024x768); at most 1.00 meets it")
    originals = sum(path.stat().st_size for path in photos)
    for side in (1024, 2048, 3072):  # what masters cost on disk, per HUIMAGES_MASTER_SIDE
        masters = sum(len(ingest(path.read_bytes(), LIMITS, side).master or b"") for path in photos)
        print(
            f"masters at side {side}: {masters / len(photos) / 1000:.0f} KB an image on average,"
            f" {masters / originals:.0%} of the originals' bytes"
        )


FORMAT_SIZES = ("240x160", "480x320", "1024x768")


def bench_formats(photos: list[Path], repeat: int) -> None:
    """Cold renders from the master per format: time, bytes, SSIM against the original scaled the same way."""
    settings = Settings.from_env()  # HUIMAGES_AVIF_QUALITY=... scripts/bench.py --only formats tries others
    encodings = {name: settings.encoding(name) for name in ("jpeg", "webp", "avif")}
    qualities = ", ".join(f"{n} q{e.quality}" for n, e in encodings.items()) + f", AVIF speed {settings.avif_speed}"
    print(f"\n## Formats ({qualities}): cold render from the master, best of {repeat}; SSIM against the original")
    print("## decoded in full and scaled with LANCZOS to the same size (no encoding)")
    print(f"{'photo':<14}{'size':>9}" + "".join(f"{n + ' ms':>10}{'KB':>7}{'SSIM':>8}" for n in encodings))
    totals: dict[tuple[str, str], list[float]] = {}
    deltas: dict[tuple[str, str], list[float]] = {}
    for path in photos:
        data = path.read_bytes()
        made = ingest(data, LIMITS, MASTER_SIDE)
        assert made.master is not None
        source = (made.info.width, made.info.height)
        upright = ImageOps.exif_transpose(_decode(data)).convert("RGB")
        for token in FORMAT_SIZES:
            size = parse_size(token, DEFAULT_SIZES, 4096)
            reference = upright.resize(output_dimensions(size, *source), Image.Resampling.LANCZOS)
            row = f"{path.stem[:13]:<14}{token:>9}"
            scores = {}
            for name, encoding in encodings.items():

                def cold(m: bytes = made.master, s: Size = size, e: Any = encoding, src: Any = source) -> Any:
                    return render(m, s, e, LIMITS, source_size=src)

                ms = best_ms(cold, repeat)
                out = cold().data
                scores[name] = ssim(_decode(out).convert("RGB"), reference)
                total = totals.setdefault((token, name), [0.0, 0.0])
                total[0] += ms
                total[1] += len(out)
                row += f"{ms:>10.1f}{len(out) / 1000:>7.1f}{scores[name]:>8.4f}"
            for name in encodings:
                deltas.setdefault((token, name), []).append(scores[name] - scores["jpeg"])
            print(row)
    for token in FORMAT_SIZES:
        jpeg_ms, jpeg_bytes = totals[(token, "jpeg")]
        for name in ("webp", "avif"):
            ms, size_bytes = totals[(token, name)]
            delta = deltas[(token, name)]
            print(
                f"all photos {token:>9} {name}: {ms / jpeg_ms:.2f}x the JPEG's time, {size_bytes / jpeg_bytes:.2f}x its"
                f" bytes, SSIM {sum(delta) / len(delta):+.4f} vs the JPEG's on average (worst photo {min(delta):+.4f})"
            )


def _decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


# -- against thumbor, over HTTP ---------------------------------------------------

THUMBOR_VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huimages-bench" / "thumbor-venv"
THUMBOR_URLS = {"240x160": "fit-in/240x160", "150x150!": "150x150", "1024x768": "fit-in/1024x768"}


def thumbor_binary() -> Path:
    """thumbor in a virtualenv of its own (installed from PyPI on first use)."""
    binary = THUMBOR_VENV / "bin" / "thumbor"
    if not binary.exists():
        print(f"(installing thumbor into {THUMBOR_VENV}, about a minute)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(THUMBOR_VENV)], check=True)
        subprocess.run(
            [str(THUMBOR_VENV / "bin" / "pip"), "install", "--quiet", "thumbor"], check=True, stdout=subprocess.DEVNULL
        )
    return binary


def _get_ms(port: int, path: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    start = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - start) * 1000
    conn.close()
    if response.status != 200 or not body:
        raise RuntimeError(f"{response.status} for {path}")
    return elapsed


def bench_thumbor(photos: list[Path], repeat: int, serve: Callable[..., Any], free_port: Callable[[], int]) -> None:
    """Cold derivatives over HTTP: huimages serve (from masters) against thumbor 7 (Pillow, no result storage)."""
    binary = thumbor_binary()
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
    print(f"\n## Cold derivatives over HTTP, best of {repeat}: huimages serve (masters) vs thumbor {version}")
    print(f"{'photo':<16}{'size':>10}{'huimages ms':>13}{'thumbor ms':>12}{'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for path in photos:
            shutil.copy(path, folder / path.name)
        conf = Path(tmp) / "thumbor.conf"
        conf.write_text(
            "LOADER = 'thumbor.loaders.file_loader'\n"
            f"FILE_LOADER_ROOT_PATH = {str(folder)!r}\n"
            "STORAGE = 'thumbor.storages.no_storage'\nRESULT_STORAGE = None\n"
            "QUALITY = 85\nALLOW_UNSAFE_URL = True\n"
        )
        home = Path(tmp) / "home"
        service = ImageService.from_settings(Settings.at(home))
        ids = {path.name: service.ingest(path.read_bytes()) for path in photos}
        thumbor_port, huimages_port = free_port(), free_port()
        argv = [str(binary), "-i", "127.0.0.1", "-p", str(thumbor_port), "-c", str(conf), "-l", "error"]
        huimages = [sys.executable, "-m", "huimages", "serve", "--port", str(huimages_port)]
        os.environ["HUIMAGES_HOME"] = str(home)
        try:
            with serve(argv, thumbor_port), serve(huimages, huimages_port):
                totals = _compare(photos, ids, service, repeat, thumbor_port, huimages_port)
        finally:
            del os.environ["HUIMAGES_HOME"]
    overall = [0.0, 0.0]
    for token, (ours, theirs) in totals.items():
        overall[0], overall[1] = overall[0] + ours, overall[1] + theirs
        print(f"all photos {token:>9}: huimages {ours:7.1f} ms / thumbor {theirs:7.1f} ms = {ours / theirs:.2f}x")
    print(f"all sizes and photos: {overall[0] / overall[1]:.2f}x of thumbor's time")


def _compare(
    photos: list[Path], ids: dict[str, str], service: ImageService, repeat: int, thumbor: int, huimages: int
) -> dict[str, list[float]]:
    totals = {token: [0.0, 0.0] for token in THUMBOR_URLS}
    for path in photos:  # each server's first request pays imports and JIT-free warm-up: not counted
        _get_ms(thumbor, f"/unsafe/fit-in/64x64/{path.name}")
        _get_ms(huimages, f"/64x64/{ids[path.name]}.jpeg")
    for path in photos:
        image_id = ids[path.name]
        for token, thumbor_size in THUMBOR_URLS.items():
            spec = parse_size(token, DEFAULT_SIZES, 4096).spec
            cached = service.cache.path(spec, image_id)
            ours = []
            for _ in range(repeat):
                cached.unlink(missing_ok=True)  # cold every time
                ours.append(_get_ms(huimages, f"/{spec}/{image_id}.jpeg"))
            theirs = min(_get_ms(thumbor, f"/unsafe/{thumbor_size}/{path.name}") for _ in range(repeat))
            totals[token][0] += min(ours)
            totals[token][1] += theirs
            print(f"{path.stem[:15]:<16}{token:>10}{min(ours):>13.1f}{theirs:>12.1f}{min(ours) / theirs:>7.2f}")
    return totals
