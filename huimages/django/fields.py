"""``HuImageField``: an image ID in a model, uploaded through the site's client; its form field and widget.

The column holds the ID (34 characters). On an instance the value is a
``HuImage``, a ``str`` with ``url``, ``tag``, ``picture`` and ``dimensions``.
The form field takes an upload and stores it through the client (so through
the images API when the client is remote) while the form is validated; a
file that is not an image is refused with the client's own message. Clearing
the field clears the field only: IDs are content addresses, and another
record may show the same image.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.query_utils import DeferredAttribute
from django.utils.safestring import SafeString, mark_safe

from huimages.core.ids import ID_LENGTH
from huimages.core.sizes import DEFAULT_SIZE
from huimages.django.conf import client, helpers
from huimages.errors import HuImagesError, ImageTooLarge, InvalidImage


class HuImage(str):
    """An image ID with its helpers (an unknown image renders as the module functions render it)."""

    __slots__ = ()

    def url(self, size: str = DEFAULT_SIZE, *, format: str = "jpeg") -> str:
        return helpers.scaled_imageurl(str(self), size, format=format)

    def tag(self, size: str = DEFAULT_SIZE, **attrs: Any) -> SafeString:
        return mark_safe(helpers.scaled_tag(str(self), size, **attrs))

    def picture(self, size: str = DEFAULT_SIZE, **options: Any) -> SafeString:
        return mark_safe(helpers.scaled_picture(str(self), size, **options))

    def srcset(self, size: str = DEFAULT_SIZE, **options: Any) -> str:
        return helpers.scaled_srcset(str(self), size, **options)

    def dimensions(self, size: str = DEFAULT_SIZE) -> tuple[int, int] | tuple[None, None]:
        return helpers.scaled_dimensions(str(self), size)


class _Descriptor(DeferredAttribute):
    """Values read from the database or assigned are handed out as ``HuImage``."""

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        value = super().__get__(instance, cls)
        if instance is None or not value or isinstance(value, HuImage):
            return value
        wrapped = HuImage(value)
        instance.__dict__[self.field.attname] = wrapped
        return wrapped

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = value


class HuImageField(models.CharField):  # type: ignore[type-arg]
    """An image of the site's huimages store, by ID."""

    descriptor_class = _Descriptor
    description = "An image stored in huimages (its ID)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", ID_LENGTH)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, _, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == ID_LENGTH:
            del kwargs["max_length"]
        return name, "huimages.django.HuImageField", args, kwargs

    def formfield(self, **kwargs: Any) -> Any:
        defaults = {"form_class": HuImageFormField, "required": not self.blank, **kwargs}
        defaults.pop("max_length", None)  # the file field's would bound the upload's file name
        widget = defaults.get("widget")
        if isinstance(widget, forms.TextInput) or (isinstance(widget, type) and issubclass(widget, forms.TextInput)):
            del defaults["widget"]  # the admin's text input for every CharField: an image takes an upload
        return models.Field.formfield(self, **defaults)

    def save_form_data(self, instance: Any, data: Any) -> None:
        if data is None:  # no upload, nothing cleared: the value stays
            return
        setattr(instance, self.attname, data or (None if self.null else ""))


class HuImageWidget(forms.ClearableFileInput):
    """A file input for images, with a preview of the current one and a box that clears the field."""

    template_name = "huimages/widget.html"
    preview_size = "small"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"accept": "image/*", **(attrs or {})})

    def is_initial(self, value: Any) -> bool:
        return bool(value)

    def format_value(self, value: Any) -> Any:
        return value if self.is_initial(value) else None

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        shown = context["widget"]["value"]
        preview = helpers.scaled_tag(str(shown), self.preview_size, class_="huimages-preview") if shown else ""
        context["widget"]["preview"] = mark_safe(preview)
        return context


class HuImageFormField(forms.FileField):
    """Takes an upload, stores it through the site's client and cleans to its ID."""

    widget = HuImageWidget
    default_error_messages: ClassVar[dict[str, Any]] = {
        "invalid_image": "%(reason)s",
        "unavailable": "The image could not be stored now (%(reason)s). Try again.",
    }

    def to_python(self, data: Any) -> Any:  # the ID of the stored upload, or None
        if data in self.empty_values:
            return None
        try:
            content = data.read()
        except AttributeError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None
        if not content:
            raise ValidationError(self.error_messages["empty"], code="empty")
        try:
            return client().save_image(
                content, contenttype=getattr(data, "content_type", None), filename=getattr(data, "name", "") or ""
            )
        except (InvalidImage, ImageTooLarge) as exc:
            raise ValidationError(self.error_messages["invalid_image"], "invalid_image", {"reason": exc}) from exc
        except HuImagesError as exc:
            raise ValidationError(self.error_messages["unavailable"], "unavailable", {"reason": exc}) from exc
