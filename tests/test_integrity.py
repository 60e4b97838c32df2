"""Originals read back and checked (`migrate --verify`, `check --originals`), and orphans swept (`check --orphans`)."""

import os
import threading
import time
from pathlib import Path

import couchdb
import pytest
from click.testing import CliRunner

import huimages.ops.orphans
from huimages.config import Settings
from huimages.core.ids import compute_id
from huimages.ops.cli import main
from huimages.ops.orphans import Orphan, find_orphans, remove_orphan
from huimages.originals.s3 import S3Store
from huimages.serving.service import ImageService
from tests.imagetools import jpeg
from tests.servers import PouchCouch, SeaweedS3, backend_settings
from tests.test_production import legacy_image, settings_env


def embedded_runner(settings: Settings) -> CliRunner:
    return CliRunner(env={"HUIMAGES_HOME": str(settings.paths.home), "IMAGESERVERURL": "http://img.test/"})


def test_check_originals_finds_missing_and_corrupt_files(settings: Settings, service: ImageService) -> None:
    good, gone, bad = (service.ingest(jpeg(100 + n, 80)) for n in range(3))
    store = service.originals
    store.delete(gone)
    bad_path = settings.paths.originals_dir / bad[:2] / bad
    bad_path.write_bytes(bad_path.read_bytes()[:-100])  # truncated on disk
    runner = embedded_runner(settings)
    result = runner.invoke(main, ["check", "--originals"])
    assert result.exit_code == 1, result.output
    assert "originals verified: 1, repaired: 0, missing: 1, corrupt: 1" in result.stdout
    assert f"missing {gone}" in result.stdout and f"corrupt {bad}" in result.stdout
    assert good not in result.stdout
    assert service.catalog.get_live(gone) and service.catalog.get_live(bad)  # reported, never marked deleted

    service.ingest(jpeg(101, 80))  # the same bytes saved again bring the original back
    bad_path.unlink()
    service.ingest(jpeg(102, 80))
    result = runner.invoke(main, ["check", "--originals"])
    assert result.exit_code == 0, result.output
    assert "originals verified: 3, repaired: 0, missing: 0, corrupt: 0" in result.stdout


@pytest.mark.integration
def test_migrate_verify_reads_every_original_back(tmp_path: Path, seaweed: SeaweedS3, pouch: PouchCouch) -> None:
    prod = backend_settings(tmp_path / "a", s3=seaweed, couch=pouch)
    service = ImageService.from_settings(prod)
    saved = [service.ingest(jpeg(200 + n, 150)) for n in range(3)]  # in S3 only
    legacy = [legacy_image(prod, jpeg(300 + n, 150)) for n in range(3)]  # attachments in CouchDB
    runner = CliRunner(env=settings_env(prod, seaweed))
    assert runner.invoke(main, ["migrate"]).exit_code == 0
    s3 = seaweed.client()
    bucket = prod.s3.bucket
    s3.delete_object(Bucket=bucket, Key=saved[0])  # missing, no other copy: the local copy must not hide it
    s3.put_object(Bucket=bucket, Key=saved[1], Body=b"damaged")  # corrupt, no other copy
    s3.delete_object(Bucket=bucket, Key=legacy[0])  # missing, the attachment is still there
    s3.put_object(Bucket=bucket, Key=legacy[1], Body=b"damaged")  # corrupt, the attachment is still there

    result = runner.invoke(main, ["check", "--originals"])
    assert result.exit_code == 1, result.output
    assert "originals verified: 2, repaired: 2, missing: 1, corrupt: 1" in result.stdout
    assert f"missing {saved[0]}" in result.stdout and f"corrupt {saved[1]}" in result.stdout
    assert f"repaired {legacy[0]}" in result.stdout and f"repaired {legacy[1]}" in result.stdout
    store = S3Store.from_settings(prod)
    assert store.verified(legacy[0]) and store.verified(legacy[1])

    result = runner.invoke(main, ["migrate", "--verify"])  # the migration itself did not take them as copied
    assert result.exit_code == 1 and "originals verified: 4, repaired: 0, missing: 1, corrupt: 1" in result.stdout
    db = couchdb.Server(prod.couch.server)[prod.couch.db]
    assert not any(db[i].get("deleted") for i in saved + legacy)

    for n, image_id in enumerate(saved[:2]):  # the site uploads them again
        assert service.ingest(jpeg(200 + n, 150)) == image_id
    result = runner.invoke(main, ["check", "--originals"])
    assert "originals verified: 6, repaired: 0, missing: 0, corrupt: 0" in result.stdout, result.output


