"""Production backends together: S3 originals, CouchDB catalog, legacy attachments, faults."""

import dataclasses
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import couchdb
import pytest
from click.testing import CliRunner

from huimages.catalog.records import format_timestamp
from huimages.config import Paths, Settings
from huimages.core.ids import compute_id, matches
from huimages.http.app import create_app
from huimages.ops.cli import main
from huimages.originals.couchdb import LegacyFallback
from huimages.originals.s3 import S3Store
from huimages.serving.service import ImageService
from tests.imagetools import decode, encode, jpeg, pattern
from tests.servers import PouchCouch, SeaweedS3, backend_settings
from tests.wsgi import call

pytestmark = pytest.mark.integration


def settings_env(settings: Settings, s3: SeaweedS3) -> dict[str, str]:
    assert settings.s3.bucket and settings.couch.server
    return {
        **s3.settings_env(settings.s3.bucket),
        "COUCHSERVER": settings.couch.server,
        "HUIMAGES_COUCHDB_NAME": settings.couch.db,
        "HUIMAGES_HOME": str(settings.paths.home),
    }


def recovers(app: object, path: str, seconds: float = 60) -> None:
    """Retry ``path`` as a client would on 503 until it answers 200; anything else fails."""
    deadline = time.monotonic() + seconds
    while True:
        response = call(app, path)
        if response.status == 200:
            return
        assert response.status == 503 and "Retry-After" in response.headers, response.text
        assert time.monotonic() < deadline, f"still 503 after {seconds} s: {response.text}"
        time.sleep(0.5)


def legacy_image(settings: Settings, data: bytes, name: str = "image.jpeg") -> str:
    """Store an image the way old huImages did: a CouchDB document with the original attached."""
    image_id = compute_id(data)
    assert settings.couch.server
    server = couchdb.Server(settings.couch.server)
    db = server[settings.couch.db] if settings.couch.db in server else server.create(settings.couch.db)
    doc: dict[str, object] = {
        "_id": image_id,
        "ctime": format_timestamp(None),
        "mtime": format_timestamp(None),
        "title": ["legacy"],
    }
    doc["width"], doc["height"] = decode(data).size
    db.save(doc)
    db.put_attachment(doc, data, name, "image/jpeg")
    return image_id


@pytest.fixture
def prod(tmp_path: Path, seaweed: SeaweedS3, pouch: PouchCouch) -> Settings:
    return backend_settings(tmp_path / "a", s3=seaweed, couch=pouch)


def test_backends_chosen_by_settings(prod: Settings) -> None:
    service = ImageService.from_settings(prod)
    assert isinstance(service.originals, LegacyFallback)
    assert isinstance(service.originals.primary, S3Store)
    assert service.catalog.name == "couchdb catalog"
    assert all(item["ok"] for item in service.health().values())


def test_legacy_original_is_served_and_copied_to_s3(prod: Settings) -> None:
    data = jpeg(500, 400)
    image_id = legacy_image(prod, data)
    service = ImageService.from_settings(prod)
    response = call(create_app(service=service), f"/small/{image_id}.jpeg")
    assert response.status == 200 and decode(response.body).size == (200, 160)
    s3 = service.originals.primary  # type: ignore[attr-defined]
    assert s3.read_back(image_id) == data  # copied, private, verified
    assert service.catalog.get(image_id)["_attachments"]  # the attachment stays until `migrate --delete-attachments`


def test_legacy_attachment_with_wrong_bytes_is_refused(prod: Settings) -> None:
    image_id = legacy_image(prod, jpeg(100, 100))
    db = couchdb.Server(prod.couch.server)[prod.couch.db]
    doc = db[image_id]
    db.put_attachment(doc, jpeg(101, 100), "image.jpeg", "image/jpeg")  # replaced by other bytes
    service = ImageService.from_settings(prod)
    response = call(create_app(service=service), f"/small/{image_id}.jpeg")
    assert response.status == 422 and f"the stored original of {image_id} is corrupt" in response.text
    assert "couch" not in response.text.lower()  # the log names the object, not the answer
    assert not service.originals.primary.exists(image_id)  # type: ignore[attr-defined]
    assert not service.catalog.get(image_id).get("deleted")


