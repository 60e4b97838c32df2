"""One contract for every originals store; each implementation is a fixture param."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from huimages.errors import ImageNotFound, InvalidImageId, StorageError
from huimages.ids import compute_id
from huimages.originals.base import OriginalsStore
from huimages.originals.filesystem import FilesystemStore


@pytest.fixture(params=["filesystem"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OriginalsStore]:
    if request.param == "filesystem":
        yield FilesystemStore(tmp_path / "originals")


def test_put_get_roundtrip(store: OriginalsStore) -> None:
    data = b"\xff\xd8 not checked here " * 100
    image_id = compute_id(data)
    assert not store.exists(image_id)
    store.put(image_id, data, "image/jpeg")
    assert store.exists(image_id)
    assert store.get(image_id) == data
    assert store.length(image_id) == len(data)
    store.put(image_id, data, "image/jpeg")  # idempotent
    assert store.get(image_id) == data


def test_missing_is_not_found(store: OriginalsStore) -> None:
    image_id = compute_id(b"never stored")
    with pytest.raises(ImageNotFound):
        store.get(image_id)
    with pytest.raises(ImageNotFound):
        store.length(image_id)
    store.delete(image_id)  # deleting what is not there is fine


def test_bytes_must_match_their_id(store: OriginalsStore) -> None:
    with pytest.raises(StorageError, match="sha1"):
        store.put(compute_id(b"a"), b"b", "image/jpeg")
    assert not store.exists(compute_id(b"a"))


def test_ids_are_validated(store: OriginalsStore) -> None:
    with pytest.raises(InvalidImageId):
        store.get("../../etc/passwd")


def test_delete(store: OriginalsStore) -> None:
    data = b"delete me"
    image_id = compute_id(data)
    store.put(image_id, data, "image/png")
    store.delete(image_id)
    assert not store.exists(image_id)


def test_ping(store: OriginalsStore) -> None:
    store.ping()
