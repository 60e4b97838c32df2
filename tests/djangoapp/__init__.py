"""A Django project in code for tests/test_django.py: photos with an image field, their admin, a form view."""
