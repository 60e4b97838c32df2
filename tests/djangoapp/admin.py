from django.contrib import admin

from huimages.django.admin import thumbnail
from tests.djangoapp.models import Photo


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("title", thumbnail("image"))
