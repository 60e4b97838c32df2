from django.apps import AppConfig


class PhotosConfig(AppConfig):
    name = "tests.djangoapp"
    label = "photos"
    default_auto_field = "django.db.models.BigAutoField"
