from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from huimages.client import Client
from huimages.config import Settings
from huimages.http.app import ImageApp, create_app
from huimages.serving.service import ImageService
from tests.servers import PouchCouch, SeaweedS3


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.at(tmp_path / "data", server_url="http://img.test/")


@pytest.fixture
def service(settings: Settings) -> ImageService:
    return ImageService.from_settings(settings)


@pytest.fixture
def client(service: ImageService) -> Client:
    return Client(service=service)


@pytest.fixture
def app(service: ImageService) -> ImageApp:
    return create_app(service=service)


# -- real backend servers (session-wide; tests use their own bucket or database) --


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    server = SeaweedS3(tmp_path_factory.mktemp("seaweed"))
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def pouch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PouchCouch]:
    server = PouchCouch(tmp_path_factory.mktemp("pouch"))
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's server on a free loopback port: CloudFront's API, and an S3 that keeps object ACLs.

    (SeaweedFS, the S3 server of the other tests, ignores ACLs.)
    """
    from moto.server import ThreadedMotoServer

    from tests.servers import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