def orphan(service: ImageService, data: bytes) -> str:
    """An original whose catalog write never happened."""
    image_id = compute_id(data)
    service.originals.put(image_id, data, "image/jpeg")
    return image_id


def test_check_orphans_lists_and_removes_only_old_ones(settings: Settings, service: ImageService) -> None:
    kept = service.ingest(jpeg(120, 90))
    old, young = orphan(service, jpeg(121, 90)), orphan(service, jpeg(122, 90))
    two_days_ago = time.time() - 2 * 86400
    os.utime(settings.paths.originals_dir / old[:2] / old, (two_days_ago, two_days_ago))
    runner = embedded_runner(settings)
    result = runner.invoke(main, ["check", "--orphans"])
    assert result.exit_code == 1, result.output
    assert "originals without a catalog record: 2, removed: 0" in result.stdout
    assert old in result.stdout and young in result.stdout and kept not in result.stdout

    result = runner.invoke(main, ["check", "--orphans", "--delete"])
    assert f"{old}: stored 48.0 h ago, removed" in result.stdout, result.output
    assert "originals without a catalog record: 2, removed: 1" in result.stdout
    assert not service.originals.exists(old) and service.originals.exists(young) and service.originals.exists(kept)
    assert runner.invoke(main, ["check", "--delete"]).exit_code == 2  # --delete goes with --orphans


def test_a_save_racing_the_orphan_sweep_keeps_its_original(
    service: ImageService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(huimages.ops.orphans, "MIN_AGE", 0.0)
    for n in range(25):
        data = jpeg(130 + n, 90)
        image_id = orphan(service, data)
        stray = Orphan(image_id, time.time())
        start = threading.Barrier(2)

        def sweep(stray: Orphan = stray, start: threading.Barrier = start) -> None:
            start.wait()
            remove_orphan(service.catalog, service.originals, stray, service.settings.master_side)

        sweeper = threading.Thread(target=sweep)
        sweeper.start()
        start.wait()
        service.ingest(data)
        sweeper.join()
        assert service.originals.verified(image_id), f"round {n}: the save lost its original"
    assert not list(find_orphans(service.catalog, service.originals))


@pytest.mark.integration
def test_s3_orphans_and_a_stale_local_copy(tmp_path: Path, seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = backend_settings(tmp_path / "a", s3=seaweed)
    service = ImageService.from_settings(settings)
    stray = orphan(service, jpeg(140, 90))
    kept = service.ingest(jpeg(141, 90))
    assert [o.image_id for o in find_orphans(service.catalog, service.originals)] == [stray]

    monkeypatch.setattr(huimages.ops.orphans, "MIN_AGE", 0.0)
    runner = CliRunner(env=seaweed.settings_env(str(settings.s3.bucket)) | {"HUIMAGES_HOME": str(settings.paths.home)})
    result = runner.invoke(main, ["check", "--orphans", "--delete"])
    assert "originals without a catalog record: 1, removed: 1" in result.stdout, result.output
    assert not S3Store.from_settings(settings).stored(stray) and service.originals.stored(kept)

    # this host still has a local copy of the removed orphan; saving the bytes again must reach S3 all the same
    (settings.paths.originals_cache_dir / stray[:2]).mkdir(parents=True, exist_ok=True)
    (settings.paths.originals_cache_dir / stray[:2] / stray).write_bytes(jpeg(140, 90))
    assert service.ingest(jpeg(140, 90)) == stray
    assert S3Store.from_settings(settings).verified(stray)
