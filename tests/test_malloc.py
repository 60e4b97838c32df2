"""The servers cap glibc's malloc arenas, so memory after a flood follows the render slots, not the threads."""

import os
import platform
import subprocess
import sys
import textwrap

import pytest

from huimages.http.fronts.malloc import ARENAS

# Six threads allocate at once; malloc_info then lists one <heap> per arena.
_PROGRAM = textwrap.dedent(
    """
    import ctypes, sys, tempfile, threading
    from huimages.config import Settings
    from huimages.http.fronts.malloc import limit_arenas
    applied = limit_arenas(Settings.from_env().malloc_arena_max) if sys.argv[1] == "limit" else False
    start, hold = threading.Barrier(6), []
    def allocate():
        start.wait()
        hold.extend(bytearray(32 * 1024) for _ in range(8))
    threads = [threading.Thread(target=allocate) for _ in range(6)]
    for t in threads: t.start()
    for t in threads: t.join()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.NamedTemporaryFile() as out:
        stream = libc.fopen(out.name.encode(), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        print(applied, open(out.name).read().count("<heap nr="))
    """
)


def arenas(mode: str, **env: str) -> tuple[bool, int]:
    result = subprocess.run(
        [sys.executable, "-c", _PROGRAM, mode], capture_output=True, text=True, check=True, env=env or None
    )
    applied, count = result.stdout.split()
    return applied == "True", int(count)


def test_a_server_process_uses_one_arena() -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the arena limit is glibc's")
    assert arenas("none")[1] > ARENAS  # without the limit, threads take arenas of their own
    applied, count = arenas("limit")
    assert applied and count <= ARENAS


def test_the_operators_malloc_arena_max_wins() -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the arena limit is glibc's")
    applied, count = arenas("limit", **{**os.environ, "MALLOC_ARENA_MAX": "4"})
    assert applied and ARENAS < count <= 4  # read through the settings, as glibc itself read it
