"""glibc's malloc in a threaded image server: one arena, not one per thread.

glibc gives each new thread that allocates an arena of its own, up to eight
per core, and an arena keeps much of what it once held. A backend whose
threads take turns decoding images then holds, after a flood, about one
render's peak for every thread that ever rendered, not for every render slot.
The server's threads allocate little with the GIL released (an image's
buffers, a few times a render), so one shared arena costs no measurable
speed; measured in ``scripts/bench.py``, see the README's benchmarks.
"""

from __future__ import annotations

import ctypes
import os

ARENAS = 1
_M_ARENA_MAX = -8  # mallopt's parameter for the arena limit (glibc's malloc.h)


def limit_arenas(count: int = ARENAS) -> bool:
    """Cap this process's malloc arenas at ``count``; False where it does not apply.

    ``MALLOC_ARENA_MAX`` in the environment wins (glibc reads it itself). Where
    the C library is not glibc (musl has no such arenas) nothing changes.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, count))
