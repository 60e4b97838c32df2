"""What a stranger's unsigned URLs can cost under the default policy: renders, bytes, sizes and slots."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from huimages.client import Client
from huimages.config import Limits, Settings, SigningSettings
from huimages.errors import Overloaded, TooManyRequests
from huimages.http.app import create_app
from huimages.ops.cli import main
from huimages.serving.budget import StrangerBudget
from huimages.serving.policy import sign
from huimages.serving.slots import RenderSlots
from tests.imagetools import decode, encode, photo
from tests.wsgi import call

STRANGER = "203.0.113.7"  # only a value in the WSGI environ; nothing is sent anywhere
KEY = "k" * 32


def cache_usage(settings: Settings) -> tuple[int, int]:
    """Files and bytes of derivatives in the cache (the hidden state folder left out)."""
    files = [p for p in settings.paths.cache_dir.rglob("*") if p.is_file() and ".huimages" not in p.parts]
    return len(files), sum(p.stat().st_size for p in files)


#: What a stranger may append to a URL: nothing, an empty, a junk and a forged signature (none verifies).
SIGNATURES = ["", "s=", "s=x", f"s={sign('/1000x900/' + 'A' * 32 + '01.jpeg', 'guessed-key')}"]


@pytest.mark.parametrize("query", SIGNATURES, ids=["unsigned", "empty", "junk", "forged"])
def test_a_stranger_asking_for_distinct_sizes_adds_a_bounded_number_of_files_and_bytes(
    tmp_path: Path, query: str
) -> None:
    settings = Settings.at(tmp_path)  # the defaults: policy open, no keys
    client = Client(settings)
    ids = [client.save_image(encode(photo(1600, 1200, seed=n), "JPEG", quality=90)) for n in range(8)]
    app = create_app(service=client.service)
    before = cache_usage(settings)
    statuses: dict[int, int] = {}
    for n in range(300):  # distinct sizes over eight images, as fast as one client can ask
        path = f"/{1000 + n}x{900 + n}/{ids[n % len(ids)]}.jpeg"
        status = call(app, path, QUERY_STRING=query, REMOTE_ADDR=STRANGER).status
        statuses[status] = statuses.get(status, 0) + 1
    files, size = (now - then for now, then in zip(cache_usage(settings), before, strict=True))
    limits = settings.limits
    assert statuses[200] <= limits.unsigned_renders_per_minute and files <= limits.unsigned_renders_per_minute
    assert size <= limits.unsigned_mb_per_minute * 1_000_000 + 4_000_000  # the last admitted render may pass it
    assert set(statuses) <= {200, 403, 429}, statuses
    refused = call(app, f"/1999x1999/{ids[0]}.jpeg", REMOTE_ADDR=STRANGER)
    assert refused.status in (403, 429) and refused.headers["Cache-Control"] == "no-store"
    if refused.status == 429:
        assert 1 <= int(refused.headers["Retry-After"]) <= 61
    # The site's own URLs keep working for that client: named sizes, and anything already rendered.
    assert call(app, f"/small/{ids[0]}.jpeg", REMOTE_ADDR=STRANGER).status == 200
    assert call(app, f"/1000x900/{ids[0]}.jpeg", REMOTE_ADDR=STRANGER).status == 200
    # Another client has a budget of its own (for an image whose own cap is not reached).
    fresh = client.save_image(encode(photo(800, 600, seed=99), "JPEG"))
    assert call(app, f"/640x481/{fresh}.jpeg", REMOTE_ADDR="198.51.100.2").status == 200


def test_each_image_has_a_bounded_number_of_unsigned_sizes_whoever_asks(tmp_path: Path) -> None:
    settings = Settings.at(tmp_path)
    client = Client(settings)
    image_id = client.save_image(encode(photo(800, 600), "JPEG"))
    app = create_app(service=client.service)
    limit = settings.limits.unsigned_sizes_per_image
    answers = [
        call(app, f"/{100 + n}x{100 + n}/{image_id}.jpeg", QUERY_STRING=SIGNATURES[n % 4], REMOTE_ADDR=f"192.0.2.{n}")
        for n in range(limit + 5)
    ]
    assert [a.status for a in answers] == [200] * limit + [403] * 5
    assert "unsigned sizes besides the named ones" in answers[-1].text and "HUIMAGES_URL_KEYS" in answers[-1].text
    client.service.cache.remove_size("100x100")  # a flushed size comes back: it is not a new one
    assert call(app, f"/100x100/{image_id}.jpeg", REMOTE_ADDR="192.0.2.99").status == 200
    assert call(app, f"/medium/{image_id}.webp", REMOTE_ADDR="192.0.2.99").status == 200  # named: free


def test_unknown_images_are_not_charged(tmp_path: Path) -> None:
    settings = Settings.at(tmp_path)
    app = create_app(service=Client(settings).service)
    for n in range(5):
        assert call(app, f"/300x200/{'A' * 31}{'BCDEF'[n]}01.jpeg", REMOTE_ADDR=STRANGER).status == 404
    assert not (settings.paths.cache_dir / ".huimages" / "budget").exists()


def test_signed_urls_and_the_named_policy_are_not_charged(tmp_path: Path) -> None:
    signed = Client(Settings.at(tmp_path / "signed", signing=SigningSettings("open", keys=(KEY,))))
    image_id = signed.save_image(encode(photo(800, 600), "JPEG"))
    app = create_app(service=signed.service)
    for n in range(30):  # more than the per-image cap, from one address
        url = signed.scaled_imageurl(image_id, f"{200 + n}x{150 + n}")
        path, _, query = url.removeprefix(signed.settings.server_url[:-1]).partition("?")
        assert call(app, path, QUERY_STRING=query, REMOTE_ADDR=STRANGER).status == 200


def test_budgets_are_shared_by_the_processes_of_a_host(tmp_path: Path) -> None:
    clock = [1000.0]
    first = StrangerBudget(tmp_path, renders=3, megabytes=1, sizes_per_image=0, clock=lambda: clock[0])
    second = StrangerBudget(tmp_path, renders=3, megabytes=1, sizes_per_image=0, clock=lambda: clock[0])
    first.admit(STRANGER, "A" * 32 + "01", "10x10.jpeg")
    second.admit(STRANGER, "A" * 32 + "01", "11x11.jpeg")
    first.admit(STRANGER, "A" * 32 + "01", "12x12.jpeg")
    with pytest.raises(TooManyRequests, match="made 3 renders"):
        second.admit(STRANGER, "A" * 32 + "01", "13x13.jpeg")
    clock[0] += 61  # a minute later
    second.admit(STRANGER, "A" * 32 + "01", "13x13.jpeg")
    first.charge_bytes(STRANGER, 1_200_000)
    with pytest.raises(TooManyRequests, match="wrote 1 MB"):
        second.admit(STRANGER, "A" * 32 + "01", "14x14.jpeg")


def test_one_address_holds_at_most_its_share_of_the_render_slots() -> None:
    slots = RenderSlots(slots=4, wait=0.2, waiting=8)
    entered, release = threading.Barrier(3), threading.Event()

    def hold() -> None:
        with slots.slot("a", owner=STRANGER):
            entered.wait()
            release.wait()

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for thread in holders:
        thread.start()
    entered.wait()
    try:
        started = time.monotonic()
        with pytest.raises(Overloaded), slots.slot("b", owner=STRANGER):  # waits for its own turn, then 503
            pass
        assert time.monotonic() - started >= 0.2
        with slots.slot("c", owner="198.51.100.2"), slots.slot("d"):  # others still get the rest
            assert slots.in_flight == 4
    finally:
        release.set()
        for thread in holders:
            thread.join()


def test_check_warns_when_anyone_may_render_any_size(tmp_path: Path) -> None:
    Client(Settings.at(tmp_path)).save_image(encode(photo(64, 48), "JPEG"))
    result = CliRunner(env={"HUIMAGES_HOME": str(tmp_path)}).invoke(main, ["check"])
    assert "policy    open without HUIMAGES_URL_KEYS" in result.output
    signed = CliRunner(env={"HUIMAGES_HOME": str(tmp_path), "HUIMAGES_URL_KEYS": KEY}).invoke(main, ["check"])
    assert "policy" not in signed.output and signed.exit_code == 0


def test_a_rendered_size_stays_a_free_hit(tmp_path: Path) -> None:
    client = Client(Settings.at(tmp_path, limits=Limits(unsigned_renders_per_minute=1)))
    image_id = client.save_image(encode(photo(800, 600), "JPEG"))
    app = create_app(service=client.service)
    assert call(app, f"/300x200/{image_id}.jpeg", REMOTE_ADDR=STRANGER).status == 200
    assert call(app, f"/301x200/{image_id}.jpeg", REMOTE_ADDR=STRANGER).status == 429
    for _ in range(5):  # hits never touch the budget
        hit = call(app, f"/300x200/{image_id}.jpeg", REMOTE_ADDR=STRANGER)
        assert hit.status == 200 and decode(hit.body).size == (267, 200)
