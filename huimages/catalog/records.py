"""Records the CDN queue keeps in the catalog, whatever the backend."""

from __future__ import annotations

import dataclasses

QUEUED = "queued"
UPLOADED = "uploaded"
PARKED = "parked"
STATES = (QUEUED, UPLOADED, PARKED)


@dataclasses.dataclass
class Derivative:
    """One derivative's way to the CDN bucket. ``version`` is its size's version when queued."""

    size: str
    image_id: str
    version: int
    state: str = QUEUED
    attempts: int = 0
    last_error: str = ""
    next_attempt: float = 0.0
    queued_at: float = 0.0

    @property
    def key(self) -> str:
        """The object key in the CDN bucket: a flushed size gets new keys, never a stale hit."""
        return f"{self.size}/{self.version}/{self.image_id}.jpeg"


@dataclasses.dataclass
class QueueStats:
    counts: dict[str, int]
    oldest_queued_at: float | None
