"""The use cases: store an original, produce a derivative, flush a size. No HTTP here.

``ImageService.from_settings`` is the one place where settings become a
working system (originals store, catalog, cache, size policy, CDN publisher);
the client API, the WSGI app and the CLI all start from it.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from collections.abc import Mapping
from typing import Any

from huimages.catalog import Catalog, open_catalog
from huimages.catalog.records import Doc, format_timestamp
from huimages.cdn import CdnPublisher, QueueStore, open_publisher, open_queue
from huimages.cdn.records import QueueStats
from huimages.config import Settings
from huimages.core.focus import Focus, FocusPoint, focus_of, known_points, set_automatic, set_manual
from huimages.core.formats import ANIMATED_TYPES, JPEG, Encoding, Format, served_format, split_format
from huimages.core.ids import compute_id, validate_id
from huimages.core.sizes import Size, decode_target, output_dimensions, parse_size
from huimages.core.text import check_metadata
from huimages.core.urls import image_path
from huimages.errors import ConfigurationError, HuImagesError, ImageNotFound, InvalidImage, UnknownFocus
from huimages.imaging import (
    Deadline,
    Ingested,
    Rendered,
    ingest,
    ingest_stored,
    make_master,
    master_dimensions,
    render,
)
from huimages.originals import OriginalsStore, open_store
from huimages.serving.budget import StrangerBudget
from huimages.serving.cache import CachedFile, DerivativeCache
from huimages.serving.deletes import Deleter, DeleteReport, FinishReport
from huimages.serving.failures import FailureMemory
from huimages.serving.guesses import GuessLimit
from huimages.serving.policy import SizePolicy
from huimages.serving.prune import AutoPruner
from huimages.serving.slots import RenderSlots
from huimages.serving.unrecorded import UnrecordedUploads
from huimages.telemetry import metrics

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class FlushOutcome:
    """What flushing one size token did: its new CDN version (None without a CDN), files removed, invalidation."""

    token: str
    version: int | None
    removed: int
    invalidation: str | None = None


def may_animate(doc: Doc) -> bool:
    """Whether the image is (or, in a record from before frames were counted, may be) an animation."""
    frames = doc.get("frames")
    return str(doc.get("content_type", "")) in ANIMATED_TYPES if frames is None else int(frames) > 1


@dataclasses.dataclass
class ImageService:
    settings: Settings
    originals: OriginalsStore
    catalog: Catalog
    cache: DerivativeCache
    policy: SizePolicy
    slots: RenderSlots
    failures: FailureMemory
    budget: StrangerBudget
    guesses: GuessLimit
    queue: QueueStore  # the CDN queue, and the record of deletes not finished yet
    publisher: CdnPublisher | None = None
    pruner: AutoPruner | None = None  # with HUIMAGES_CACHE_MAX_BYTES; a server starts it
    _linked: set[str] = dataclasses.field(default_factory=set, repr=False)  # named sizes linked this process

    @property
    def _named_specs(self) -> set[str]:
        return {*self.settings.sizes.values(), *self.settings.sizes}

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageService:
        couch = None
        cache = DerivativeCache(settings.paths.cache_dir, settings.limits.lock_timeout)
        if settings.couch.server:  # one connection pool for the catalog, the legacy originals and the queue
            from huimages.backends.couch import connect

            couch = connect(settings)
        service = cls(
            settings=settings,
            originals=open_store(settings, couch),
            catalog=open_catalog(settings, couch),
            cache=cache,
            policy=SizePolicy(settings),
            slots=RenderSlots(
                settings.limits.render_slots, settings.limits.render_wait, settings.limits.render_waiting
            ),
            failures=FailureMemory(
                cache.state_folder("failed"), settings.limits.retry_failed_after, settings.limits.render_timeout
            ),
            budget=StrangerBudget(
                cache.state_folder("budget"),
                settings.limits.unsigned_renders_per_minute,
                settings.limits.unsigned_mb_per_minute,
                settings.limits.unsigned_sizes_per_image,
            ),
            guesses=GuessLimit(cache.state_folder("guesses")),
            queue=open_queue(settings, couch),
        )
        service.publisher = open_publisher(settings, service.derivative_bytes, service.queue)
        if settings.cache_max_bytes:
            service.pruner = AutoPruner(settings)
        return service

    def parse_size(self, token: str) -> Size:
        return parse_size(token, self.settings.sizes, self.settings.limits.max_side)

    def parse_derivative(self, token: str) -> tuple[Size, Format]:
        """A size with an optional format: ``small``, ``small.webp``, ``150x150!.avif`` (JPEG when none)."""
        size, extension = split_format(token)
        return self.parse_size(size), JPEG if extension is None else self.output_format(extension)

    def output_format(self, extension: str) -> Format:
        """The format a URL extension names, if this server serves it; else ``FormatNotServed`` (404)."""
        return served_format(extension, self.settings.formats)

    # -- ingest ---------------------------------------------------------------

    def ingest(
        self,
        data: bytes,
        *,
        timestamp: datetime.datetime | str | None = None,
        title: str = "",
        references: Mapping[str, Any] | None = None,
        typ: str = "",
        filename: str = "",
        content_type_hint: str | None = None,
        prepared: Ingested | None = None,
    ) -> str:
        """Validate and store an original and its master; returns its ID.

        The image is checked completely before anything is written (the same
        decode makes its master), and the original is stored before its
        document, so a failure at any step leaves either nothing or, for a
        few minutes, an original without a record (``serving.unrecorded``
        removes it), never a document without bytes. Then the sizes of
        ``HUIMAGES_PRERENDER`` are rendered from the master.
        """
        check_metadata(title=title, references=references, typ=typ, filename=filename)
        # ``prepared``: the check of these bytes already made (an upload checks every file before storing one)
        ingested = prepared or ingest(bytes(data), self.settings.limits, self.settings.master_side, self.settings.focus)
        info = ingested.info
        image_id = compute_id(data)
        if content_type_hint and content_type_hint.lower() != info.content_type:
            logger.info("%s: given content type %s, the bytes are %s", image_id, content_type_hint, info.content_type)
        self._deleter.settle_before_saving(image_id)  # the same bytes deleted a moment ago, during an outage
        wrote = self._stored_length(image_id) != len(data)  # missing, or a damaged copy of another length
        try:
            if wrote:
                self.unrecorded.begin(image_id)
                self.originals.put(image_id, bytes(data), info.content_type)
                if ingested.master is not None:  # (an image stored before masters gets one when first needed)
                    self.originals.put_master(image_id, self.settings.master_side, ingested.master)
            self.catalog.record_image(
                image_id,
                width=info.width,
                height=info.height,
                content_type=info.content_type,
                length=len(data),
                timestamp=format_timestamp(timestamp),
                title=title,
                references=references,
                typ=typ,
                filename=filename,
                frames=info.frames,
                focus=ingested.focus,
                placeholder=ingested.placeholder,
            )
        except HuImagesError:
            if wrote:  # no original without a record: removed now, or by a sweep in a few minutes
                self.unrecorded.abandon(image_id)
            raise
        if wrote:
            self.unrecorded.end(image_id)
        if not self.originals.stored(image_id):  # removed as unrecorded meanwhile (``serving.unrecorded``)
            self.originals.put(image_id, bytes(data), info.content_type)
        logger.info("stored %s (%s, %dx%d, %d bytes)", image_id, info.format, info.width, info.height, len(data))
        self._prerender(image_id)
        return image_id

    def _stored_length(self, image_id: str) -> int | None:
        try:
            return self.originals.length(image_id)
        except ImageNotFound:
            return None

    def _prerender(self, image_id: str, doc: Doc | None = None) -> None:
        """Render the sizes a site shows new uploads in, so no page waits for them; a failure is logged only.

        ``doc``: the image's record, when it is at hand (its focus places the crops).
        """
        if not self.settings.prerender:
            return
        try:
            point = focus_of(doc or self.catalog.get_live(image_id)).point
        except HuImagesError as exc:
            logger.warning("could not prerender %s: %s", image_id, exc)
            return
        for token in self.settings.prerender:
            try:
                self._render_unless_cached(image_id, self.parse_derivative(token), point)
            except HuImagesError as exc:
                logger.warning("could not prerender %s of %s: %s", token, image_id, exc)

    def prerender(self, image_id: str, derivatives: list[tuple[Size, Format]]) -> int:
        """Render these sizes (in these formats) of an image unless cached; returns how many were rendered.

        A crop is rendered around the image's focus, as the helpers name it.
        """
        point = focus_of(self.catalog.get_live(image_id)).point
        return sum(self._render_unless_cached(image_id, derivative, point) for derivative in derivatives)

    def _render_unless_cached(self, image_id: str, derivative: tuple[Size, Format], point: FocusPoint) -> bool:
        size, fmt = derivative
        placed = size.focused(point) if size.crop and size.focus is None else size
        if self.cache.exists(placed.spec, image_id, fmt):
            return False
        self.derivative(placed, image_id, fmt).close()
        return True

    def update_metadata(self, image_id: str, *, timestamp: datetime.datetime | str | None, **metadata: Any) -> Doc:
        """Merge title, references and type into an image's record, as saving it again would."""
        check_metadata(**metadata)
        stamp = None if timestamp is None else format_timestamp(timestamp)
        return self.catalog.update_metadata(image_id, timestamp=stamp, **metadata)

    def set_focus(self, image_id: str, point: tuple[float, float] | None) -> Doc:
        """Set an image's focus by hand (x, y as fractions of the upright image), or (None) go back to the found one.

        Its crops get new URLs (``huimages.core.focus``), rendered at once for
        the sizes of ``HUIMAGES_PRERENDER``; the URLs of the focus before keep
        answering, from the cache or rendered as they were.
        """
        focus = None if point is None else Focus(float(point[0]), float(point[1]), "manual")
        doc = self.catalog.update(validate_id(image_id), lambda doc: set_manual(doc, focus))
        logger.info("focus of %s set to %s", image_id, focus_of(doc).as_record())
        self._prerender(image_id, doc)  # the new crops of HUIMAGES_PRERENDER, so no page waits for them
        return doc

    def analyse(self, image_id: str) -> Doc:
        """Find a stored image's focus and placeholders from one decode of its original (its master too, if missing)."""
        doc = self.catalog.get_live(validate_id(image_id))
        original = self.originals.get(image_id)
        side = self.settings.master_side
        ingested = ingest_stored(original, self.settings.limits, side, self.settings.focus)
        if ingested.master is not None and self.originals.get_master(image_id, side) is None:
            self.originals.put_master(image_id, side, ingested.master)
        placeholder = ingested.placeholder

        def analysed(doc: Doc) -> Doc:
            return {**set_automatic(doc, ingested.focus), "placeholder": placeholder}

        doc = self.catalog.update(image_id, analysed)
        logger.info("focus of %s found: %s", image_id, focus_of(doc).as_record())
        return doc

    def delete(self, image_id: str) -> DeleteReport:
        """Delete an image: its record, this host's derivatives, its CDN objects and queue items, its original.

        The delete is recorded first and the record goes next, so no host
        renders the image again and no helper names its CDN URLs; what a store
        that does not answer keeps is removed by the next queue run or
        ``huimages sweep`` (``huimages.serving.deletes``). Every other host's
        cached files go at its next sweep (it follows the catalog's
        deletions). An unknown ID is not an error.
        """
        return self._deleter.delete(image_id)

    def finish_deletes(self) -> FinishReport:
        """Finish the deletes that stores kept from finishing (those due for another attempt)."""
        return self._deleter.finish_pending()

    def housekeeping(self) -> dict[str, int]:
        """Finish what faults left undone: due deletes, and uploads that stored an original but no record.

        Run by every queue run, ``huimages sweep`` and each server's
        housekeeping thread; it never raises for a store that does not answer
        (what waits is counted).
        """
        try:
            deletes = self.finish_deletes()
        except HuImagesError as exc:  # the queue store does not answer: the deletes wait
            logger.warning("could not finish the recorded deletes: %s", exc)
            deletes = FinishReport(pending=-1)
        cleared, waiting = self.sweep_unrecorded()
        return {
            "deletes_finished": deletes.finished,
            "deletes_pending": deletes.pending,
            "unrecorded_removed": cleared,
            "unrecorded_waiting": waiting,
        }

    def process_queue(self) -> dict[str, Any]:
        """A queue run (``/processqueue``): housekeeping, then the CDN uploads. ``ConfigurationError`` without a CDN."""
        if self.publisher is None:
            raise ConfigurationError("CDN_BUCKET", "no CDN is configured: set CDN_BUCKET and CDN_URL")
        done = self.housekeeping()
        return {**self.publisher.run().as_dict(), **done}

    def sweep_unrecorded(self) -> tuple[int, int]:
        """Remove what uploads stored without writing their record, after the grace; (cleared, waiting)."""
        return self.unrecorded.sweep()

    @property
    def unrecorded(self) -> UnrecordedUploads:
        return UnrecordedUploads(
            self.cache.state_folder("unrecorded"), self.catalog, self.originals, self.settings.master_side
        )

    @property
    def _deleter(self) -> Deleter:
        return Deleter(
            self.catalog,
            self.cache,
            self.failures,
            self.originals,
            self.queue,
            self.publisher,
            self.settings.master_side,
            self.settings.cdn.retry_base,
        )

    def sweep_deleted(self) -> int:
        """Remove this host's cached derivatives of images deleted anywhere; returns how many files went."""
        removed = 0
        cursor = self.cache.read_state("deletions-cursor")
        while True:
            ids, following = self.catalog.deletions(cursor)
            for image_id in ids:
                removed += self.cache.remove_image(image_id)
            if following is not None and following != cursor:
                self.cache.write_state("deletions-cursor", following)
            if not ids or following == cursor:
                return removed
            cursor = following

    # -- reading --------------------------------------------------------------

    def record(self, image_id: str) -> Doc:
        """An image's record; ``UnknownImage`` for an unknown or deleted one."""
        return self.catalog.get_live(validate_id(image_id))

    def random_image(self) -> str:
        """Any image's ID; ``EmptyStore`` when there is none."""
        return self.catalog.random_id()

    def neighbour(self, image_id: str, *, following: bool) -> str:
        """The next (or previous) image in ID order, wrapping around at the ends."""
        return self.catalog.next_id(image_id) if following else self.catalog.previous_id(image_id)

    def queue_stats(self) -> QueueStats | None:
        """The CDN queue's items per state and its oldest queued item; None without a CDN."""
        return self.publisher.store.queue_stats() if self.publisher is not None else None

    def requeue_parked(self) -> int:
        """Queue every parked CDN item again; how many. ``HuImagesError`` without a CDN."""
        if self.publisher is None:
            raise ConfigurationError("CDN_BUCKET", "no CDN is configured: set CDN_BUCKET and CDN_URL")
        return self.publisher.store.requeue_parked(time.time())

    # -- derivatives ----------------------------------------------------------

    def dimensions(self, image_id: str, size: Size) -> tuple[int, int]:
        doc = self.catalog.get_live(image_id)
        return output_dimensions(size, int(doc["width"]), int(doc["height"]))

    def serve(
        self, size: Size, image_id: str, signature: str | None, fmt: Format = JPEG, client: str | None = None
    ) -> CachedFile:
        """What a URL serves: the cached file, or a render once the size policy allows it.

        A named size and its numeric form are one derivative, cached once
        under the numeric form (the name's folder links to it). Only renders
        are gated: a cached file costs nothing more to send.
        """
        if size.token != size.spec and size.token not in self._linked:
            self.cache.link_name(size.token, size.spec)
            self._linked.add(size.token)
        cached = self.cache.open(size.spec, validate_id(image_id), fmt)
        if cached is not None:
            return cached
        # A focus the image has (or had) is allowed as its centred crop is; no other is rendered.
        if size.focus is not None and size.focus not in known_points(self.catalog.get_live(image_id)):
            raise UnknownFocus(image_id, size.token)
        signed = self.policy.check(size, image_path(size.spec, image_id, fmt), signature)
        if client is None or signed or self.policy.is_free(size):
            return self.derivative(size, image_id, fmt)
        # A size outside the named ones with no signature that verified (the open policy without keys).
        self.catalog.get_live(image_id)  # an unknown ID is a 404, and never leaves a budget record behind
        self.budget.admit(client, image_id, f"{size.spec}.{fmt.extension}")
        cached = self.derivative(size, image_id, fmt, owner=client)
        self.budget.charge_bytes(client, cached.stat.st_size)
        return cached

    def derivative(self, size: Size, image_id: str, fmt: Format = JPEG, owner: str | None = None) -> CachedFile:
        """The cache file of ``size`` of ``image_id`` in ``fmt``, opened; rendered first if missing.

        Concurrent callers for one derivative, in any thread or process on this
        host, wait on one lock; the first renders, the others find the file. A
        render that failed on the image a moment ago answers at once with the
        same error (``huimages.serving.failures``).
        """
        validate_id(image_id)
        cached = self.cache.open(size.spec, image_id, fmt)
        if cached is not None:
            return cached
        which = f"{size.spec}.{fmt.extension}"
        self.cache.check_space()
        self.failures.check(image_id, which)
        with self.cache.lock(size.spec, image_id, fmt):
            cached = self.cache.open(size.spec, image_id, fmt)
            if cached is not None:
                return cached
            self.failures.check(image_id, which)  # another process may have just failed it
            kind = metrics.size_kind(size.spec, self._named_specs)
            try:
                # The slot bounds the CPU and memory of decode, scale and encode; the
                # write (an fsync) happens after it, so the next render need not wait for the disk.
                with self.slots.slot(f"{size.spec}/{image_id}.{fmt.extension}", owner), metrics.rendering():
                    rendered, source, seconds = self._render(size, image_id, fmt)
                cached = self._store(size, image_id, fmt, rendered, source, seconds)
            except HuImagesError as exc:
                self.failures.remember(image_id, which, exc)
                metrics.get().renders.labels(kind, fmt.name, metrics.outcome(exc)).inc()
                raise
            metrics.get().renders.labels(kind, fmt.name, "ok").inc()
            return cached

    def derivative_bytes(self, size_token: str, image_id: str, fmt: Format = JPEG) -> bytes:
        """A derivative's bytes, rendered if missing (what the CDN uploads)."""
        return self.derivative(self.parse_size(size_token), image_id, fmt).read()

    def _render(self, size: Size, image_id: str, fmt: Format) -> tuple[Rendered, str, float]:
        """The derivative's bytes, what they were made from (``master`` or ``original``), and the seconds it took."""
        started = time.perf_counter()
        doc = self.catalog.get_live(image_id)
        deadline = Deadline(f"{size.spec}/{image_id}", self.settings.limits.render_timeout)
        if self.settings.master_side and not size.is_original and "length" not in doc:
            doc = self._modernise(image_id)
        encoding = self.settings.encoding(fmt.name)
        rendered, source = None, "original"
        if not (fmt.animates and may_animate(doc)):  # a master is a still image: an animation's first frame
            rendered, source = self._render_from_master(size, image_id, doc, encoding, deadline), "master"
        if rendered is None:
            original = self.originals.get(image_id)
            rendered, source = render(original, size, encoding, self.settings.limits, deadline), "original"
        deadline.check("encoding")
        self._correct_record(image_id, doc, rendered, source)
        return rendered, source, time.perf_counter() - started

    def _store(
        self, size: Size, image_id: str, fmt: Format, rendered: Rendered, source: str, seconds: float
    ) -> CachedFile:
        """Queue a new derivative for the CDN, write it to the cache, and count it."""
        started = time.perf_counter()
        if self.publisher is not None:
            # Queued before the file is written: if the write fails, the queue
            # run renders it again; a cached file is never left unqueued.
            self.publisher.enqueue(size.spec, image_id, fmt)
        cached = self.cache.write(size.spec, image_id, rendered.data, fmt)
        if self.pruner is not None:
            self.pruner.wrote(len(rendered.data))
        recorded = metrics.get()
        cached.render_ms = round(seconds * 1000, 1)
        recorded.render_seconds.labels(source).observe(seconds)
        recorded.decode_seconds.labels(source).observe(rendered.decode_seconds)
        recorded.cache_written.inc(len(rendered.data))
        logger.info(
            "rendered %s/%s.%s (%d bytes) in %.1f ms, written in %.1f ms",
            size.spec,
            image_id,
            fmt.extension,
            len(rendered.data),
            seconds * 1000,
            (time.perf_counter() - started) * 1000,
        )
        return cached

    def _render_from_master(
        self, size: Size, image_id: str, doc: Doc, encoding: Encoding, deadline: Deadline
    ) -> Rendered | None:
        """The derivative from the image's master, when it has one that covers the size; else None.

        A master covers a size when the decode that size needs fits inside it
        (always, when the master is the original's full size). A host that
        lacks the master makes it from the original once.
        """
        side = self.settings.master_side
        if not side or size.is_original:
            return None
        width, height = int(doc["width"]), int(doc["height"])
        master_w, master_h = master_dimensions(width, height, side, str(doc.get("content_type", "")))
        need_w, need_h = decode_target(size, width, height)
        if (master_w, master_h) != (width, height) and (need_w > master_w or need_h > master_h):
            return None

        def from_master() -> Rendered:
            master = self.master(image_id)
            return render(master, size, encoding, self.settings.limits, deadline, (width, height))

        try:
            return from_master()
        except InvalidImage as exc:  # an unreadable master is made again from the original
            logger.warning("the master of %s is unreadable (%s); making it again", image_id, exc)
            self.originals.delete_master(image_id, side)
            return from_master()

    def _modernise(self, image_id: str) -> Doc:
        """Bring a record written by huImages (no ``length``; the stored, unrotated size) up to date.

        One decode of the original makes its master and gives the displayed
        size, the length and the content type.
        """
        original = self.originals.get(image_id)  # a legacy attachment is copied to the primary store here
        ingested = ingest_stored(original, self.settings.limits, self.settings.master_side, self.settings.focus)
        assert ingested.master is not None
        self.originals.put_master(image_id, self.settings.master_side, ingested.master)
        info = ingested.info
        fields = {
            "width": info.width,
            "height": info.height,
            "length": len(original),
            "content_type": info.content_type,
            "frames": info.frames,
            "placeholder": ingested.placeholder,
        }
        logger.info("brought the huImages record of %s up to date: %dx%d", image_id, info.width, info.height)
        return self.catalog.update(image_id, lambda doc: set_automatic({**doc, **fields}, ingested.focus))

    def master(self, image_id: str) -> bytes:
        """The image's master, made from the original and stored if this store has none yet."""
        side = self.settings.master_side
        master = self.originals.get_master(image_id, side)
        if master is None:
            master = make_master(self.originals.get(image_id), self.settings.limits, side)
            self.originals.put_master(image_id, side, master)
            logger.info("made the master of %s", image_id)
        return master

    def _correct_record(self, image_id: str, doc: Doc, rendered: Rendered, source: str) -> None:
        """Bring a record up to date from a render, in one write when it needs one.

        A record written by huImages holds the stored, unrotated size; one
        from before frames were counted has no ``frames`` (learnt only from
        the original: a master is a still image).
        """
        fields: dict[str, int] = {}
        if rendered.source_size != (doc.get("width"), doc.get("height")):
            fields["width"], fields["height"] = rendered.source_size
            logger.info("correcting the dimensions of %s to %dx%d (EXIF orientation)", image_id, *rendered.source_size)
        if source == "original" and doc.get("frames") != rendered.frames:
            fields["frames"] = rendered.frames
        if fields:
            self.catalog.update(image_id, lambda doc: {**doc, **fields})

    def flush(self, size: Size, cache_only: bool = False) -> FlushOutcome:
        """Render a size anew: its cached files go, and with a CDN its version rises.

        A named size is its numeric form (``small`` is ``240x160``). The
        version is shared by every host, so their URLs switch at once; the
        files are this host's (``cache_only`` on the others).
        """
        token = size.spec
        if cache_only or self.publisher is None:
            return FlushOutcome(token, None, self.cache.remove_size(token))
        report = self.publisher.flush(token, self.cache.remove_size)
        return FlushOutcome(token, report.version, report.removed, report.invalidation)

    def health(self) -> dict[str, dict[str, Any]]:
        """Each backend's name and whether it answers (``/healthz``, ``huimages check``)."""
        report: dict[str, dict[str, Any]] = {}
        for role, backend in (("originals", self.originals), ("catalog", self.catalog)):
            try:
                backend.ping()
                report[role] = {"backend": backend.name, "ok": True}
            except Exception as exc:  # health checks report, never raise
                report[role] = {"backend": backend.name, "ok": False, "error": str(exc)}
        return report

    def original_length(self, doc: Doc) -> int:
        length = doc.get("length")
        return int(length) if length is not None else self.originals.length(doc["_id"])
