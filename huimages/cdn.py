"""CDN offload: the upload queue and the CDN-or-server URL decision.

A derivative is queued in the catalog when it is rendered. A queue run (cron
hitting ``/processqueue``, or ``huimages process-queue``) takes the catalog's
lease, so one run at a time across all hosts; uploads the due derivatives to the
CDN bucket, several at once; and records each outcome. A failed upload is retried
with exponential backoff and parked after ``CDN_MAX_ATTEMPTS`` with its last
error; nothing is dropped. From the moment a derivative is recorded as uploaded,
the URL helpers emit its CDN URL.

Object keys are ``<size>/<version>/<id>.jpeg``. Flushing a size raises its
version, so changed renderings get new keys and no CDN invalidation is needed.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from huimages.cache import CACHE_FOREVER
from huimages.catalog.records import PARKED, QUEUED, UPLOADED, Derivative
from huimages.originals.s3 import describe_endpoint, make_client, s3_errors, sha1_checksum
from huimages.service import ImageService

logger = logging.getLogger(__name__)

LEASE = "processqueue"
_MAX_BACKOFF = 6 * 3600.0


@dataclasses.dataclass
class RunReport:
    uploaded: int = 0
    failed: int = 0
    parked: int = 0
    queued: int = 0
    seconds: float = 0.0
    busy: bool = False

    def as_dict(self) -> dict[str, Any]:
        report = dataclasses.asdict(self)
        report["seconds"] = round(self.seconds, 3)
        if self.busy:
            report["message"] = "another queue run holds the lease; nothing done"
        return report


@dataclasses.dataclass
class FlushReport:
    size: str
    version: int
    removed: int
    invalidation: str | None = None


class CdnPublisher:
    """The CDN side of one image server: queue runs, URLs and flushes."""

    name = "cdn bucket"

    def __init__(self, service: ImageService, client: Any | None = None) -> None:
        settings = service.settings
        assert settings.cdn_bucket and settings.cdn_url
        self.service = service
        self.catalog = service.catalog
        self.settings = settings
        self.bucket = settings.cdn_bucket
        self.client = client or make_client(settings)
        self.where = describe_endpoint(self.client, self.bucket)
        self._lookups: dict[tuple[str, str], tuple[float, bool]] = {}
        self._versions: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    # -- the queue ------------------------------------------------------------

    def run(self) -> RunReport:
        """One queue run; returns at once, saying so, if another run holds the lease."""
        started, now = time.monotonic(), time.time()
        report = RunReport()
        # A new owner for every run: two runs in one process must exclude each other too.
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        if not self.catalog.acquire_lease(LEASE, owner, self.settings.cdn_lease_seconds, now):
            report.busy = True
        else:
            try:
                self._drain(report, now, owner)
            finally:
                self.catalog.release_lease(LEASE, owner)
        report.queued = self.catalog.queue_stats().counts[QUEUED]
        report.seconds = time.monotonic() - started
        return report

    def _drain(self, report: RunReport, now: float, owner: str) -> None:
        # Items are read as due at the run's start; a failure is rescheduled at
        # least a second later, so no item is tried twice in one run.
        seen: set[tuple[str, str]] = set()
        with concurrent.futures.ThreadPoolExecutor(self.settings.cdn_concurrency) as pool:
            while True:
                batch = [d for d in self.catalog.due(now, self.settings.cdn_batch) if (d.size, d.image_id) not in seen]
                if not batch:
                    return
                seen.update((d.size, d.image_id) for d in batch)
                results = list(pool.map(self._attempt, batch))
                self.catalog.settle(results)
                for item in results:
                    if item.state == UPLOADED:
                        report.uploaded += 1
                    elif item.state == PARKED:
                        report.parked += 1
                    else:
                        report.failed += 1
                if not self.catalog.acquire_lease(LEASE, owner, self.settings.cdn_lease_seconds, time.time()):
                    logger.warning("queue run lost its lease; stopping after this batch")
                    return

    def _attempt(self, item: Derivative) -> Derivative:
        """Upload one derivative; returns it with its new state (never raises)."""
        try:
            self._upload(item)
        except Exception as exc:  # one bad item must not stop the others
            item.attempts += 1
            item.last_error = str(exc)[:500]
            if item.attempts >= self.settings.cdn_max_attempts:
                item.state = PARKED
                logger.error("parked %s after %d attempts: %s", item.key, item.attempts, item.last_error)
            else:
                delay = min(self.settings.cdn_retry_base * 2 ** (item.attempts - 1), _MAX_BACKOFF)
                item.next_attempt = time.time() + max(delay, 1.0)
                logger.warning("upload of %s failed (attempt %d): %s", item.key, item.attempts, item.last_error)
            return item
        item.state, item.last_error = UPLOADED, ""
        return item

    def _upload(self, item: Derivative) -> None:
        data = self._derivative_bytes(item)
        with s3_errors(self.name, self.where, f"upload {item.key}"):
            self.client.put_object(
                Bucket=self.bucket,
                Key=item.key,
                Body=data,
                ContentType="image/jpeg",
                CacheControl=CACHE_FOREVER,
                ChecksumSHA1=sha1_checksum(data),
            )

    def _derivative_bytes(self, item: Derivative) -> bytes:
        """The cached file, rendered again from the original if it has gone."""
        cache = self.service.cache
        try:
            return cache.path(item.size, item.image_id).read_bytes()
        except FileNotFoundError:
            size = self.service.parse_size(item.size)
            return self.service.derivative(size, item.image_id).read_bytes()

    # -- URLs -----------------------------------------------------------------

    def url(self, size_token: str, image_id: str) -> str | None:
        return self.urls(size_token, [image_id]).get(image_id)

    def urls(self, size_token: str, image_ids: list[str]) -> dict[str, str]:
        """CDN URLs of those derivatives that are uploaded (one catalog query for all)."""
        if not self.service.goes_to_cdn(size_token) or not image_ids:
            return {}
        version = self._version(size_token)
        now = time.monotonic()
        with self._lock:
            cached = {i: self._lookups.get((size_token, i)) for i in image_ids}
        unknown = [i for i, hit in cached.items() if hit is None or hit[0] < now]
        if unknown:
            uploaded = self.catalog.uploaded(size_token, unknown, version)
            expires = now + self.settings.cdn_lookup_ttl
            with self._lock:
                for image_id in unknown:
                    self._lookups[(size_token, image_id)] = (expires, image_id in uploaded)
                    cached[image_id] = (expires, image_id in uploaded)
        base = f"{self.settings.cdn_url}/{size_token}/{version}"
        return {i: f"{base}/{i}.jpeg" for i, hit in cached.items() if hit and hit[1]}

    def _version(self, size_token: str) -> int:
        now = time.monotonic()
        with self._lock:
            hit = self._versions.get(size_token)
        if hit is not None and hit[0] >= now:
            return hit[1]
        version = self.catalog.size_version(size_token)
        with self._lock:
            self._versions[size_token] = (now + self.settings.cdn_lookup_ttl, version)
        return version

    def forget(self) -> None:
        """Drop the in-process lookups (after a flush in this process)."""
        with self._lock:
            self._lookups.clear()
            self._versions.clear()

    # -- flush ----------------------------------------------------------------

    def flush(self, size_token: str) -> FlushReport:
        """New version for a size: URLs fall back to the image server, new renders are queued."""
        old = self.catalog.size_version(size_token)
        version, removed = self.service.flush(size_token)
        self.forget()
        report = FlushReport(size_token, version, removed)
        if self.settings.cloudfront_distribution_id:
            report.invalidation = self._invalidate(f"/{size_token}/{old}/*")
        return report

    def _invalidate(self, path: str) -> str:
        import boto3

        client = boto3.session.Session().client(
            "cloudfront",
            aws_access_key_id=self.settings.aws_access_key_id,
            aws_secret_access_key=self.settings.aws_secret_access_key,
            region_name=self.settings.s3_region,
        )
        with s3_errors("cloudfront", f"distribution {self.settings.cloudfront_distribution_id}", "invalidate"):
            answer = client.create_invalidation(
                DistributionId=self.settings.cloudfront_distribution_id,
                InvalidationBatch={"Paths": {"Quantity": 1, "Items": [path]}, "CallerReference": uuid.uuid4().hex},
            )
        return str(answer["Invalidation"]["Id"])


def publisher_for(service: ImageService) -> CdnPublisher | None:
    """The CDN publisher when ``CDN_BUCKET`` and ``CDN_URL`` are set."""
    if not service.settings.cdn_bucket:
        return None
    return CdnPublisher(service)
