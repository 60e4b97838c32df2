"""Wrong tokens counted per client address, so that guessing one is slow.

Every check of the admin or upload token (the interface's sign-in, the
images API's bearer token, ``/metrics`` and ``/processqueue`` from other
hosts) reports here. An address that sent ``failures`` wrong tokens within a
minute is answered 429 with ``Retry-After`` until the minute ends, whatever
it sends, the right token included; other addresses are not affected. The
counts live beside the stranger budgets (``<cache>/.huimages/guesses/``),
under the same file locks, so every process of a host shares them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from huimages.errors import TooManyRequests
from huimages.serving.budget import address_name, retry_after, roll, shared_record

FAILURES = 10  # wrong tokens an address may send in a minute


class GuessLimit:
    def __init__(self, folder: Path, failures: int = FAILURES, clock: Callable[[], float] = time.time) -> None:
        self.folder = Path(folder)
        self.failures = failures
        self.clock = clock

    def attempt(self, client: str, right: bool) -> None:
        """Record one token check from ``client``; ``TooManyRequests`` while the address is refused."""
        path = self.folder / address_name(client)
        if right and not path.exists():
            return  # an address that never failed: nothing to read, nothing to write
        with shared_record(path) as state:
            now = self.clock()
            roll(state, now, failures=0)
            if state["failures"] >= self.failures:
                raise TooManyRequests(
                    f"{state['failures']} wrong tokens came from this address in the last minute"
                    f" (the limit is {self.failures}); try again later",
                    retry_after(state, now),
                )
            if not right:
                state["failures"] += 1
