"""CDN offload against a real S3 API server, with both catalogs."""

import concurrent.futures
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from huimages.client import Client
from huimages.config import Settings
from huimages.core.ids import compute_id
from huimages.http.app import ImageApp, create_app
from huimages.ops.cli import main
from tests.imagetools import decode, jpeg, placed
from tests.servers import FaultProxy, PouchCouch, SeaweedS3, wsgi_thread
from tests.test_ui import post, sign_in
from tests.wsgi import call

pytestmark = pytest.mark.integration
CDN = "https://cdn.example.com"
ADMIN_TOKEN = "s3cr3t-admin-token"
UPLOAD_TOKEN = "upload-token-of-the-cdn-site"


class Site:
    """One image server with a CDN bucket, built from the environment like production."""

    def __init__(self, env: dict[str, str], seaweed: SeaweedS3) -> None:
        self.env = env
        self.seaweed = seaweed
        self.settings = Settings.from_env(env)
        self.client = Client(self.settings)
        self.app: ImageApp = create_app(service=self.client.service)
        self.bucket = env["CDN_BUCKET"]
        assert self.client.service.publisher is not None
        self.cdn = self.client.service.publisher
        self.queue = self.cdn.store
        self.offset = 0.0  # seconds the publisher's clock is ahead of the wall clock
        self.cdn.clock = lambda: time.time() + self.offset

    def later(self, seconds: float) -> None:
        """Move the publisher's clock forward (lease expiry, retry backoff) instead of sleeping."""
        self.offset += seconds

    def process(self) -> dict[str, Any]:
        response = call(self.app, "/processqueue", REMOTE_ADDR="127.0.0.1")
        assert response.status == 200, response.text
        return dict(json.loads(response.body))

    def render(self, image_id: str, size: str = "240x160") -> bytes:
        response = call(self.app, f"/{size}/{image_id}.jpeg")
        assert response.status == 200, response.text
        return response.body

    def keys(self) -> list[str]:
        listing = self.seaweed.client().list_objects_v2(Bucket=self.bucket)
        return sorted(o["Key"] for o in listing.get("Contents", []))


@pytest.fixture(params=["sqlite", "couchdb"])
def site(request: pytest.FixtureRequest, tmp_path: Path, seaweed: SeaweedS3) -> Iterator[Site]:
    env = {
        "HUIMAGES_HOME": str(tmp_path / "home"),
        "IMAGESERVERURL": "http://img.test/",
        "CDN_BUCKET": seaweed.new_bucket(),
        "CDN_URL": CDN,
        "AWS_ENDPOINT_URL_S3": seaweed.endpoint,
        "AWS_ACCESS_KEY_ID": seaweed.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": seaweed.SECRET_KEY,
        "CDN_RETRY_BASE": "0",
        "CDN_LOOKUP_TTL": "0",
        "CDN_MAX_ATTEMPTS": "3",
        "HUIMAGES_ADMIN_TOKEN": ADMIN_TOKEN,
        "HUIMAGES_UPLOAD_TOKEN": UPLOAD_TOKEN,
    }
    if request.param == "couchdb":
        pouch: PouchCouch = request.getfixturevalue("pouch")
        env |= {"COUCHSERVER": pouch.url, "HUIMAGES_COUCHDB_NAME": pouch.new_database()}
    yield Site(env, seaweed)


def test_end_to_end(site: Site) -> None:
    image_id = site.client.save_image(jpeg(800, 600))
    local = site.client.scaled_imageurl(image_id, "small")
    assert local == f"http://img.test/240x160/{image_id}/image.jpeg"
    body = site.render(image_id, "small")  # first asked for by name: one derivative, under the numeric key
    assert site.render(image_id, "240x160") == body
    site.render(image_id, "o")  # the original is never offloaded
    assert site.queue.queue_stats().counts["queued"] == 1

    report = site.process()
    assert (report["uploaded"], report["failed"], report["parked"], report["queued"]) == (1, 0, 0, 0)
    assert set(report) >= {"uploaded", "failed", "parked", "queued", "seconds"}
    key = f"240x160/1/{image_id}.jpeg"
    assert site.keys() == [key]
    obj = site.seaweed.client().get_object(Bucket=site.bucket, Key=key)
    assert obj["ContentType"] == "image/jpeg"
    assert obj["CacheControl"] == "public, max-age=31536000, immutable"
    assert obj["Body"].read() == body

    cdn_url = f"{CDN}/240x160/1/{image_id}.jpeg"
    assert site.client.scaled_imageurl(image_id, "small") == cdn_url
    assert f'src="{cdn_url}"' in site.client.scaled_tag(image_id, "small")
    assert site.client.imageurl(image_id, "240x160") == cdn_url  # as in huImages, the same as scaled_imageurl
    other = site.client.save_image(jpeg(100, 80))
    assert site.client.scaled_imageurls([image_id, other], "small") == {
        image_id: cdn_url,
        other: f"http://img.test/240x160/{other}/image.jpeg",
    }
    result = CliRunner(env=site.env).invoke(main, ["url", image_id, "--size", "small"])
    assert result.stdout.strip() == cdn_url


