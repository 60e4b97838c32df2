from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from tests.djangoapp.models import Photo


class PhotoForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Photo
        fields = ("title", "image")


def edit(request: HttpRequest, pk: int | None = None) -> Any:
    photo = get_object_or_404(Photo, pk=pk) if pk else None
    form = PhotoForm(request.POST or None, request.FILES or None, instance=photo)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        return redirect(f"/photos/{saved.pk}/")
    return render(request, "photos/edit.html", {"form": form}, status=400 if form.errors else 200)


def show(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "photos/show.html", {"photo": get_object_or_404(Photo, pk=pk)})
