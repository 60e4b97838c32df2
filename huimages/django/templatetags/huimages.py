"""``{% load huimages %}``: ``scaled_tag``, ``scaled_imageurl``, ``scaled_srcset``, ``scaled_picture``.

Markup is marked safe (every value in it escaped by huimages); URLs and
srcsets are plain strings, which autoescaping escapes like any other. An
unknown ID renders what the module functions return for it; nothing raises.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from huimages.core.sizes import DEFAULT_SIZE
from huimages.django.conf import helpers

register = template.Library()


@register.simple_tag
def scaled_tag(image_id: Any, size: str = DEFAULT_SIZE, **attrs: Any) -> SafeString:
    return mark_safe(helpers.scaled_tag(_id(image_id), size, **attrs))


@register.simple_tag
def scaled_imageurl(image_id: Any, size: str = DEFAULT_SIZE, format: str = "jpeg") -> str:
    return helpers.scaled_imageurl(_id(image_id), size, format=format)


@register.simple_tag
def scaled_srcset(image_id: Any, size: str = DEFAULT_SIZE, format: str = "jpeg") -> str:
    return helpers.scaled_srcset(_id(image_id), size, format=format)


@register.simple_tag
def scaled_picture(image_id: Any, size: str = DEFAULT_SIZE, **attrs: Any) -> SafeString:
    return mark_safe(helpers.scaled_picture(_id(image_id), size, **attrs))


def _id(value: Any) -> str:
    return "" if value is None else str(value)
