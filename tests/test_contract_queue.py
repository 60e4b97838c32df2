"""One contract for every CDN queue store (SQLite, CouchDB), and the move out of the catalog."""

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import couchdb
import pytest

from huimages.catalog import open_catalog
from huimages.catalog.sqlite import SQLiteCatalog
from huimages.cdn import open_queue
from huimages.cdn.records import Derivative
from huimages.cdn.store import QueueStore
from huimages.core.ids import compute_id
from tests.servers import PouchCouch, backend_settings

StoreFactory = Callable[[], QueueStore]


@pytest.fixture(params=["sqlite", "couchdb"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Makes store objects on one backing store, as separate processes or hosts would have."""
    if request.param == "sqlite":
        settings = backend_settings(tmp_path)
    else:
        settings = backend_settings(tmp_path, couch=request.getfixturevalue("pouch"))
    yield lambda: open_queue(settings)


@pytest.fixture
def store(new_store: StoreFactory) -> QueueStore:
    return new_store()


def test_queue_lifecycle(store: QueueStore) -> None:
    ids = sorted(compute_id(bytes([n])) for n in range(4))
    for n, image_id in enumerate(ids):
        store.enqueue("240x160", image_id, 1, now=100.0 + n)
    store.enqueue("240x160", ids[0], 1, now=500.0)  # already queued: unchanged
    due = store.due(now=101.5, limit=10)
    assert [d.image_id for d in due] == ids[:2]
    assert due[0].key == f"240x160/1/{ids[0]}.jpeg" and due[0].queued_at == 100.0
    assert len(store.due(now=1000, limit=3)) == 3

    first, second = due
    first.state, first.attempts = "uploaded", 1
    second.attempts, second.last_error, second.next_attempt = 1, "S3 down", 2000.0
    store.settle([first, second])
    assert [d.image_id for d in store.due(now=1000, limit=10)] == ids[2:]
    assert store.uploaded("240x160", ids, 1) == {ids[0]}
    assert store.uploaded("240x160", ids, 2) == set()
    stats = store.queue_stats()
    assert stats.counts == {"queued": 3, "parked": 0, "deleting": 0}
    assert stats.oldest_queued_at == 101.0

    second.state = "parked"
    store.settle([second])
    assert store.queue_stats().counts["parked"] == 1
    assert store.requeue_parked(now=3000.0) == 1
    again = {d.image_id: d for d in store.due(now=3000.0, limit=10)}
    assert again[ids[1]].attempts == 0


def test_flush_versions(store: QueueStore) -> None:
    image_id = compute_id(b"v")
    assert store.size_version("small") == 1
    store.enqueue("small", image_id, 1, now=1.0)
    [item] = store.due(now=2.0, limit=5)
    item.state = "uploaded"
    store.settle([item])
    assert store.bump_size_version("small") == 2
    assert store.bump_size_version("small") == 3
    assert store.size_version("small") == 3
    assert store.size_version("other") == 1
    assert store.uploaded("small", [image_id], 3) == set()
    store.enqueue("small", image_id, 3, now=5.0)  # a newer version queues again
    [requeued] = store.due(now=5.0, limit=5)
    assert (requeued.version, requeued.state, requeued.attempts) == (3, "queued", 0)
    stale = Derivative("small", image_id, 1, state="uploaded")
    store.settle([stale])  # a result for the old version does not apply any more
    assert store.due(now=5.0, limit=5)[0].state == "queued"


def test_lease_is_exclusive_until_it_expires(store: QueueStore) -> None:
    assert store.acquire_lease("processqueue", "host-a", ttl=10, now=100)
    assert not store.acquire_lease("processqueue", "host-b", ttl=10, now=105)
    assert store.acquire_lease("processqueue", "host-a", ttl=10, now=105)  # the owner renews
    assert store.acquire_lease("processqueue", "host-b", ttl=10, now=116)  # expired: taken over
    store.release_lease("processqueue", "host-a")  # not the owner any more: no effect
    assert not store.acquire_lease("processqueue", "host-c", ttl=10, now=117)
    store.release_lease("processqueue", "host-b")
    assert store.acquire_lease("processqueue", "host-c", ttl=10, now=117)


def test_lease_race_has_one_winner(new_store: StoreFactory) -> None:
    contenders = [new_store() for _ in range(20)]  # each its own store object, as separate hosts
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


def test_ping(store: QueueStore) -> None:
    store.ping()


# -- moving the queue out of the catalog (what releases before this one wrote) --

OLD_IDS = sorted(compute_id(bytes([n, 1])) for n in range(3))


def expected_state(store: QueueStore) -> None:
    """The queue state that the old-shape records below describe."""
    assert store.size_version("240x160") == 2
    assert store.size_version("small") == 1
    assert store.queue_stats().counts == {"queued": 1, "parked": 1, "deleting": 0}
    [due] = store.due(now=1e12, limit=10)
    assert (due.image_id, due.version, due.attempts, due.last_error) == (OLD_IDS[0], 2, 2, "S3 down")
    assert store.uploaded("240x160", OLD_IDS, 2) == {OLD_IDS[1]}
    assert not store.acquire_lease("processqueue", "someone-else", ttl=10, now=150.0)  # still held until 200
    assert store.acquire_lease("processqueue", "someone-else", ttl=10, now=201.0)


def old_derivatives() -> list[Derivative]:
    return [
        Derivative("240x160", OLD_IDS[0], 2, "queued", 2, "S3 down", 50.0, 10.0),
        Derivative("240x160", OLD_IDS[1], 2, "uploaded", 1, "", 20.0, 11.0),
        Derivative("240x160", OLD_IDS[2], 2, "parked", 8, "gone", 30.0, 12.0),
    ]


def test_sqlite_queue_tables_move_out_of_the_catalog(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(
        """
        CREATE TABLE images (id TEXT PRIMARY KEY, doc TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE derivatives (size TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
            state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
            next_attempt REAL NOT NULL DEFAULT 0, queued_at REAL NOT NULL DEFAULT 0, PRIMARY KEY (size, id));
        CREATE TABLE size_versions (size TEXT PRIMARY KEY, version INTEGER NOT NULL);
        CREATE TABLE leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL);
        """
    )
    for d in old_derivatives():
        old.execute(
            "INSERT INTO derivatives VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (d.size, d.image_id, d.version, d.state, d.attempts, d.last_error, d.next_attempt, d.queued_at),
        )
    old.execute("INSERT INTO size_versions VALUES ('240x160', 2)")
    old.execute("INSERT INTO leases VALUES ('processqueue', 'old-host:1:x', 200.0)")
    old.execute("INSERT INTO images VALUES (?, ?, 0)", (OLD_IDS[0], json.dumps({"_id": OLD_IDS[0], "width": 4})))
    old.close()

    settings = backend_settings(tmp_path, HUIMAGES_CATALOG=str(path))
    expected_state(open_queue(settings))
    tables = {row[0] for row in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"images", "cdn_records"}
    assert SQLiteCatalog(path).get(OLD_IDS[0])["width"] == 4


def test_couchdb_queue_documents_move_to_their_own_database(tmp_path: Path, pouch: PouchCouch) -> None:
    settings = backend_settings(tmp_path, couch=pouch)
    images = couchdb.Server(pouch.url).create(settings.couch.db)
    image_doc = {"_id": OLD_IDS[0], "width": 4, "height": 3, "title": ["kept"]}
    old_docs = [
        {"_id": f"derivative:{d.size}:{d.image_id}", "huimages": "derivative", **vars(d)} for d in old_derivatives()
    ]
    old_docs += [
        {"_id": "size:240x160", "huimages": "size", "version": 2},
        {"_id": "lease:processqueue", "huimages": "lease", "owner": "old-host:1:x", "expires": 200.0},
        image_doc,
    ]
    assert all(ok for ok, _, _ in images.update(old_docs))

    expected_state(open_queue(settings))
    left = {row.id for row in images.view("_all_docs")}
    assert left == {OLD_IDS[0], "_design/huimages"}  # image and design documents only
    assert open_catalog(settings).get(OLD_IDS[0])["title"] == ["kept"]
    assert settings.couch.cdn_db in couchdb.Server(pouch.url)
