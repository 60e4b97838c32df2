"""Stores for original image bytes, chosen once from settings."""

from __future__ import annotations

from huimages.config import Settings
from huimages.originals.base import OriginalsStore


def open_store(settings: Settings) -> OriginalsStore:
    """The originals store the settings name (the filesystem store by default)."""
    from huimages.originals.filesystem import FilesystemStore

    return FilesystemStore(settings.originals)


__all__ = ["OriginalsStore", "open_store"]
