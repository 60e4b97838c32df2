"""Prometheus metrics: what the server does, summed over every process of a host.

The metrics are made on first use, so a server can first name the folder
that its processes share (``use_folder``): prometheus_client's multiprocess
mode then keeps each process's values in files there, and ``/metrics`` sums
them (gunicorn's workers, lighttpd's FastCGI backends). Without a folder
(tests, the client API in a site's process) the values live in the process.
The CDN queue's figures are computed when scraped, from the queue store.

Cache hits served by lighttpd never reach Python; docs/operations.md says how to
count them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from huimages.backends.files import process_alive
from huimages.errors import HuImagesError, StorageError

logger = logging.getLogger(__name__)


class QueueFigures(Protocol):
    """What a scrape reads of the CDN queue (``huimages.cdn.records.QueueStats``)."""

    counts: dict[str, int]
    oldest_queued_at: float | None


class QueueStore(Protocol):
    """The CDN queue store as a scrape sees it (``huimages.cdn.store.QueueStore``, a floor above)."""

    name: str

    def queue_stats(self) -> QueueFigures: ...


_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The classic text format, which every Prometheus reads (the names here are plain ASCII).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def use_folder(folder: Path, *, wipe: bool = False) -> None:
    """Share metrics through ``folder`` with the host's other processes (before any metric is used).

    ``wipe``: start from zero (the one process that starts all the others, before it starts them).
    """
    if wipe:
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[_ENV] = str(folder)


def process_ended(pid: int) -> None:
    """Drop a finished worker's live gauges (its counters stay in the sums)."""
    if os.environ.get(_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.renders = Counter(
            "huimages_renders",
            "Renders by size kind (named, custom, original), format and outcome",
            ["kind", "format", "outcome"],
        )
        self.render_seconds = Histogram(
            "huimages_render_seconds",
            "Wall time of a render (read, decode, scale, encode)",
            ["source"],
            buckets=_SECONDS,
        )
        self.decode_seconds = Histogram(
            "huimages_decode_seconds",
            "Wall time of decoding the original or master of a render",
            ["source"],
            buckets=_SECONDS,
        )
        self.cache_written = Counter("huimages_cache_written_bytes", "Bytes written to the derivative cache")
        self.responses = Counter("huimages_http_responses", "Responses of the application by status", ["status"])
        self.cdn_uploads = Counter("huimages_cdn_uploads", "Derivatives uploaded to the CDN bucket by queue runs")
        self.backend_calls = Counter(
            "huimages_backend_calls", "Calls to a storage backend by backend and operation", ["backend", "operation"]
        )
        self.backend_failures = Counter(
            "huimages_backend_failures", "Failed calls to a storage backend", ["backend", "operation"]
        )
        self.backend_seconds = Histogram(
            "huimages_backend_call_seconds", "Wall time of a storage backend call", ["backend"], buckets=_SECONDS
        )
        self.in_flight = Gauge("huimages_renders_in_flight", "Renders running now", multiprocess_mode="livesum")
        self.refused = Counter(
            "huimages_renders_refused", "Requests refused by admission control, by reason", ["reason"]
        )


_made: list[_Metrics] = []
_making = threading.Lock()


def get() -> _Metrics:
    """The metrics of this process, made on first use (once, whichever thread asks first)."""
    if not _made:
        with _making:
            if not _made:
                _made.append(_Metrics())
    return _made[0]


def size_kind(spec: str, named_specs: Iterable[str]) -> str:
    """``original``, ``named`` (a named size, by name or numeric form) or ``custom``: few label values."""
    return "original" if spec == "o" else "named" if spec in named_specs else "custom"


def outcome(exc: BaseException | None) -> str:
    """``ok``, or the error's class in snake case (``render_timeout``, ``disk_full``): a bounded set."""
    if exc is None:
        return "ok"
    name = type(exc).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


@contextlib.contextmanager
def backend_call(backend: str, action: str) -> Iterator[None]:
    """Count and time one call to a storage backend; ``action``'s first word is the operation."""
    metrics = get()
    operation = action.split(" ", 1)[0]
    metrics.backend_calls.labels(backend, operation).inc()
    started = time.perf_counter()
    try:
        yield
    except Exception as exc:
        if isinstance(exc, StorageError) or not isinstance(exc, HuImagesError):  # not a lookup that found nothing
            metrics.backend_failures.labels(backend, operation).inc()
        raise
    finally:
        metrics.backend_seconds.labels(backend).observe(time.perf_counter() - started)


@contextlib.contextmanager
def rendering() -> Iterator[None]:
    gauge = get().in_flight
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


def exposition(queue: QueueStore | None, clock: Callable[[], float] = time.time) -> tuple[bytes, str]:
    """The text format of every metric of this host, and its content type."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

    get()
    folder = os.environ.get(_ENV)
    if folder:
        from prometheus_client import multiprocess

        _forget_dead_processes(Path(folder))
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, folder)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY))
    if queue is not None:
        registry.register(_QueueCollector(queue, clock))
    return generate_latest(registry), CONTENT_TYPE


def _forget_dead_processes(folder: Path) -> None:
    """Live gauges of processes that died without saying so (kill -9) leave the sums."""
    from prometheus_client import multiprocess

    for path in folder.glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        if not process_alive(pid):
            multiprocess.mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]


class _Forward:
    """This process's own registry, as a collector of another registry."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self.registry.collect()


class _QueueCollector:
    """The CDN queue per state and its oldest item's age, read from the queue store when scraped."""

    def __init__(self, queue: QueueStore, clock: Callable[[], float]) -> None:
        self.queue, self.clock = queue, clock

    def collect(self) -> Iterator[Any]:
        """The queue's figures; a store that does not answer costs them alone (``huimages_backend_up`` 0)."""
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily(
            "huimages_backend_up", "Whether a store answered this scrape's reads (1) or not (0)", labels=["backend"]
        )
        try:
            stats = self.queue.queue_stats()
        except HuImagesError as exc:  # every other figure is still answered
            logger.warning("/metrics: the CDN queue's figures are missing: %s", exc)
            up.add_metric([self.queue.name], 0)
            yield up
            return
        up.add_metric([self.queue.name], 1)
        yield up
        items = GaugeMetricFamily("huimages_cdn_queue_items", "CDN queue items by state", labels=["state"])
        for state, count in sorted(stats.counts.items()):
            items.add_metric([state], count)
        yield items
        oldest = 0.0 if stats.oldest_queued_at is None else max(0.0, self.clock() - stats.oldest_queued_at)
        yield GaugeMetricFamily(
            "huimages_cdn_queue_oldest_age_seconds", "Age of the oldest queued CDN item (0 when none)", value=oldest
        )
