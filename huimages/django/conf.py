"""The client of a Django site: from ``settings.HUIMAGES`` (the environment variables' names), else the environment."""

from __future__ import annotations

import os
import threading
from typing import Any

from huimages.client import Client
from huimages.client.helpers import TemplateHelpers
from huimages.config import Settings

_lock = threading.Lock()
_client: Client | None = None


def client() -> Client:
    """The site's client, made on first use and again after ``HUIMAGES`` changes (``override_settings``)."""
    global _client
    with _lock:
        if _client is None:
            _client = Client(Settings.from_env(_environment()))
        return _client


def _environment() -> dict[str, str]:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    given: Any = getattr(settings, "HUIMAGES", None)
    if given is None:
        return dict(os.environ)
    if not isinstance(given, dict) or not all(isinstance(key, str) for key in given):
        raise ImproperlyConfigured("HUIMAGES is a dict of huimages settings by their environment variable names")
    return {key: str(value) for key, value in given.items()}


def reset() -> None:
    global _client
    with _lock:
        _client = None


def listen() -> None:
    """Make the client again when a test (or a reload) changes ``HUIMAGES``."""
    from django.core.signals import setting_changed

    def changed(setting: str, **_: Any) -> None:
        if setting == "HUIMAGES":
            reset()

    setting_changed.connect(changed, weak=False, dispatch_uid="huimages-settings")


#: The four helpers over the site's client: what the module functions return, never an exception.
helpers = TemplateHelpers(client)
