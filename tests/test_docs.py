"""The manual: its configuration page is the settings table, its formats page the formats table, and MkDocs
builds every page (``./scripts/test``).

``python -m tests.test_docs`` writes both tables again after a setting or a format changes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from huimages.config import SETTINGS_SPECS, Settings
from huimages.core.formats import FORMATS, INPUTS
from tests.pages import generated, regenerate

ROOT = Path(__file__).resolve().parent.parent
CONFIGURATION = ROOT / "docs" / "configuration.md"
FORMATS_PAGE = ROOT / "docs" / "formats.md"
_HOME = Path("$HUIMAGES_HOME")
#: Defaults the table shows in words: what Settings resolves them to depends on where it runs.
_SHOWN = {"HUIMAGES_HOME": "`./huimages-data`", "HUIMAGES_CLIENT": "`auto`", "HUIMAGES_SIZES": "the named sizes"}


def _default(value: Any) -> str:
    if value is None or value in ("", (), {}):
        return ""
    if isinstance(value, bool):
        return "`on`" if value else "`off`"
    if isinstance(value, Path):
        return f"`{str(value).replace(str(_HOME.resolve()), '$HUIMAGES_HOME')}`"
    if isinstance(value, tuple):
        return f"`{','.join(map(str, value))}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def configuration_table() -> str:
    """Every setting: its variable, its default, what it does, and whether it is a secret."""
    defaults = Settings.at(_HOME)
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for spec in SETTINGS_SPECS:
        shown = _SHOWN.get(spec.name) or _default(defaults.value_of(spec))
        meaning = spec.help.replace("|", "\\|") + (" (a secret: never printed or logged)" if spec.secret else "")
        lines.append(f"| `{spec.name}` | {shown} | {meaning} |")
    return "\n".join(lines) + "\n"


def formats_tables() -> str:
    """The formats accepted as originals and the formats served, from ``huimages.core.formats``."""
    lines = ["| original | content type | files | animations | decoded by |", "|---|---|---|---|---|"]
    for fmt in INPUTS:
        files = ", ".join(f"`{e}`" for e in fmt.extensions)
        kept = "kept" if fmt.animated else ""
        lines.append(f"| {fmt.name} | `{fmt.content_type}` | {files} | {kept} | {fmt.plugin or 'Pillow'} |")
    lines += ["", "| served | content type | transparency | animations |", "|---|---|---|---|"]
    for out in FORMATS.values():
        alpha = "kept" if out.alpha else "flattened on white"
        moving = "kept" if out.animates else "the first frame"
        lines.append(f"| `.{out.extension}` | `{out.content_type}` | {alpha} | {moving} |")
    return "\n".join(lines) + "\n"


def test_the_formats_page_is_the_formats_table() -> None:
    assert generated(FORMATS_PAGE, "formats") == formats_tables(), "run: python -m tests.test_docs"


def test_the_configuration_page_is_the_settings_table() -> None:
    table = generated(CONFIGURATION, "settings")
    assert table == configuration_table(), "run: python -m tests.test_docs"
    for spec in SETTINGS_SPECS:
        assert f"| `{spec.name}` |" in table and spec.help


def test_every_page_is_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert pages == set(re.findall(r"\b([\w-]+\.md)\b", nav)), "mkdocs.yml's nav and docs/*.md differ"


if __name__ == "__main__":
    regenerate(CONFIGURATION, "settings", configuration_table())
    regenerate(FORMATS_PAGE, "formats", formats_tables())
