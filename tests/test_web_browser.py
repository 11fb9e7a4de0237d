"""genlab serve in a real browser: Playwright driving the system's Chromium (Debian's `chromium` package;
Playwright's own browser download does not work offline) against the explorer on a free loopback port, with the
tiny runs of tests/web_runs.py. Opens each tab, sets a seed, moves the morph slider, paints a mask and gets the
fill back, uploads a non-image and reads the error, and stops the server.

Skipped, with the reason, only where Playwright or Chromium is missing (`.ci/run` installs both).
``GENLAB_CHROMIUM`` names another Chromium executable."""
from __future__ import annotations

import io
import os
import re
import shutil

import pytest
from PIL import Image
from web_runs import make_runs, running

from genlab.web import Explorer

sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs the playwright package (pip install playwright)")
CHROMIUM = os.environ.get("GENLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium executable: apt-get install -y chromium (or set GENLAB_CHROMIUM)")
expect = sync_api.expect
TIMEOUT_MS = 60_000  # a model call on a busy 2-core machine; each step usually takes well under a second


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    runs = make_runs(tmp_path_factory.mktemp("runs"))
    with running(Explorer([runs["vae"], runs["cgan"], runs["sr"], runs["p2p"]])) as server:
        yield server


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        # The server's Content-Security-Policy (script-src 'self') refuses the string scripts Playwright's waits evaluate.
        context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url)
        yield page
        browser.close()
        assert errors == [], f"the page's script failed: {errors}"


def png(size: int = 20, value: int = 140) -> bytes:
    stream = io.BytesIO()
    Image.new("L", (size, size), value).save(stream, format="PNG")
    return stream.getvalue()


def visible_tabs(page) -> list[str]:
    return [b.get_attribute("data-tab") for b in page.locator("button.tab").all() if b.is_visible()]


def new_src(page, selector: str, old: str | None) -> str:
    """The <img>'s src once it is set and differs from ``old``."""
    image = page.locator(selector)
    expect(image).to_have_attribute("src", re.compile(r"^data:image/"))
    if old is not None:
        expect(image).not_to_have_attribute("src", old)
    return image.get_attribute("src")


def test_the_page_lists_the_runs_and_shows_samples_at_once(page):
    expect(page).to_have_title("genlab explorer")
    assert page.locator("#run-select option").evaluate_all("os => os.map(o => o.value)") == ["vae", "cgan", "sr", "p2p"]
    assert visible_tabs(page) == ["sample", "morph", "edit", "inpaint", "compare"]
    new_src(page, "#sample-image", None)  # the first tab ran with its defaults: pictures without a click
    expect(page.locator("#tab-sample .help")).to_contain_text("same seed always gives the same images")


def test_a_seed_gives_its_own_samples_and_the_same_seed_the_same_ones(page):
    page.locator("button.tab[data-tab=sample]").click()
    first = new_src(page, "#sample-image", None)
    page.locator("#sample-seed").fill("5")
    page.locator("#sample-go").click()
    five = new_src(page, "#sample-image", first)
    page.locator("#sample-seed").fill("6")
    page.locator("#sample-go").click()
    six = new_src(page, "#sample-image", five)
    page.locator("#sample-seed").fill("5")
    page.locator("#sample-go").click()
    assert new_src(page, "#sample-image", six) == five
    assert page.locator("#sample-download").get_attribute("href") == five


def test_the_morph_slider_changes_the_picture_as_it_moves(page):
    page.locator("button.tab[data-tab=morph]").click()
    middle = new_src(page, "#morph-image", None)  # the slider starts half-way
    page.locator("#morph-t").fill("0")  # sets the range and fires its input event
    start = new_src(page, "#morph-image", middle)
    page.locator("#morph-t").fill("1")
    end = new_src(page, "#morph-image", start)
    expect(page.locator("#morph-t-value")).to_have_text("t = 1.00")
    page.locator("#morph-t").fill("0")
    assert new_src(page, "#morph-image", end) == start  # frames are kept: sliding back shows the first again
    assert page.locator("#morph-gif").get_attribute("href").startswith("data:image/gif")


def test_the_edit_strength_slider_moves_the_image(page):
    page.locator("button.tab[data-tab=edit]").click()
    edited = new_src(page, "#edit-image", None)
    original = page.locator("#edit-original").get_attribute("src")
    page.locator("#edit-strength").fill("-4")
    page.locator("#edit-strength").dispatch_event("change")
    new_src(page, "#edit-image", edited)
    assert page.locator("#edit-original").get_attribute("src") == original


def test_a_painted_mask_comes_back_filled(page):
    page.locator("button.tab[data-tab=inpaint]").click()
    expect(page.locator("#inpaint-canvas-caption")).to_contain_text("seed")
    page.locator("#inpaint-preset").select_option(index=0)  # none: the hole is only what we paint
    box = page.locator("#inpaint-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.7, steps=12)
    page.mouse.up()
    page.locator("#inpaint-go").click()
    new_src(page, "#inpaint-result", None)
    new_src(page, "#inpaint-masked", None)
    expect(page.locator("#tab-inpaint .error")).to_be_hidden()
    expect(page.locator("#tab-inpaint")).to_contain_text("hidden")  # the caption says how much was painted


def test_a_non_image_upload_is_explained_and_the_server_keeps_serving(page):
    page.locator("#inpaint-file").set_input_files(files=[{"name": "notes.txt", "mimeType": "text/plain",
                                                          "buffer": b"these are my notes, not a picture"}])
    error = page.locator("#tab-inpaint .error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("notes.txt: is not an image file")
    page.locator("button.tab[data-tab=sample]").click()
    before = page.locator("#sample-image").get_attribute("src")
    page.locator("#sample-seed").fill("11")
    page.locator("#sample-go").click()
    new_src(page, "#sample-image", before)


def test_an_sr_run_upscales_an_upload(page):
    page.locator("#run-select").select_option("sr")
    assert visible_tabs(page) == ["upscale", "compare"]
    page.locator("#upscale-file").set_input_files(files=[{"name": "small.png", "mimeType": "image/png", "buffer": png(20)}])
    output = page.locator("#upscale-output")
    new_src(page, "#upscale-output", None)
    assert output.evaluate("img => img.naturalWidth") == 80  # ×4
    expect(page.locator("#tab-upscale")).to_contain_text("80")


def test_a_translation_run_translates_an_upload(page):
    page.locator("#run-select").select_option("p2p")
    assert visible_tabs(page) == ["translate", "compare"]
    page.locator("#translate-file").set_input_files(files=[{"name": "shoe.png", "mimeType": "image/png", "buffer": png(28)}])
    new_src(page, "#translate-output", None)
    new_src(page, "#translate-input", None)


def test_the_compare_tab_offers_the_comparable_runs(page):
    page.locator("#run-select").select_option("vae")
    page.locator("button.tab[data-tab=compare]").click()
    boxes = page.locator("#compare-runs input[type=checkbox]")
    assert boxes.count() == 2  # vae and cgan; the SR and translation runs have no samples to measure
    expect(page.locator("#tab-compare .help")).to_contain_text("side by side")
    expect(page.locator("#compare-go")).to_be_enabled()
