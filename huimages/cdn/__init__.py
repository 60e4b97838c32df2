"""The CDN: the queue store (SQLite or CouchDB), the publisher, and how they are chosen.

``records`` (what is stored), ``store`` (queue, lease and version logic on a
few primitives), ``sqlite`` and ``couchdb`` (the two stores), ``publisher``
(queue runs, URLs, flush, CloudFront invalidation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from huimages.cdn.publisher import CdnPublisher, DerivativeSource, FlushReport, RunReport
from huimages.cdn.store import QueueStore
from huimages.config import Settings

if TYPE_CHECKING:
    from huimages.backends.couch import CouchServer


def open_queue(settings: Settings, couch: CouchServer | None = None) -> QueueStore:
    """CouchDB's queue database when ``COUCHSERVER`` is set, else tables in the SQLite catalog file."""
    if settings.couch.server:
        from huimages.backends.couch import connect, image_database
        from huimages.cdn.couchdb import CDN_VIEWS, CouchQueue

        server = connect(settings, couch)
        return CouchQueue(server.database(settings.couch.cdn_db, CDN_VIEWS), image_database(server, settings.couch.db))
    from huimages.cdn.sqlite import SQLiteQueue

    return SQLiteQueue(settings.paths.catalog_file)


def open_publisher(settings: Settings, source: DerivativeSource, queue: QueueStore) -> CdnPublisher | None:
    """The publisher (over ``queue``) when ``CDN_BUCKET`` and ``CDN_URL`` are set, else None."""
    if not settings.cdn.enabled:
        return None
    from huimages.backends.s3 import Bucket, make_client
    from huimages.cdn.publisher import cloudfront_invalidator

    assert settings.cdn.bucket
    bucket = Bucket(make_client(settings), settings.cdn.bucket, "cdn bucket")
    invalidate = None
    if settings.cdn.cloudfront_distribution_id:
        invalidate = cloudfront_invalidator(
            make_client(settings, "cloudfront"), settings.cdn.cloudfront_distribution_id
        )
    return CdnPublisher(settings.cdn, queue, bucket, source, invalidate=invalidate)


__all__ = ["CdnPublisher", "FlushReport", "QueueStore", "RunReport", "open_publisher", "open_queue"]
