"""SQLite plumbing shared by the embedded catalog and the embedded CDN queue.

One file, several tables; WAL mode lets the server's processes read while one
writes; each thread (and each forked process) gets its own connection; errors
are translated into ``huimages.errors`` (busy or unopenable: retry later; the
rest: a fault).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from huimages.errors import BackendUnavailable, DiskFull, StorageError
from huimages.telemetry import metrics

logger = logging.getLogger(__name__)


def _use_wal(conn: sqlite3.Connection, patience: float) -> None:
    """Switch the file to WAL once; it stays so for every later connection.

    Changing the journal mode needs an exclusive lock and fails at once with
    "database is locked" when other connections are busy (the busy timeout does
    not cover it), as when several workers start together: so read first, and
    retry the switch for a while.
    """
    deadline = time.monotonic() + patience
    while str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


_CHUNK = 500  # SQLite's limit on bound parameters is 999
_SQLITE_FULL = 13  # "database or disk is full": the disk, a quota, or the file's page limit


def select_in(conn: sqlite3.Connection, query: str, values: Sequence[str]) -> Iterator[Any]:
    """Rows of ``query`` (whose ``{marks}`` is the IN list) for all ``values``, in chunks SQLite accepts."""
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK]
        yield from conn.execute(query.format(marks=",".join("?" * len(chunk))), chunk)


class SQLiteFile:
    """Connections to one SQLite file for one backend; ``setup`` runs once per new connection."""

    def __init__(
        self, path: Path, backend: str, setup: Callable[[sqlite3.Connection], None], busy_timeout: float = 30.0
    ) -> None:
        self.path = Path(path)
        self.backend = backend
        self.setup = setup
        self.busy_timeout = busy_timeout
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        _use_wal(conn, self.busy_timeout)
        conn.execute("PRAGMA synchronous=NORMAL")
        self.setup(conn)
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextlib.contextmanager
    def errors(self) -> Iterator[sqlite3.Connection]:
        """A connection, with sqlite3 errors translated."""
        with metrics.backend_call(self.backend, "query"):
            try:
                yield self._connection()
            except sqlite3.OperationalError as exc:  # locked too long, disk full: passes (the log names the file)
                logger.error("%s: %s", self.path, exc)
                if getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL:
                    raise DiskFull(self.backend) from exc
                raise BackendUnavailable(self.backend, str(exc)) from exc
            except sqlite3.DatabaseError as exc:
                raise StorageError(self.backend, f"{self.path}: {exc}") from exc
            except OSError as exc:  # the folder cannot be made or opened
                raise BackendUnavailable(self.backend, f"{self.path}: {exc.strerror}") from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (taken at once, so read-modify-write is atomic across processes)."""
        with self.errors() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite has rolled back itself after some errors (a full disk)
                    conn.execute("ROLLBACK")
                raise
