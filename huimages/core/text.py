"""Text an image's record may hold: titles, references, types and file names, checked when stored.

Every such value is shown in pages, put into ``alt`` attributes and URLs, and
sent back as JSON. A lone surrogate (valid in JSON, ``"\\ud800"``) cannot be
encoded as UTF-8, a control character can end a header line, and a
noncharacter is never meant to be interchanged; so each is refused with an
error that names the field and the character. Values already stored with one
are still shown (the pages encode with replacement), never refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from huimages.errors import InvalidText

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

#: How deeply a JSON value (a request body, ``references``) may nest: huImages' records nest two levels.
MAX_DEPTH = 20


def problem(text: str) -> str | None:
    """What is wrong with ``text`` (its first bad character, described), or None when every character is fine."""
    for position, char in enumerate(text):
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF:
            kind = "a lone surrogate"
        elif code < 0x20 or 0x7F <= code < 0xA0:
            kind = "a control character"
        elif 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE:
            kind = "a noncharacter"
        else:
            continue
        return f"character {position + 1} is {kind} (U+{code:04X}); remove it and send the text again"
    return None


def has_control(text: str) -> bool:
    """Whether ``text`` holds a C0 or C1 control character or DEL (a header value must not: CR and LF end it)."""
    return _CONTROL.search(text) is not None


def check_text(field: str, value: str) -> str:
    """``value`` unchanged, or ``InvalidText`` naming ``field``."""
    found = problem(value)
    if found is not None:
        raise InvalidText(field, found)
    return value


def check_value(field: str, value: Any, depth: int = 0, *, strings: bool = True) -> None:
    """A JSON value nested at most ``MAX_DEPTH`` deep; with ``strings``, every string in it (keys too) fit to store."""
    if depth > MAX_DEPTH:
        raise InvalidText(field, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if strings:
            check_text(field, value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if strings:
                check_text(field, str(key))
            check_value(field, item, depth + 1, strings=strings)
    elif isinstance(value, list | tuple):
        for item in value:
            check_value(field, item, depth + 1, strings=strings)


def check_metadata(
    *, title: str = "", references: Mapping[str, Any] | None = None, typ: str = "", filename: str = ""
) -> None:
    """The text fields of a save or an update, each checked (``InvalidText`` names the first bad one)."""
    for field, value in (("title", title), ("typ", typ), ("filename", filename), ("references", references)):
        check_value(field, value)
