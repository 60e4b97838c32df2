from django.contrib import admin
from django.urls import path

from tests.djangoapp import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("photos/new/", views.edit),
    path("photos/<int:pk>/edit/", views.edit),
    path("photos/<int:pk>/", views.show),
]
