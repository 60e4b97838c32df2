"""Focus points and placeholders, for scripts/bench.py (``--only focus``).

Two tables. The cost: per photo, what finding the focus (faces, then
saliency) and making the placeholders (average colour, ThumbHash) add to an
upload, against the decode the upload makes anyway (the original at the
smallest JPEG scale that covers the master). The gain: a labelled set of
real faces placed off the centre of photos, and the share of crops (a
square, a 4:1 banner, a 1:2 tall card) that hold the whole face, cut around
the centre as before and around the focus found at upload.

The labelled set: the 100 faces of scikit-image's ``lfw_subset`` (Labeled
Faces in the Wild, 25x25 pixels each, scaled up with BICUBIC) and its
astronaut picture (her face labelled by hand), each pasted at a random place
and size (8 % to 16 % of the picture's long side) into one of the photos,
landscape (1600 pixels wide) or a portrait cut of it (900x1600). The face's
box is where it was pasted. The seed is fixed, so every run places them alike.
"""

from __future__ import annotations

import io
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from PIL import Image

from huimages.client import Client
from huimages.config import Settings
from huimages.core.focus import focus_of
from huimages.core.sizes import crop_box, fit_dimensions
from huimages.imaging import focus as detection
from huimages.imaging.master import master_dimensions
from huimages.imaging.placeholder import placeholder

SHAPES = {"square": (300, 300), "banner 4:1": (800, 200), "tall 1:2": (200, 400)}
#: The astronaut's face in skimage's 512x512 picture, forehead to chin and ear to ear (labelled by hand).
ASTRONAUT_FACE = (170, 45, 282, 188)


def _best(repeat: int, action: Callable[..., object], *args: object) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action(*args)
        best = min(best, time.perf_counter() - started)
    return best * 1000


