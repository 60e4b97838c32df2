"""Work a fault leaves undone is finished without anyone acting: deletes during an outage, uploads without a record.

S3 (originals, masters and the CDN bucket) or CouchDB sits behind a TCP
proxy that the tests switch to a fault and back; the queue store is SQLite
or CouchDB.
"""

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from huimages.client import Client
from huimages.config import Settings
from huimages.core.ids import compute_id
from huimages.errors import BackendUnavailable
from huimages.http.app import ImageApp, create_app
from huimages.ops.cli import main
from huimages.serving.housekeeping import Housekeeper
from huimages.serving.unrecorded import GRACE
from tests.imagetools import jpeg
from tests.servers import FaultProxy, PouchCouch, SeaweedS3, wsgi_thread
from tests.wsgi import call

pytestmark = [pytest.mark.integration, pytest.mark.faults]

CDN = "https://cdn.example.test"
TOKEN = "upload-token-of-the-outage-site"


class Site:
    """One image server whose S3 (originals and CDN bucket) is reached through a fault proxy."""

    def __init__(self, env: dict[str, str], seaweed: SeaweedS3, proxy: FaultProxy) -> None:
        self.env, self.seaweed, self.proxy = env, seaweed, proxy
        self.client = Client(Settings.from_env(env))
        self.service = self.client.service
        self.app: ImageApp = create_app(service=self.service)
        assert self.service.publisher is not None
        self.queue = self.service.queue

    def objects(self, bucket_variable: str) -> list[str]:
        listing = self.seaweed.client().list_objects_v2(Bucket=self.env[bucket_variable])
        return sorted(o["Key"] for o in listing.get("Contents", []))

    def process(self) -> dict[str, int]:
        answer = call(self.app, "/processqueue", REMOTE_ADDR="127.0.0.1")
        assert answer.status == 200, answer.text
        return dict(json.loads(answer.body))

    def published(self) -> str:
        """An image with three derivatives on the CDN."""
        image_id = self.client.save_image(jpeg(1600, 1200))
        for path in ("small", "small.webp", "150x150!"):
            size, _, fmt = path.partition(".")
            assert call(self.app, f"/{size}/{image_id}.{fmt or 'jpeg'}").status == 200
        assert self.process()["uploaded"] == 3
        assert self.client.scaled_imageurl(image_id, "small").startswith(CDN)
        return image_id


@pytest.fixture(params=["sqlite", "couchdb"])
def site(request: pytest.FixtureRequest, tmp_path: Path, seaweed: SeaweedS3) -> Iterator[Site]:
    proxy = FaultProxy(seaweed.port)
    env = {
        **seaweed.settings_env(seaweed.new_bucket()),
        "AWS_ENDPOINT_URL_S3": proxy.endpoint,
        "HUIMAGES_HOME": str(tmp_path / "home"),
        "IMAGESERVERURL": "http://img.test/",
        "CDN_BUCKET": seaweed.new_bucket(),
        "CDN_URL": CDN,
        "CDN_RETRY_BASE": "0",
        "CDN_LOOKUP_TTL": "600",  # a process's look-ups of a deleted image must go with it all the same
        "HUIMAGES_BACKEND_TIMEOUT": "2",
        "HUIMAGES_UPLOAD_TOKEN": TOKEN,
    }
    if request.param == "couchdb":
        pouch: PouchCouch = request.getfixturevalue("pouch")
        env |= {"COUCHSERVER": pouch.url, "HUIMAGES_COUCHDB_NAME": pouch.new_database()}
    yield Site(env, seaweed, proxy)
    proxy.mode = "pass"


def gone_everywhere(site: Site, image_id: str) -> None:
    assert not [key for key in site.objects("S3BUCKET") if image_id in key]  # original and master
    assert site.objects("CDN_BUCKET") == []
    assert site.queue.derivatives_of(image_id) == [] and site.queue.removal(image_id) is None
    assert site.service.catalog.find(image_id) is None


