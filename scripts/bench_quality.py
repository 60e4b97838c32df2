"""Detail kept at every size, for scripts/bench.py (``--only quality``).

Each derivative as served (by an embedded store: from the image's master
where it covers the size, else from the original; JPEG at the default
quality) is compared by SSIM with the ideal: the original decoded in
full, upright, scaled with LANCZOS straight to the output size. What JPEG
itself loses is taken out by encoding the ideal at the same quality: the
figure is that encoded ideal's SSIM minus the derivative's, so 0 means the
pipeline (master, DCT scaling, filters) lost nothing JPEG would not.

Then the bytes: each derivative's size against the bytes the ideal render
needs as JPEG (optimised, qualities 66 to 97, interpolated) to reach the
same SSIM, for the derivative served from the master and for the same one
rendered straight from the original (a store without masters); their ratio
is what the master costs in bytes at equal SSIM.

With ``--against REV`` the same sizes are also served by another git
revision (a worktree of it, through scripts/render_sizes.py) and compared
with this one's, photo by photo: the bytes at equal SSIM and the loss, so a
change to the pipeline shows what it did to both.
"""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys
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


#: The qualities the ideal render is encoded at, for the bytes it needs to reach a given SSIM.
CURVE_QUALITIES = (66, 72, 78, 82, 85, 88, 91, 94, 97)


def bytes_at_equal_ssim(served: bytes, reference: Image.Image, curve: list[tuple[float, int]]) -> float:
    """``served``'s bytes against what the ideal render needs, encoded as JPEG, for the same SSIM (interpolated)."""
    score = ssim(Image.open(io.BytesIO(served)).convert("RGB"), reference)
    for (low_ssim, low_bytes), (high_ssim, high_bytes) in itertools.pairwise(curve):
        if low_ssim <= score <= high_ssim:
            need = low_bytes + (high_bytes - low_bytes) * (score - low_ssim) / (high_ssim - low_ssim)
            return len(served) / need
    return float("nan")  # outside the curve (below quality 66 or above 97)


def ideal_curve(reference: Image.Image) -> list[tuple[float, int]]:
    points = []
    for quality in CURVE_QUALITIES:
        out = io.BytesIO()
        reference.save(out, "JPEG", quality=quality, optimize=True)
        points.append((ssim(Image.open(io.BytesIO(out.getvalue())).convert("RGB"), reference), len(out.getvalue())))
    return sorted(points)


def bench_quality(photos: list[Path]) -> None:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings.from_env({**os.environ, "HUIMAGES_HOME": home})  # HUIMAGES_MASTER_SIDE=3072 ... too
        client = Client(Settings.at(Path(home), master_side=settings.master_side, limits=LIMITS))
        quality = client.settings.jpeg_quality
        print(f"\n## Detail kept: SSIM lost beyond JPEG q{quality} of the ideal render (full decode, LANCZOS),")
        print(f"## as served with masters of {client.settings.master_side} px; worst and mean over the photos")
        direct = Client(Settings.at(Path(home) / "direct", master_side=0, limits=LIMITS))
        losses: dict[str, list[tuple[float, str]]] = {token: [] for token in TOKENS}
        sizes: dict[str, list[tuple[float, float]]] = {token: [] for token in TOKENS}
        for path in photos:
            data = path.read_bytes()
            image_id = client.save_image(data)
            direct.save_image(data)
            with Image.open(io.BytesIO(data)) as opened:
                upright = ImageOps.exif_transpose(opened).convert("RGB")
            for token in TOKENS:
                reference = ideal(upright, token)
                served = client.service.derivative_bytes(token, image_id)
                derivative = Image.open(io.BytesIO(served)).convert("RGB")
                loss = ssim(_jpeg(reference, quality), reference) - ssim(derivative, reference)
                losses[token].append((loss, path.stem))
                curve = ideal_curve(reference)
                unmastered = direct.service.derivative_bytes(token, image_id)
                sizes[token].append(
                    (bytes_at_equal_ssim(served, reference, curve), bytes_at_equal_ssim(unmastered, reference, curve))
                )
    print(f"{'size':>12}{'worst':>9}{'mean':>9}  worst photo")
    for token, found in losses.items():
        worst = max(found)
        mean = sum(loss for loss, _ in found) / len(found)
        print(f"{token:>12}{worst[0]:>9.4f}{mean:>9.4f}  {worst[1]}")
    everything = [loss for found in losses.values() for loss, _ in found]
    print(f"{'all':>12}{max(everything):>9.4f}{sum(everything) / len(everything):>9.4f}")
    _print_bytes(sizes)


