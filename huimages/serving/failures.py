"""Renders that failed on an original, remembered for a while by every process of a host.

An original that cannot be decoded (corrupt, hostile, a bomb the limits
refuse), or whose render ran over the deadline, would otherwise cost the same
failed attempt on every request for it, while cache hits wait. So the failure
is written next to the cache (``<cache>/.huimages/failed/<key>``), and until it
is ``ttl`` seconds old the same request answers at once with the same error.
Only failures of the image itself are remembered: an unreachable backend, a
full disk or a busy server are never held against an image.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from huimages.backends.files import atomic_write
from huimages.errors import CorruptOriginal, EncodeFailed, HuImagesError, InvalidImage, RenderTimeout

#: What is remembered: failures of the original itself, or of this render of it.
REMEMBERED = (InvalidImage, CorruptOriginal, RenderTimeout)


@dataclasses.dataclass(frozen=True)
class Failure:
    key: str
    kind: str  # "image" (the original cannot be rendered), "timeout" or "encode" (this derivative failed)
    message: str
    at: float
    limit: float = 0.0  # a timeout's deadline: a longer one now means the render is worth trying again


class KnownBadOriginal(InvalidImage):
    """This original failed to render a moment ago; not tried again yet (422)."""


class RecentTimeout(RenderTimeout):
    """This render ran over the deadline a moment ago; not tried again yet (503 with Retry-After)."""

    def __init__(self, key: str, message: str, retry_after: int) -> None:
        HuImagesError.__init__(self, message)
        self.key = key
        self.retry_after = retry_after


class FailureMemory:
    def __init__(
        self, folder: Path, ttl: float, render_timeout: float = 0.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.folder = Path(folder)
        self.ttl = ttl
        self.render_timeout = render_timeout
        self.clock = clock

    @staticmethod
    def keys(image_id: str, derivative: str) -> tuple[str, str]:
        """The record of the original, and of one derivative (``240x160.webp``), of ``image_id``."""
        return image_id, f"{image_id}.{derivative}"

    def check(self, image_id: str, derivative: str) -> None:
        """Raise the remembered error if the original, or this derivative, failed less than ``ttl`` ago."""
        if self.ttl <= 0:
            return
        for key in self.keys(image_id, derivative):
            failure = self._read(key)
            if failure is None:
                continue
            age = self.clock() - failure.at
            if age >= self.ttl or (failure.kind == "timeout" and self.render_timeout > failure.limit):
                continue
            again = f"{failure.message} ({age:.0f} s ago; tried again after {self.ttl:g} s)"
            if failure.kind == "timeout":
                raise RecentTimeout(key, again, max(1, round(self.ttl - age)))
            raise KnownBadOriginal(again, image_id)  # the original, or this derivative's encoder, refused

    def remember(self, image_id: str, derivative: str, exc: HuImagesError) -> None:
        """Write down a failure of the original (decode, corrupt copy) or of this render (deadline)."""
        if self.ttl <= 0 or not isinstance(exc, REMEMBERED):
            return
        kind = "timeout" if isinstance(exc, RenderTimeout) else "encode" if isinstance(exc, EncodeFailed) else "image"
        key = self.keys(image_id, derivative)[0 if kind == "image" else 1]
        record = {"kind": kind, "message": str(exc), "at": self.clock(), "limit": getattr(exc, "limit", 0.0)}
        with contextlib.suppress(OSError):  # remembering is an optimisation: never a reason to fail
            atomic_write(self.folder / key, json.dumps(record).encode())

    def forget(self, image_id: str) -> None:
        """Drop every record of an image (it was deleted, or its original repaired)."""
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.folder):
                if entry.name == image_id or entry.name.startswith(f"{image_id}."):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)

    def recent(self) -> list[Failure]:
        """The failures still remembered, newest first (what ``huimages check`` reports)."""
        found = []
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.folder):
                failure = None if entry.name.startswith(".") else self._read(entry.name)
                if failure is not None and self.clock() - failure.at < self.ttl:
                    found.append(failure)
        return sorted(found, key=lambda f: -f.at)

    def _read(self, key: str) -> Failure | None:
        try:
            record = json.loads((self.folder / key).read_bytes())
            kind, message, at = str(record["kind"]), str(record["message"]), float(record["at"])
            return Failure(key, kind, message, at, float(record.get("limit", 0.0)))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged record counts as none