def _full_decode(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as im:
        im.load()


def _decoded(data: bytes, side: int) -> Image.Image:
    """What an upload's one decode holds: the original at the smallest DCT scale covering the master, upright."""
    im = Image.open(io.BytesIO(data))
    target = master_dimensions(im.width, im.height, side, "image/jpeg" if im.format == "JPEG" else "")
    im.draft("RGB", target)
    im.load()
    rgb = im.convert("RGB")
    if rgb.size != target:
        rgb = rgb.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return rgb


def bench_cost(photos: list[Path], repeat: int, side: int) -> None:
    print(f"\n## Focus and placeholders at upload, per photo (best of {repeat}; {detection.detector()})")
    print(
        f"{'photo':24} {'original':>11} {'full ms':>8} {'decode ms':>9} {'faces+sal. ms':>13} {'saliency ms':>11}",
        end="",
    )
    print(f" {'placeholder ms':>14} {'/decode':>8} {'/full':>6}")
    ratios, of_full, without_faces = [], [], []
    for path in photos:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as opened:
            size = f"{opened.width}x{opened.height}"
        full_ms = _best(repeat, _full_decode, data)
        decode_ms = _best(repeat, _decoded, data, side)
        upright = _decoded(data, side)
        small = detection.shrink(upright)
        shrink_ms = _best(repeat, detection.shrink, upright)
        focus_ms = shrink_ms + _best(repeat, detection.find_focus, small)
        saliency_ms = shrink_ms + _best(repeat, detection.saliency_focus, small)
        placeholder_ms = _best(repeat, placeholder, small)
        added = (focus_ms + placeholder_ms) / decode_ms
        ratios.append(added)
        of_full.append((focus_ms + placeholder_ms) / full_ms)
        without_faces.append((saliency_ms + placeholder_ms) / decode_ms)
        print(
            f"{path.name[:24]:24} {size:>11} {full_ms:8.1f} {decode_ms:9.1f} {focus_ms:13.1f} {saliency_ms:11.1f}",
            end="",
        )
        print(f" {placeholder_ms:14.1f} {added:7.2f}x {of_full[-1]:5.2f}x")
    print(f"focus and placeholders: {min(ratios):.2f}x to {max(ratios):.2f}x of the upload's decode (DCT-scaled),")
    print(f"{min(of_full):.2f}x to {max(of_full):.2f}x of a full decode of the original;")
    print(f"without the face search (HUIMAGES_FOCUS=saliency) {min(without_faces):.2f}x to {max(without_faces):.2f}x")
    print("of the upload's decode")


def _faces() -> Iterator[tuple[Image.Image, tuple[int, int, int, int]]]:
    """Real faces and their boxes within each picture: LFW's 100, and the astronaut."""
    import numpy
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    for face in numpy.load(folder / "lfw_subset.npy")[:100]:
        picture = Image.fromarray((face * 255).astype("uint8")).convert("RGB")
        yield picture, (0, 0, picture.width, picture.height)
    yield Image.open(folder / "astronaut.png").convert("RGB"), ASTRONAUT_FACE


def labelled_set(photos: list[Path]) -> Iterator[tuple[Image.Image, tuple[float, float, float, float]]]:
    """Each face placed off the centre of a photo; the face's box as fractions of the picture."""
    rng = random.Random(7)
    backgrounds = []
    for path in photos:
        with Image.open(path) as opened:
            opened.draft("RGB", (1600, 1600))
            picture = opened.convert("RGB")
        landscape = picture.resize(fit_dimensions(picture.width, picture.height, 1600, 1600))
        left = (landscape.width - landscape.height * 9 // 16) // 2
        portrait = landscape.crop((left, 0, left + landscape.height * 9 // 16, landscape.height)).resize((900, 1600))
        backgrounds += [landscape, portrait]
    for index, (face, box) in enumerate(_faces()):
        canvas = backgrounds[index % len(backgrounds)].copy()
        long_side = max(canvas.size)
        face_side = round(long_side * rng.uniform(0.08, 0.16))  # of the labelled face, not the whole picture
        scale = face_side / max(box[2] - box[0], box[3] - box[1])
        pasted = face.resize((round(face.width * scale), round(face.height * scale)), Image.Resampling.BICUBIC)
        x = rng.randrange(0, canvas.width - pasted.width + 1)
        y = rng.randrange(0, canvas.height - pasted.height + 1)
        canvas.paste(pasted, (x, y))
        w, h = canvas.size
        yield (
            canvas,
            ((x + box[0] * scale) / w, (y + box[1] * scale) / h, (x + box[2] * scale) / w, (y + box[3] * scale) / h),
        )


def _holds(picture: tuple[int, int], shape: tuple[int, int], at: tuple[float, float], face: tuple[float, ...]) -> bool:
    left, top, right, bottom = crop_box(picture[0], picture[1], shape[0], shape[1], at)
    w, h = picture
    slack = 0.01  # the 1 % a URL's focus is rounded to
    return (
        left / w <= face[0] + slack
        and top / h <= face[1] + slack
        and right / w >= face[2] - slack
        and bottom / h >= face[3] - slack
    )


def bench_gain(photos: list[Path]) -> None:
    print("\n## Crops that hold the whole face: a labelled set of 101 real faces placed off the centre of the photos")
    held = {name: [0, 0] for name in SHAPES}
    sources: dict[str, int] = {}
    total = 0
    with tempfile.TemporaryDirectory() as home:
        client = Client(Settings.at(Path(home)))
        for canvas, face in labelled_set(photos):
            out = io.BytesIO()
            canvas.save(out, "JPEG", quality=90)
            focus = focus_of(client.get_imagedoc(client.save_image(out.getvalue())))
            sources[focus.source] = sources.get(focus.source, 0) + 1
            total += 1
            for name, shape in SHAPES.items():
                held[name][0] += _holds(canvas.size, shape, (0.5, 0.5), face)
                held[name][1] += _holds(canvas.size, shape, focus.point_fractions, face)
    found = ", ".join(f"{source} {count}" for source, count in sorted(sources.items()))
    print(f"focus found by: {found} (of {total})")
    print(f"{'crop':12} {'centred':>8} {'focus':>8}")
    for name, (centred, focused) in held.items():
        print(f"{name:12} {centred / total:8.0%} {focused / total:8.0%}")
    centred_all = sum(c for c, _ in held.values()) / (total * len(SHAPES))
    focused_all = sum(f for _, f in held.values()) / (total * len(SHAPES))
    print(f"{'all':12} {centred_all:8.0%} {focused_all:8.0%}")


def bench_focus(photos: list[Path], repeat: int) -> None:
    side = Settings.from_env({}).master_side
    bench_cost(photos, repeat, side)
    bench_gain(photos)
