"""The web interface in a real browser: Debian's chromium, headless, driven by Playwright, through both fronts.

The test signs in, drops three photos it made on the upload area, finds them
in the grid, opens one by keyboard, copies its tag, edits its title, deletes
another and sees it gone, and reads the status page. On failure it saves a
screenshot and the page's HTML under build/test-artifacts and names them.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from huimages.client import Client
from huimages.config import Settings
from huimages.core.ids import compute_id
from tests.imagetools import encode, photo, placed
from tests.servers import huimages_serve
from tests.test_browser import chromium_binary

pytestmark = pytest.mark.integration

ADMIN = "admin-token-of-the-browser-test"
ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "test-artifacts"

# Files made in the page from base64, put in a DataTransfer, and dropped on the upload area.
DROP = """([selector, files]) => {
    const transfer = new DataTransfer();
    for (const f of files) {
        const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
        transfer.items.add(new File([bytes], f.name, {type: f.type}));
    }
    const target = document.querySelector(selector);
    for (const kind of ["dragenter", "dragover", "drop"]) {
        target.dispatchEvent(new DragEvent(kind, {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }
}"""

# Counts the progress bars the page shows (each file gets one while it uploads).
WATCH_PROGRESS = """() => {
    window.progressBars = 0;
    new MutationObserver((changes) => {
        for (const change of changes)
            for (const node of change.addedNodes)
                if (node.querySelector && node.querySelector("progress")) window.progressBars += 1;
    }).observe(document.getElementById("results"), {childList: true});
}"""


@pytest.fixture(scope="module", params=["gunicorn", "lighttpd"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Client, str]]:
    home = tmp_path_factory.mktemp(f"ui-browser-{request.param}")
    with huimages_serve(home, request.param, {"HUIMAGES_ADMIN_TOKEN": ADMIN}) as (port, env):
        yield f"http://127.0.0.1:{port}", Client(Settings.from_env(env)), request.param


def test_sign_in_upload_browse_copy_edit_delete_status(site: tuple[str, Client, str]) -> None:
    from playwright.sync_api import sync_playwright

    base, client, front = site
    photos = [encode(photo(900 + 40 * i, 600, seed=i), "JPEG", quality=88) for i in range(3)]
    ids = [compute_id(data) for data in photos]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_binary(), args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page = context.new_page()
        try:
            walk(page, base, client, photos, ids, front)
            page = without_script(browser, context.cookies(), base, ids)
        except Exception as exc:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot, markup = ARTIFACTS / f"ui-{front}-failure.png", ARTIFACTS / f"ui-{front}-failure.html"
            page.screenshot(path=str(shot), full_page=True)
            markup.write_text(page.content())
            pytest.fail(f"{exc!r} at {page.url}; screenshot: {shot}, page HTML: {markup}")
        finally:
            browser.close()


def until(page: Any, predicate: str, timeout: float = 60.0) -> None:
    """Poll ``predicate`` (a JavaScript expression) until it holds.

    Not ``wait_for_function``: that evaluates a string inside the page, which
    the interface's Content-Security-Policy (no eval) rightly refuses, and the
    test keeps the policy on.
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout:g} s: {predicate}")
        page.wait_for_timeout(100)


def without_script(browser: Any, cookies: Any, base: str, ids: list[str]) -> Any:
    """Browsing and an image's page work with JavaScript off; returns the page (for a failure's screenshot)."""
    context = browser.new_context(java_script_enabled=False)
    context.add_cookies(cookies)
    page = context.new_page()
    page.goto(f"{base}/ui/")
    shown = page.eval_on_selector_all(".grid a", "links => links.map(a => a.dataset.id)")
    assert shown and set(shown) <= set(ids)
    page.click(f'a[data-id="{shown[0]}"]')
    page.wait_for_url(f"{base}/ui/images/{shown[0]}")
    urls = page.eval_on_selector_all("td .copy input", "fields => fields.map(f => f.value)")
    assert f"{base}/240x160/{shown[0]}" in " ".join(urls)  # the URLs, tags and markup, to select by hand
    return page


def walk(page: Any, base: str, client: Client, photos: list[bytes], ids: list[str], front: str) -> None:
    # sign in: any page leads to the sign-in form, and back
    page.goto(f"{base}/ui/upload")
    assert "/ui/signin" in page.url
    page.fill("#token", ADMIN)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/ui/upload")

    # upload: three photos dropped at once, each with its own progress bar and result
    page.evaluate(WATCH_PROGRESS)
    files = [
        {"name": f"photo-{i}.jpg", "type": "image/jpeg", "data": base64.b64encode(d).decode()}
        for i, d in enumerate(photos)
    ]
    broken = {"name": "broken.jpg", "type": "image/jpeg", "data": base64.b64encode(b"not a JPEG at all").decode()}
    page.evaluate(DROP, ["#drop", [*files, broken]])
    until(page, "document.querySelectorAll('#results li.stored, #results li.failed').length === 4")
    assert page.evaluate("window.progressBars") == 4
    failure = page.text_content("#results li.failed") or ""
    assert failure.startswith("broken.jpg was not stored:"), failure  # the error in plain words, the others stored
    shown = page.eval_on_selector_all("#results li.stored .image-id", "links => links.map(a => a.textContent)")
    assert sorted(shown) == sorted(ids)
    until(page, "[...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)")

    # browse: the three in the grid, newest first, every thumbnail loaded and with an alt text
    page.goto(f"{base}/ui/")
    until(page, "[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    grid = page.eval_on_selector_all(".grid a", "links => links.map(a => a.dataset.id)")
    assert sorted(grid) == sorted(ids)
    assert all(page.eval_on_selector_all("img", "imgs => imgs.map(i => i.alt)"))
    if front == "gunicorn":
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ui-browse.png"))

    # keyboard: Tab to the first image of the grid, Enter opens its page
    first = grid[0]
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.id || ''") == first:
            break
    else:
        raise AssertionError("the grid's first image cannot be reached with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/ui/images/{first}")

    # copy the small size's tag
    row = page.locator("tr", has=page.locator("th", has_text=re.compile(r"^small")))
    row.get_by_role("button", name="Copy tag").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == client.scaled_tag(first, "small")
    assert row.get_by_role("button", name="Copied").count() == 1

    # edit the title
    page.fill("#new-title", "Edited <in> the browser")
    page.get_by_role("button", name="Save title").click()
    page.wait_for_url(re.compile(r".*\?done=title$"))
    assert page.text_content("h1") == "Edited <in> the browser"
    assert client.get_imagedoc(first)["title"] == ["Edited <in> the browser"]

    # delete another one, after the confirmation page
    doomed = grid[1]
    page.goto(f"{base}/ui/images/{doomed}")
    page.get_by_role("link", name="Delete this image…").click()
    page.wait_for_url(f"{base}/ui/images/{doomed}/delete")
    page.get_by_role("button", name="Delete it").click()
    page.wait_for_url(f"{base}/ui/?done=deleted")
    assert page.text_content(".notice") == "The image was deleted."
    left = page.eval_on_selector_all(".grid a", "links => links.map(a => a.dataset.id)")
    assert sorted(left) == sorted(i for i in ids if i != doomed)

    # status: both backends answer, the cache holds the thumbnails
    page.goto(f"{base}/ui/status")
    states = page.eval_on_selector_all("section:first-of-type tbody td:last-child", "c => c.map(x => x.textContent)")
    assert states == ["answers", "answers"]
    assert "240x160 (small)" in (page.text_content("section:last-of-type table") or "")


def test_a_click_moves_the_focus_and_its_crop_previews_and_the_grid_shows_placeholders(
    site: tuple[str, Client, str],
) -> None:
    from playwright.sync_api import sync_playwright

    base, client, front = site
    image_id = client.save_image(placed(1800, 900, 1000, 100)[0], title="Astronaut, off the centre")
    found = client.get_imagedoc(image_id)
    colour = found["placeholder"]["color"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_binary(), args=["--no-sandbox"])
        page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
        try:
            page.goto(f"{base}/ui/signin")
            page.fill("#token", ADMIN)
            page.keyboard.press("Enter")
            page.wait_for_url(f"{base}/ui/")
            # the grid: the average colour behind each thumbnail until it loads
            shown = page.eval_on_selector(f'a[data-id="{image_id}"] img', "i => getComputedStyle(i).backgroundColor")
            red, green, blue = (int(colour[k : k + 2], 16) for k in (1, 3, 5))
            assert shown == f"rgb({red}, {green}, {blue})"

            page.goto(f"{base}/ui/images/{image_id}")
            until(page, "document.getElementById('focus-image').naturalWidth > 0")
            positions = "() => [...document.querySelectorAll('.crop')].map(c => c.style.backgroundPosition)"
            before = page.evaluate(positions)
            assert float(page.input_value("#focus-x")) == round(found["focus"]["x"], 3) and before[0] != "0px 0px"
            picture = page.locator("#focus-image")
            box = picture.bounding_box()
            assert box is not None
            picture.click(position={"x": box["width"] * 0.1, "y": box["height"] * 0.5})
            assert abs(float(page.input_value("#focus-x")) - 0.1) < 0.01
            assert abs(float(page.input_value("#focus-y")) - 0.5) < 0.01
            after = page.evaluate(positions)
            # the square (120x120 of a 2:1 picture) now starts at its left edge; the banner keeps the whole
            # width and moves to the middle; the tall card moves to the left edge as well
            assert after[0].startswith("0px") and after[2].startswith("0px") and after != before
            page.get_by_role("button", name="Save focus").click()
            page.wait_for_url(re.compile(r".*\?done=focus#focus-heading$"))
            focus = client.get_imagedoc(image_id)["focus"]
            assert focus["source"] == "manual" and abs(focus["x"] - 0.1) < 0.01 and abs(focus["y"] - 0.5) < 0.01
            urls = page.eval_on_selector_all("td .copy input", "fields => fields.map(f => f.value)")
            assert f"/75x75!@10-50/{image_id}/" in " ".join(urls)  # the sizes table names the new crops
            page.get_by_role("button", name="Back to the found focus").click()
            page.wait_for_url(re.compile(r".*\?done=focus#focus-heading$"))
            assert client.get_imagedoc(image_id)["focus"]["source"] == "face"
        except Exception as exc:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / f"ui-focus-{front}-failure.png"
            page.screenshot(path=str(shot), full_page=True)
            pytest.fail(f"{exc!r} at {page.url}; screenshot: {shot}")
        finally:
            browser.close()