@pytest.mark.parametrize("fault", ["drop", "hang"])
def test_a_delete_during_an_s3_outage_is_finished_by_the_next_queue_run(site: Site, fault: str) -> None:
    image_id = site.published()
    site.proxy.mode = fault
    started = time.monotonic()
    answer = call(site.app, f"/images/{image_id}", method="DELETE", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert answer.status == 202, answer.text
    report = json.loads(answer.body)
    assert report["finished"] is False and report["deleted"] is True
    assert "the original" in report["remaining"] and "the master" in report["remaining"]
    assert "next queue run" in report["message"] and "3 CDN objects" in report["message"]
    # One S3 call's timeout is the outage's cost: the steps after it are left for later without trying.
    assert time.monotonic() - started < site.service.settings.backend_timeout + 2

    # From the moment of the delete: no CDN URL, from this process or another, and no render anywhere.
    assert not site.client.scaled_imageurl(image_id, "small").startswith(CDN)
    other = Client(Settings.from_env(site.env | {"HUIMAGES_HOME": str(Path(site.env["HUIMAGES_HOME"]) / "b")}))
    assert not other.scaled_imageurl(image_id, "small", format="webp").startswith(CDN)
    assert call(site.app, f"/small/{image_id}.jpeg").status == 404
    assert call(create_app(service=other.service), f"/300x200/{image_id}.jpeg").status == 404
    assert site.queue.queue_stats().counts["deleting"] == 3
    shown = CliRunner(env=site.env).invoke(main, ["queue"])
    assert "deleting  3" in shown.output and "deletes   1 unfinished" in shown.output, shown.output
    assert site.process()["deletes_pending"] == 1  # S3 is still down: the delete waits

    site.proxy.mode = "pass"
    time.sleep(1.1)  # the first retry's backoff
    assert site.process()["deletes_finished"] == 1
    gone_everywhere(site, image_id)
    assert site.process()["deletes_finished"] == 0


def test_saving_the_bytes_of_an_unfinished_delete_again_finishes_the_delete_first(site: Site) -> None:
    """Else the delete, finished later, would remove the new save."""
    data = jpeg(1400, 1000)
    image_id = site.client.save_image(data)
    site.proxy.mode = "drop"
    assert not site.client.delete_image(image_id).finished
    with pytest.raises(BackendUnavailable, match="delete is not finished yet"):
        site.client.save_image(data)  # S3 still down: the save waits, nothing half done
    site.proxy.mode = "pass"
    assert site.client.save_image(data, title="again") == image_id
    assert site.queue.removal(image_id) is None
    assert site.process()["deletes_finished"] == 0
    assert site.service.catalog.get_live(image_id)["title"] == ["again"]
    assert site.service.originals.verified(image_id)


def test_the_cli_and_the_remote_client_say_what_is_left_and_sweep_finishes_it(site: Site) -> None:
    image_id = site.published()
    runner = CliRunner(env=site.env)
    site.proxy.mode = "drop"
    result = runner.invoke(main, ["delete", image_id])
    assert result.exit_code == 0, result.output
    assert f"deleted {image_id}, except the master, the original and 3 CDN objects" in result.output
    assert "finishes the delete by itself" in result.output
    site.proxy.mode = "pass"
    time.sleep(1.1)
    result = runner.invoke(main, ["sweep"])
    assert result.exit_code == 0 and "1 unfinished deletes finished, 0 waiting" in result.output, result.output
    gone_everywhere(site, image_id)

    image_id = site.client.save_image(jpeg(1000, 700))
    with wsgi_thread(site.app) as base:
        remote = Client(Settings.from_env({"IMAGESERVERURL": base, "HUIMAGES_UPLOAD_TOKEN": TOKEN}))
        site.proxy.mode = "503"
        report = remote.delete_image(image_id)
        assert not report.finished and "the original" in report.remaining
        with pytest.raises(Exception, match="no image"):
            remote.get_imagedoc(image_id)
    site.proxy.mode = "pass"
    time.sleep(1.1)
    assert site.service.housekeeping()["deletes_finished"] == 1
    assert not [key for key in site.objects("S3BUCKET") if image_id in key]


def test_a_servers_housekeeping_finishes_a_delete_by_itself(site: Site) -> None:
    image_id = site.published()
    site.proxy.mode = "drop"
    assert not site.client.delete_image(image_id).finished
    site.proxy.mode = "pass"
    site.service.settings.__dict__["housekeeping_interval"] = 0.3  # (frozen settings: the test's shortcut)
    keeper = Housekeeper(site.service)
    keeper.start()
    try:
        deadline = time.monotonic() + 20
        while site.queue.removal(image_id) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        keeper.stop()
    gone_everywhere(site, image_id)


@pytest.fixture
def couch_outage(
    tmp_path: Path, seaweed: SeaweedS3, pouch: PouchCouch
) -> Iterator[tuple[Client, FaultProxy, SeaweedS3]]:
    """A host whose S3 answers slowly (a second a call) and whose CouchDB sits behind a fault proxy."""
    proxy = FaultProxy(pouch.port)
    slow = FaultProxy(seaweed.port, delay=1.0)
    env = {
        **seaweed.settings_env(seaweed.new_bucket()),
        "AWS_ENDPOINT_URL_S3": slow.endpoint,
        "COUCHSERVER": pouch.url.replace(str(pouch.port), str(proxy.port)),
        "HUIMAGES_COUCHDB_NAME": pouch.new_database(),
        "HUIMAGES_HOME": str(tmp_path / "home"),
        "IMAGESERVERURL": "http://img.test/",
        "HUIMAGES_BACKEND_TIMEOUT": "5",
    }
    yield Client(Settings.from_env(env)), proxy, seaweed
    proxy.mode = "pass"


def test_an_upload_whose_record_failed_leaves_no_original_after_the_grace(
    couch_outage: tuple[Client, FaultProxy, SeaweedS3],
) -> None:
    client, proxy, seaweed = couch_outage
    service = client.service
    kept = client.save_image(jpeg(640, 480))
    data = jpeg(1200, 800)
    image_id = compute_id(data)
    bucket = service.settings.s3.bucket

    def fail_couchdb_once_the_original_is_written() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            listing = seaweed.client().list_objects_v2(Bucket=bucket, Prefix=image_id)
            if listing.get("KeyCount"):
                proxy.mode = "drop"  # the record's write comes after the master's, a second later
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=fail_couchdb_once_the_original_is_written)
    watcher.start()
    with pytest.raises(BackendUnavailable, match="couchdb"):
        client.save_image(data)
    watcher.join()
    assert service.originals.exists(image_id)  # the catalog could not even be asked: the removal waits
    assert service.sweep_unrecorded() == (0, 1)  # within the grace, and CouchDB still down

    proxy.mode = "pass"
    assert service.unrecorded.sweep() == (0, 1)  # an upload may still be writing its record
    assert service.unrecorded.sweep(time.time() + GRACE + 1) == (1, 0)
    assert not service.originals.exists(image_id)
    assert service.originals.get_master(image_id, service.settings.master_side) is None
    assert service.originals.exists(kept)

    # A note whose record was written (a worker killed after the record): nothing recorded goes.
    service.unrecorded.begin(kept)
    assert service.unrecorded.sweep(time.time() + GRACE + 1) == (1, 0)
    assert service.originals.verified(kept)


def test_an_upload_whose_record_failed_removes_its_original_at_once_when_the_catalog_answers(
    tmp_path: Path,
) -> None:
    """The embedded store with a full catalog disk: the original written before the record goes at once."""
    from huimages.catalog.sqlite import SQLiteCatalog
    from huimages.errors import DiskFull

    client = Client(Settings.at(tmp_path, server_url="http://img.test/"))
    kept = client.save_image(jpeg(320, 240))
    catalog = client.service.catalog
    assert isinstance(catalog, SQLiteCatalog)
    with catalog.file.errors() as conn:  # SQLITE_FULL, as on a full disk (see test_faults)
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    data = jpeg(900, 700)
    with pytest.raises(DiskFull):
        client.save_image(data, title="y" * 60_000)
    assert not client.service.originals.exists(compute_id(data))
    assert client.service.unrecorded.sweep(time.time() + GRACE + 1) == (0, 0)
    assert client.service.originals.verified(kept)