def _print_bytes(sizes: dict[str, list[tuple[float, float]]]) -> None:
    print("\n## Bytes at equal SSIM: each derivative's bytes against what the ideal render needs as JPEG for the")
    print("## same SSIM; served (from the master) and rendered straight from the original (no master); mean, worst")
    print(f"{'size':>12}{'served':>9}{'worst':>8}{'direct':>9}{'worst':>8}{'served/direct':>15}")
    for token, found in sizes.items():
        kept = [pair for pair in found if pair[0] == pair[0] and pair[1] == pair[1]]  # (not NaN)
        if not kept:
            continue
        served, direct = [p[0] for p in kept], [p[1] for p in kept]
        ratio = sum(served) / sum(direct)
        print(
            f"{token:>12}{sum(served) / len(kept):>9.3f}{max(served):>8.3f}{sum(direct) / len(kept):>9.3f}"
            f"{max(direct):>8.3f}{ratio:>14.3f}x"
        )


def bench_against(photos: list[Path], revision: str) -> None:
    """Every size served by ``revision`` and by this tree, both from a fresh store; compared photo by photo."""
    root = Path(__file__).resolve().parent.parent
    settings = Settings.from_env({**os.environ, "HUIMAGES_HOME": tempfile.gettempdir()})
    side, quality = settings.master_side, settings.jpeg_quality
    print(f"\n## Against {revision}: bytes at equal SSIM and SSIM lost beyond JPEG, served then and now")
    with tempfile.TemporaryDirectory() as tmp:
        tree, out = Path(tmp) / "tree", Path(tmp) / "out"
        subprocess.run(
            ["git", "-C", str(root), "worktree", "add", "--detach", "--quiet", str(tree), revision], check=True
        )
        try:
            for name, source in (("then", tree), ("now", root)):
                command = [sys.executable, str(root / "scripts" / "render_sizes.py"), str(out / name), str(side)]
                command += [",".join(TOKENS), *(str(path.absolute()) for path in photos)]
                subprocess.run(command, env={**os.environ, "PYTHONPATH": str(source)}, cwd=source, check=True)
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], check=False)
        found: dict[str, list[tuple[float, float, float, float, str]]] = {token: [] for token in TOKENS}
        for path in photos:
            with Image.open(path) as opened:
                upright = ImageOps.exif_transpose(opened).convert("RGB")
            for index, token in enumerate(TOKENS):
                reference = ideal(upright, token)
                curve, jpeg_score = ideal_curve(reference), ssim(_jpeg(reference, quality), reference)
                then, now = ((out / name / path.stem / f"{index}.bin").read_bytes() for name in ("then", "now"))
                loss_then, loss_now = (
                    jpeg_score - ssim(Image.open(io.BytesIO(data)).convert("RGB"), reference) for data in (then, now)
                )
                then_bytes, now_bytes = (bytes_at_equal_ssim(data, reference, curve) for data in (then, now))
                found[token].append((then_bytes, now_bytes, loss_then, loss_now, path.stem))
    heading = f"{'size':>12}{'then':>8}{'now':>8}{'now/then':>10}{'worst':>8}"
    print(f"{heading}  {'loss: worst then':>16}{'now':>8}{'mean then':>11}{'now':>8}")
    for token, rows in found.items():
        kept = [row for row in rows if row[0] == row[0] and row[1] == row[1]]  # (not NaN)
        then_sum, now_sum = sum(row[0] for row in kept), sum(row[1] for row in kept)
        worst = max(row[1] / row[0] for row in kept)
        print(
            f"{token:>12}{then_sum / len(kept):>8.3f}{now_sum / len(kept):>8.3f}{now_sum / then_sum:>9.3f}x"
            f"{worst:>7.3f}x  {max(row[2] for row in rows):>16.4f}{max(row[3] for row in rows):>8.4f}"
            f"{sum(row[2] for row in rows) / len(rows):>11.4f}{sum(row[3] for row in rows) / len(rows):>8.4f}"
        )
