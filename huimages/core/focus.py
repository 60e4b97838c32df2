"""An image's focus: the point its crops are placed around, and how it is named in URLs.

A focus is a point of the upright image, as fractions of its width and
height (0 to 1), with where it came from (``face``, ``saliency``,
``manual``, ``centre``) and, for a detected one, the box it was found in.
Crop URLs carry it as a token of whole percents after the size
(``/150x150!@42-31/<id>.jpeg``): a URL names its bytes forever, so a new
focus is a new URL. The centre has no token: ``/150x150!/<id>.jpeg`` is the
centred crop huImages served, and stays so.

Pure functions and values, shared by the renderer, the catalog and the URL
helpers.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from huimages.errors import InvalidFocus

SOURCES = ("face", "saliency", "manual", "centre")
STEPS = 100  # a token names whole percents: 1 % of the side is as fine as a crop needs
_TOKEN = re.compile(r"([0-9]{1,3})-([0-9]{1,3})")
MAX_PAST = 100  # focus tokens an image's record remembers, so that the URLs they named keep answering

FocusPoint = tuple[int, int]  # a token's percents (x, y)


@dataclasses.dataclass(frozen=True)
class Focus:
    """A focus point (fractions of the upright image), its source, and the box (fractions) it came from."""

    x: float
    y: float
    source: str = "manual"
    box: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if not (0.0 <= self.x <= 1.0 and 0.0 <= self.y <= 1.0):
            raise ValueError(f"a focus is two fractions from 0 to 1 (x, y); got {self.x}, {self.y}")
        if self.source not in SOURCES:
            raise ValueError(f"a focus comes from one of {', '.join(SOURCES)}; got {self.source!r}")

    @property
    def point(self) -> FocusPoint:
        """The percents a URL names (50, 50 for the centre)."""
        return _percent(self.x), _percent(self.y)

    @property
    def point_fractions(self) -> tuple[float, float]:
        """The point a URL names, as fractions: where its crops are placed."""
        x, y = self.point
        return x / STEPS, y / STEPS

    @property
    def token(self) -> str:
        """What a crop URL adds after its size: ``@42-31``; nothing for the centre."""
        return point_token(self.point)

    def as_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"x": round(self.x, 4), "y": round(self.y, 4), "source": self.source}
        if self.box is not None:
            record["box"] = [round(v, 4) for v in self.box]
        return record

    @classmethod
    def from_record(cls, value: Any) -> Focus | None:
        """A focus from a record's field; None for a field that is missing or not one (written by hand)."""
        if not isinstance(value, dict):
            return None
        try:
            box = value.get("box")
            return cls(
                float(value["x"]),
                float(value["y"]),
                str(value.get("source", "manual")),
                None if box is None else (float(box[0]), float(box[1]), float(box[2]), float(box[3])),
            )
        except (KeyError, TypeError, ValueError, IndexError):
            return None


CENTRE = Focus(0.5, 0.5, "centre")


def _percent(fraction: float) -> int:
    return min(STEPS, max(0, int(fraction * STEPS + 0.5)))


def point_token(point: FocusPoint | None) -> str:
    """``@x-y`` for a point that is not the centre; ``""`` for the centre and for none."""
    if point is None or point == (STEPS // 2, STEPS // 2):
        return ""
    return f"@{point[0]}-{point[1]}"


def parse_point(text: str) -> FocusPoint:
    """The percents of a token's text (``42-31``); ``ValueError`` saying what is wrong."""
    match = _TOKEN.fullmatch(text)
    if match is None or int(match.group(1)) > STEPS or int(match.group(2)) > STEPS:
        raise ValueError(f"a focus is @X-Y in whole percents from 0 to {STEPS} (e.g. @42-31)")
    return int(match.group(1)), int(match.group(2))


def check_focus(value: Any) -> tuple[float, float]:
    """A focus as given by a caller (``[x, y]``, fractions from 0 to 1); ``InvalidFocus`` saying what is wrong."""
    try:
        if isinstance(value, (str, bytes, dict)) or any(isinstance(v, bool) for v in value):
            raise ValueError
        x, y = (float(v) for v in value)
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError
    except (TypeError, ValueError):
        raise InvalidFocus(
            f"a focus is [x, y], two fractions of the upright image from 0 to 1 (e.g. [0.42, 0.31]); got {value!r}"
        ) from None
    return x, y


def focus_of(doc: dict[str, Any]) -> Focus:
    """An image's focus as its record holds it; the centre when it has none."""
    return Focus.from_record(doc.get("focus")) or CENTRE


def known_points(doc: dict[str, Any]) -> set[FocusPoint]:
    """The focus points an image's crop URLs may name: its focus now and the ones it had before."""
    points = {focus_of(doc).point}
    for token in doc.get("focus_past") or ():
        try:
            points.add(parse_point(str(token)))
        except ValueError:
            continue
    return points


def automatic_focus(doc: dict[str, Any]) -> Focus:
    """The focus found for the image (faces, saliency or the centre), whether or not one was set by hand."""
    current = focus_of(doc)
    return Focus.from_record(doc.get("auto_focus")) or (current if current.source != "manual" else CENTRE)


def set_manual(doc: dict[str, Any], focus: Focus | None) -> dict[str, Any]:
    """The record with a focus set by hand, or (None) back to its automatic one."""
    auto = automatic_focus(doc)
    changed = {k: v for k, v in doc.items() if k != "auto_focus"}
    if focus is None:
        changed["focus"] = auto.as_record()
    else:
        changed["focus"] = dataclasses.replace(focus, source="manual", box=None).as_record()
        changed["auto_focus"] = auto.as_record()
    return _remember(doc, changed)


def set_automatic(doc: dict[str, Any], focus: Focus) -> dict[str, Any]:
    """The record with a newly found automatic focus; one set by hand stays the focus."""
    changed = dict(doc)
    if focus_of(doc).source == "manual":
        changed["auto_focus"] = focus.as_record()
    else:
        changed["focus"] = focus.as_record()
    return _remember(doc, changed)


def _remember(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``after``, remembering the focus token ``before`` named when the two differ (its URLs keep answering)."""
    old, new = focus_of(before).point, focus_of(after).point
    if old != new and point_token(old):
        past = [str(t) for t in before.get("focus_past") or () if str(t) != point_token(old)[1:]]
        after["focus_past"] = [*past, point_token(old)[1:]][-MAX_PAST:]
    return after


def to_stored(point: tuple[float, float], orientation: int) -> tuple[float, float]:
    """A point of the upright image as fractions of the stored one, for an EXIF ``orientation`` (1 to 8)."""
    x, y = point
    return {
        2: (1 - x, y),
        3: (1 - x, 1 - y),
        4: (x, 1 - y),
        5: (y, x),
        6: (y, 1 - x),
        7: (1 - y, 1 - x),
        8: (1 - y, x),
    }.get(orientation, (x, y))
