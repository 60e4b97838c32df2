"""Atomic cache writes and single-flight rendering, across real processes."""

import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from huimages.config import Settings
from huimages.core.ids import compute_id
from huimages.errors import RenderBusy
from huimages.serving.cache import DerivativeCache
from huimages.serving.service import ImageService
from tests.imagetools import decode, jpeg

IMAGE_ID = compute_id(b"cache test")


def test_path_layout_is_the_url(tmp_path: Path) -> None:
    cache = DerivativeCache(tmp_path)
    assert cache.path("240x160", IMAGE_ID) == tmp_path / "240x160" / f"{IMAGE_ID}.jpeg"
    assert cache.path("75x75!", IMAGE_ID) == tmp_path / "75x75!" / f"{IMAGE_ID}.jpeg"
    for bad in ("..", "a/b", "", ".huimages", "x" * 21):
        with pytest.raises(ValueError):
            cache.path(bad, IMAGE_ID)


def test_write_is_world_readable_and_complete(tmp_path: Path) -> None:
    cache = DerivativeCache(tmp_path)
    written = cache.write("small", IMAGE_ID, b"x" * 1000)
    path = cache.path("small", IMAGE_ID)
    path.unlink()  # the file handed back stays readable whatever happens to the name (a flush, a prune)
    assert written.read() == b"x" * 1000
    cache.write("small", IMAGE_ID, b"x" * 1000).close()
    assert path.read_bytes() == b"x" * 1000
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_writer_killed_mid_write_leaves_no_cache_file(tmp_path: Path) -> None:
    """SIGKILL a writer after its bytes are written but before the rename."""
    ready = tmp_path / "ready"
    child = textwrap.dedent(
        f"""
        import os, time, pathlib
        from huimages.serving.cache import DerivativeCache

        def stall(fd):  # the write is done and the file not yet renamed
            pathlib.Path({str(ready)!r}).touch()
            time.sleep(60)

        os.fsync = stall
        DerivativeCache(pathlib.Path({str(tmp_path)!r})).write("small", {IMAGE_ID!r}, b"y" * 5_000_000)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child])
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert proc.poll() is None, "writer exited early"
            assert time.monotonic() < deadline, "writer never reached the write"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    cache = DerivativeCache(tmp_path)
    assert cache.open("small", IMAGE_ID) is None
    leftovers = list((tmp_path / "small").iterdir())
    assert leftovers and all(p.name.startswith(".") and p.name.endswith(".tmp") for p in leftovers)
    # a later writer succeeds
    cache.write("small", IMAGE_ID, b"z" * 10).close()
    assert cache.path("small", IMAGE_ID).read_bytes() == b"z" * 10


def test_lock_times_out_with_a_clear_error(tmp_path: Path) -> None:
    cache = DerivativeCache(tmp_path, lock_timeout=0.2)
    with (
        cache.lock("small", IMAGE_ID),
        pytest.raises(RenderBusy, match="being rendered"),
        cache.lock("small", IMAGE_ID),
    ):
        pass


class _CountRenders(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += record.getMessage().startswith("rendered ")


def _render_in_process(home: str, image_id: str, barrier: Any, results: Any) -> None:
    counter = _CountRenders()
    logger = logging.getLogger("huimages.serving.service")
    logger.addHandler(counter)
    logger.setLevel(logging.INFO)
    service = ImageService.from_settings(Settings.at(Path(home)))
    barrier.wait()
    data = service.derivative(service.parse_size("320x240"), image_id).read()
    results.put((counter.count, data))


def test_one_render_across_processes(tmp_path: Path) -> None:
    service = ImageService.from_settings(Settings.at(tmp_path))
    image_id = service.ingest(jpeg(1600, 1200))
    workers = 6
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    procs = [
        ctx.Process(target=_render_in_process, args=(str(tmp_path), image_id, barrier, results)) for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(10)
    assert sum(count for count, _ in outcomes) == 1  # exactly one process rendered
    assert len({data for _, data in outcomes}) == 1  # and every process got that same, complete file
    assert decode(outcomes[0][1]).size == (320, 240)


def test_many_threads_link_a_named_size_at_once(tmp_path: Path) -> None:
    """The first requests for /small/ arrive together in one process: every one of them links or finds the link."""
    import threading

    cache = DerivativeCache(tmp_path)
    failures: list[BaseException] = []

    def link(start: threading.Barrier) -> None:
        start.wait()
        try:
            cache.link_name("small", "240x160")
        except BaseException as exc:
            failures.append(exc)

    for _ in range(100):
        (tmp_path / "small").unlink(missing_ok=True)
        start = threading.Barrier(8)
        threads = [threading.Thread(target=link, args=(start,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == [] and os.readlink(tmp_path / "small") == "240x160"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".link")]
