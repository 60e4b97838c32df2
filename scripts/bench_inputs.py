"""What sites upload today, for scripts/bench.py (``--only inputs``): HEIC and AVIF originals, animations, PNG.

- Cold renders and uploads from a 12-megapixel HEIC and AVIF made from each
  photo, against the same photo as a JPEG (all straight from the original,
  and the upload that makes the master).
- An animation made from a photo (frames panning across it): an animated
  render's cost per frame in WebP and AVIF, from the original GIF and from an
  animated master (the choice the code made: from the original).
- PNG bytes against WebP lossless for a graphic (flat colours, antialiased
  edges, text), at full size and as a thumbnail.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

from bench_render import best_ms
from PIL import Image, ImageDraw, ImageFont, ImageOps

import huimages.imaging  # noqa: F401  (registers the HEIF decoder)
from huimages.config import DEFAULT_SIZES, Limits
from huimages.core.formats import AVIF, JPEG, PNG, WEBP, Encoding
from huimages.core.sizes import Size, parse_size
from huimages.imaging import ingest, render

LIMITS = Limits(max_pixels=100_000_000, max_upload_bytes=1 << 30, max_animation_pixels=100_000_000)
MASTER_SIDE = 2048
TWELVE_MP = (4000, 3000)


def size_of(token: str) -> Size:
    return parse_size(token, DEFAULT_SIZES, 8192)


def _encoded(im: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **options)
    return out.getvalue()


def twelve_megapixels(path: Path) -> Image.Image:
    """The photo at 4000x3000 (cropped to 4:3, scaled): what a phone's main camera writes."""
    with Image.open(path) as opened:
        return ImageOps.fit(opened.convert("RGB"), TWELVE_MP, Image.Resampling.LANCZOS)


def bench_inputs(photos: list[Path], repeat: int) -> None:
    _bench_heic_avif(photos[:4], repeat)
    _bench_animation(photos[0], repeat)
    _bench_png(repeat)


def _bench_heic_avif(photos: list[Path], repeat: int) -> None:
    print("\n## HEIC and AVIF originals (12 MP, made from each photo) against the same photo as JPEG: best ms")
    print("## cold renders straight from the original, and the upload (check, decode, master)")
    print(f"{'photo':<16}{'original':>9}{'bytes':>11}{'240x160':>9}{'1024x768':>10}{'upload':>9}  ratio to JPEG")
    jobs = [("240x160", JPEG), ("1024x768", JPEG)]
    totals: dict[str, list[float]] = {}
    for path in photos:
        picture = twelve_megapixels(path)
        files = {
            "JPEG": _encoded(picture, "JPEG", quality=90),
            "HEIC": _encoded(picture, "HEIF", quality=80),
            "AVIF": _encoded(picture, "AVIF", quality=75, speed=6),
        }
        base: list[float] = []
        for kind, data in files.items():
            times = [
                best_ms(functools.partial(render, data, size_of(token), Encoding(fmt, 85), LIMITS), repeat)
                for token, fmt in jobs
            ]
            times.append(best_ms(functools.partial(ingest, data, LIMITS, MASTER_SIDE), repeat))
            base = base or times
            totals.setdefault(kind, [0.0, 0.0, 0.0])
            totals[kind] = [a + b for a, b in zip(totals[kind], times, strict=True)]
            ratios = " ".join(f"{t / b:5.2f}x" for t, b in zip(times, base, strict=True))
            figures = f"{times[0]:>9.1f}{times[1]:>10.1f}{times[2]:>9.1f}"
            print(f"{path.name[:15]:<16}{kind:>9}{len(data):>11,}{figures}  {ratios}")
    for kind, times in totals.items():
        ratios = " ".join(f"{t / b:5.2f}x" for t, b in zip(times, totals["JPEG"], strict=True))
        print(f"{'all':<16}{kind:>9}{'':>11}{times[0]:>9.1f}{times[1]:>10.1f}{times[2]:>9.1f}  {ratios}")


def panning(path: Path, frames: int = 24, size: tuple[int, int] = (480, 360)) -> list[Image.Image]:
    with Image.open(path) as opened:
        im = opened.convert("RGB")
        im.thumbnail((size[0] * 2, size[1] * 2))
        step = (im.width - size[0]) / max(1, frames - 1)
        return [im.crop((int(n * step), 0, int(n * step) + size[0], size[1])) for n in range(frames)]


