"""One contract for every catalog; each implementation is a fixture param."""

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from huimages.catalog import open_catalog
from huimages.catalog.base import Catalog
from huimages.catalog.sqlite import SQLiteCatalog
from huimages.core.ids import compute_id
from huimages.errors import EmptyStore, ImageNotFound
from tests.servers import backend_settings


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


def test_newest_first(catalog: Catalog) -> None:
    stamps = ["20260102T000000.000000", "20260105T000000.000000", "20260103T000000.000000", "20260105T000000.000000"]
    ids = [compute_id(f"newest {n}".encode()) for n in range(4)]
    for image_id, stamp in zip(ids, stamps, strict=True):
        catalog.record_image(image_id, **fields(timestamp=stamp))
    expected = sorted(ids, key=lambda i: (stamps[ids.index(i)], i), reverse=True)
    assert [d["_id"] for d in catalog.newest_page(None, 10)] == expected
    first = catalog.newest_page(None, 2)
    rest = catalog.newest_page(str(first[-1]["_id"]), 10)
    assert [d["_id"] for d in first + rest] == expected  # the cursor goes on where the page ended
    catalog.delete(expected[0])
    assert [d["_id"] for d in catalog.newest_page(None, 10)] == expected[1:]


def test_every_sqlite_listing_seeks_into_an_index_whatever_its_cursor(tmp_path: Path) -> None:
    """The plans, held: a cursor is searched for in an index, never reached by scanning down to it."""
    from huimages.catalog.sqlite import QUERIES

    catalog = SQLiteCatalog(tmp_path / "catalog.sqlite3")
    for n in range(200):  # enough rows that the planner uses its statistics, not a guess
        catalog.record_image(compute_id(str(n).encode()), **fields(timestamp=f"2026010{n % 9}T000000.000000"))
    with catalog.file.errors() as conn:
        conn.execute("ANALYZE")
        for name, sql in QUERIES.items():
            plan = " / ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, ["x"] * sql.count("?")))
            assert "TEMP B-TREE" not in plan, (name, plan)  # no sort: the index gives the order
            if "?" in sql.replace("LIMIT ?", ""):  # a cursor
                assert plan.startswith("SEARCH images USING"), (name, plan)
            else:  # from one end of an index (the table is its primary key's: WITHOUT ROWID), stopped by LIMIT
                assert plan in ("SCAN images", "SCAN images USING INDEX images_newest"), (name, plan)
