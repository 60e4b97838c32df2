"""Image documents as huImages stored them in CouchDB, and what they mean.

A document is a JSON object: ``_id`` (the image ID), ``ctime``, ``mtime``,
``title`` (list), ``references`` (dict of lists), ``types`` (list), ``width``,
``height`` (as displayed, EXIF orientation applied) and optionally
``deleted``; huImages' own documents carry the original as their first
attachment, whose name is the file name. huimages adds ``content_type``,
``length``, ``filename``, ``frames``, ``focus`` (with ``auto_focus`` beside
a focus set by hand, and ``focus_past``: ``huimages.core.focus``) and
``placeholder``; older readers ignore them.

Pure functions, so every backend merges identically and every caller derives
titles and alt texts the same way.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from huimages.core.focus import Focus, set_automatic

Doc = dict[str, Any]


def format_timestamp(value: datetime.datetime | str | None) -> str:
    """huImages' timestamp format: ``20090129T101530.000123``."""
    if isinstance(value, str):
        return value
    moment = value or datetime.datetime.now()
    return f"{moment.strftime('%Y%m%dT%H%M%S')}.{moment.microsecond:06d}"


def merge_metadata(
    doc: Doc,
    *,
    timestamp: str | None,
    title: str = "",
    references: Mapping[str, Any] | None = None,
    typ: str = "",
) -> Doc:
    """``doc`` with new metadata merged as huImages merged it.

    ``title``, ``types`` and each list in ``references`` gain values they do
    not hold yet; with a ``timestamp``, ``mtime`` becomes it and ``ctime`` is
    set if the document had none.
    """
    merged: Doc = dict(doc)
    if timestamp is not None:
        merged.setdefault("ctime", timestamp)
        merged["mtime"] = timestamp
    merged["title"] = list(merged.get("title") or [])
    if title and title not in merged["title"]:
        merged["title"].append(title)
    merged["types"] = list(merged.get("types") or [])
    if typ and typ not in merged["types"]:
        merged["types"].append(typ)
    refs: dict[str, list[Any]] = {k: list(v) for k, v in (merged.get("references") or {}).items()}
    for key, value in (references or {}).items():
        values = refs.setdefault(str(key), [])
        if value not in values:
            values.append(value)
    merged["references"] = refs
    return merged


def merge_into(
    doc: Doc | None,
    image_id: str,
    *,
    width: int,
    height: int,
    content_type: str,
    length: int,
    timestamp: str,
    title: str = "",
    references: Mapping[str, Any] | None = None,
    typ: str = "",
    filename: str = "",
    frames: int = 1,
    focus: Focus | None = None,
    placeholder: Mapping[str, str] | None = None,
) -> Doc:
    """The document after saving an image's bytes (``ctime`` kept from the first save).

    ``frames``: an animation's frame count (1: a still image), so a render
    knows whether the formats that animate need the original or the master.
    ``focus`` and ``placeholder``: what the upload's decode found (a focus
    set by hand stays the focus).

    The file name is kept from the first save, as huImages kept the first
    attachment's name; a legacy document's attachment name stands for it.
    """
    merged = merge_metadata(doc or {}, timestamp=timestamp, title=title, references=references, typ=typ)
    merged["_id"] = image_id
    merged["width"], merged["height"] = width, height
    merged["content_type"] = content_type
    merged["length"] = length
    merged["frames"] = frames
    if filename and not original_filename(merged):
        merged["filename"] = filename
    merged.pop("deleted", None)  # saving the bytes again brings the image back
    if placeholder is not None:
        merged["placeholder"] = dict(placeholder)
    return merged if focus is None else set_automatic(merged, focus)


def original_filename(doc: Doc) -> str:
    """The name the original was saved with: ``filename``, else the (last) legacy attachment's name."""
    if doc.get("filename"):
        return str(doc["filename"])
    attachments = doc.get("_attachments") or {}
    return str(list(attachments)[-1]) if attachments else ""


def _without_jpeg_extension(name: str) -> str:
    for ending in (".jpg", ".jpeg"):
        if name.lower().endswith(ending):
            return name[: -len(ending)]
    return name


def url_title(doc: Doc) -> str:
    """What huImages put into an image's URLs: the first title, else the file name without .jpg/.jpeg."""
    titles = doc.get("title") or []
    if titles:
        return str(titles[0])
    return _without_jpeg_extension(original_filename(doc))


def alt_text(doc: Doc, addition: str = "") -> str:
    """huImages' alt text: the newest title, else the file name (``_`` as spaces, no extension), then ``addition``."""
    titles = doc.get("title") or []
    if titles:
        return f"{titles[-1]}{addition}"
    name = original_filename(doc)
    if name:
        stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
        return f"{stem.replace('_', ' ')}{addition}"
    return addition.strip()
