import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huimages.core.ids import compute_id, is_valid_id, matches, validate_id
from huimages.errors import InvalidImageId


def test_id_is_huimages_format() -> None:
    data = b"some image bytes"
    expected = base64.b32encode(hashlib.sha1(data).digest()).decode().rstrip("=") + "01"
    assert compute_id(data) == expected
    assert len(expected) == 34


@given(st.binary())
def test_every_computed_id_validates_and_matches(data: bytes) -> None:
    image_id = compute_id(data)
    assert validate_id(image_id) == image_id
    assert matches(image_id, data)
    assert not matches(image_id, data + b"x")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "34 characters"),
        ("ABC01", "34 characters"),
        ("a" * 32 + "01", "upper case"),
        ("A" * 32 + "02", "ends in '01'"),
        ("A" * 31 + "1" + "01", "letters A-Z and the digits 2-7"),
        ("../" + "A" * 29 + "01", "letters A-Z"),
    ],
)
def test_invalid_ids_say_why(value: str, reason: str) -> None:
    with pytest.raises(InvalidImageId, match=reason):
        validate_id(value)
    assert not is_valid_id(value)
