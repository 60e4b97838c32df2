"""Switching a huImages deployment: its records, its public originals, its lighttpd config, deletes across hosts."""

import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path

import couchdb
import pytest
from click.testing import CliRunner

from huimages.client import Client
from huimages.config import Paths, Settings
from huimages.core.ids import compute_id
from huimages.http.app import create_app
from huimages.http.fronts.lighttpd import find_lighttpd, missing_parts
from huimages.ops.cli import main
from tests.imagetools import decode, jpeg, pattern, with_orientation
from tests.servers import REPO, PouchCouch, SeaweedS3, backend_settings, free_port, get, running
from tests.test_production import legacy_image, settings_env
from tests.wsgi import call

pytestmark = pytest.mark.integration


def test_public_originals_are_reported_and_made_private(tmp_path: Path, moto_server: str) -> None:
    import boto3

    env = {
        "HUIMAGES_HOME": str(tmp_path),
        "S3BUCKET": "originals",
        "AWS_ENDPOINT_URL_S3": moto_server,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }
    s3 = boto3.session.Session().client(
        "s3", endpoint_url=moto_server, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    s3.create_bucket(Bucket="originals")
    client = Client(Settings.from_env(env))
    private = client.save_image(jpeg(100, 80))
    public = [compute_id(data) for data in (jpeg(101, 80), jpeg(102, 80))]
    for image_id, data in zip(public, (jpeg(101, 80), jpeg(102, 80)), strict=True):
        s3.put_object(Bucket="originals", Key=image_id, Body=data, ACL="public-read")  # as huImages' make_public()
    runner = CliRunner(env=env)

    result = runner.invoke(main, ["check"])
    assert result.exit_code == 1
    assert "2 of a sample of 3 originals are readable by anyone" in result.output
    assert "huimages migrate --make-private" in result.output
    assert runner.invoke(main, ["check", "--all"]).exit_code == 1

    result = runner.invoke(main, ["migrate", "--make-private"])
    assert result.exit_code == 0, result.output
    assert "originals made private: 2 of 3" in result.output
    again = runner.invoke(main, ["migrate", "--make-private"])
    assert "originals made private: 0 of 3" in again.output  # idempotent
    result = runner.invoke(main, ["check", "--all"])
    assert result.exit_code == 0, result.output
    assert "none of all 3 originals" in result.output
    grants = s3.get_object_acl(Bucket="originals", Key=public[0])["Grants"]
    assert all("AllUsers" not in str(g["Grantee"]) for g in grants)
    assert private


def test_migrate_corrects_records_written_by_huimages(tmp_path: Path, seaweed: SeaweedS3, pouch: PouchCouch) -> None:
    prod = backend_settings(tmp_path, s3=seaweed, couch=pouch)
    rotated = with_orientation(pattern(600, 400), 6)  # stored 400x600, shown 600x400
    rotated_id = legacy_image(prod, rotated, "turned.jpg")
    upright_id = legacy_image(prod, jpeg(300, 200))
    db = couchdb.Server(prod.couch.server)[prod.couch.db]
    assert (db[rotated_id]["width"], db[rotated_id]["height"]) == (400, 600)  # as huImages recorded it

    result = CliRunner(env=settings_env(prod, seaweed)).invoke(main, ["migrate"])
    assert result.exit_code == 0, result.output
    assert "copied: 2" in result.output
    assert "records of huImages corrected: 2 of 2" in result.output
    fixed = db[rotated_id]
    assert (fixed["width"], fixed["height"], fixed["content_type"]) == (600, 400, "image/jpeg")
    assert fixed["length"] == len(rotated) and fixed["title"] == ["legacy"]
    assert db[upright_id]["length"] > 0
    client = Client(prod)
    assert client.scaled_dimensions(rotated_id, "small") == (240, 160)
    assert client.get_imagedoc(rotated_id)["_attachments"]  # attachments stay without --delete-attachments
    rerun = CliRunner(env=settings_env(prod, seaweed)).invoke(main, ["migrate"])
    assert "records of huImages corrected: 0 of 0" in rerun.output


def test_huimages_example_config_shape(tmp_path: Path, seaweed: SeaweedS3, pouch: PouchCouch) -> None:
    """huImages' own lighttpd.conf, only paths and ports changed: 404 handler to /generate, bin-path server.py."""
    problems = missing_parts()
    if problems:  # never a skip: ./scripts/test installs lighttpd
        pytest.fail("; ".join(problems))
    checkout = tmp_path / "huImages"  # laid out as huImages' checkout: <root>/huimages/server.py, <root>/cache
    shutil.copytree(REPO / "huimages", checkout / "huimages", ignore=shutil.ignore_patterns("__pycache__"))
    (checkout / "cache").mkdir()
    bucket = seaweed.new_bucket()
    dbname = pouch.new_database()
    port = free_port()
    conf = tmp_path / "lighttpd.conf"
    conf.write_text(
        f"""
server.modules = ( "mod_access", "mod_status", "mod_fastcgi", "mod_expire", "mod_accesslog" )
server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{checkout}/cache/"
server.errorlog = "{tmp_path}/error.log"
accesslog.filename = "{tmp_path}/access.log"
dir-listing.activate = "disable"
server.error-handler-404 = "/generate"
server.pid-file = "{tmp_path}/lighttpd.pid"
expire.url = ( "" => "access 6 months" )
static-file.etags = "disable"
mimetype.assign = ( ".gif" => "image/gif", ".png" => "image/png", "" => "image/jpeg" )
fastcgi.server = ( "/generate" => ( "imageserver" => (
    "socket" => "{tmp_path}/fastcgi.socket",
    "bin-path" => "{checkout}/huimages/server.py",
    "bin-environment" => (
        "AWS_ACCESS_KEY_ID" => "{seaweed.ACCESS_KEY}",
        "AWS_SECRET_ACCESS_KEY" => "{seaweed.SECRET_KEY}",
        "AWS_ENDPOINT_URL_S3" => "{seaweed.endpoint}",
        "HUIMAGESS3BUCKET" => "{bucket}",
        "HUIMAGESCOUCHSERVER" => "{pouch.url}",
        "HUIMAGES_COUCHDB_NAME" => "{dbname}",
    ),
    "check-local" => "disable",
    "min-procs" => 1,
    "max-procs" => 2,
    "idle-timeout" => 300,
    "allow-x-send-file" => "enable",
)))
"""
    )
    site = Settings.from_env(
        {
            "HUIMAGES_HOME": str(checkout),
            "HUIMAGESS3BUCKET": bucket,
            "HUIMAGESCOUCHSERVER": pouch.url,
            "HUIMAGES_COUCHDB_NAME": dbname,
            **{k: v for k, v in seaweed.settings_env(bucket).items() if k != "S3BUCKET"},
        }
    )
    assert site.s3.bucket == bucket and site.couch.server == pouch.url
    client = Client(site)
    image_id = client.save_image(jpeg(800, 600), title="Shop window")
    legacy_id = legacy_image(site, jpeg(640, 480), "old_photo.jpg")
    lighttpd = find_lighttpd()
    assert lighttpd
    # The script runs through its #!/usr/bin/env python3 line: this venv's python comes first on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    with running([lighttpd, "-D", "-f", str(conf)], port, tmp_path / "lighttpd.out", {"PATH": path}):
        for path, size in (
            (f"/240x160/{image_id}/Shop-window.jpeg", (213, 160)),
            (f"/240x160/{image_id}.jpeg", (213, 160)),
            (f"/75x75!/{legacy_id}/old_photo.jpeg", (75, 75)),
            (f"/o/{legacy_id}.jpeg", (640, 480)),
        ):
            status, headers, body = get(port, path)
            assert status == 200, (path, body[:300])
            assert decode(body).size == size
        assert (checkout / "cache" / "240x160" / f"{image_id}.jpeg").is_file()  # ../cache, as huImages found it
        status, headers, _ = get(port, f"/240x160/{image_id}.jpeg")  # a static hit now
        assert status == 200 and headers["cache-control"] == "max-age=15552000"  # its expire.url: a static hit
        assert get(port, f"/small/{'A' * 32}01.jpeg")[0] == 404
        assert get(port, "/nonsense")[0] == 404


def test_delete_reaches_every_host_and_the_cdn(tmp_path: Path, seaweed: SeaweedS3, pouch: PouchCouch) -> None:
    cdn_bucket = seaweed.new_bucket()
    a = backend_settings(tmp_path / "a", s3=seaweed, couch=pouch, CDN_BUCKET=cdn_bucket, CDN_URL="https://cdn.test")
    b = dataclasses.replace(a, paths=Paths.under(tmp_path / "b"))  # another image server: its own disk cache
    host_a, host_b = Client(a), Client(b)
    image_id = host_a.save_image(jpeg(700, 500), title="to be deleted")
    legacy_id = legacy_image(a, jpeg(300, 300))
    app_a, app_b = create_app(service=host_a.service), create_app(service=host_b.service)
    for app in (app_a, app_b):
        for target in (image_id, legacy_id):
            assert call(app, f"/small/{target}.jpeg").status == 200
    assert host_a.service.publisher is not None
    assert host_a.service.publisher.run().uploaded == 2
    cdn_keys = {o["Key"] for o in seaweed.client().list_objects_v2(Bucket=cdn_bucket).get("Contents", [])}
    assert cdn_keys == {f"240x160/1/{image_id}.jpeg", f"240x160/1/{legacy_id}.jpeg"}

    result = CliRunner(env=settings_env(a, seaweed) | {"CDN_BUCKET": cdn_bucket, "CDN_URL": "https://cdn.test"}).invoke(
        main, ["delete", image_id, legacy_id, "A" * 32 + "01"]
    )
    assert result.exit_code == 0, result.output
    for target in (image_id, legacy_id):
        assert host_a.service.catalog.find(target) is None
        assert not (a.paths.cache_dir / "240x160" / f"{target}.jpeg").exists()
        assert seaweed.client().list_objects_v2(Bucket=a.s3.bucket, Prefix=target).get("KeyCount", 0) == 0
        assert call(app_a, f"/small/{target}.jpeg").status == 404
    assert seaweed.client().list_objects_v2(Bucket=cdn_bucket).get("KeyCount", 0) == 0
    counts = host_a.service.publisher.store.queue_stats().counts
    assert counts == {"queued": 0, "parked": 0, "deleting": 0}
    assert legacy_id not in couchdb.Server(a.couch.server)[a.couch.db]  # the legacy attachment went with its doc

    # host b still has the files until its sweep (cron); lighttpd would serve them until then
    assert (b.paths.cache_dir / "240x160" / f"{image_id}.jpeg").is_file()
    result = CliRunner(env=settings_env(b, seaweed)).invoke(main, ["sweep"])
    assert result.exit_code == 0, result.output
    assert "2 cached derivatives of deleted images removed" in result.output
    assert not (b.paths.cache_dir / "240x160" / f"{image_id}.jpeg").exists()
    assert call(app_b, f"/small/{image_id}.jpeg").status == 404
    assert "0 cached" in CliRunner(env=settings_env(b, seaweed)).invoke(main, ["sweep"]).output  # it remembers


def test_queue_add_cached(tmp_path: Path, seaweed: SeaweedS3) -> None:
    """A site with a warm cache switches the CDN on: its cached derivatives are queued, not rendered again."""
    before = Client(Settings.from_env({"HUIMAGES_HOME": str(tmp_path)}))
    ids = [before.save_image(jpeg(300 + n, 200)) for n in range(3)]
    app = create_app(service=before.service)
    for image_id in ids:
        assert call(app, f"/small/{image_id}.jpeg").status == 200
        assert call(app, f"/o/{image_id}.jpeg").status == 200
    assert call(app, f"/50x50!/{ids[0]}.jpeg").status == 200
    env = {
        "HUIMAGES_HOME": str(tmp_path),
        "CDN_BUCKET": seaweed.new_bucket(),
        "CDN_URL": "https://cdn.test",
        **{k: v for k, v in seaweed.settings_env("unused").items() if k != "S3BUCKET"},
    }
    runner = CliRunner(env=env)
    result = runner.invoke(main, ["queue", "add-cached", "--size", "small"])
    assert result.exit_code == 0, result.output
    assert "queued: 3, already queued or uploaded: 0" in result.output
    result = runner.invoke(main, ["queue", "add-cached"])
    assert "queued: 1, already queued or uploaded: 3, sizes not offloaded (CDN_SIZES): 3" in result.output
    report = json.loads(runner.invoke(main, ["process-queue"]).output)
    assert report["uploaded"] == 4
    after = Client(Settings.from_env(env))
    assert after.scaled_imageurl(ids[1], "small") == f"https://cdn.test/240x160/1/{ids[1]}.jpeg"
