"""CouchDB's views after bulk writes: no request waits for an index build; bulk writers bring them up to date."""

import time
from collections.abc import Iterator
from pathlib import Path

import couchdb
import pytest
from click.testing import CliRunner

from huimages.backends import couch
from huimages.catalog.couchdb import CouchDBCatalog
from huimages.config import Settings
from huimages.core.ids import compute_id
from huimages.ops.cli import main
from tests.servers import PouchCouch

BULK = 50_000


def image_doc(n: int) -> dict[str, object]:
    image_id = compute_id(f"bulk {n}".encode())
    return {"_id": image_id, "ctime": f"2026-12-07T{n:08d}", "title": [f"bulk {n}"], "width": 40, "height": 30}


@pytest.fixture
def own_pouch(tmp_path: Path) -> Iterator[PouchCouch]:
    """A CouchDB API server of this test's own: the index builds it starts end with it."""
    server = PouchCouch(tmp_path / "pouch")
    server.start()
    try:
        yield server
    finally:
        server.kill()


def bulk_catalog(server: PouchCouch, home: Path, count: int) -> tuple[dict[str, str], CouchDBCatalog]:
    """A catalog whose views were built for 20 images, then ``count`` more written in bulk, no view read between."""
    env = {"HUIMAGES_HOME": str(home), "COUCHSERVER": server.url, "HUIMAGES_COUCHDB_NAME": server.new_database()}
    timeout = Settings.from_env(env).backend_timeout
    catalog = CouchDBCatalog(couch.image_database(couch.CouchServer(server.url, timeout), env["HUIMAGES_COUCHDB_NAME"]))
    catalog.couch.db(catalog.name).update([image_doc(n) for n in range(20)])
    assert len(catalog.newest_page(None, 50)) == catalog.count() == 20
    raw = couchdb.Server(server.url)[env["HUIMAGES_COUCHDB_NAME"]]
    for start in range(20, 20 + count, 5000):  # as a migration or a restore writes
        raw.update([image_doc(n) for n in range(start, min(20 + count, start + 5000))])
    return env, catalog


@pytest.mark.integration
def test_listings_after_50000_bulk_writes_answer_within_the_backend_timeout(
    tmp_path: Path, own_pouch: PouchCouch
) -> None:
    env, catalog = bulk_catalog(own_pouch, tmp_path, BULK)
    timeout = Settings.from_env(env).backend_timeout
    # ID order, neighbours and random read CouchDB's own index of IDs, never a view being built.
    first = sorted(compute_id(f"bulk {n}".encode()) for n in range(20))
    reads = [lambda: catalog.page(None, 100), lambda: catalog.page(first[5], 100), catalog.random_id]
    reads += [lambda: catalog.next_id(first[3]), lambda: catalog.previous_id(first[3])]
    for read in reads:
        started = time.monotonic()
        assert read()
        assert time.monotonic() - started < timeout
    assert len(catalog.page(None, 100)) == 100
    result = CliRunner(env=env).invoke(main, ["check"])
    assert result.exit_code == 0, result.output
    assert "indexes   being brought up to date: live, newest, attachments" in result.output, result.output


@pytest.mark.integration
def test_bulk_writers_bring_the_views_up_to_date(tmp_path: Path, own_pouch: PouchCouch) -> None:
    _, catalog = bulk_catalog(own_pouch, tmp_path, 4000)
    seen: list[tuple[str, float]] = []
    catalog.bring_up_to_date(lambda view, seconds: seen.append((view, seconds)))  # what migrate does at its end
    assert catalog.views_behind() == []
    assert catalog.count() == 4020
    assert catalog.newest_page(None, 1)[0]["_id"] == compute_id(b"bulk 4019")
    assert all(view in ("live", "newest", "attachments") for view, _ in seen)
