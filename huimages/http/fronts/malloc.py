"""glibc's malloc in a threaded image server: one arena, not one per thread.

glibc gives each new thread that allocates an arena of its own, up to eight
per core, and an arena keeps much of what it once held. A backend whose
threads take turns decoding images then holds, after a flood, about one
render's peak for every thread that ever rendered, not for every render slot.
The server's threads allocate little with the GIL released (an image's
buffers, a few times a render), so one shared arena costs no measurable
speed; measured in ``scripts/bench.py``, see docs/benchmarks.md.
"""

from __future__ import annotations

import ctypes

ARENAS = 1
_M_ARENA_MAX = -8  # mallopt's parameter for the arena limit (glibc's malloc.h)


def limit_arenas(count: int = ARENAS) -> bool:
    """Cap this process's malloc arenas at ``count`` (the setting ``MALLOC_ARENA_MAX``); False where it does not apply.

    An operator's ``MALLOC_ARENA_MAX`` is the count (glibc has read it from the
    environment already; from a config file it is applied here). Where the C
    library is not glibc (musl has no such arenas) nothing changes.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, count))
