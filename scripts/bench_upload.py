"""What an upload costs, for scripts/bench.py (``--only upload``), beside ipx 3 (sharp and libvips).

Per photo, best of ``--repeat``: Pillow's bare full decode of the original;
huimages' upload (``save_image`` into an embedded store that has stored an
image before, so its catalog is open: the check, the one decode, the
master's encode, the focus and placeholders, and the writes, each synced); huimages' three cold renders
from the master (240x160, 150x150!, 1024x768); and ipx's three renders of the
same file over HTTP (ipx keeps no result cache, so each is cold). ipx is
installed from npm into ``~/.cache/huimages-bench/ipx`` on first use (its
libvips comes inside the npm packages) and listens on 127.0.0.1 only.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_render import _get_ms, best_ms
from PIL import Image

from huimages.client import Client
from huimages.config import Settings

IPX_HOME = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huimages-bench" / "ipx"
#: Each render as huimages names it, and as ipx does (fit inside, cover for crops; JPEG quality 85 for both).
IPX_URLS = {
    "240x160": "w_240,h_160,fit_inside,q_85",
    "150x150!": "s_150x150,fit_cover,q_85",
    "1024x768": "w_1024,h_768,fit_inside,q_85",
}


def ipx_binary() -> Path:
    binary = IPX_HOME / "node_modules" / ".bin" / "ipx"
    if not binary.exists():
        print(f"(installing ipx 3 into {IPX_HOME}, about 30 s)", flush=True)
        IPX_HOME.mkdir(parents=True, exist_ok=True)
        npm = ["npm", "install", "--no-audit", "--no-fund", "--silent", "ipx@3"]
        subprocess.run(["npm", "init", "-y"], cwd=IPX_HOME, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(npm, cwd=IPX_HOME, check=True, stdout=subprocess.DEVNULL)
    return binary


def _warm_up_image() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 160)).save(out, "JPEG")
    return out.getvalue()


_WARM_UP = _warm_up_image()


def _full_decode(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as im:
        im.load()


def bench_upload(photos: list[Path], repeat: int, serve: Callable[..., Any], free_port: Callable[[], int]) -> None:
    binary = ipx_binary()
    focus = os.environ.get("HUIMAGES_FOCUS", "auto")  # HUIMAGES_FOCUS=saliency: uploads without the face search
    print(f"\n## Uploads (HUIMAGES_FOCUS={focus}), best of {repeat}: huimages' upload against Pillow's bare full")
    print("## decode and against ipx 3's three cold renders (240x160, 150x150 cover, 1024x768) of the photo; ms")
    header = f"{'photo':<16}{'decode':>8}{'upload':>8}{'/decode':>8}{'3 renders':>10}{'ipx 3':>8}{'upload/ipx':>11}"
    print(header + f"{'renders/ipx':>12}")
    totals = [0.0, 0.0, 0.0, 0.0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for path in photos:
            shutil.copy(path, folder / path.name)
        port = free_port()
        argv = [str(binary), "serve", "--dir", str(folder), "--host", "127.0.0.1", "--port", str(port)]
        with serve(argv, port):
            for path in photos:  # ipx's first request of each photo pays its warm-up: not counted
                _get_ms(port, f"/w_64/{path.name}")
            for n, path in enumerate(photos):
                data = path.read_bytes()
                decode = best_ms(functools.partial(_full_decode, data), repeat)
                uploads, renders = [], []
                for attempt in range(repeat):  # a new store each time: the upload writes the original and master
                    client = Client(Settings.at(Path(tmp) / f"store-{n}-{attempt}", focus=focus))
                    client.save_image(_WARM_UP)  # a running store: its catalog and folders exist already
                    uploads.append(best_ms(functools.partial(client.save_image, data), 1))
                    image_id = client.save_image(data)
                    renders.append(sum(best_ms(functools.partial(_render, client, t, image_id), 1) for t in IPX_URLS))
                ipx = sum(min(_get_ms(port, f"/{u}/{path.name}") for _ in range(repeat)) for u in IPX_URLS.values())
                upload, three = min(uploads), min(renders)
                for i, value in enumerate((decode, upload, three, ipx)):
                    totals[i] += value
                print(
                    f"{path.stem[:15]:<16}{decode:>8.1f}{upload:>8.1f}{upload / decode:>7.2f}x{three:>10.1f}{ipx:>8.1f}"
                    f"{upload / ipx:>10.2f}x{three / ipx:>11.2f}x"
                )
    decode, upload, three, ipx = totals
    print(
        f"{'all':<16}{decode:>8.1f}{upload:>8.1f}{upload / decode:>7.2f}x{three:>10.1f}{ipx:>8.1f}"
        f"{upload / ipx:>10.2f}x{three / ipx:>11.2f}x"
    )
    print(f"upload and three renders together: {(upload + three) / ipx:.2f}x of ipx's three renders")


def _render(client: Client, token: str, image_id: str) -> None:
    client.service.cache.path(client.service.parse_size(token).spec, image_id).unlink(missing_ok=True)
    client.service.derivative_bytes(token, image_id)
