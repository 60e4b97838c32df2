#!/usr/bin/env python3
"""Coverage-guided fuzzing (atheris) of the URL parsers, of save_image's checks and of request text.

    .venv/bin/pip install atheris
    .venv/bin/python scripts/fuzz.py urls  -max_total_time=600
    .venv/bin/python scripts/fuzz.py image -max_total_time=600 -rss_limit_mb=3072 -timeout=20
    .venv/bin/python scripts/fuzz.py text  -max_total_time=600

``text`` feeds the same bytes to sign-in's ``next`` (the page it leads to must
be under /ui/ with no control character), to the check of stored text, and to
the JSON body of a PATCH (nesting, surrogates).

Not part of the test suite. A finding is any exception other than the
project's own errors, a hang past -timeout, or memory past -rss_limit_mb;
atheris writes the input that caused it to ``crash-*`` / ``timeout-*`` files.
The seed corpus is generated on start into fuzz/corpus-<target>/.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import PIL.AvifImagePlugin
    import PIL.GifImagePlugin
    import PIL.Image
    import PIL.JpegImagePlugin
    import PIL.PngImagePlugin
    import PIL.TiffImagePlugin
    import PIL.WebPImagePlugin

    from huimages.config import Settings, SigningSettings
    from huimages.core.sizes import parse_size
    from huimages.core.text import has_control, problem
    from huimages.core.urls import parse_image_path, signature_of, split_request_target
    from huimages.errors import HuImagesError
    from huimages.http.api import _json_object
    from huimages.http.kit import HttpError
    from huimages.http.ui.app import local_target
    from huimages.imaging import probe
    from huimages.serving.policy import SizePolicy

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = Settings.at(Path("/nonexistent"), signing=SigningSettings("named", keys=("fuzzing-key-0123456789",)))
POLICY = SizePolicy(SETTINGS)
LIMITS = SETTINGS.limits
_ = (
    PIL.AvifImagePlugin,
    PIL.GifImagePlugin,
    PIL.JpegImagePlugin,
    PIL.PngImagePlugin,
    PIL.TiffImagePlugin,
    PIL.WebPImagePlugin,
)


def fuzz_urls(data: bytes) -> None:
    """A request target, as a client could send it, through every parsing step."""
    raw = data.decode("latin-1")  # one character per byte, as a server hands the target over
    try:
        path, query = split_request_target(raw)
        parsed = parse_image_path(path)
        if parsed is None:
            return
        size = parse_size(parsed[0], SETTINGS.sizes, SETTINGS.limits.max_side)
        POLICY.check(size, path, signature_of(query))
    except HuImagesError:
        return


def fuzz_image(data: bytes) -> None:
    """Uploaded bytes through the checks of save_image (probe): only our errors may come out."""
    try:
        probe(data, LIMITS)
    except HuImagesError:
        return


def fuzz_text(data: bytes) -> None:
    """Request text: where sign-in leads, whether text may be stored, a PATCH body; only our errors may come out."""
    text = data.decode("utf-8", "surrogateescape")  # undecodable bytes become lone surrogates
    target = local_target(text)
    if not target.startswith("/ui/") or has_control(target) or "/../" in target:
        raise AssertionError(f"sign-in would lead to {target!r}")
    problem(text)
    try:
        _json_object(data, "the body")
    except (HuImagesError, HttpError):
        return


TEXT_SEEDS = (
    "/ui/images/AAAA?q=1",
    "/ui/\r\nLocation: //evil.example",
    "/ui/%0d%0aSet-Cookie:%20a=b",
    "/ui/../../evil",
    "//evil.example/ui/",
    '{"title": "\\ud800", "references": {"a": ["\\udfff"]}}',
    '{"title": ' + "[" * 40 + "]" * 40 + "}",
)


def seeds(target: str) -> list[bytes]:
    if target == "text":
        return [s.encode() for s in TEXT_SEEDS] + ["/ui/\ud800".encode("utf-8", "surrogatepass")]
    if target == "urls":
        return [
            s.encode()
            for s in (
                "/240x160/" + "A" * 32 + "01.jpeg",
                "/75x75!/" + "B" * 32 + "01.jpeg?s=abc",
                "/small/" + "C" * 32 + "01.jpeg",
                "/o/" + "D" * 32 + "01.jpeg",
                "/small%2F..%2F..%2Fetc/passwd",
                "http://h/1x1/" + "E" * 32 + "01.jpeg?s=1&s=2",
                "/480x320/" + "F" * 32 + "01/A-title.avif",
                "/o/" + "G" * 32 + "01.webp?s=x",
                "/4096x4096!/" + "H" * 32 + "01.png",
            )
        ]
    from PIL import Image

    out = []
    base = Image.linear_gradient("L").resize((40, 30)).convert("RGB")
    for fmt, mode, options in (
        ("JPEG", "RGB", {}),
        ("JPEG", "CMYK", {}),
        ("PNG", "RGBA", {}),
        ("PNG", "I;16", {}),
        ("GIF", "P", {}),
        ("WEBP", "RGB", {}),
        ("TIFF", "RGB", {}),
        ("HEIF", "RGB", {"quality": 50}),  # decoded by pillow-heif (registered by huimages.imaging)
        ("HEIF", "RGBA", {"quality": 50}),
        ("AVIF", "RGB", {"quality": 50}),
        ("AVIF", "RGBA", {"quality": 50}),
    ):
        buf = io.BytesIO()
        base.convert(mode).save(buf, fmt, **options)
        out.append(buf.getvalue())
    out.extend(_hostile_seeds(base))
    return out


def _hostile_seeds(base: PIL.Image.Image) -> list[bytes]:
    """Shapes of the hostile-input suite, small: pages, frames, a colour profile, a size the bytes cannot hold."""
    from PIL import ImageCms

    out = []
    frames = [base.rotate(n * 10) for n in range(4)]
    for fmt in ("TIFF", "GIF", "WEBP", "PNG"):  # several pages or frames: the counting loop, an animation checked whole
        buf = io.BytesIO()
        frames[0].save(buf, fmt, save_all=True, append_images=frames[1:])
        out.append(buf.getvalue())
    buf = io.BytesIO()  # an embedded colour profile: the sRGB conversion
    base.save(buf, "PNG", icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    out.append(buf.getvalue())
    small = io.BytesIO()  # a JPEG whose header declares 7000x7000 (the ratio guard)
    base.save(small, "JPEG")
    data = bytearray(small.getvalue())
    at = data.index(b"\xff\xc0")
    data[at + 5 : at + 9] = (7000).to_bytes(2, "big") * 2
    out.append(bytes(data))
    return out


def main() -> None:
    targets = {"urls": fuzz_urls, "image": fuzz_image, "text": fuzz_text}
    target = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] in targets else "urls"
    corpus = ROOT / "fuzz" / f"corpus-{target}"
    corpus.mkdir(parents=True, exist_ok=True)
    for n, seed in enumerate(seeds(target)):
        (corpus / f"seed-{n}").write_bytes(seed)
    atheris.Setup([sys.argv[0], *sys.argv[1:], str(corpus)], targets[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
