"""huimages in Jinja2 (Flask, Django's Jinja2 backend): the four template helpers.

``env.add_extension("huimages.jinja.HuImagesExtension")`` makes
``scaled_tag``, ``scaled_imageurl``, ``scaled_srcset`` and ``scaled_picture``
globals of the environment, over the default client (the
environment's settings), or over Django's when ``huimages.django`` is
installed; ``install(env, client)`` names a client. Markup is ``Markup``
(every value in it escaped by huimages); URLs and srcsets are plain strings
that autoescaping escapes. An unknown ID renders what the module functions
return for it; nothing raises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jinja2 import Environment
from jinja2.ext import Extension
from markupsafe import Markup

from huimages.client.helpers import TemplateHelpers
from huimages.core.sizes import DEFAULT_SIZE

if TYPE_CHECKING:
    from huimages.client import Client


class HuImagesExtension(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        install(environment)


def install(environment: Environment, client: Client | None = None) -> None:
    """Add the four helpers to ``environment``'s globals, over ``client`` (default: the site's, see above)."""
    helpers = TemplateHelpers(_site_client if client is None else (lambda: client))

    def scaled_tag(image_id: Any, size: str = DEFAULT_SIZE, **attrs: Any) -> Markup:
        return Markup(helpers.scaled_tag(_id(image_id), size, **attrs))

    def scaled_imageurl(image_id: Any, size: str = DEFAULT_SIZE, format: str = "jpeg") -> str:
        return helpers.scaled_imageurl(_id(image_id), size, format=format)

    def scaled_srcset(image_id: Any, size: str = DEFAULT_SIZE, format: str = "jpeg") -> str:
        return helpers.scaled_srcset(_id(image_id), size, format=format)

    def scaled_picture(image_id: Any, size: str = DEFAULT_SIZE, **attrs: Any) -> Markup:
        return Markup(helpers.scaled_picture(_id(image_id), size, **attrs))

    environment.globals.update(
        scaled_tag=scaled_tag,
        scaled_imageurl=scaled_imageurl,
        scaled_srcset=scaled_srcset,
        scaled_picture=scaled_picture,
    )


def _site_client() -> Client:
    """Django's client when ``huimages.django`` is installed, else the module functions' default client."""
    try:
        from django.apps import apps

        if apps.ready and apps.is_installed("huimages.django"):
            from huimages.django.conf import client

            return client()
    except ImportError:  # no Django: a Flask site, say
        pass
    from huimages.client.compat import default_client

    return default_client()


def _id(value: Any) -> str:
    return "" if value is None else str(value)
