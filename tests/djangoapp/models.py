from __future__ import annotations

from django.db import models

from huimages.django import HuImageField


class Photo(models.Model):
    title: models.CharField[str, str] = models.CharField(max_length=200)
    image = HuImageField(null=True, blank=True, db_index=True)
    cover = HuImageField(blank=True)

    class Meta:
        app_label = "photos"

    def __str__(self) -> str:
        return str(self.title)
