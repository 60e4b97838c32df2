import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from huimages.config import DEFAULT_SIZES
from huimages.core.sizes import Size, crop_box, decode_target, fit_dimensions, output_dimensions, parse_size
from huimages.errors import InvalidSize

sides = st.integers(min_value=1, max_value=20000)
boxes = st.integers(min_value=1, max_value=4096)


def test_named_sizes_of_huimages() -> None:
    assert parse_size("small", DEFAULT_SIZES, 4096) == Size("small", 240, 160, False)
    assert parse_size("square", DEFAULT_SIZES, 4096) == Size("square", 75, 75, True)
    assert parse_size("square", DEFAULT_SIZES, 4096).spec == "75x75!"


@pytest.mark.parametrize(
    ("token", "expected"),
    [("o", Size("o")), ("240x160", Size("240x160", 240, 160, False)), ("75x75!", Size("75x75!", 75, 75, True))],
)
def test_parse_forms(token: str, expected: Size) -> None:
    assert parse_size(token, DEFAULT_SIZES, 4096) == expected


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("0x0", "whole numbers from 1"),
        ("10x0", "whole numbers from 1"),
        ("-5x10", "WxH"),
        ("10x10!!", "WxH"),
        ("4097x10", "4096"),
        ("99999999999x1", "whole numbers"),
        ("huge", "unknown size name"),
        ("10X10", "WxH"),
        ("\u0661\u0660x10", "ASCII"),
        ("", "a size is"),
        ("010x10", "whole numbers from 1"),
    ],
)
def test_bad_sizes_say_why(token: str, reason: str) -> None:
    with pytest.raises(InvalidSize, match=reason):
        parse_size(token, DEFAULT_SIZES, 4096)


@given(sides, sides, boxes, boxes)
def test_fit_stays_inside_box_and_keeps_aspect(src_w: int, src_h: int, box_w: int, box_h: int) -> None:
    w, h = fit_dimensions(src_w, src_h, box_w, box_h)
    assert 1 <= w <= max(box_w, 1) and 1 <= h <= max(box_h, 1)
    assert w <= src_w and h <= src_h  # never upscales
    # aspect kept within one pixel: the other side is what the ratio gives, +-1
    assert abs(w * src_h / src_w - h) <= 1 or abs(h * src_w / src_h - w) <= 1
    assert w == box_w or h == box_h or (w, h) == (src_w, src_h)  # as large as allowed


@given(sides, sides, boxes, boxes)
def test_crop_region_has_box_aspect_and_is_centred(src_w: int, src_h: int, box_w: int, box_h: int) -> None:
    left, top, right, bottom = crop_box(src_w, src_h, box_w, box_h)
    assert 0 <= left <= right <= src_w and 0 <= top <= bottom <= src_h
    # the box's aspect, to a millionth of a pixel (a sliver of a tall source is found by subtracting ~8000 from ~8000)
    assert (right - left) * box_h == pytest.approx((bottom - top) * box_w, rel=1e-9, abs=1e-6 * max(box_w, box_h))
    assert left == pytest.approx(src_w - right) and top == pytest.approx(src_h - bottom)
    assert output_dimensions(Size("x!", box_w, box_h, True), src_w, src_h) == (box_w, box_h)


@given(sides, sides, boxes, boxes, st.booleans())
def test_decode_target_covers_what_the_render_needs(src_w: int, src_h: int, box_w: int, box_h: int, crop: bool) -> None:
    size = Size("t", box_w, box_h, crop)
    need_w, need_h = decode_target(size, src_w, src_h)
    assert need_w <= src_w and need_h <= src_h
    if crop:
        left, top, right, bottom = crop_box(src_w, src_h, box_w, box_h)
        scale_w, scale_h = need_w / src_w, need_h / src_h
        assume(right - left > 0 and bottom - top > 0)
        # the crop region, at decode scale, is at least the box (or the source is smaller)
        assert (right - left) * scale_w >= min(box_w, right - left) - 1e-6
        assert (bottom - top) * scale_h >= min(box_h, bottom - top) - 1e-6
    else:
        assert (need_w, need_h) == fit_dimensions(src_w, src_h, box_w, box_h)
