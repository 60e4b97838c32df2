"""Detail kept at every size, for scripts/bench.py (``--only quality``).

Each derivative as served (by an embedded store: from the image's master
where it covers the size, else from the original; JPEG at the default
quality) is compared by SSIM with the ideal: the original decoded in
full, upright, scaled with LANCZOS straight to the output size. What JPEG
itself loses is taken out by encoding the ideal at the same quality: the
figure is that encoded ideal's SSIM minus the derivative's, so 0 means the
pipeline (master, DCT scaling, filters) lost nothing JPEG would not.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

from huimages.client import Client
from huimages.config import DEFAULT_SIZES, Limits, Settings
from huimages.core.sizes import crop_box, output_dimensions, parse_size
from tests.imagetools import ssim

LIMITS = Limits(max_pixels=100_000_000, max_upload_bytes=1 << 30, max_side=8192)
#: Every named size, and the large ones the issue names.
TOKENS = (*DEFAULT_SIZES, "1024x768", "2048x2048", "150x150!")


def ideal(upright: Image.Image, token: str) -> Image.Image:
    size = parse_size(token, DEFAULT_SIZES, 8192)
    out = output_dimensions(size, *upright.size)
    box = crop_box(upright.width, upright.height, *out) if size.crop else None
    return upright.resize(out, Image.Resampling.LANCZOS, box=box)


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality, optimize=True)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def bench_quality(photos: list[Path]) -> None:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings.from_env({"HUIMAGES_HOME": home})  # HUIMAGES_MASTER_SIDE=3072 ... tries another side
        client = Client(Settings.at(Path(home), master_side=settings.master_side, limits=LIMITS))
        quality = client.settings.jpeg_quality
        print(f"\n## Detail kept: SSIM lost beyond JPEG q{quality} of the ideal render (full decode, LANCZOS),")
        print(f"## as served with masters of {client.settings.master_side} px; worst and mean over the photos")
        losses: dict[str, list[tuple[float, str]]] = {token: [] for token in TOKENS}
        for path in photos:
            data = path.read_bytes()
            image_id = client.save_image(data)
            with Image.open(io.BytesIO(data)) as opened:
                upright = ImageOps.exif_transpose(opened).convert("RGB")
            for token in TOKENS:
                reference = ideal(upright, token)
                served = client.service.derivative_bytes(token, image_id)
                derivative = Image.open(io.BytesIO(served)).convert("RGB")
                loss = ssim(_jpeg(reference, quality), reference) - ssim(derivative, reference)
                losses[token].append((loss, path.stem))
    print(f"{'size':>12}{'worst':>9}{'mean':>9}  worst photo")
    for token, found in losses.items():
        worst = max(found)
        mean = sum(loss for loss, _ in found) / len(found)
        print(f"{token:>12}{worst[0]:>9.4f}{mean:>9.4f}  {worst[1]}")
    everything = [loss for found in losses.values() for loss, _ in found]
    print(f"{'all':>12}{max(everything):>9.4f}{sum(everything) / len(everything):>9.4f}")
