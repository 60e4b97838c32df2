"""The use cases: store an original, produce a derivative. No HTTP here.

``ImageService`` is built once per process from settings (``from_settings``)
and shared by the client API, the WSGI app and the CLI.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huimages.cache import DerivativeCache
from huimages.catalog import Catalog, open_catalog
from huimages.catalog.base import Doc, format_timestamp
from huimages.config import Settings
from huimages.ids import compute_id, validate_id
from huimages.imaging import Deadline, Limits, probe, render
from huimages.originals import OriginalsStore, open_store
from huimages.sizes import Size, output_dimensions, parse_size

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ImageService:
    settings: Settings
    originals: OriginalsStore
    catalog: Catalog
    cache: DerivativeCache

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageService:
        return cls(
            settings=settings,
            originals=open_store(settings),
            catalog=open_catalog(settings),
            cache=DerivativeCache(settings.cache, settings.lock_timeout),
        )

    @property
    def limits(self) -> Limits:
        return Limits(max_pixels=self.settings.max_pixels, max_bytes=self.settings.max_upload_bytes)

    def parse_size(self, token: str) -> Size:
        return parse_size(token, self.settings.sizes, self.settings.max_side)

    # -- ingest ---------------------------------------------------------------

    def ingest(
        self,
        data: bytes,
        *,
        timestamp: datetime.datetime | str | None = None,
        title: str = "",
        references: Mapping[str, Any] | None = None,
        typ: str = "",
    ) -> str:
        """Validate and store an original; returns its ID.

        The image is checked completely before anything is written, and the
        original is stored before its document, so a failure at any step
        leaves either nothing or an unreferenced (content-addressed, hence
        harmless and reusable) original, never a document without bytes.
        """
        info = probe(bytes(data), self.limits)
        image_id = compute_id(data)
        if not self.originals.exists(image_id):
            self.originals.put(image_id, bytes(data), info.content_type)
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
        )
        logger.info("stored %s (%s, %dx%d, %d bytes)", image_id, info.format, info.width, info.height, len(data))
        return image_id

    # -- derivatives ----------------------------------------------------------

    def dimensions(self, image_id: str, size: Size) -> tuple[int, int]:
        doc = self.catalog.get_live(image_id)
        return output_dimensions(size, int(doc["width"]), int(doc["height"]))

    def derivative(self, size: Size, image_id: str) -> Path:
        """The cache file for ``size`` of ``image_id``, rendering it if missing.

        Concurrent callers for one derivative, in any thread or process on this
        host, wait on one lock; the first renders, the others find the file.
        """
        validate_id(image_id)
        path = self.cache.path(size.token, image_id)
        if path.is_file():
            return path
        with self.cache.lock(size.token, image_id):
            if path.is_file():
                return path
            self.catalog.get_live(image_id)
            original = self.originals.get(image_id)
            started = time.perf_counter()
            deadline = Deadline(f"{size.token}/{image_id}", self.settings.render_timeout)
            jpeg = render(original, size, self.settings.jpeg_quality, self.limits, deadline)
            deadline.check("encoding")
            if self.goes_to_cdn(size.token):
                # Queued before the file is written: if the write fails, the queue
                # run renders it again; a cached file is never left unqueued.
                version = self.catalog.size_version(size.token)
                self.catalog.enqueue(size.token, image_id, version, time.time())
            self.cache.write(size.token, image_id, jpeg)
            logger.info(
                "rendered %s/%s.jpeg (%d bytes) in %.1f ms",
                size.token,
                image_id,
                len(jpeg),
                (time.perf_counter() - started) * 1000,
            )
        return path

    def flush(self, size_token: str) -> tuple[int, int]:
        """Raise a size's version and remove its cached files; returns (version, files removed).

        The version lives in the catalog, so every host's URLs change at once;
        the files are this host's (run ``huimages flush --cache-only`` on the others).
        """
        version = self.catalog.bump_size_version(size_token)
        return version, self.cache.remove_size(size_token)

    def goes_to_cdn(self, size_token: str) -> bool:
        """Whether derivatives of this URL size are offloaded to the CDN."""
        if not self.settings.cdn_bucket or size_token == "o":
            return False
        sizes = self.settings.cdn_sizes
        return sizes is None or size_token in sizes

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
