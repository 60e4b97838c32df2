"""One contract for every originals store; each implementation is a fixture param."""

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from huimages.core.ids import compute_id
from huimages.errors import ImageNotFound, InvalidImageId, StorageError
from huimages.originals import open_primary
from huimages.originals.base import OriginalsStore
from huimages.originals.filesystem import FilesystemStore
from tests.servers import SeaweedS3, backend_settings


@pytest.fixture(params=["filesystem", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OriginalsStore]:
    if request.param == "filesystem":
        yield FilesystemStore(tmp_path / "originals")
    else:
        seaweed = request.getfixturevalue("seaweed")
        yield open_primary(backend_settings(tmp_path, s3=seaweed))


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


def test_s3_objects_are_private_and_typed(tmp_path: Path, seaweed: SeaweedS3) -> None:
    from huimages.originals.s3 import S3Store

    store = open_primary(backend_settings(tmp_path, s3=seaweed))
    assert isinstance(store, S3Store)
    data = b"png bytes, content-addressed"
    image_id = compute_id(data)
    store.put(image_id, data, "image/png")
    s3, bucket = seaweed.client(), store.bucket.name
    head = s3.head_object(Bucket=bucket, Key=image_id)
    assert head["ContentType"] == "image/png"
    grants = s3.get_object_acl(Bucket=bucket, Key=image_id)["Grants"]
    assert all(
        "AllUsers" not in str(g.get("Grantee")) and "AuthenticatedUsers" not in str(g.get("Grantee")) for g in grants
    )
    # a second size needs no download: the original is kept locally
    s3.delete_object(Bucket=bucket, Key=image_id)
    assert store.get(image_id) == data
    store.drop_local(image_id)
    with pytest.raises(ImageNotFound):
        store.get(image_id)


def test_s3_wrong_credentials_and_missing_bucket_are_clear(tmp_path: Path, seaweed: SeaweedS3) -> None:
    settings = backend_settings(tmp_path, s3=seaweed)
    wrong = open_primary(dataclasses.replace(settings, s3=dataclasses.replace(settings.s3, secret_access_key="wrong")))
    with pytest.raises(StorageError, match="refused the credentials"):
        wrong.get(compute_id(b"x"))
    with pytest.raises(StorageError, match="refused the credentials"):
        wrong.ping()
    missing = open_primary(
        dataclasses.replace(settings, s3=dataclasses.replace(settings.s3, bucket="no-such-bucket-here"))
    )
    with pytest.raises(StorageError, match="does not exist"):
        missing.ping()