def _bench_animation(path: Path, repeat: int) -> None:
    frames = panning(path)
    count, (width, height) = len(frames), frames[0].size
    gif = _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    print(f"\n## An animated GIF ({count} frames of {width}x{height}, {len(gif):,} bytes, panning across a photo):")
    print("## best ms of the render, and per frame; from the original, and from an animated WebP master")
    master_ms = best_ms(
        lambda: render(gif, size_of(f"{MASTER_SIDE}x{MASTER_SIDE}"), Encoding(WEBP, 92), LIMITS), repeat
    )
    master = render(gif, size_of(f"{MASTER_SIDE}x{MASTER_SIDE}"), Encoding(WEBP, 92), LIMITS).data
    print(f"{'an animated master (WebP 92), made at upload':<52}{master_ms:>9.1f} ms, {len(master):,} bytes")
    print(f"{'render':<28}{'from the GIF':>14}{'per frame':>11}{'from master':>13}{'per frame':>11}{'bytes':>10}")
    for token, fmt, quality in (("240x160", WEBP, 87), ("150x150!", WEBP, 87), ("o", WEBP, 87), ("240x160", AVIF, 67)):
        size = size_of(token)
        encoding = Encoding(fmt, quality)
        direct = best_ms(functools.partial(render, gif, size, encoding, LIMITS), repeat)
        from_master = best_ms(functools.partial(render, master, size, encoding, LIMITS, None, (width, height)), repeat)
        out = render(gif, size, encoding, LIMITS).data
        label = f"{token}.{fmt.name}"
        print(
            f"{label:<28}{direct:>14.1f}{direct / count:>11.2f}{from_master:>13.1f}{from_master / count:>11.2f}"
            f"{len(out):>10,}"
        )
    still = best_ms(lambda: render(gif, size_of("240x160"), Encoding(JPEG, 85), LIMITS), repeat)
    print(f"{'240x160.jpeg (first frame)':<28}{still:>14.1f}")


def graphic(width: int = 800, height: int = 600) -> Image.Image:
    """A diagram: flat fills, antialiased shapes and text on a transparent background."""
    im = Image.new("RGBA", (width * 2, height * 2), (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    palette = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]
    for n, colour in enumerate(palette):
        x = 120 + n * 300
        draw.rounded_rectangle((x, 300, x + 220, 1000), radius=40, fill=(*colour, 255))
        draw.ellipse((x + 20, 80, x + 200, 260), fill=(*colour, 200), outline=(20, 20, 20, 255), width=8)
    font = ImageFont.load_default(size=72)
    draw.text((120, 1060), "huimages: formats in and out", font=font, fill=(30, 30, 30, 255))
    return im.resize((width, height), Image.Resampling.LANCZOS)  # antialiased edges, as a drawing program writes


def _bench_png(repeat: int) -> None:
    print("\n## PNG for a graphic (800x600, transparent, antialiased): bytes and best ms of the render")
    art = graphic()
    flat = Image.new("RGBA", art.size, (0, 0, 0, 0))
    ImageDraw.Draw(flat).rectangle((100, 100, 700, 500), fill=(31, 119, 180, 255))
    ImageDraw.Draw(flat).ellipse((300, 200, 500, 400), fill=(255, 127, 14, 255))
    print(f"{'graphic':<22}{'size':>10}{'PNG (served)':>14}{'PNG truecolour':>16}{'WebP lossless':>15}{'ms':>8}")
    for name, picture in (("antialiased diagram", art), ("flat shapes", flat)):
        original = _encoded(picture, "PNG")
        for token in ("o", "240x160"):
            size = size_of(token)
            served = render(original, size, Encoding(PNG, 100), LIMITS).data
            ms = best_ms(functools.partial(render, original, size, Encoding(PNG, 100), LIMITS), repeat)
            decoded = Image.open(io.BytesIO(served))
            pixels = decoded.convert("RGBA")
            truecolour = _encoded(pixels, "PNG", compress_level=6)
            lossless = _encoded(pixels, "WEBP", lossless=True, quality=80, method=4)
            mode = "palette" if decoded.mode == "P" else "RGBA"
            print(
                f"{name:<22}{token:>10}{len(served):>9,} {mode:<5}{len(truecolour):>15,}{len(lossless):>15,}{ms:>8.1f}"
            )
