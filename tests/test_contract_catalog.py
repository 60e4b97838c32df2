"""One contract for every catalog; each implementation is a fixture param."""

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from huimages.catalog import open_catalog
from huimages.catalog.base import Catalog
from huimages.catalog.records import Derivative
from huimages.catalog.sqlite import SQLiteCatalog
from huimages.errors import EmptyStore, ImageNotFound
from huimages.ids import compute_id
from tests.conftest import backend_settings


@pytest.fixture(params=["sqlite", "couchdb"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        yield SQLiteCatalog(tmp_path / "catalog.sqlite3")
    else:
        yield open_catalog(backend_settings(tmp_path, couch=request.getfixturevalue("pouch")))


def fields(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "width": 40,
        "height": 30,
        "content_type": "image/jpeg",
        "length": 123,
        "timestamp": "20260101T000000.000000",
    }
    return base | extra


def test_record_and_get(catalog: Catalog) -> None:
    image_id = compute_id(b"1")
    catalog.record_image(image_id, **fields(title="first", references={"sku": "A1"}, typ="product_image"))
    doc = catalog.get(image_id)
    assert doc["_id"] == image_id
    assert doc["title"] == ["first"]
    assert doc["references"] == {"sku": ["A1"]}
    assert doc["types"] == ["product_image"]
    assert (doc["width"], doc["height"]) == (40, 30)
    assert doc["ctime"] == doc["mtime"] == "20260101T000000.000000"


def test_merge_as_huimages_did(catalog: Catalog) -> None:
    image_id = compute_id(b"2")
    catalog.record_image(image_id, **fields(title="a", references={"sku": "A1"}, typ="t1"))
    catalog.record_image(
        image_id,
        **fields(title="b", references={"sku": "A2", "order": 7}, typ="t1", timestamp="20270101T000000.000000"),
    )
    catalog.record_image(image_id, **fields(title="a", references={"sku": "A1"}, timestamp="20280101T000000.000000"))
    doc = catalog.get(image_id)
    assert doc["title"] == ["a", "b"]
    assert doc["references"] == {"sku": ["A1", "A2"], "order": [7]}
    assert doc["types"] == ["t1"]
    assert doc["ctime"] == "20260101T000000.000000"
    assert doc["mtime"] == "20280101T000000.000000"


def test_set_title(catalog: Catalog) -> None:
    image_id = compute_id(b"3")
    catalog.record_image(image_id, **fields())
    catalog.set_title(image_id, "new")
    catalog.set_title(image_id, "new")
    assert catalog.get(image_id)["title"] == ["new"]
    with pytest.raises(ImageNotFound):
        catalog.set_title(compute_id(b"absent"), "x")


def test_browsing_wraps_and_skips_deleted(catalog: Catalog) -> None:
    with pytest.raises(EmptyStore):
        catalog.random_id()
    ids = sorted(compute_id(bytes([i])) for i in range(5))
    for image_id in ids:
        catalog.record_image(image_id, **fields())
    assert [catalog.next_id(i) for i in ids] == ids[1:] + ids[:1]
    assert [catalog.previous_id(i) for i in ids] == ids[-1:] + ids[:-1]
    assert {catalog.random_id() for _ in range(60)} <= set(ids)
    catalog._modify(ids[2], lambda doc: {**(doc or {}), "deleted": True})
    assert catalog.next_id(ids[1]) == ids[3]
    assert catalog.count() == 4
    with pytest.raises(ImageNotFound, match="deleted"):
        catalog.get_live(ids[2])


def test_concurrent_merges_lose_nothing(catalog: Catalog) -> None:
    image_id = compute_id(b"busy")

    def save(n: int) -> None:
        catalog.record_image(image_id, **fields(title=f"t{n}"))

    threads = [threading.Thread(target=save, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(catalog.get(image_id)["title"]) == sorted(f"t{n}" for n in range(16))


def test_ping(catalog: Catalog) -> None:
    catalog.ping()


# -- derivatives and the CDN queue --------------------------------------------


def test_queue_lifecycle(catalog: Catalog) -> None:
    ids = sorted(compute_id(bytes([n])) for n in range(4))
    for n, image_id in enumerate(ids):
        catalog.enqueue("240x160", image_id, 1, now=100.0 + n)
    catalog.enqueue("240x160", ids[0], 1, now=500.0)  # already queued: unchanged
    due = catalog.due(now=101.5, limit=10)
    assert [d.image_id for d in due] == ids[:2]
    assert due[0].key == f"240x160/1/{ids[0]}.jpeg" and due[0].queued_at == 100.0
    assert len(catalog.due(now=1000, limit=3)) == 3

    first, second = due
    first.state, first.attempts = "uploaded", 1
    second.attempts, second.last_error, second.next_attempt = 1, "S3 down", 2000.0
    catalog.settle([first, second])
    assert [d.image_id for d in catalog.due(now=1000, limit=10)] == ids[2:]
    assert catalog.uploaded("240x160", ids, 1) == {ids[0]}
    assert catalog.uploaded("240x160", ids, 2) == set()
    stats = catalog.queue_stats()
    assert stats.counts == {"queued": 3, "uploaded": 1, "parked": 0}
    assert stats.oldest_queued_at == 101.0

    second.state = "parked"
    catalog.settle([second])
    assert catalog.queue_stats().counts["parked"] == 1
    assert catalog.requeue_parked(now=3000.0) == 1
    again = {d.image_id: d for d in catalog.due(now=3000.0, limit=10)}
    assert again[ids[1]].attempts == 0


def test_flush_versions(catalog: Catalog) -> None:
    image_id = compute_id(b"v")
    assert catalog.size_version("small") == 1
    catalog.enqueue("small", image_id, 1, now=1.0)
    [item] = catalog.due(now=2.0, limit=5)
    item.state = "uploaded"
    catalog.settle([item])
    assert catalog.bump_size_version("small") == 2
    assert catalog.bump_size_version("small") == 3
    assert catalog.size_version("small") == 3
    assert catalog.size_version("other") == 1
    assert catalog.uploaded("small", [image_id], 3) == set()
    catalog.enqueue("small", image_id, 3, now=5.0)  # a newer version queues again
    [requeued] = catalog.due(now=5.0, limit=5)
    assert (requeued.version, requeued.state, requeued.attempts) == (3, "queued", 0)
    stale = Derivative("small", image_id, 1, state="uploaded")
    catalog.settle([stale])  # a result for the old version does not apply any more
    assert catalog.due(now=5.0, limit=5)[0].state == "queued"
    assert catalog.count() == 0  # queue records are not images


def test_lease_is_exclusive_until_it_expires(catalog: Catalog) -> None:
    assert catalog.acquire_lease("processqueue", "host-a", ttl=10, now=100)
    assert not catalog.acquire_lease("processqueue", "host-b", ttl=10, now=105)
    assert catalog.acquire_lease("processqueue", "host-a", ttl=10, now=105)  # the owner renews
    assert catalog.acquire_lease("processqueue", "host-b", ttl=10, now=116)  # expired: taken over
    catalog.release_lease("processqueue", "host-a")  # not the owner any more: no effect
    assert not catalog.acquire_lease("processqueue", "host-c", ttl=10, now=117)
    catalog.release_lease("processqueue", "host-b")
    assert catalog.acquire_lease("processqueue", "host-c", ttl=10, now=117)


def test_lease_race_has_one_winner(catalog: Catalog, request: pytest.FixtureRequest) -> None:
    # every contender uses its own catalog object, as separate hosts would
    contenders = [catalog] + [type(catalog).__new__(type(catalog)) for _ in range(19)]
    for other in contenders[1:]:
        other.__dict__.update(catalog.__dict__)
        if hasattr(catalog, "_local"):
            other._local = threading.local()  # type: ignore[attr-defined]
    barrier = threading.Barrier(len(contenders))
    winners: list[int] = []
    errors: list[BaseException] = []

    def contend(n: int) -> None:
        barrier.wait()
        try:
            if contenders[n].acquire_lease("processqueue", f"host-{n}", ttl=60, now=1000):
                winners.append(n)
        except BaseException as exc:  # a contender that fails is an error, not a loser
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(len(contenders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(winners) == 1


def test_sqlite_connects_while_another_process_writes(tmp_path: Path) -> None:
    """Switching a new file to WAL waits for a writer instead of failing with 'database is locked'."""
    import sqlite3

    path = tmp_path / "catalog.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE other (x)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO other VALUES (1)")
    release = threading.Timer(0.3, lambda: writer.execute("COMMIT"))
    release.start()
    try:
        catalog = SQLiteCatalog(path)
        catalog.ping()  # connects, switches to WAL, creates the schema
    finally:
        release.join()
        writer.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
