"""The CDN side of an image server: queue runs, CDN-or-server URLs, flushes.

A derivative is queued when it is rendered (``enqueue``). A queue run (cron
hitting ``/processqueue``, or ``huimages process-queue``) takes the queue
store's lease, so one run at a time across all hosts; uploads the due
derivatives to the CDN bucket, several at once; and records each outcome. A
failed upload is retried with exponential backoff and parked after
``CDN_MAX_ATTEMPTS`` with its last error; nothing is dropped. From the moment a
derivative is recorded as uploaded, the URL helpers emit its CDN URL.

Object keys are ``<size>/<version>/<id>.<format>``. Flushing a size raises its
version, so changed renderings get new keys and no CDN invalidation is needed
(CloudFront's is optional, for the old keys).

Time comes from ``clock`` (``time.time`` by default), so tests drive lease
expiry and backoff without sleeping.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from huimages.cdn.records import PARKED, QUEUED, UPLOADED, Derivative
from huimages.cdn.store import QueueStore
from huimages.config import CdnSettings
from huimages.core.formats import FORMATS, JPEG, Format
from huimages.core.urls import CACHE_FOREVER
from huimages.errors import UnknownImage
from huimages.telemetry import metrics

logger = logging.getLogger(__name__)

LEASE = "processqueue"
_MAX_BACKOFF = 6 * 3600.0
_GONE = "gone"  # the image was deleted meanwhile: the item is dropped, not retried

#: Renders (if need be) and returns the bytes of a derivative: ``(size token, image ID, format) -> bytes``.
DerivativeSource = Callable[[str, str, Format], bytes]


@dataclasses.dataclass
class RunReport:
    uploaded: int = 0
    failed: int = 0
    parked: int = 0
    queued: int | None = 0  # None when busy: counting would query the queue while the other run writes it
    seconds: float = 0.0
    busy: bool = False
    holder: str | None = None  # when busy: who holds the lease ("host:pid:run"), and until when
    lease_expires: float | None = None

    def as_dict(self) -> dict[str, Any]:
        report = dataclasses.asdict(self)
        report["seconds"] = round(self.seconds, 3)
        if self.busy:
            report["message"] = "another queue run holds the lease; nothing done"
        else:
            del report["holder"], report["lease_expires"]
        return report


@dataclasses.dataclass
class FlushReport:
    size: str
    version: int
    removed: int
    invalidation: str | None = None


class CdnPublisher:
    """Uploads queued derivatives to ``bucket`` and decides which URLs point at the CDN."""

    def __init__(
        self,
        settings: CdnSettings,
        store: QueueStore,
        bucket: Any,
        source: DerivativeSource,
        *,
        invalidate: Callable[[str], str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert settings.bucket and settings.url
        self.settings = settings
        self.store = store
        self.bucket = bucket  # huimages.backends.s3.Bucket
        self.source = source
        self.invalidate = invalidate
        self.clock = clock
        self._lookups: dict[tuple[str, str, str], tuple[float, bool]] = {}
        self._versions: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()
        self._running: dict[str, Any] | None = None  # the lease record of this process's own run, while it runs

    def accepts(self, size_token: str) -> bool:
        """Whether derivatives of this URL size are offloaded to the CDN."""
        if size_token == "o":
            return False
        return self.settings.sizes is None or _unfocused(size_token) in self.settings.sizes

    def enqueue(self, size_token: str, image_id: str, fmt: Format = JPEG) -> None:
        """Queue a freshly rendered derivative (if its size goes to the CDN)."""
        if self.accepts(size_token):
            version = self.store.size_version(_unfocused(size_token))
            self.store.enqueue(size_token, image_id, version, self.clock(), fmt.name)

    def enqueue_many(self, size_token: str, image_ids: list[str], fmt: Format = JPEG) -> int:
        """Queue derivatives that exist already (a warm cache); returns how many were not queued before."""
        if not self.accepts(size_token):
            return 0
        version = self.store.size_version(_unfocused(size_token))
        return self.store.enqueue_many(size_token, image_ids, version, self.clock(), fmt.name)

    def forget_lookups(self, image_id: str) -> None:
        """A deleted image: this process's look-ups of its derivatives go (the store says ``deleting`` now)."""
        with self._lock:
            for key in [k for k in self._lookups if k[1] == image_id]:  # every size and format
                del self._lookups[key]

    def delete_object(self, item: Derivative) -> None:
        """Remove a derivative's objects from the CDN bucket: at its version and the versions flushes left behind.

        One that is not there is not an error.
        """
        self.bucket.delete_many(item.keys_so_far)

    # -- queue runs -----------------------------------------------------------

    def run(self) -> RunReport:
        """One queue run; returns at once, saying so, if another run holds the lease."""
        started, now = time.monotonic(), self.clock()
        report = RunReport()
        # A new owner for every run: two runs in one process must exclude each other too.
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        # Busy answers come from the lease record alone: no query of the queue, which the other run is
        # writing; and none at all when the run is this process's own.
        lease = self._running or self.store.try_lease(LEASE, owner, self.settings.lease_seconds, now)
        if lease is not None:
            report.busy, report.queued = True, None
            report.holder, report.lease_expires = str(lease.get("owner", "")), float(lease.get("expires", 0.0))
            report.seconds = time.monotonic() - started
            return report
        lost = threading.Event()
        self._running = {"owner": owner, "expires": now + self.settings.lease_seconds}
        with self._heartbeat(owner, lost):
            try:
                self._drain(report, now, lost)
            finally:
                self._running = None
                self.store.release_lease(LEASE, owner)
        report.queued = self.store.queue_stats().counts[QUEUED]
        report.seconds = time.monotonic() - started
        return report

    @contextlib.contextmanager
    def _heartbeat(self, owner: str, lost: threading.Event) -> Iterator[None]:
        """Renew the run's short lease every ``lease_renew`` seconds while it works; ``lost`` if renewal fails."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.settings.lease_renew):
                try:
                    renewed = self.store.acquire_lease(LEASE, owner, self.settings.lease_seconds, self.clock())
                except Exception:  # the store is unreachable: the run stops after its batch
                    logger.warning("could not renew the queue run's lease", exc_info=True)
                    renewed = False
                if not renewed:
                    lost.set()
                    return
                self._running = {"owner": owner, "expires": self.clock() + self.settings.lease_seconds}

        thread = threading.Thread(target=beat, name="huimages-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _drain(self, report: RunReport, now: float, lost: threading.Event) -> None:
        # Items are read as due at the run's start; a failure is rescheduled at
        # least a second later, so no item is tried twice in one run.
        seen: set[str] = set()
        with concurrent.futures.ThreadPoolExecutor(self.settings.concurrency) as pool:
            while True:
                batch = [d for d in self.store.due(now, self.settings.batch) if d.record_key not in seen]
                if not batch:
                    return
                seen.update(d.record_key for d in batch)
                results = list(pool.map(self._attempt, batch))
                self.store.remove(item for item in results if item.state == _GONE)
                results = [item for item in results if item.state != _GONE]
                self.store.settle(results)
                for item in results:
                    if item.state == UPLOADED:
                        report.uploaded += 1
                        metrics.get().cdn_uploads.inc()
                    elif item.state == PARKED:
                        report.parked += 1
                    else:
                        report.failed += 1
                if lost.is_set():  # the heartbeat could not renew the lease: another run may take over
                    logger.warning("queue run lost its lease; stopping after this batch")
                    return

    def _attempt(self, item: Derivative) -> Derivative:
        """Upload one derivative; returns it with its new state (never raises)."""
        try:
            fmt = FORMATS[item.format]
            data = self.source(item.size, item.image_id, fmt)
            self.bucket.put(item.key, data, fmt.content_type, CacheControl=CACHE_FOREVER)
        except UnknownImage:
            logger.info("dropped %s from the queue: the image was deleted", item.key)
            item.state = _GONE
            return item
        except Exception as exc:  # one bad item must not stop the others
            item.attempts += 1
            item.last_error = str(exc)[:500]
            if item.attempts >= self.settings.max_attempts:
                item.state = PARKED
                logger.error("parked %s after %d attempts: %s", item.key, item.attempts, item.last_error)
            else:
                delay = min(self.settings.retry_base * 2 ** (item.attempts - 1), _MAX_BACKOFF)
                item.next_attempt = self.clock() + max(delay, 1.0)
                logger.warning("upload of %s failed (attempt %d): %s", item.key, item.attempts, item.last_error)
            return item
        item.state, item.last_error = UPLOADED, ""
        return item

    # -- URLs -----------------------------------------------------------------

    def url(self, size_token: str, image_id: str, fmt: Format = JPEG) -> str | None:
        return self.urls(size_token, [image_id], fmt).get(image_id)

    def urls(self, size_token: str, image_ids: list[str], fmt: Format = JPEG) -> dict[str, str]:
        """CDN URLs of those derivatives that are uploaded (one store query for all)."""
        if not self.accepts(size_token) or not image_ids:
            return {}
        version = self._version(size_token)
        now = time.monotonic()
        with self._lock:
            cached = {i: self._lookups.get((size_token, i, fmt.name)) for i in image_ids}
        unknown = [i for i, hit in cached.items() if hit is None or hit[0] < now]
        if unknown:
            uploaded = self.store.uploaded(size_token, unknown, version, fmt.name)
            expires = now + self.settings.lookup_ttl
            with self._lock:
                for image_id in unknown:
                    self._lookups[(size_token, image_id, fmt.name)] = (expires, image_id in uploaded)
                    cached[image_id] = (expires, image_id in uploaded)
        base = f"{self.settings.url}/{size_token}/{version}"
        return {i: f"{base}/{i}.{fmt.extension}" for i, hit in cached.items() if hit and hit[1]}

    def published(self, image_ids: list[str]) -> dict[str, dict[str, str]]:
        """CDN URLs of these images' uploaded derivatives, by ID and ``<size>.<format>`` (current versions only).

        One query of the queue store for all of them (and one for the sizes'
        versions unless this process knows them).
        """
        items = [item for item in self.store.derivatives_of_many(image_ids) if item.state == UPLOADED]
        versions = self._versions_of({item.size for item in items})
        found: dict[str, dict[str, str]] = {}
        for item in items:
            if item.version == versions[item.size]:
                found.setdefault(item.image_id, {})[f"{item.size}.{item.format}"] = f"{self.settings.url}/{item.key}"
        return found

    def _version(self, size_token: str) -> int:
        return self._versions_of({size_token})[size_token]

    def _versions_of(self, tokens: set[str]) -> dict[str, int]:
        """Sizes' versions (a crop around a focus has its centred crop's), from this process's look-ups while
        fresh, the others in one read."""
        known = self._read_versions({_unfocused(t) for t in tokens})
        return {t: known[_unfocused(t)] for t in tokens}

    def _read_versions(self, sizes: set[str]) -> dict[str, int]:
        now = time.monotonic()
        with self._lock:
            known = {size: hit[1] for size in sizes if (hit := self._versions.get(size)) is not None and hit[0] >= now}
        unknown = sizes - set(known)
        if unknown:
            read = self.store.size_versions(unknown)
            with self._lock:
                for size, version in read.items():
                    self._versions[size] = (now + self.settings.lookup_ttl, version)
            known.update(read)
        return known

    def forget(self) -> None:
        """Drop the in-process lookups (after a flush in this process)."""
        with self._lock:
            self._lookups.clear()
            self._versions.clear()

    # -- flush ----------------------------------------------------------------

    def flush(self, size_token: str, remove_cached: Callable[[str], int]) -> FlushReport:
        """A new version for a size: URLs fall back to the image server, new renders are queued.

        The version lives in the queue store, so every host's URLs change at
        once; ``remove_cached`` removes this host's files of the size.
        """
        old = self.store.size_version(size_token)
        version = self.store.bump_size_version(size_token)
        report = FlushReport(size_token, version, remove_cached(size_token))
        self.forget()
        if self.invalidate is not None:
            report.invalidation = self.invalidate(f"/{size_token}/{old}/*")
        return report


def _unfocused(size_token: str) -> str:
    """The size of a crop around a focus (``75x75!@42-31``: ``75x75!``): it shares that size's version."""
    return size_token.partition("@")[0]


def cloudfront_invalidator(client: Any, distribution_id: str) -> Callable[[str], str]:
    """Invalidates one path pattern of a CloudFront distribution; returns the invalidation's ID."""
    from huimages.backends.s3 import s3_errors

    def invalidate(path: str) -> str:
        with s3_errors("cloudfront", f"distribution {distribution_id}", "invalidate"):
            answer = client.create_invalidation(
                DistributionId=distribution_id,
                InvalidationBatch={"Paths": {"Quantity": 1, "Items": [path]}, "CallerReference": uuid.uuid4().hex},
            )
        return str(answer["Invalidation"]["Id"])

    return invalidate
