"""The Django app of huimages (``"huimages.django"`` in ``INSTALLED_APPS``)."""

from __future__ import annotations

from django.apps import AppConfig


class HuImagesConfig(AppConfig):
    name = "huimages.django"
    label = "huimages"
    verbose_name = "huimages"

    def ready(self) -> None:
        from huimages.django import conf

        conf.listen()
