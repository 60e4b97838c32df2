"""Finding an image's focus at upload, from the pixels the upload already decoded: faces, saliency, the centre.

Faces come from OpenCV's frontal-face Haar cascade (``alt2``), which ships inside
``opencv-python-headless`` (the ``faces`` extra, ``pip install
'huimages[faces]'``): run on a copy at most ``FACE_SIDE`` pixels on its long
side, with one thread. Without it, or where it finds no face, a saliency
measure in the manner of smartcrop (edges, skin tones and saturation,
smoothed, with a gentle pull towards the middle) picks the busiest region.
An image with nothing that stands out keeps the centre. Nothing here runs
per request: a crop reads the focus from the record.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from typing import Any

from PIL import Image, ImageFilter

from huimages.core.focus import CENTRE, Focus

logger = logging.getLogger(__name__)

FACE_SIDE = 352  # faces of at least MIN_FACE pixels here: about 6 % of the long side
MIN_FACE = 20
SALIENCY_SIDE = 64
_MIN_CONTRAST = 1.35  # the saliency peak against the map's mean; flatter images keep the centre
_MIN_PEAK = 12  # ... and against a quiet picture's (of 255): faint gradients and noise are not a subject
_FULL_SCORE = 2.2  # the largest score a pixel can have (edge 1 + skin 0.9 + saturation 0.3)
# Measured on 105 faces placed in photos (8 % to 16 % of the long side): alt2 at scale steps of 1.15 with three
# neighbours, on the grey picture as it is, found 99 at 352 pixels (97 at 320 in 0.8 times the time, 101 at 384
# in 1.13 times), with no box off a face; with the histogram equalised, 82 at 384; the default cascade at 1.2
# with five neighbours, 62.
_SCALE_STEP = 1.15
_NEIGHBOURS = 3
_KEEP_FACES = 0.25  # faces at least this share of the largest one's area are kept together
INSTALL_HINT = "pip install 'huimages[faces]' (opencv-python-headless 4.x) for face detection"


def find_focus(upright: Image.Image, mode: str = "auto") -> Focus:
    """The focus of an upright RGB (or RGBA) image of any size: faces, else saliency, else the centre.

    ``mode`` is ``HUIMAGES_FOCUS``: ``auto`` looks for faces first,
    ``saliency`` does not, ``centre`` looks for nothing. Pass
    ``shrink(upright)`` when it is at hand: the search runs on that.
    """
    if mode == "centre":
        return CENTRE
    small = shrink(upright, FACE_SIDE).convert("RGB")
    faces = detect_faces(small) if mode == "auto" else []
    if faces:
        return _faces_focus(faces, small.size)
    return saliency_focus(small) or CENTRE


def detector(mode: str = "auto") -> str:
    """What finds the focus of uploads here, for ``huimages check``."""
    if mode == "centre":
        return "nothing: crops are centred (HUIMAGES_FOCUS=centre)"
    if mode == "saliency":
        return "saliency (HUIMAGES_FOCUS=saliency: no face search)"
    if _cascade() is None:
        return f"none, saliency only ({INSTALL_HINT})"
    import cv2

    return f"OpenCV {cv2.__version__} frontal-face Haar cascade (alt2), then saliency"


def detect_faces(small: Image.Image) -> list[tuple[int, int, int, int]]:
    """Face boxes (left, top, width, height) in ``small``; empty without a detector."""
    cascade = _cascade()
    if cascade is None:
        return []
    import numpy

    grey = numpy.asarray(small.convert("L"))
    found = cascade.detectMultiScale(
        grey, scaleFactor=_SCALE_STEP, minNeighbors=_NEIGHBOURS, minSize=(MIN_FACE, MIN_FACE)
    )
    return [(int(x), int(y), int(w), int(h)) for x, y, w, h in found]


_LOADING = threading.Lock()
_THIS_THREAD = threading.local()


def _cascade() -> Any:
    """This thread's cascade, or None without a detector.

    A cascade keeps the state of the image it searches (its scales and
    sums), so threads never share one: uploads and migrate's workers
    searching images of different sizes at once through one cascade fail
    (OpenCV's assertion on ``getScaleData``). Each thread reads its own
    from the cascade file once.
    """
    cascade = getattr(_THIS_THREAD, "cascade", _UNREAD)
    if cascade is _UNREAD:
        with _LOADING:  # OpenCV is imported, and the file looked for, once
            path = _cascade_file()
        cascade = _THIS_THREAD.cascade = None if path is None else _read_cascade(path)
    return cascade


_UNREAD = object()


@functools.cache
def _cascade_file() -> str | None:
    try:
        import cv2
    except ImportError:
        return None
    cv2.setNumThreads(1)  # a render slot is one core
    path = os.path.join(getattr(getattr(cv2, "data", None), "haarcascades", ""), "haarcascade_frontalface_alt2.xml")
    if not os.path.exists(path) or _read_cascade(path) is None:
        logger.warning("OpenCV %s has no frontal-face cascade at %s; faces are not looked for", cv2.__version__, path)
        return None
    return path


def _read_cascade(path: str) -> Any:
    import cv2

    cascade = cv2.CascadeClassifier(path)
    return None if cascade.empty() else cascade


def _faces_focus(faces: list[tuple[int, int, int, int]], size: tuple[int, int]) -> Focus:
    """The focus of the faces: the box around the largest and those near its size, and its middle."""
    largest = max(w * h for _, _, w, h in faces)
    kept = [f for f in faces if f[2] * f[3] >= _KEEP_FACES * largest]
    left = min(x for x, _, _, _ in kept)
    top = min(y for _, y, _, _ in kept)
    right = max(x + w for x, _, w, _ in kept)
    bottom = max(y + h for _, y, _, h in kept)
    width, height = size
    box = (left / width, top / height, right / width, bottom / height)
    return Focus((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, "face", box)


def saliency_focus(im: Image.Image) -> Focus | None:
    """The middle of the busiest region (edges, skin, saturation), or None when nothing stands out."""
    small = shrink(im, SALIENCY_SIDE).convert("RGB")
    width, height = small.size
    if width < 8 or height < 8:
        return None
    edges = small.convert("L").filter(ImageFilter.FIND_EDGES).tobytes()
    ycbcr = small.convert("YCbCr").tobytes()
    hsv = small.convert("HSV").tobytes()
    scores = []
    channels = zip(ycbcr[1::3], ycbcr[2::3], hsv[1::3], hsv[2::3], edges, strict=True)
    for index, (cb, cr, sat, value, edge) in enumerate(channels):
        x, y = index % width, index // width
        if x in (0, width - 1) or y in (0, height - 1):
            scores.append(0.0)  # the edge filter's border is not the image's
            continue
        skin = 1.0 if 77 <= cb <= 127 and 133 <= cr <= 173 and value > 60 else 0.0
        scores.append(edge / 255 + 0.9 * skin + 0.3 * (sat / 255) * (value / 255))
    smoothed = Image.frombytes("L", (width, height), bytes(min(255, round(255 * s / _FULL_SCORE)) for s in scores))
    blurred = smoothed.filter(ImageFilter.GaussianBlur(max(width, height) / 10)).tobytes()
    weighted = []
    for index, value in enumerate(blurred):
        dx = (index % width + 0.5) / width - 0.5
        dy = (index // width + 0.5) / height - 0.5
        weighted.append(value * (1 - 0.6 * (dx * dx + dy * dy)))
    peak = max(weighted)
    mean = sum(weighted) / len(weighted)
    if peak < _MIN_PEAK or peak < _MIN_CONTRAST * mean:
        return None
    region = [i for i, value in enumerate(weighted) if value >= 0.85 * peak]
    xs = [i % width for i in region]
    ys = [i // width for i in region]
    box = (min(xs) / width, min(ys) / height, (max(xs) + 1) / width, (max(ys) + 1) / height)
    centre_x = (sum(xs) / len(xs) + 0.5) / width
    centre_y = (sum(ys) / len(ys) + 0.5) / height
    return Focus(centre_x, centre_y, "saliency", box)


def shrink(im: Image.Image, side: int = FACE_SIDE) -> Image.Image:
    """``im`` at most ``side`` pixels on its long side: a box reduction by a whole factor, then bilinear."""
    if max(im.size) <= side:
        return im
    factor = max(im.size) // side
    if factor > 1:
        im = im.reduce(factor)
    if max(im.size) <= side:
        return im
    scale = side / max(im.size)
    return im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BILINEAR)