def test_every_format_goes_to_the_cdn_with_its_type(site: Site) -> None:
    image_id = site.client.save_image(jpeg(800, 600))
    bodies = {}
    for fmt in ("jpeg", "webp", "avif", "png"):
        response = call(site.app, f"/small/{image_id}.{fmt}")
        assert response.status == 200, response.text
        bodies[fmt] = response.body
    assert site.process()["uploaded"] == 4
    assert site.keys() == sorted(f"240x160/1/{image_id}.{fmt}" for fmt in bodies)
    for fmt, body in bodies.items():
        obj = site.seaweed.client().get_object(Bucket=site.bucket, Key=f"240x160/1/{image_id}.{fmt}")
        assert obj["ContentType"] == f"image/{fmt}" and obj["Body"].read() == body
        assert site.client.scaled_imageurl(image_id, "small", format=fmt) == f"{CDN}/240x160/1/{image_id}.{fmt}"
    picture = site.client.scaled_picture(image_id, "small")
    assert f"{CDN}/240x160/1/{image_id}.avif 1x" in picture and f"{CDN}/240x160/1/{image_id}.webp 1x" in picture
    assert f"http://img.test/480x320/{image_id}/image.avif 2x" in picture  # not uploaded yet: the image server
    with wsgi_thread(site.app) as base:  # a remote site learns the CDN URLs from the record over HTTP
        remote = Client(Settings.from_env({"IMAGESERVERURL": base, "HUIMAGES_UPLOAD_TOKEN": UPLOAD_TOKEN}))
        for fmt in ("jpeg", "webp", "avif", "png"):
            assert remote.scaled_imageurl(image_id, "small", format=fmt) == f"{CDN}/240x160/1/{image_id}.{fmt}"
        assert remote.scaled_imageurl(image_id, "480x320") == f"{base}480x320/{image_id}/image.jpeg"
    site.client.delete_image(image_id)
    assert site.keys() == []
    assert not list(site.settings.paths.cache_dir.rglob(f"{image_id}.*"))


def test_processqueue_access(site: Site) -> None:
    far = "203.0.113.9"  # only a value in the WSGI environ; nothing is sent anywhere
    denied = call(site.app, "/processqueue", REMOTE_ADDR=far)
    assert denied.status == 403 and "HUIMAGES_ADMIN_TOKEN" in denied.text
    wrong = call(site.app, "/processqueue", HTTP_AUTHORIZATION="Bearer nope", REMOTE_ADDR=far)
    assert wrong.status == 403 and ADMIN_TOKEN not in wrong.text
    allowed = call(
        site.app, "/processqueue", method="POST", HTTP_AUTHORIZATION=f"Bearer {ADMIN_TOKEN}", REMOTE_ADDR=far
    )
    assert allowed.status == 200
    assert call(site.app, "/processqueue", method="PUT", REMOTE_ADDR="127.0.0.1").status == 405


def test_concurrent_hits_make_one_run(site: Site) -> None:
    ids = [site.client.save_image(jpeg(200 + n, 150)) for n in range(40)]
    for image_id in ids:
        site.render(image_id, "100x100")
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        reports = list(pool.map(lambda _: site.process(), range(20)))
    assert sum(int(r["uploaded"]) for r in reports) == len(ids)  # nothing uploaded twice
    assert any(r["busy"] for r in reports)
    assert all(r["uploaded"] == 0 for r in reports if r["busy"])
    assert len(site.keys()) == len(ids)