def test_a_corrupt_s3_copy_is_repaired_from_the_legacy_attachment(
    prod: Settings, seaweed: SeaweedS3, caplog: pytest.LogCaptureFixture
) -> None:
    data = jpeg(400, 300)
    image_id = legacy_image(prod, data)
    # an earlier copy to S3 went bad: other bytes under the ID (S3's own checksum cannot be sent for them)
    seaweed.client().put_object(Bucket=prod.s3.bucket, Key=image_id, Body=b"not these bytes")
    service = ImageService.from_settings(prod)
    app = create_app(service=service)
    response = call(app, f"/o/{image_id}.jpeg")
    assert response.status == 200 and response.body == data
    assert seaweed.client().get_object(Bucket=prod.s3.bucket, Key=image_id)["Body"].read() == data  # repaired
    assert any("corrupt object" in r.message and "repaired" in r.message for r in caplog.records)

    other = service.ingest(jpeg(401, 300))  # no legacy attachment to fall back on
    seaweed.client().put_object(Bucket=prod.s3.bucket, Key=other, Body=b"broken")
    service.originals.primary.drop_local(other)  # type: ignore[attr-defined]
    with caplog.at_level("ERROR"):
        broken = call(app, f"/o/{other}.jpeg")
    assert broken.status == 422 and "corrupt" in broken.text
    assert any(other in r.getMessage() and str(prod.s3.bucket) in r.getMessage() for r in caplog.records)
    assert not service.catalog.get(other).get("deleted")


def test_two_servers_share_bucket_and_catalog(prod: Settings, tmp_path: Path) -> None:
    first = ImageService.from_settings(prod)
    second = ImageService.from_settings(dataclasses.replace(prod, paths=Paths.under(tmp_path / "b")))
    assert first.cache.root != second.cache.root
    image_id = first.ingest(jpeg(640, 480), title="from the first")
    response = call(create_app(service=second), f"/square/{image_id}.jpeg")
    assert response.status == 200 and decode(response.body).size == (75, 75)
    assert second.catalog.get(image_id)["title"] == ["from the first"]


def test_a_new_host_renders_from_the_shared_master(prod: Settings, tmp_path: Path, seaweed: SeaweedS3) -> None:
    """Masters live in the bucket: a host that never saw an image downloads its master, not its original."""
    first = ImageService.from_settings(prod)
    image_id = first.ingest(encode(pattern(3000, 2000), "JPEG", quality=95))
    keys = {o["Key"] for o in seaweed.client().list_objects_v2(Bucket=prod.s3.bucket)["Contents"]}
    assert keys == {image_id, f"masters/2048/{image_id}"}
    seaweed.client().delete_object(Bucket=prod.s3.bucket, Key=image_id)  # only the master is left in S3
    second = ImageService.from_settings(dataclasses.replace(prod, paths=Paths.under(tmp_path / "b")))
    response = call(create_app(service=second), f"/medium/{image_id}.jpeg")
    assert response.status == 200 and decode(response.body).size == (480, 320)
    assert (tmp_path / "b" / "originals-cache" / "masters" / "2048" / image_id).is_file()
    assert not (tmp_path / "b" / "originals-cache" / image_id[:2] / image_id).exists()  # no original downloaded


def test_migrate_copies_verifies_and_resumes(prod: Settings, seaweed: SeaweedS3) -> None:
    ids = [legacy_image(prod, jpeg(200 + n, 150)) for n in range(12)]
    broken = legacy_image(prod, jpeg(90, 90))
    db = couchdb.Server(prod.couch.server)[prod.couch.db]
    db.put_attachment(db[broken], b"not the bytes of this ID", "image.jpeg", "image/jpeg")
    runner = CliRunner(env=settings_env(prod, seaweed))
    result = runner.invoke(main, ["migrate", "--batch", "5"])
    assert result.exit_code == 1, result.output
    assert "copied: 12" in result.stdout and "failed: 1" in result.stdout and "sha1" in result.stdout
    s3 = S3Store.from_settings(prod)
    assert all(s3.verified(i) for i in ids)
    assert all(db[i].get("_attachments") for i in ids)  # nothing deleted without the flag

    # one copy goes missing and one goes bad: a rerun must not take them as copied
    seaweed.client().delete_object(Bucket=prod.s3.bucket, Key=ids[0])
    seaweed.client().put_object(Bucket=prod.s3.bucket, Key=ids[1], Body=b"damaged")
    result = runner.invoke(main, ["migrate"])
    assert "copied: 2" in result.stdout and "already in the s3 originals: 10" in result.stdout, result.output
    assert s3.verified(ids[0]) and s3.verified(ids[1])

    result = runner.invoke(main, ["migrate", "--delete-attachments"])
    assert "copied: 0" in result.stdout and "already in the s3 originals: 12" in result.stdout
    assert "attachments deleted: 12" in result.stdout
    assert not any(db[i].get("_attachments") for i in ids)
    assert db[broken].get("_attachments")  # a failed one keeps its attachment


