"""<picture> markup in a real browser: Debian's chromium, headless, driven by Playwright.

The page is handed to the browser as if it came from the image server's
origin; every image it shows is fetched from a running ``huimages serve``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from huimages.client import Client
from huimages.config import Settings
from tests.imagetools import encode, photo
from tests.servers import huimages_serve

pytestmark = pytest.mark.integration


def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:  # never a skip: ./scripts/test installs it
        pytest.fail("chromium is not installed; run: apt-get install chromium")
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Client]]:
    home = tmp_path_factory.mktemp("browser")
    with huimages_serve(home, workers=1) as (_, env):
        yield env["IMAGESERVERURL"], Client(Settings.from_env(env))


def show(base: str, markup: str, scale: float, log: Path) -> tuple[list[str], dict[str, object]]:
    """Load a page with ``markup`` at device scale ``scale``; the image URLs fetched, and the <img>'s state."""
    from playwright.sync_api import sync_playwright

    fetched: list[str] = []
    page_url = f"{base}page.html"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_binary(), args=["--no-sandbox"])
        try:
            context = browser.new_page(device_scale_factor=scale, viewport={"width": 800, "height": 600})
            context.route(page_url, lambda route: route.fulfill(content_type="text/html", body=markup))
            context.on("request", lambda request: fetched.append(request.url))
            context.goto(page_url)
            context.wait_for_function("document.querySelector('img').complete", timeout=30_000)
            state = context.evaluate(
                "() => { const i = document.querySelector('img');"
                " return {current: i.currentSrc, width: i.naturalWidth, height: i.naturalHeight}; }"
            )
            context.screenshot(path=str(log))
        finally:
            browser.close()
    return [url for url in fetched if url != page_url], state


@pytest.mark.parametrize(("scale", "box"), [(1, "240x160"), (2, "480x320")])
def test_the_browser_fetches_the_avif_candidate_for_its_density(
    site: tuple[str, Client], tmp_path: Path, scale: float, box: str
) -> None:
    base, client = site
    image_id = client.save_image(encode(photo(1200, 800), "JPEG", quality=90))
    picture = client.scaled_picture(image_id, "small", alt="A test photo")
    markup = f"<!doctype html><html><body>{picture}</body></html>"
    fetched, state = show(base, markup, scale, tmp_path / "page.png")
    assert fetched == [f"{base}{box}/{image_id}/image.avif"], fetched  # one request, the AVIF at this density
    assert state["current"] == fetched[0]
    assert (state["width"], state["height"]) == (240, 160)  # natural size, corrected for the density
