"""HTML for images: the ``<img>`` tag, built in one place with every value escaped."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from typing import Any

from huimages.imaging.placeholder import preview_data_uri

_COLOUR = re.compile(r"#[0-9a-f]{6}")
_THUMBHASH = re.compile(r"[A-Za-z0-9+/]{8,64}={0,2}")


def attribute_name(key: str) -> str:
    """A keyword argument as an attribute name: a trailing ``_`` is dropped (``class_`` -> ``class``)."""
    return key[:-1] if key.endswith("_") else key


def img_tag(
    src: str,
    width: int | None,
    height: int | None,
    alt: str,
    args: Iterable[str] = (),
    attrs: Mapping[str, Any] | None = None,
) -> str:
    """``<img src=... width=... height=... ARGS k="v"... alt=... />`` as huImages' ``scaled_tag`` wrote it.

    ``args`` are inserted verbatim (huImages' positional arguments: attribute
    text the caller vouches for); ``alt`` is used unless ``attrs`` has one.
    """
    attrs = attrs or {}
    parts = [f'<img src="{html.escape(src)}"']
    if width and height:
        parts.append(f'width="{width}" height="{height}"')
    parts.extend(args)
    names = {attribute_name(key) for key in attrs}
    for key, value in attrs.items():
        parts.append(f'{html.escape(attribute_name(key))}="{html.escape(str(value))}"')
    if "alt" not in names:
        parts.append(f'alt="{html.escape(alt)}"')
    parts.append("/>")
    return " ".join(parts)


def srcset_value(candidates: Iterable[tuple[str, str]]) -> str:
    """A ``srcset`` attribute's value from (URL, descriptor) pairs: ``"<url> 1x, <url> 2x"`` (not yet escaped)."""
    return ", ".join(f"{url} {descriptor}" for url, descriptor in candidates)


def picture_tag(sources: Iterable[tuple[str, str]], img: str, sizes: str | None = None) -> str:
    """``<picture>`` with a ``<source type=... srcset=...>`` per (content type, srcset value) before ``img``."""
    sizes_attr = f' sizes="{html.escape(sizes)}"' if sizes else ""
    parts = [
        f'<source type="{html.escape(kind)}" srcset="{html.escape(srcset)}"{sizes_attr} />' for kind, srcset in sources
    ]
    return f"<picture>{''.join(parts)}{img}</picture>"


def placeholder_style(doc: Mapping[str, Any], placeholder: bool | str, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """``attrs`` with the image's placeholder as its background: ``True`` the colour, ``"preview"`` the preview too.

    The style goes before any ``style`` the caller gave, so theirs wins; an
    image without placeholders (stored before they were made) gets none.
    """
    if placeholder not in (False, True, "preview"):
        raise ValueError(f'placeholder is True, False or "preview"; got {placeholder!r}')
    found = doc.get("placeholder") or {}
    colour, thumbhash = str(found.get("color") or ""), str(found.get("thumbhash") or "")
    if not placeholder or not _COLOUR.fullmatch(colour):  # (a record edited by hand cannot add CSS)
        return dict(attrs)
    style = f"background-color:{colour}"
    if placeholder == "preview" and _THUMBHASH.fullmatch(thumbhash):
        style += f";background-image:url({preview_data_uri(thumbhash)});background-size:cover"
    given = {attribute_name(k): v for k, v in attrs.items()}
    if given.get("style"):
        style = f"{style};{given['style']}"
    return {**{k: v for k, v in attrs.items() if attribute_name(k) != "style"}, "style": style}
