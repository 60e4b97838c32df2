from __future__ import annotations

from pathlib import Path

import pytest

from huimages.client import Client
from huimages.config import Settings
from huimages.service import ImageService
from huimages.web import ImageApp, create_app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "data", server_url="http://img.test/")


@pytest.fixture
def service(settings: Settings) -> ImageService:
    return ImageService.from_settings(settings)


@pytest.fixture
def client(service: ImageService) -> Client:
    return Client(service=service)


@pytest.fixture
def app(service: ImageService) -> ImageApp:
    return create_app(service=service)
