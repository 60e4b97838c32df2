"""`huimages prune` and the start-up sweep: stale temporary files go, caches stay within their bounds."""

import concurrent.futures
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from huimages.backends.files import TEMP_SUFFIX
from huimages.client import Client
from huimages.config import Settings
from huimages.core.units import parse_bytes
from huimages.ops.cli import main
from huimages.serving.prune import AutoPruner, Plan, access_clock, plan, prune, sweep_temporaries
from tests.imagetools import decode, jpeg
from tests.servers import SeaweedS3, get, huimages_serve

HOUR = 3600


def aged(path: Path, seconds_ago: float, data: bytes = b"x" * 5000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = time.time() - seconds_ago
    os.utime(path, (then, then))
    return path


def test_stale_temporaries_go_fresh_ones_and_locks_stay(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    stale = aged(cache / "240x160" / ".AAAA.jpeg.k3j2.tmp", 2 * HOUR)
    fresh = aged(cache / "240x160" / ".BBBB.jpeg.x9q1.tmp", 60)  # a write in progress
    link = aged(cache / ".small.4242.link", 2 * HOUR)
    lock = aged(cache / ".huimages" / "locks" / "0007", 2 * HOUR)
    image = aged(cache / "240x160" / "CCCC.jpeg", 2 * HOUR)
    assert sweep_temporaries([cache], dry_run=True).files == 2 and stale.exists()
    report = sweep_temporaries([cache, tmp_path / "missing"])
    assert (report.files, report.bytes > 0) == (2, True)
    assert not stale.exists() and not link.exists()
    assert fresh.exists() and lock.exists() and image.exists()


def test_prune_removes_the_least_recently_used_first(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    files = [aged(root / "100x100" / f"{n:02d}.jpeg", (10 - n) * HOUR, b"x" * 8192) for n in range(10)]
    aged(root / ".huimages" / "state", 20 * HOUR)  # state is never pruned
    size = files[0].stat().st_blocks * 512
    planned = plan(root, max_bytes=6 * size)
    assert [Path(p).name for _, p in planned.victims] == [f"{n:02d}.jpeg" for n in range(4)]
    assert planned.files == 10 and planned.clock == access_clock(root)
    dry = prune(root, max_bytes=6 * size, dry_run=True)
    assert dry.removed_files == 4 and all(f.exists() for f in files)
    report = prune(root, max_bytes=6 * size)
    assert (report.removed_files, report.kept_files, report.kept_bytes) == (4, 6, 6 * size)
    assert [f.exists() for f in files] == [False] * 4 + [True] * 6
    assert prune(root, max_bytes=6 * size).removed_files == 0
    assert (root / ".huimages" / "state").exists()


def test_min_free_counts_the_whole_disk(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    aged(root / "100x100" / "a.jpeg", HOUR)
    assert plan(root, min_free_percent=0).victims == []
    assert len(plan(root, min_free_percent=100).victims) == 1  # no disk is all free: everything would go


def test_parse_bytes() -> None:
    assert parse_bytes("500M") == 500 * 1024**2
    assert parse_bytes("1.5GB") == int(1.5 * 1024**3)
    assert parse_bytes("2GiB") == 2 * 1024**3
    assert parse_bytes("750k") == 750 * 1024
    assert parse_bytes("1048576") == 1048576
    with pytest.raises(ValueError, match="500 apples"):
        parse_bytes("500 apples")


def test_prune_command(tmp_path: Path) -> None:
    env = {"HUIMAGES_HOME": str(tmp_path), "IMAGESERVERURL": "http://img.test/"}
    client = Client(Settings.from_env(env))
    image_id = client.save_image(jpeg(400, 300))
    for size in ("small", "square", "medium"):
        client.service.derivative(client.service.parse_size(size), image_id).close()
    aged(client.service.cache.root / "240x160" / ".gone.jpeg.abcd.tmp", 2 * HOUR)
    runner = CliRunner(env=env)
    result = runner.invoke(main, ["prune", "--max-bytes", "0", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "temporary files: would remove 1" in result.stdout and "cache: would remove 3 files" in result.stdout
    result = runner.invoke(main, ["prune", "--max-bytes", "0"])
    assert "temporary files: removed 1" in result.stdout and "cache: removed 3 files" in result.stdout
    assert "0 files (0 bytes) remain" in result.stdout
    assert not list(client.service.cache.root.glob("*/*.jpeg"))
    assert client.service.originals.verified(image_id)  # originals are never pruned
    bad = runner.invoke(main, ["prune", "--max-bytes", "lots"])
    assert bad.exit_code == 2 and "500M" in bad.output


@pytest.mark.integration
def test_prune_while_serving_and_the_start_up_sweep(tmp_path: Path) -> None:
    settings = Settings.from_env({"HUIMAGES_HOME": str(tmp_path)})
    ids = [Client(settings).save_image(jpeg(640 + n, 480)) for n in range(4)]
    stale = aged(settings.paths.cache_dir / "240x160" / f".{ids[0]}.jpeg.zz11.tmp", 2 * HOUR)
    fresh = aged(settings.paths.cache_dir / "240x160" / f".{ids[1]}.jpeg.zz22.tmp", 10)
    paths = [f"/{size}/{image_id}.jpeg" for image_id in ids for size in ("small", "medium", "200x200!")]
    prune_argv = [sys.executable, "-m", "huimages", "prune", "--max-bytes", "0"]
    with huimages_serve(tmp_path) as (port, env):
        deadline = time.monotonic() + 10
        while stale.exists():  # swept at start-up, in the background
            assert time.monotonic() < deadline, "the start-up sweep left a stale temporary file"
            time.sleep(0.1)
        assert fresh.exists()
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            requests = [pool.submit(get, port, path) for _ in range(8) for path in paths]
            for _ in range(5):  # prune everything, again and again, while those are in flight
                done = subprocess.run(prune_argv, env={**os.environ, **env}, capture_output=True, text=True)
                assert done.returncode == 0, done.stderr
            answers = [future.result(120) for future in requests]
    heights = {"small": 160, "medium": 320, "200x200!": 200}
    for (status, _, body), path in zip(answers, paths * 8, strict=True):
        assert status == 200, path
        assert decode(body).size[1] == heights[path.split("/")[1]], path  # complete: a truncated JPEG fails


def test_cache_command(tmp_path: Path) -> None:
    env = {"HUIMAGES_HOME": str(tmp_path), "IMAGESERVERURL": "http://img.test/"}
    client = Client(Settings.from_env(env))
    image_id = client.save_image(jpeg(400, 300))
    service = client.service
    for token in ("small", "small.webp", "square", "300x300"):
        size, fmt = service.parse_derivative(token)
        service.derivative(size, image_id, fmt).close()
    aged(service.cache.root / "240x160" / ".x.jpeg.ab12.tmp", 2 * HOUR)
    result = CliRunner(env=env).invoke(main, ["cache"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["size", "format", "files", "bytes", "oldest", "newest"]
    rows = {tuple(line.split()[:3]) for line in lines[1:-3]}
    assert rows == {("240x160", "(small)", "jpeg"), ("240x160", "(small)", "webp"), ("300x300", "jpeg", "1")} | {
        ("75x75!", "(square)", "jpeg")
    }
    assert lines[-3].split()[:2] == ["total", "4"]
    assert lines[-2].startswith("temporary files: 1 (") and "1 older than 10 min" in lines[-2]
    assert lines[-1].startswith("temporary files beside the cache") and ": 0 (0 bytes), 0 older" in lines[-1]


def test_one_prune_at_a_time(tmp_path: Path) -> None:
    from huimages.serving.prune import host_lock

    env = {"HUIMAGES_HOME": str(tmp_path)}
    with host_lock(tmp_path / "cache") as free:
        assert free
        with host_lock(tmp_path / "cache") as second:
            assert not second  # never waits
        result = CliRunner(env=env).invoke(main, ["prune", "--max-bytes", "0"])
    assert result.exit_code == 0 and "another prune is running on this host" in result.stdout
    assert "removed" in CliRunner(env=env).invoke(main, ["prune", "--max-bytes", "0"]).stdout


@pytest.mark.integration
def test_a_server_keeps_its_cache_within_its_bound(tmp_path: Path) -> None:
    bound = 150 * 1024
    env = {
        "HUIMAGES_CACHE_MAX_BYTES": str(bound),
        "HUIMAGES_CACHE_PRUNE_INTERVAL": "5",
        "HUIMAGES_UNSIGNED_RENDERS_PER_MINUTE": "0",
        "HUIMAGES_UNSIGNED_MB_PER_MINUTE": "0",
        "HUIMAGES_UNSIGNED_SIZES_PER_IMAGE": "0",
    }
    settings = Settings.from_env({"HUIMAGES_HOME": str(tmp_path), **env})
    from tests.imagetools import encode, photo

    image_id = Client(settings).save_image(encode(photo(1200, 900), "JPEG", quality=90))
    written = 0
    with huimages_serve(tmp_path, env=env) as (port, _):
        for n in range(40):
            status, _, body = get(port, f"/{300 + 10 * n}x{300 + 10 * n}/{image_id}.jpeg")
            assert status == 200 and decode(body).size[0] == 300 + 10 * n
            written += len(body)
        deadline = time.monotonic() + 30
        while (held := plan(settings.paths.cache_dir).bytes) > bound:
            assert time.monotonic() < deadline, f"the cache still holds {held} bytes, over {bound}"
            time.sleep(0.2)
    assert written > 3 * bound  # the renders alone would have held three times the bound


def test_prune_the_local_copies_of_s3_originals(tmp_path: Path) -> None:
    env = {"HUIMAGES_HOME": str(tmp_path)}
    copies = tmp_path / "originals-cache"
    old = aged(copies / "AB" / "ABOLD", 5 * HOUR, b"x" * 20000)
    master = aged(copies / "masters" / "2048" / "ABOLD", 4 * HOUR, b"x" * 8000)
    new = aged(copies / "CD" / "CDNEW", HOUR, b"x" * 20000)
    bound = new.stat().st_blocks * 512 + 100
    result = CliRunner(env=env).invoke(main, ["prune", "--originals-cache-max-bytes", str(bound)])
    assert result.exit_code == 0, result.output
    assert "originals cache: removed 2 files" in result.stdout
    assert not old.exists() and not master.exists() and new.exists()
    assert "cache:" not in result.stdout.replace("originals cache:", "")  # no bound given for the derivatives


@pytest.mark.faults
def test_temporaries_beside_the_cache_are_counted_and_the_self_pruning_cache_sweeps_them(tmp_path: Path) -> None:
    """A killed writer's file in the originals cache: counted by `huimages cache`, gone at the next self-prune."""
    settings = Settings.at(tmp_path, cache_max_bytes=50_000_000)
    copies, masters = settings.paths.originals_cache_dir, settings.paths.home / "masters"
    killed = aged(copies / "AB" / f".ABCD.zz11{TEMP_SUFFIX}", 11 * 60, b"x" * 8_000_000)  # older than ten minutes
    writing = aged(masters / "2048" / f".EFGH.zz22{TEMP_SUFFIX}", 30, b"x" * 4096)  # being written now
    result = CliRunner(env={"HUIMAGES_HOME": str(tmp_path)}).invoke(main, ["cache"])
    assert result.exit_code == 0, result.output
    assert (
        "temporary files beside the cache (originals, masters, local copies of S3 originals): 2 (7.6 MB), 1 older"
        in (result.stdout)
    )
    assert AutoPruner(settings).run_once()  # what the server's pruner thread starts every interval
    assert not killed.exists() and writing.exists()


@pytest.mark.integration
def test_a_bounded_cache_bounds_the_local_copies_of_s3_originals_and_masters_and_drops_emptied_folders(
    tmp_path: Path, seaweed: SeaweedS3
) -> None:
    from huimages.http.app import create_app
    from huimages.serving.census import disk_bytes
    from tests.imagetools import encode, photo
    from tests.wsgi import call

    env = {
        **seaweed.settings_env(seaweed.new_bucket()),
        "HUIMAGES_HOME": str(tmp_path / "home"),
        "IMAGESERVERURL": "http://img.test/",
        "HUIMAGES_CACHE_MAX_BYTES": "2M",
        "HUIMAGES_ORIGINALS_CACHE_MAX_BYTES": "1M",
    }
    client = Client(Settings.from_env(env))
    settings = client.settings
    app = create_app(service=client.service)
    ids = [client.save_image(encode(photo(1400, 1000, seed=n), "JPEG", quality=92)) for n in range(6)]
    for image_id in ids:
        assert call(app, f"/o/{image_id}.jpeg").status == 200  # a local copy of each original
        assert call(app, f"/small/{image_id}.jpeg").status == 200
    copies = settings.paths.originals_cache_dir

    def held(root: Path) -> int:
        return sum(disk_bytes(p.lstat()) for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))

    assert held(copies) > parse_bytes("1M")
    assert AutoPruner(settings).run_once()  # what the server's pruner thread starts every interval
    assert 0 < held(copies) <= parse_bytes("1M") * 0.9
    empty = [d for d in copies.rglob("*") if d.is_dir() and not any(d.iterdir())]
    assert not empty, empty  # du counts folders too: those a prune emptied go with their files
    result = CliRunner(env=env).invoke(main, ["prune", "--dry-run"])
    assert "originals cache: would remove 0 files" in result.output, result.output  # the setting is its default
    for image_id in ids:  # what went is fetched again from S3
        assert decode(call(app, f"/o/{image_id}.jpeg").body).size == (1400, 1000)


def test_a_plan_keeps_at_most_64_bytes_a_file(tmp_path: Path) -> None:
    """A cache of ten million files is planned in well under a gigabyte (the names are the cache's own)."""
    import tracemalloc

    from huimages.core.ids import compute_id

    root = tmp_path / "cache"
    now = time.time()
    for folder in ("240x160", "150x150!", "1024x768"):
        (root / folder).mkdir(parents=True)
    for n in range(12_000):
        path = root / ("240x160", "150x150!", "1024x768")[n % 3] / f"{compute_id(str(n).encode())}.jpeg"
        path.write_bytes(b"x")
        os.utime(path, (now - n, now - n))
    aged(tmp_path / "one" / "240x160" / f"{compute_id(b'one')}.jpeg", HOUR)

    def peak(root: Path) -> tuple[Plan, int]:
        tracemalloc.start()
        try:
            planned = plan(root, min_free_percent=100)  # every file goes: the most a plan holds
            return planned, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    _, fixed = peak(tmp_path / "one")  # what a plan costs whatever the files (reading the mounts, the walk)
    planned, held = peak(root)
    assert planned.count == planned.files == 12_000
    assert (held - fixed) / planned.files <= 64, (held - fixed) / planned.files
    oldest = [Path(path).name for _, path in planned.victims[:3]]
    assert oldest == [f"{compute_id(str(n).encode())}.jpeg" for n in (11_999, 11_998, 11_997)]


def test_a_large_cache_is_summed_up_from_the_count_of_its_last_prune(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huimages.serving import census

    monkeypatch.setattr(census, "RECORD_FROM", 5)  # "large": the real bound is 100,000 files
    env = {"HUIMAGES_HOME": str(tmp_path), "IMAGESERVERURL": "http://img.test/"}
    cache = Settings.from_env(env).paths.cache_dir
    for n in range(8):
        aged(cache / ("240x160" if n % 2 else "150x150!") / f"{n:02d}.jpeg", (10 - n) * HOUR, b"x" * 8192)
    size = (cache / "240x160" / "01.jpeg").stat().st_blocks * 512
    runner = CliRunner(env=env)
    assert "cache: removed 2 files" in runner.invoke(main, ["prune", "--max-bytes", str(6 * size)]).stdout
    aged(cache / "240x160" / "99.jpeg", 0, b"x" * 8192)  # written after the prune's count
    recorded = runner.invoke(main, ["cache"]).stdout
    assert "as counted at" in recorded, recorded
    assert files_by_size(recorded) == {"150x150!": 3, "240x160": 3}  # the prune's count, less the two it removed
    walked = runner.invoke(main, ["cache", "--walk"]).stdout
    assert "as counted at" not in walked and files_by_size(walked) == {"150x150!": 3, "240x160": 4}


def files_by_size(summary: str) -> dict[str, int]:
    """The files of each size in the table `huimages cache` prints."""
    rows = summary.splitlines()[1:3]
    return {row.split()[0]: int(re.findall(r" ([0-9][0-9,]*) ", row)[0].replace(",", "")) for row in rows}


def test_one_start_up_sweep_a_host(tmp_path: Path) -> None:
    from huimages.serving.prune import host_lock, sweep_in_background

    settings = Settings.from_env({"HUIMAGES_HOME": str(tmp_path)})
    stale = aged(settings.paths.cache_dir / "240x160" / ".AAAA.jpeg.k3j2.tmp", 2 * HOUR)
    with host_lock(settings.paths.cache_dir, "sweep") as free:
        assert free  # another process of the host is sweeping
        sweep_in_background(settings).join(10)
        assert stale.exists()
    sweep_in_background(settings).join(10)
    assert not stale.exists()


@pytest.mark.integration
def test_du_of_each_bounded_folder_holds_under_uploads_renders_and_prunes(tmp_path: Path, seaweed: SeaweedS3) -> None:
    """``du`` of the cache and of the local copies of S3 originals stays within the bound plus one interval's writes."""
    import random
    import threading

    from tests.imagetools import encode, photo

    interval, slack = 2.0, 2.0  # slack: a prune's process starting and walking
    bounds = {"cache": parse_bytes("3M"), "originals-cache": parse_bytes("2M")}
    env = {
        **seaweed.settings_env(seaweed.new_bucket()),
        "HUIMAGES_CACHE_MAX_BYTES": "3M",
        "HUIMAGES_ORIGINALS_CACHE_MAX_BYTES": "2M",
        "HUIMAGES_CACHE_PRUNE_INTERVAL": str(interval),
    }
    written: dict[str, list[tuple[float, int]]] = {name: [] for name in bounds}
    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in bounds}
    ids: list[str] = []
    stop = threading.Event()

    def du(folder: Path) -> int:
        done = subprocess.run(["du", "-s", "-B1", str(folder)], capture_output=True, text=True)
        return int(done.stdout.split()[0]) if done.returncode == 0 else 0

    with huimages_serve(tmp_path, env=env) as (port, environ):
        client = Client(Settings.from_env(environ))

        def upload() -> None:
            n = 0
            while not stop.is_set():
                data = encode(photo(900, 700, seed=n), "JPEG", quality=90)
                ids.append(client.save_image(data))
                written["originals-cache"].append((time.monotonic(), 2 * len(data)))  # the copy and a master
                n += 1

        def render(seed: int) -> None:
            rng = random.Random(seed)
            while not stop.is_set():
                if not ids:
                    time.sleep(0.05)
                    continue
                image_id = rng.choice(ids)
                for size in rng.sample(list(client.settings.sizes), 4):
                    status, _, body = get(port, f"/{size}/{image_id}.jpeg")
                    assert status == 200, (status, body[:200])
                    written["cache"].append((time.monotonic(), len(body)))
                status, _, body = get(port, f"/o/{image_id}.jpeg")  # a local copy of the original, when pruned
                assert status == 200
                written["originals-cache"].append((time.monotonic(), len(body)))

        workers = [threading.Thread(target=upload), *(threading.Thread(target=render, args=(n,)) for n in range(2))]
        for worker in workers:
            worker.start()
        ends = time.monotonic() + 12
        while time.monotonic() < ends:
            for name in bounds:
                samples[name].append((time.monotonic(), du(tmp_path / name)))
            time.sleep(0.25)
        stop.set()
        for worker in workers:
            worker.join(60)
        time.sleep(2 * interval + slack)  # the next prune after the writes stopped
        settled = {name: du(tmp_path / name) for name in bounds}
    for name, bound in bounds.items():
        assert sum(n for _, n in written[name]) > 2 * bound, name  # the bound was needed
        assert max(held for _, held in samples[name]) > bound / 2, name  # and du saw the folder fill
        for at, held in samples[name]:
            recent = sum(n for t, n in written[name] if at - interval - slack <= t <= at)
            assert held <= bound + recent, (name, held, bound, recent)
        assert settled[name] <= bound, (name, settled[name])
