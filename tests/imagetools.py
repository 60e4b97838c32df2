"""Test images made in code, and comparisons on decoded pixels (never on bytes)."""

from __future__ import annotations

import io

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
