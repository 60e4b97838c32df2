"""The admin: a thumbnail column for ``list_display``; the change form's preview comes with the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.utils.safestring import SafeString, mark_safe

from huimages.django.conf import helpers


def thumbnail(field: str, size: str = "small", description: str | None = None) -> Callable[[Any], SafeString | str]:
    """A ``list_display`` column showing the image of ``field`` at ``size`` (an empty one shows a dash)."""

    @admin.display(description=description or field.replace("_", " "))
    def show(obj: Any) -> SafeString | str:
        value = getattr(obj, field)
        if not value:
            return "-"
        return mark_safe(helpers.scaled_tag(str(value), size, loading="lazy"))

    show.__name__ = f"{field}_thumbnail"
    return show