@pytest.mark.faults
def test_migration_killed_midway_then_rerun(prod: Settings, seaweed: SeaweedS3) -> None:
    ids = {legacy_image(prod, jpeg(300 + n, 200)) for n in range(60)}
    env = {**os.environ, **settings_env(prod, seaweed), "PYTHONFAULTHANDLER": "1"}  # a crash shows its stack
    argv = [sys.executable, "-m", "huimages", "migrate", "--delete-attachments", "--batch", "10", "--workers", "2"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    client = seaweed.client()
    deadline = time.monotonic() + 60
    seed = random.randrange(1 << 30)
    after = random.Random(seed).randint(1, 40)  # objects (originals and masters) copied before the kill
    while client.list_objects_v2(Bucket=prod.s3.bucket).get("KeyCount", 0) < after:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    db = couchdb.Server(prod.couch.server)[prod.couch.db]
    listed = client.list_objects_v2(Bucket=prod.s3.bucket).get("Contents", [])
    keys = {o["Key"] for o in listed if not o["Key"].startswith("masters/")}
    assert 0 < len(keys) < len(ids), f"seed {seed}"
    s3 = S3Store.from_settings(prod)
    for image_id in ids:  # an attachment is gone only where its copy verifies
        if not db[image_id].get("_attachments"):
            assert s3.verified(image_id)

    rerun = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    listing = [o["Key"] for o in client.list_objects_v2(Bucket=prod.s3.bucket)["Contents"]]
    assert sorted(k for k in listing if not k.startswith("masters/")) == sorted(ids)  # every original exactly once
    assert {k.rsplit("/", 1)[1] for k in listing if k.startswith("masters/2048/")} <= ids  # and masters of copies
    assert all(matches(i, s3.read_back(i) or b"") for i in ids)
    assert not any(db[i].get("_attachments") for i in ids)


@pytest.mark.faults
def test_s3_down_then_back(prod: Settings, seaweed: SeaweedS3) -> None:
    service = ImageService.from_settings(prod)
    app = create_app(service=service)
    image_id = service.ingest(jpeg(400, 300))
    assert call(app, f"/small/{image_id}.jpeg").status == 200
    service.originals.primary.drop_local(image_id)  # type: ignore[attr-defined]
    local_master = prod.paths.originals_cache_dir / "masters" / "2048" / image_id
    seaweed.kill()
    try:
        assert call(app, f"/100x100/{image_id}.jpeg").status == 200  # the local copy of the master needs no S3
        local_master.unlink()
        miss = call(app, f"/medium/{image_id}.jpeg")
        assert miss.status == 503 and "Retry-After" in miss.headers
        assert "no answer from bucket" in miss.text
        assert call(app, f"/small/{image_id}.jpeg").status == 200  # hits need no backend
        assert not service.catalog.get(image_id).get("deleted")
        result = CliRunner(env=settings_env(prod, seaweed)).invoke(main, ["check"])
        assert result.exit_code == 1 and "no answer from bucket" in result.stdout
    finally:
        seaweed.start()
    recovers(app, f"/medium/{image_id}.jpeg")  # the same app, not restarted


@pytest.mark.faults
def test_couchdb_down_then_back(prod: Settings, pouch: PouchCouch) -> None:
    service = ImageService.from_settings(prod)
    app = create_app(service=service)
    image_id = service.ingest(jpeg(400, 300))
    assert call(app, f"/small/{image_id}.jpeg").status == 200
    pouch.kill()
    try:
        miss = call(app, f"/medium/{image_id}.jpeg")
        assert miss.status == 503 and "Retry-After" in miss.headers
        assert "no answer from database" in miss.text
        assert call(app, f"/small/{image_id}.jpeg").status == 200
        assert call(app, "/healthz").status == 503
    finally:
        pouch.start()
    recovers(app, f"/medium/{image_id}.jpeg")
    assert not service.catalog.get(image_id).get("deleted")


def test_wrong_credentials_are_a_clear_error(prod: Settings, seaweed: SeaweedS3) -> None:
    env = settings_env(prod, seaweed) | {"AWS_SECRET_ACCESS_KEY": "wrong"}
    result = CliRunner(env=env).invoke(main, ["check"])
    assert result.exit_code == 1
    assert "refused the credentials" in result.stdout and "Traceback" not in result.output
    assert "wrong" not in result.output  # the secret is never echoed
    service = ImageService.from_settings(Settings.from_env(env))
    with pytest.raises(Exception, match="refused the credentials"):
        service.ingest(jpeg(50, 50))
    assert service.catalog.count() == 0  # nothing recorded for an original that was not stored
