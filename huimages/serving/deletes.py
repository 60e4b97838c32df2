"""Deletes that finish: an image leaves every store, or what remains is recorded and finished later.

A delete first writes its removal record in the queue store
(``removal:<id>``) and marks the image's CDN derivatives ``deleting``: from
then on no URL helper names the CDN for the image. Then the catalog record
goes (no host renders the image again), this host's cached files, the CDN
objects, the master and the original. When a store does not answer, the
removal record stays with the error and the time of the next attempt: the
next queue run, ``huimages sweep`` or a server's housekeeping finishes the
delete, retrying with backoff as uploads do. A delete is never given up.

If the removal record cannot be written, nothing is removed and the delete
fails as a whole (503): it is safe to repeat.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from huimages.catalog.base import Catalog
from huimages.cdn import CdnPublisher, QueueStore
from huimages.cdn.records import Derivative
from huimages.core.focus import FocusPoint, known_points
from huimages.core.ids import validate_id
from huimages.errors import BackendUnavailable, HuImagesError
from huimages.originals.base import OriginalsStore
from huimages.serving.cache import DerivativeCache
from huimages.serving.failures import FailureMemory

logger = logging.getLogger(__name__)

#: The longest wait between two attempts to finish a delete.
MAX_BACKOFF = 3600.0


@dataclasses.dataclass
class DeleteReport:
    """What a delete removed, and what it could not remove yet (finished later)."""

    image_id: str
    existed: bool = False
    cached: int = 0  # this host's cached derivatives removed
    cdn_objects: int = 0  # derivatives removed from the CDN bucket (and from the queue)
    remaining: list[str] = dataclasses.field(default_factory=list)
    error: str = ""

    @property
    def finished(self) -> bool:
        return not self.remaining

    def describe(self) -> str:
        """One sentence for a CLI line, a log line or an API answer."""
        if self.finished:
            return f"deleted {self.image_id}"
        return (
            f"deleted {self.image_id}, except {_join(self.remaining)} ({self.error}); the next queue run or"
            " `huimages sweep` finishes the delete by itself"
        )

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"id": self.image_id, "deleted": True, "finished": self.finished}
        if not self.finished:
            answer.update(remaining=self.remaining, error=self.error, message=self.describe())
        return answer


@dataclasses.dataclass
class FinishReport:
    finished: int = 0
    pending: int = 0  # removals still waiting (not due yet, or failed again)


@dataclasses.dataclass
class Deleter:
    catalog: Catalog
    cache: DerivativeCache
    failures: FailureMemory
    originals: OriginalsStore
    queue: QueueStore
    publisher: CdnPublisher | None
    master_side: int
    retry_base: float
    clock: Callable[[], float] = time.time

    def delete(self, image_id: str) -> DeleteReport:
        """Delete an image everywhere, or as far as the stores answer (the rest is finished later)."""
        validate_id(image_id)
        self.queue.begin_removal(image_id, self.clock())  # raises: nothing removed, the delete may be repeated
        if self.publisher is not None:
            self.publisher.forget_lookups(image_id)
        return self._finish(image_id)

    def settle_before_saving(self, image_id: str) -> None:
        """Before the same bytes are saved again: a delete of them still unfinished is finished first.

        Else the delete would finish later and remove the new save. When it
        cannot finish now, the save waits (``BackendUnavailable``, 503).
        """
        if self.queue.removal(image_id) is None:
            return
        report = self._finish(image_id)
        if not report.finished:
            raise BackendUnavailable(
                "delete",
                f"{image_id} was deleted and the delete is not finished yet ({report.error}); try again shortly",
            )

    def finish_pending(self) -> FinishReport:
        """Finish the recorded deletes that are due; stops at a store that still does not answer."""
        report = FinishReport()
        now = self.clock()
        blocked = False
        for removal in list(self.queue.removals()):
            if blocked or removal.next_attempt > now:
                report.pending += 1
                continue
            outcome = self._finish(removal.image_id, attempts=removal.attempts)
            if outcome.finished:
                report.finished += 1
                logger.info("finished the delete of %s (recorded %s)", removal.image_id, time.ctime(removal.since))
            else:
                report.pending += 1
                blocked = True  # the outage goes on: the other removals wait for the next run
        return report

    def _finish(self, image_id: str, attempts: int = 0) -> DeleteReport:
        report = DeleteReport(image_id)

        down: list[bool] = []

        def done(what: str, step: Callable[[], object]) -> bool:
            """Run one removal; a store that does not answer leaves ``what`` remaining.

            After one store did not answer, the remaining steps are not tried: an
            outage costs the delete one backend timeout, not one per object.
            """
            try:
                if down:
                    raise BackendUnavailable("delete", "an earlier step found a store down")
                step()
            except HuImagesError as exc:
                down.extend([True] if isinstance(exc, BackendUnavailable) else [])
                report.remaining.append(what)
                report.error = report.error or str(exc)
                return False
            return True

        try:  # the focus points its crops were cut around: their folders are the ones to clear here
            points: set[FocusPoint] | None = known_points(self.catalog.get(image_id))
        except HuImagesError as exc:  # gone already (a delete finished later), or the catalog does not answer
            points = None
            down.extend([True] if isinstance(exc, BackendUnavailable) else [])  # one timeout, not two
        existed: list[bool] = []
        done("the catalog record", lambda: existed.append(self.catalog.delete(image_id)))
        report.existed = any(existed)
        report.cached = self.cache.remove_image(image_id, points)
        self.failures.forget(image_id)
        items: list[Derivative] = []
        done("the CDN objects", lambda: items.extend(self.queue.derivatives_of(image_id)))
        gone = [item for item in items if done(f"CDN object {item.key}", functools.partial(self._unpublish, item))]
        report.cdn_objects = len(gone)
        if self.master_side:
            done("the master", lambda: self.originals.delete_master(image_id, self.master_side))
        done("the original", lambda: self.originals.delete(image_id))
        self._settle(report, gone, attempts)
        return report

    def _unpublish(self, item: Derivative) -> None:
        if self.publisher is not None:  # without a CDN now, objects uploaded before stay: nothing links to them
            self.publisher.delete_object(item)

    def _settle(self, report: DeleteReport, gone: list[Derivative], attempts: int) -> None:
        try:
            if report.finished:
                self.queue.end_removal(report.image_id, gone)
            else:
                self.queue.remove(gone)
                delay = min(max(self.retry_base, 1.0) * 2**attempts, MAX_BACKOFF)
                self.queue.postpone_removal(report.image_id, report.error, self.clock(), delay)
        except BackendUnavailable as exc:  # the removal record stays as it was: the next run tries again
            logger.warning("could not record how far the delete of %s got: %s", report.image_id, exc)
        if report.finished:
            if report.existed or report.cached or report.cdn_objects:
                logger.info(
                    "deleted %s (%d cached derivatives, %d CDN objects)",
                    report.image_id,
                    report.cached,
                    report.cdn_objects,
                )
        else:
            logger.warning("%s", report.describe())


def _join(parts: list[str]) -> str:
    cdn = [p for p in parts if p.startswith("CDN object ")]
    named = [p for p in parts if not p.startswith("CDN object ")]
    if cdn:
        named.append(f"{len(cdn)} CDN object{'s' if len(cdn) > 1 else ''}")
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
