"""Sections of the manual that code writes: between ``<!-- name -->`` and ``<!-- /name -->`` in a page."""

from __future__ import annotations

import re
from pathlib import Path


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"<!-- {name} -->\n(.*?)<!-- /{name} -->", re.S)


def generated(page: Path, name: str) -> str:
    """What ``page`` holds in its section ``name`` (an AssertionError when it has none)."""
    found = _pattern(name).search(page.read_text())
    assert found, f"{page.name} has no <!-- {name} --> section"
    return found.group(1)


def regenerate(page: Path, name: str, text: str) -> None:
    """Write ``text`` into the section ``name`` of ``page``."""
    section = f"<!-- {name} -->\n{text}<!-- /{name} -->"
    page.write_text(_pattern(name).sub(lambda _: section, page.read_text()))
