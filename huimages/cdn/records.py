"""The records of the CDN queue, whatever store keeps them.

Every record is a JSON document under a key: ``derivative:<size>:<id>`` (one
JPEG derivative's way to the CDN bucket; ``derivative:<size>:<id>.<format>``
for the other formats), ``size:<size>`` (a size's version),
``lease:<name>`` (who runs the queue) and ``removal:<id>`` (a delete that
is not finished yet: what remains is found again from the stores). The shapes are those the CouchDB
catalog kept in the image database before the queue got a database of its own.
"""

from __future__ import annotations

import dataclasses
from typing import Any

QUEUED = "queued"
UPLOADED = "uploaded"
PARKED = "parked"
DELETING = "deleting"  # its image is being deleted: never a CDN URL again, the object leaves the bucket
STATES = (QUEUED, UPLOADED, PARKED, DELETING)
#: What waits: the queue's figures count these only, so a scrape costs the backlog, never the history.
WAITING = (QUEUED, PARKED, DELETING)
KEY_PREFIXES = ("derivative:", "lease:", "size:")

Record = dict[str, Any]


def derivative_key(size: str, image_id: str, fmt: str = "jpeg") -> str:
    """The record key; a JPEG's is the one written before there were other formats."""
    return f"derivative:{size}:{image_id}" if fmt == "jpeg" else f"derivative:{size}:{image_id}.{fmt}"


def size_key(size: str) -> str:
    return f"size:{size}"


def lease_key(name: str) -> str:
    return f"lease:{name}"


REMOVAL_PREFIX = "removal:"


def removal_key(image_id: str) -> str:
    return f"{REMOVAL_PREFIX}{image_id}"


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
    format: str = "jpeg"

    @property
    def key(self) -> str:
        """The object key in the CDN bucket: a flushed size gets new keys, never a stale hit."""
        return f"{self.size}/{self.version}/{self.image_id}.{self.format}"

    @property
    def keys_so_far(self) -> list[str]:
        """Its key at this version and at every version before: a flush leaves the older objects in the bucket."""
        return [f"{self.size}/{version}/{self.image_id}.{self.format}" for version in range(1, self.version + 1)]

    @property
    def record_key(self) -> str:
        return derivative_key(self.size, self.image_id, self.format)

    def as_record(self) -> Record:
        return {"huimages": "derivative", **dataclasses.asdict(self)}

    @classmethod
    def from_record(cls, record: Record) -> Derivative:
        return cls(
            size=str(record["size"]),
            image_id=str(record["image_id"]),
            version=int(record["version"]),
            state=str(record["state"]),
            attempts=int(record["attempts"]),
            last_error=str(record.get("last_error", "")),
            next_attempt=float(record["next_attempt"]),
            queued_at=float(record["queued_at"]),
            format=str(record.get("format", "jpeg")),
        )


@dataclasses.dataclass
class QueueStats:
    counts: dict[str, int]
    oldest_queued_at: float | None


@dataclasses.dataclass
class Removal:
    """A delete that could not reach every store yet; finished by the next queue run or sweep."""

    image_id: str
    since: float
    attempts: int = 0
    next_attempt: float = 0.0
    last_error: str = ""

    def as_record(self) -> Record:
        return {"huimages": "removal", **dataclasses.asdict(self)}

    @classmethod
    def from_record(cls, record: Record) -> Removal:
        return cls(
            image_id=str(record["image_id"]),
            since=float(record["since"]),
            attempts=int(record.get("attempts", 0)),
            next_attempt=float(record.get("next_attempt", 0.0)),
            last_error=str(record.get("last_error", "")),
        )
