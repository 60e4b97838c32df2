"""Test images made in code, and comparisons on decoded pixels (never on bytes)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageStat


def pattern(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A picture with structure (gradient, quadrants, a disc) that survives scaling."""
    im = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(im)
    for x in range(0, width, max(1, width // 64)):
        shade = int(255 * x / max(1, width - 1))
        draw.rectangle([x, 0, x + max(1, width // 64), height], fill=(shade, 80, 255 - shade))
    draw.rectangle([0, 0, width // 2, height // 2], fill=(220, 30, 30))
    draw.ellipse([width // 3, height // 3, 2 * width // 3, 2 * height // 3], fill=(20, 200, 40))
    if mode == "RGB":
        return im
    if mode == "RGBA":
        rgba = im.convert("RGBA")
        rgba.putalpha(Image.linear_gradient("L").resize((width, height)))
        return rgba
    if mode == "LA":
        la = im.convert("LA")
        la.putalpha(128)
        return la
    if mode == "P":
        return im.convert("P", palette=Image.Palette.ADAPTIVE)
    if mode == "I;16":
        return im.convert("L").point(lambda v: v).convert("I").point(lambda v: v * 256).convert("I;16")
    return im.convert(mode)


def encode(im: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **options)
    return out.getvalue()


def jpeg(width: int = 400, height: int = 300, **options: object) -> bytes:
    return encode(pattern(width, height), "JPEG", quality=90, **options)


def with_orientation(im: Image.Image, orientation: int) -> bytes:
    """A JPEG whose pixels are stored as a camera would for ``orientation``.

    ``im`` is how the picture should look; the stored pixels are transformed
    by the inverse, and the EXIF tag tells a viewer how to undo that.
    """
    inverse = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }
    stored = im.transpose(inverse[orientation]) if orientation in inverse else im
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=92, exif=exif.tobytes())


def transparent_png(width: int = 400, height: int = 300) -> bytes:
    """Red, with the left half fully transparent."""
    im = Image.new("RGBA", (width, height), (220, 20, 20, 255))
    im.paste((0, 0, 255, 0), (0, 0, width // 2, height))
    return encode(im, "PNG")


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel (0-255) after bringing ``b`` to ``a``'s size."""
    a_rgb = a.convert("RGB")
    b_rgb = b.convert("RGB").resize(a_rgb.size, Image.Resampling.BILINEAR)
    return sum(ImageStat.Stat(ImageChops.difference(a_rgb, b_rgb)).mean) / 3


def assert_similar(a: Image.Image, b: Image.Image, tolerance: float = 12.0) -> None:
    diff = difference(a, b)
    assert diff <= tolerance, f"images differ by {diff:.1f} on average (tolerance {tolerance})"


def ssim(a: Image.Image, b: Image.Image) -> float:
    """Structural similarity of two same-size images, on luma (Wang et al. 2004: 11x11 Gaussian, sigma 1.5)."""
    import numpy as np

    assert a.size == b.size, (a.size, b.size)
    x = np.asarray(a.convert("L"), dtype=np.float64)
    y = np.asarray(b.convert("L"), dtype=np.float64)
    radius = 5
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-(offsets**2) / (2 * 1.5**2))
    kernel /= kernel.sum()

    def blur(m: np.ndarray) -> np.ndarray:
        m = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="valid"), 0, m)
        return np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="valid"), 1, m)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    value = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(value.mean())


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A photo stand-in: detail everywhere (a fractal seen through a lens), sensor noise, hard edges."""
    from PIL import ImageFilter

    span = 1.2 + seed * 0.01
    im = Image.effect_mandelbrot((width, height), (-2.2, -span, 1.0, span), 96).convert("RGB")
    im = im.filter(ImageFilter.GaussianBlur(width / 1200))  # a lens and a demosaic: sharp to two pixels or so
    noise = Image.effect_noise((width, height), 48).convert("RGB")
    im = Image.blend(im, noise, 0.1)
    draw = ImageDraw.Draw(im)
    draw.ellipse([width // 4, height // 4, width // 2, height // 2], fill=(200, 60, 40))
    draw.rectangle([width * 2 // 3, height // 5, width * 3 // 4, height * 4 // 5], fill=(30, 90, 220))
    return im


def gravel(width: int, height: int) -> Image.Image:
    """Fine detail everywhere, two pixels across (gravel, foliage, film grain): what mild resampling filters lose."""
    from PIL import ImageFilter

    noise = Image.effect_noise((width // 2, height // 2), 90).resize((width, height), Image.Resampling.BICUBIC)
    im = Image.merge("RGB", (noise, noise.point(lambda v: v * 0.8 + 20), noise.point(lambda v: v * 0.6 + 40)))
    return im.filter(ImageFilter.GaussianBlur(0.6))


def matrix_profile(primaries: tuple[tuple[float, float, float], ...], gamma: float, name: str) -> bytes:
    """An ICC v2 RGB display profile made of a matrix and a gamma curve (what Adobe RGB and Display P3 are).

    ``primaries`` are the red, green and blue colorants in D50-adapted XYZ.
    Pillow can only create sRGB, Lab and XYZ profiles, so the tests build
    other RGB spaces from their published numbers.
    """
    import struct

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(values: tuple[float, float, float]) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(s15(v) for v in values)

    text = name.encode("ascii") + b"\0"
    tags = {
        b"desc": b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + bytes(12) + bytes(67),
        b"wtpt": xyz((0.9642, 1.0, 0.8249)),
        b"rXYZ": xyz(primaries[0]),
        b"gXYZ": xyz(primaries[1]),
        b"bXYZ": xyz(primaries[2]),
        b"rTRC": b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0",
    }
    tags[b"gTRC"] = tags[b"bTRC"] = tags[b"rTRC"]
    table, body = b"", b""
    offset = 128 + 4 + 12 * len(tags)
    for signature, data in tags.items():
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data + bytes(-len(data) % 4)
    header = bytearray(128)
    header[8:12] = bytes((2, 0x10, 0, 0))
    header[12:24] = b"mntrRGB XYZ "
    header[36:40] = b"acsp"
    header[68:80] = s15(0.9642) + s15(1.0) + s15(0.8249)
    profile = bytes(header) + struct.pack(">I", len(tags)) + table + body
    return struct.pack(">I", len(profile)) + profile[4:]


#: Adobe RGB (1998), D50-adapted colorants, gamma 563/256.
ADOBE_RGB = ((0.6097, 0.3111, 0.0195), (0.2053, 0.6257, 0.0609), (0.1492, 0.0632, 0.7446))


#: The astronaut of scikit-image's sample images (Eileen Collins, NASA, public domain), at 1.5 times its
#: 512x512 pixels: her whole face, forehead to chin and ear to ear, labelled by hand (170, 45, 282, 188 at 1x).
ASTRONAUT_FACE = (255, 68, 423, 282)


def astronaut() -> Image.Image:
    import skimage.data

    picture = Image.open(Path(skimage.data.__file__).parent / "astronaut.png").convert("RGB")
    return picture.resize((768, 768), Image.Resampling.LANCZOS)


def backdrop(width: int, height: int) -> Image.Image:
    """A quiet studio backdrop: a soft gradient, no face, nothing that stands out."""
    return Image.linear_gradient("L").resize((width, height)).convert("RGB").point(lambda v: 90 + v // 4)


def placed(width: int, height: int, left: int, top: int) -> tuple[bytes, tuple[float, float, float, float]]:
    """The astronaut at (left, top) of a larger picture, as a JPEG; and her face's box as fractions of it."""
    canvas = backdrop(width, height)
    canvas.paste(astronaut(), (left, top))
    x0, y0, x1, y1 = ASTRONAUT_FACE
    face = ((left + x0) / width, (top + y0) / height, (left + x1) / width, (top + y1) / height)
    return encode(canvas, "JPEG", quality=90), face