def start_slow_run(
    site: Site, delay: float, uploaded: int = 5, **settings: str
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """``huimages process-queue`` in a process of its own, behind a slow S3, once ``uploaded`` uploads landed."""
    slow = FaultProxy(site.seaweed.port, delay)
    env = {**os.environ, **site.env, "AWS_ENDPOINT_URL_S3": slow.endpoint, **settings}
    proc = subprocess.Popen(
        [sys.executable, "-m", "huimages", "process-queue"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while len(site.keys()) < uploaded:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.02)
    return proc, env


@pytest.mark.faults
def test_run_killed_mid_batch(site: Site) -> None:
    ids = [site.client.save_image(jpeg(300 + n, 200)) for n in range(80)]
    for image_id in ids:
        site.render(image_id, "150x150!")
    # 20 ms an upload, so the kill lands mid-run, at a random point
    seed = random.randrange(1 << 30)
    after = random.Random(seed).randint(1, 60)
    proc, env = start_slow_run(site, 0.02, after, CDN_LEASE_SECONDS="30", CDN_CONCURRENCY="1", CDN_BATCH="5")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert 0 < len(site.keys()) < len(ids), f"seed {seed}"
    again = subprocess.run([sys.executable, "-m", "huimages", "process-queue"], env=env, capture_output=True, text=True)
    busy = json.loads(again.stdout)
    assert busy["busy"] is True and busy["queued"] is None  # the dead run's lease still holds; no queue query
    assert busy["holder"].split(":")[1] == str(proc.pid) and busy["lease_expires"] > time.time()
    status = CliRunner(env=env).invoke(main, ["queue"])
    assert f"process {proc.pid}; its lease expires in" in status.output
    broken = CliRunner(env=env).invoke(main, ["queue", "break-lease"])  # its process is gone: broken at once
    assert broken.exit_code == 0 and f"broke the lease of process {proc.pid}" in broken.output
    report = site.process()
    assert report["busy"] is False and report["queued"] == 0 and report["failed"] == 0
    assert site.keys() == sorted(f"150x150!/1/{i}.jpeg" for i in ids)


@pytest.mark.faults
def test_a_running_run_renews_its_short_lease_and_a_dead_one_blocks_for_one_lease(site: Site) -> None:
    ids = [site.client.save_image(jpeg(300 + n, 200)) for n in range(60)]
    for image_id in ids:
        site.render(image_id, "150x150!")
    # 50 ms an upload, one at a time: a run of about 3 s, in one batch, so only the heartbeat renews the lease
    proc, _ = start_slow_run(
        site, 0.05, CDN_LEASE_SECONDS="1", CDN_LEASE_RENEW="0.2", CDN_CONCURRENCY="1", CDN_BATCH="100"
    )
    time.sleep(1.5)  # longer than the lease: only renewals keep it
    busy = site.process()
    assert busy["busy"] is True and busy["holder"].split(":")[1] == str(proc.pid), busy
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    still = len(site.keys())
    assert still < len(ids)
    site.later(1.1)  # one short lease later the queue is free again, without breaking anything
    report = site.process()
    assert report["busy"] is False and report["failed"] == 0
    assert site.keys() == sorted(f"150x150!/1/{i}.jpeg" for i in ids)


@pytest.mark.faults
def test_s3_down_during_a_run(site: Site) -> None:
    ids = [site.client.save_image(jpeg(120 + n, 90)) for n in range(3)]
    for image_id in ids:
        site.render(image_id)
    site.seaweed.kill()
    try:
        report = site.process()
        assert (report["uploaded"], report["failed"], report["queued"]) == (0, 3, 3)
        waiting = site.queue.due(time.time() + 60, 10)
        assert [d.attempts for d in waiting] == [1, 1, 1]
        assert all("no answer from bucket" in d.last_error for d in waiting)
    finally:
        site.seaweed.start()
    site.later(1.5)  # retries are at least a second apart
    assert site.process()["uploaded"] == 3
    assert len(site.keys()) == 3


def test_poison_item_parks_without_blocking_others(site: Site) -> None:
    good = site.client.save_image(jpeg(200, 100))
    site.render(good)
    poison = site.client.save_image(jpeg(201, 100))
    site.client.service.originals.delete(poison)  # its record stays, its original and master go: it cannot render
    site.client.service.originals.delete_master(poison, site.settings.master_side)
    site.queue.enqueue("240x160", poison, 1, time.time())
    deleted = compute_id(b"an image deleted after it was queued")
    site.queue.enqueue("240x160", deleted, 1, time.time())
    first = site.process()
    assert (first["uploaded"], first["failed"]) == (1, 1)
    for _ in range(2):
        site.later(1.5)
        site.process()
    stats = site.queue.queue_stats().counts
    assert stats == {"queued": 0, "parked": 1, "deleting": 0}  # the deleted image's item went at once
    result = CliRunner(env=site.env).invoke(main, ["queue"])
    assert "parked    1" in result.stdout
    result = CliRunner(env=site.env).invoke(main, ["queue", "retry"])
    assert "1 parked derivatives queued again" in result.stdout
    [again] = site.queue.due(time.time() + site.offset, 10)
    assert (again.image_id, again.attempts) == (poison, 0)
    for _ in range(3):
        site.later(10)
        site.process()
    # the web interface's status page shows it parked again, and its button queues it again
    cookie, csrf = sign_in(site.app, ADMIN_TOKEN)
    page = call(site.app, "/ui/status", headers={"Cookie": cookie}).text
    assert '<th scope="row">parked</th><td>1</td>' in page and "Queue the 1 parked items again" in page
    done = post(site.app, "/ui/status/requeue", {"csrf": csrf}, cookie)
    assert done.status == 303 and done.headers["Location"] == "/ui/status?done=requeued"
    assert site.queue.queue_stats().counts["parked"] == 0


def test_missing_cache_file_is_rendered_again(site: Site) -> None:
    image_id = site.client.save_image(jpeg(640, 480))
    site.render(image_id)
    site.client.service.cache.path("240x160", image_id).unlink()
    assert site.process()["uploaded"] == 1
    data = site.seaweed.client().get_object(Bucket=site.bucket, Key=f"240x160/1/{image_id}.jpeg")["Body"].read()
    assert decode(data).size == (213, 160)


def test_flush(site: Site) -> None:
    image_id = site.client.save_image(jpeg(800, 600))
    site.render(image_id)
    site.process()
    assert site.client.scaled_imageurl(image_id, "small").startswith(CDN)
    result = CliRunner(env=site.env).invoke(main, ["flush", "small"])
    assert result.exit_code == 0, result.output
    assert "240x160: version 2, 1 cached files removed" in result.stdout
    assert site.client.scaled_imageurl(image_id, "small") == f"http://img.test/240x160/{image_id}/image.jpeg"
    site.render(image_id)  # rendered anew and queued at version 2
    assert site.process()["uploaded"] == 1
    assert site.keys() == [f"240x160/1/{image_id}.jpeg", f"240x160/2/{image_id}.jpeg"]  # old one left
    assert site.client.scaled_imageurl(image_id, "small") == f"{CDN}/240x160/2/{image_id}.jpeg"


def test_flush_invalidates_the_old_version(site: Site, moto_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFRONT", moto_server)  # boto3's standard per-service endpoint
    api = boto3.session.Session().client(
        "cloudfront", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    origin = {"Id": "cdn", "DomainName": "cdn-bucket.s3.amazonaws.com", "S3OriginConfig": {"OriginAccessIdentity": ""}}
    behaviour = {
        "TargetOriginId": "cdn",
        "ViewerProtocolPolicy": "allow-all",
        "MinTTL": 0,
        "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
        "TrustedSigners": {"Enabled": False, "Quantity": 0},
    }
    config = {
        "CallerReference": site.bucket,
        "Origins": {"Quantity": 1, "Items": [origin]},
        "DefaultCacheBehavior": behaviour,
        "Comment": "",
        "Enabled": True,
    }
    distribution = api.create_distribution(DistributionConfig=config)["Distribution"]["Id"]
    env = site.env | {"CLOUDFRONT_DISTRIBUTION_ID": distribution}
    image_id = site.client.save_image(jpeg(300, 200))
    site.render(image_id, "120x80")
    result = CliRunner(env=env).invoke(main, ["flush", "120x80"])
    assert result.exit_code == 0, result.output
    assert "CloudFront invalidation" in result.stdout
    [item] = api.list_invalidations(DistributionId=distribution)["InvalidationList"]["Items"]
    batch = api.get_invalidation(DistributionId=distribution, Id=item["Id"])["Invalidation"]["InvalidationBatch"]
    assert batch["Paths"]["Items"] == ["/120x80/1/*"]  # the old version's keys


def backend_calls() -> dict[str, float]:
    """Calls to each storage backend so far, from this process's metrics."""
    from huimages.telemetry import metrics

    calls: dict[str, float] = {}
    for metric in metrics.get().backend_calls.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                calls[sample.labels["backend"]] = calls.get(sample.labels["backend"], 0) + sample.value
    return calls


@pytest.mark.faults
def test_a_listing_and_a_batch_of_ids_read_the_catalog_once_and_the_queue_once(site: Site) -> None:
    ids = [site.client.save_image(jpeg(40 + i, 30), title=f"batch {i}") for i in range(100)]
    for image_id in ids[:10]:
        site.render(image_id, "small")
    assert site.process()["uploaded"] == 10
    auth = f"Bearer {UPLOAD_TOKEN}"
    queries = [
        "ids=" + ",".join(ids),
        "order=newest&limit=50",
        f"order=newest&limit=50&after={ids[60]}",
        "limit=50",
        "q=batch&limit=50",
    ]
    for path in queries:
        # A process's first request reads the sizes' versions too.
        call(site.app, "/images", QUERY_STRING=path, HTTP_AUTHORIZATION=auth)
        before = backend_calls()
        answer = call(site.app, "/images", QUERY_STRING=path, HTTP_AUTHORIZATION=auth)
        after = backend_calls()
        assert answer.status == 200, answer.text
        made = {backend: after[backend] - before.get(backend, 0) for backend in after}
        catalog = sum(n for backend, n in made.items() if "catalog" in backend)
        queue = sum(n for backend, n in made.items() if "queue" in backend)
        # The queue: the derivatives of all, and the sizes' versions (CDN_LOOKUP_TTL is 0 here).
        assert catalog <= (2 if "after=" in path else 1) and queue <= 2, (path, made)
        images = json.loads(answer.body)["images"]
        assert len(images) == (100 if "ids=" in path else 50)
        on_cdn = {image["id"] for image in images if image["urls"]["small"].startswith(CDN)}
        assert on_cdn == {image["id"] for image in images} & set(ids[:10])
        if "ids=" in path:
            assert [image["id"] for image in images] == ids  # in the order asked for
            assert all(set(image["cdn"]) == {"240x160.jpeg"} for image in images if image["id"] in on_cdn)


def test_a_new_focus_is_uploaded_under_a_new_url_and_the_old_object_stays(site: Site) -> None:
    data, _ = placed(1800, 900, 1000, 100)
    image_id = site.client.save_image(data)
    old = site.client.scaled_imageurl(image_id, "square")
    spec = old.split("/")[3]  # 75x75!@x-y: the crop around the focus found at upload
    assert spec.startswith("75x75!@")
    site.render(image_id, spec)
    assert site.process()["uploaded"] == 1
    old_cdn = f"{CDN}/{spec}/1/{image_id}.jpeg"
    assert site.client.scaled_imageurl(image_id, "square") == old_cdn
    site.client.set_focus(image_id, (0.1, 0.5))
    assert site.client.scaled_imageurl(image_id, "square") == f"http://img.test/75x75!@10-50/{image_id}/image.jpeg"
    site.render(image_id, "75x75!@10-50")  # its first request queues it, as every new derivative
    assert site.render(image_id, spec)  # the old URL still answers here, from the cache
    assert site.process()["uploaded"] == 1
    assert site.client.scaled_imageurl(image_id, "square") == f"{CDN}/75x75!@10-50/1/{image_id}.jpeg"
    assert site.keys() == sorted([f"{spec}/1/{image_id}.jpeg", f"75x75!@10-50/1/{image_id}.jpeg"])  # old one kept
    site.client.delete_image(image_id)  # every object of every focus goes
    assert site.keys() == []


def test_a_flush_covers_the_size_with_every_focus(site: Site) -> None:
    data, _ = placed(1800, 900, 1000, 100)
    image_id = site.client.save_image(data)
    site.client.set_focus(image_id, (0.1, 0.5))
    site.render(image_id, "75x75!@10-50")
    site.render(image_id, "square")  # huImages' centred URL
    assert site.process()["uploaded"] == 2
    assert site.client.scaled_imageurl(image_id, "square") == f"{CDN}/75x75!@10-50/1/{image_id}.jpeg"
    result = CliRunner(env=site.env).invoke(main, ["flush", "square"])
    assert result.exit_code == 0 and "2 cached files removed" in result.stdout, result.output
    assert site.client.scaled_imageurl(image_id, "square") == f"http://img.test/75x75!@10-50/{image_id}/image.jpeg"
    site.render(image_id, "75x75!@10-50")  # rendered anew and queued at the size's version 2
    assert site.process()["uploaded"] == 1
    assert site.client.scaled_imageurl(image_id, "square") == f"{CDN}/75x75!@10-50/2/{image_id}.jpeg"
    left = site.keys()
    assert f"75x75!@10-50/1/{image_id}.jpeg" in left  # the flush left version 1's objects
    site.client.delete_image(image_id)  # the delete takes those too: nothing of the image stays on the CDN
    assert site.keys() == []
