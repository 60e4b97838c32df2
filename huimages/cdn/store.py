"""The CDN queue store: queue, leases and size versions, written once on a few primitives.

A backend stores JSON records by key (see ``records``) and implements nine
primitives: read many, atomically change many, remove many, and six queries
(due items, counts per state, the oldest queued item, keys in a state, the
derivatives of some images, records by key prefix), plus ``ping``.
Everything else (what enqueueing means, when a lease is free, how a result is
settled) lives here, so the SQLite and CouchDB stores cannot disagree.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator

from huimages.cdn.records import (
    DELETING,
    PARKED,
    QUEUED,
    REMOVAL_PREFIX,
    UPLOADED,
    WAITING,
    Derivative,
    QueueStats,
    Record,
    Removal,
    derivative_key,
    lease_key,
    removal_key,
    size_key,
)

#: ``change(key, current)`` returns the new record, or None to leave the key as it is.
Change = Callable[[str, Record | None], Record | None]


class QueueStore(abc.ABC):
    """Shared by every image server of a site: all state that must hold across hosts lives here."""

    name: str = "cdn queue"

    # -- primitives -----------------------------------------------------------

    @abc.abstractmethod
    def _get_many(self, keys: list[str]) -> dict[str, Record]:
        """The records that exist among ``keys``."""

    @abc.abstractmethod
    def _update_many(self, keys: list[str], change: Change) -> None:
        """Apply ``change`` to each key as an atomic read-modify-write (retried on conflict)."""

    @abc.abstractmethod
    def _remove_many(self, keys: list[str]) -> None:
        """Remove the records under ``keys`` (missing ones are not an error)."""

    @abc.abstractmethod
    def _derivatives_of(self, image_ids: list[str]) -> list[Record]:
        """The derivative records of these images, whatever their size and state (one query)."""

    @abc.abstractmethod
    def _due(self, now: float, limit: int) -> list[Record]:
        """Queued derivative records whose ``next_attempt`` is at most ``now``, soonest first."""

    @abc.abstractmethod
    def _state_counts(self) -> dict[str, int]:
        """Derivative records per waiting state (``WAITING``: at least those; others are ignored)."""

    @abc.abstractmethod
    def _oldest_queued(self) -> float | None:
        """The smallest ``queued_at`` of queued derivative records."""

    @abc.abstractmethod
    def _keys_in_state(self, state: str) -> list[str]:
        """Keys of the derivative records in ``state``."""

    @abc.abstractmethod
    def _with_prefix(self, prefix: str, after: str | None, limit: int) -> list[tuple[str, Record]]:
        """Up to ``limit`` records whose keys start with ``prefix``, in key order, after the key ``after``."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise ``BackendUnavailable`` unless the store answers."""

    def views_behind(self) -> list[str]:
        """The indexes being brought up to date (CouchDB's views; see ``Catalog.views_behind``)."""
        return []

    def bring_up_to_date(self, progress: Callable[[str, float], None] | None = None) -> None:
        """Wait until every index is up to date (see ``Catalog.bring_up_to_date``)."""
        return  # nothing to wait for: the embedded stores' indexes are always up to date

    # -- size versions --------------------------------------------------------

    def size_version(self, size: str) -> int:
        """The current version of a size (1 until it is first flushed)."""
        return self.size_versions([size])[size]

    def size_versions(self, sizes: Iterable[str]) -> dict[str, int]:
        """The current versions of these sizes, in one read."""
        wanted = list(dict.fromkeys(sizes))
        records = self._get_many([size_key(size) for size in wanted])
        return {size: int(records.get(size_key(size), {}).get("version", 1)) for size in wanted}

    def bump_size_version(self, size: str) -> int:
        """Raise a size's version by one, atomically; returns the new version."""
        new: list[int] = []

        def change(_key: str, record: Record | None) -> Record:
            version = int((record or {}).get("version", 1)) + 1
            new[:] = [version]
            return {**(record or {}), "huimages": "size", "version": version}

        self._update_many([size_key(size)], change)
        return new[0]

    # -- the queue ------------------------------------------------------------

    def enqueue(self, size: str, image_id: str, version: int, now: float, fmt: str = "jpeg") -> None:
        """Queue a derivative, unless it is already queued or uploaded at ``version`` or later."""
        self.enqueue_many(size, [image_id], version, now, fmt)

    def enqueue_many(self, size: str, image_ids: Iterable[str], version: int, now: float, fmt: str = "jpeg") -> int:
        """``enqueue`` for many images at once; returns how many were queued (the others were already)."""
        ids = {derivative_key(size, i, fmt): i for i in image_ids}
        queued: set[str] = set()

        def change(key: str, record: Record | None) -> Record | None:
            if record is not None and (record.get("state") == DELETING or int(record["version"]) >= version):
                return None
            queued.add(key)
            return Derivative(size, ids[key], version, next_attempt=now, queued_at=now, format=fmt).as_record()

        if ids:
            self._update_many(list(ids), change)
        return len(queued)

    def derivatives_of(self, image_id: str) -> list[Derivative]:
        """Every queued, uploaded, parked or deleting derivative of one image."""
        return [Derivative.from_record(record) for record in self._derivatives_of([image_id])]

    def derivatives_of_many(self, image_ids: Iterable[str]) -> list[Derivative]:
        """``derivatives_of`` for many images, in one query."""
        ids = list(dict.fromkeys(image_ids))
        return [Derivative.from_record(record) for record in self._derivatives_of(ids)] if ids else []

    def remove(self, items: Iterable[Derivative]) -> None:
        """Forget derivatives (their image was deleted)."""
        keys = [item.record_key for item in items]
        if keys:
            self._remove_many(keys)

    def due(self, now: float, limit: int) -> list[Derivative]:
        """Queued derivatives whose next attempt is due, soonest first."""
        return [Derivative.from_record(record) for record in self._due(now, limit)]

    def settle(self, results: list[Derivative]) -> None:
        """Write the outcome of upload attempts; a result for a flushed or removed item is dropped."""
        by_key = {item.record_key: item for item in results}

        def change(key: str, record: Record | None) -> Record | None:
            result = by_key[key]
            if record is None or int(record["version"]) != result.version or record.get("state") == DELETING:
                return None  # flushed, removed or being deleted meanwhile: this result no longer applies
            return {**record, **result.as_record()}

        if by_key:
            self._update_many(list(by_key), change)

    def uploaded(self, size: str, image_ids: Iterable[str], version: int, fmt: str = "jpeg") -> set[str]:
        """Which of ``image_ids`` are uploaded for ``size`` in ``fmt`` at ``version``."""
        records = self._get_many([derivative_key(size, i, fmt) for i in image_ids])
        return {
            str(r["image_id"]) for r in records.values() if r.get("state") == UPLOADED and int(r["version"]) == version
        }

    def queue_stats(self) -> QueueStats:
        """Derivatives per waiting state (queued, parked, deleting), and when the oldest queued one was queued.

        Uploaded derivatives are history, not counted here: a scrape costs the
        backlog (``huimages_cdn_uploads_total`` counts the uploads).
        """
        counts = dict.fromkeys(WAITING, 0)
        counts.update({state: n for state, n in self._state_counts().items() if state in counts})
        return QueueStats(counts, self._oldest_queued())

    def requeue_parked(self, now: float) -> int:
        """Queue every parked derivative again with its attempts reset; returns how many."""
        requeued: list[str] = []

        def change(key: str, record: Record | None) -> Record | None:
            if record is None or record.get("state") != PARKED:
                return None
            requeued.append(key)
            return {**record, "state": QUEUED, "attempts": 0, "next_attempt": now}

        keys = self._keys_in_state(PARKED)
        if keys:
            self._update_many(keys, change)
        return len(set(requeued))

    # -- deletes --------------------------------------------------------------

    def begin_removal(self, image_id: str, now: float) -> None:
        """Record that an image is being deleted, and take its derivatives off the CDN's URLs at once.

        The removal record stays until every store is rid of the image
        (``end_removal``); the image's derivative records become ``deleting``,
        which no URL look-up and no queue run takes for uploaded or due.
        """
        keys = [item.record_key for item in self.derivatives_of(image_id)]
        key = removal_key(image_id)

        def change(this: str, record: Record | None) -> Record | None:
            if this == key:
                return None if record is not None else Removal(image_id, since=now, next_attempt=now).as_record()
            if record is None or record.get("state") == DELETING:
                return None
            return {**record, "state": DELETING}

        self._update_many([key, *keys], change)

    def end_removal(self, image_id: str, items: Iterable[Derivative]) -> None:
        """The image is gone from every store: its removal record and these derivative records go."""
        self._remove_many([removal_key(image_id), *(item.record_key for item in items)])

    def postpone_removal(self, image_id: str, error: str, now: float, delay: float) -> Removal:
        """A finishing attempt failed: count it and set the next one ``delay`` seconds on."""
        after: list[Removal] = []

        def change(_key: str, record: Record | None) -> Record | None:
            removal = Removal.from_record(record) if record else Removal(image_id, since=now)
            removal.attempts += 1
            removal.next_attempt, removal.last_error = now + delay, error[:500]
            after[:] = [removal]
            return removal.as_record()

        self._update_many([removal_key(image_id)], change)
        return after[0]

    def removal(self, image_id: str) -> Removal | None:
        """The unfinished delete of this image, if there is one."""
        record = self._get_many([removal_key(image_id)]).get(removal_key(image_id))
        return None if record is None else Removal.from_record(record)

    def removals(self, batch: int = 500) -> Iterator[Removal]:
        """Every unfinished delete, in ID order (read ``batch`` at a time)."""
        after: str | None = None
        while page := self._with_prefix(REMOVAL_PREFIX, after, batch):
            yield from (Removal.from_record(record) for _, record in page)
            after = page[-1][0]

    # -- leases ---------------------------------------------------------------

    def acquire_lease(self, name: str, owner: str, ttl: float, now: float) -> bool:
        """Take (or extend) the lease ``name`` for ``ttl`` seconds unless another owner holds it."""
        return self.try_lease(name, owner, ttl, now) is None

    def try_lease(self, name: str, owner: str, ttl: float, now: float) -> Record | None:
        """``acquire_lease``, returning None when taken, else the holder's record (no second read)."""
        holder: list[Record] = []

        def change(_key: str, record: Record | None) -> Record | None:
            if record is not None and record.get("owner") not in (owner, "") and float(record["expires"]) > now:
                holder[:] = [record]
                return None
            holder.clear()
            return {"huimages": "lease", "owner": owner, "expires": now + ttl}

        self._update_many([lease_key(name)], change)
        return holder[0] if holder else None

    def lease(self, name: str) -> Record | None:
        """The lease record (``owner``, ``expires``), or None: one read by key, no view."""
        return self._get_many([lease_key(name)]).get(lease_key(name))

    def break_lease(self, name: str, owner: str) -> bool:
        """End the lease if ``owner`` still holds it (its holder is gone); False if someone else holds it now."""
        broken: list[bool] = []

        def change(_key: str, record: Record | None) -> Record | None:
            broken[:] = [record is not None and record.get("owner") == owner]
            return {"huimages": "lease", "owner": "", "expires": 0.0} if broken[0] else None

        self._update_many([lease_key(name)], change)
        return broken[0]

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease back if ``owner`` still holds it."""

        def change(_key: str, record: Record | None) -> Record | None:
            if record is None or record.get("owner") != owner:
                return None
            return {"huimages": "lease", "owner": "", "expires": 0.0}

        self._update_many([lease_key(name)], change)
