"""huimages in Django: template tags, a model field that uploads, the admin's thumbnails (``huimages[django]``).

Add ``"huimages.django"`` to ``INSTALLED_APPS``. Settings come from a
``HUIMAGES`` dict in Django's settings whose keys are the environment
variables' names (``{"HUIMAGES_HOME": ..., "IMAGESERVERURL": ...}``), or,
without it, from the environment; a remote client (``HUIMAGES_CLIENT=remote``
or an upload token) works the same way. See docs/django.md.
"""

from __future__ import annotations

from typing import Any

try:
    import django as _django  # noqa: F401 (only: is it there?)
except ImportError as missing:
    raise ImportError("huimages.django needs Django, an extra: pip install 'huimages[django]'") from missing

__all__ = ["HuImage", "HuImageField", "HuImageFormField", "HuImageWidget", "client"]


def __getattr__(name: str) -> Any:
    """The field classes import Django's model and form modules: only when a site uses them."""
    if name in ("HuImage", "HuImageField", "HuImageFormField", "HuImageWidget"):
        from huimages.django import fields

        return getattr(fields, name)
    if name == "client":
        from huimages.django.conf import client

        return client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
