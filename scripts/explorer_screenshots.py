"""The explorer's screenshots for the docs and the README: `genlab serve` on trained runs, each tab used the way
a newcomer would, photographed by Debian's Chromium through Playwright.

    python scripts/explorer_screenshots.py --vae runs/families/vae --gan runs/families/cgan \\
        --sr runs/sr-photos/esrgan --translation runs/p2p-edges --photo astronaut

Writes docs/images/explorer_<tab>.png (sample, morph, edit, inpaint, upscale, translate, compare); a tab whose run
is not given is skipped. --photo: one of genlab's bundled test photos (genlab.data.photos), cropped for upscaling.
"""
from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

from PIL import Image
from playwright.sync_api import expect, sync_playwright

from genlab.data import load_dataset
from genlab.data.pairs import task_inputs
from genlab.data.photos import load_photo
from genlab.web import Explorer, ExplorerServer

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vae", required=True)
    parser.add_argument("--gan", required=True)
    parser.add_argument("--sr", default=None)
    parser.add_argument("--translation", default=None)
    parser.add_argument("--photo", default="astronaut", help="bundled photo to upscale (a 96×96 crop, shrunk ×4 first)")
    parser.add_argument("--compare-samples", type=int, default=1000)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    runs = [args.vae, args.gan] + [run for run in (args.sr, args.translation) if run]
    explorer = Explorer(runs)
    ids = list(explorer.runs)
    server = ExplorerServer(explorer, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    chromium = os.environ.get("GENLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_context(viewport={"width": 1180, "height": 820}, bypass_csp=True,
                                   device_scale_factor=1).new_page()
        page.set_default_timeout(600_000)
        expect.set_options(timeout=600_000)
        page.goto(server.url)

        def shot(tab: str) -> None:
            page.wait_for_timeout(300)
            page.screenshot(path=str(out / f"explorer_{tab}.png"), full_page=True)
            print(out / f"explorer_{tab}.png")

        def idle(tab: str) -> None:
            expect(page.locator(f"#tab-{tab} .busy")).to_be_hidden()

        # Sample: the conditional GAN, every class in turn, a fixed seed.
        page.locator("#run-select").select_option(ids[1])
        page.locator("#sample-seed").fill("7")
        page.locator("#sample-n").fill("40")
        page.locator("#sample-go").click()
        idle("sample")
        shot("sample")
        # Morph: the VAE between two seeds, the slider part-way.
        page.locator("#run-select").select_option(ids[0])
        page.locator("button.tab[data-tab=morph]").click()
        page.locator("#morph-seed-a").fill("2")  # a trouser, to
        page.locator("#morph-seed-b").fill("6")  # an ankle boot
        page.locator("#morph-go").click()
        idle("morph")
        page.locator("#morph-t").fill("0.35")
        shot("morph")
        # Edit: the VAE's class direction Sneaker → Ankle boot on a sample the judge calls a sneaker (seed 17).
        page.locator("button.tab[data-tab=edit]").click()
        idle("edit")
        options = page.locator("#edit-direction option").evaluate_all("os => os.map(o => [o.value, o.textContent])")
        wanted = next((value for value, text in options if "Sneaker → Ankle boot" in text), options[0][0])
        page.locator("#edit-direction").select_option(wanted)
        page.locator("#edit-seed").fill("17")
        page.locator("#edit-strength").fill("2")
        page.locator("#edit-strength").dispatch_event("change")
        idle("edit")
        shot("edit")
        # Inpaint: a test image of the GAN's data, the centre hidden, filled by projection.
        page.locator("#run-select").select_option(ids[1])
        page.locator("button.tab[data-tab=inpaint]").click()
        idle("inpaint")
        page.locator("#inpaint-index").fill("12")
        page.locator("#inpaint-pick").click()
        idle("inpaint")
        page.locator("#inpaint-go").click()
        idle("inpaint")
        shot("inpaint")
        if args.sr:

            photo = load_photo(args.photo)  # uint8 C×H×W
            height, width = photo.shape[1:]
            crop = photo[:, height // 8:height // 8 + 192, width // 2 - 96:width // 2 + 96].permute(1, 2, 0).numpy()
            small = Image.fromarray(crop.squeeze()).resize((48, 48), Image.BICUBIC)
            path = Path(folder) / f"{args.photo}-48px.png"
            small.save(path)
            page.locator("#run-select").select_option(ids[2])
            page.locator("#upscale-file").set_input_files(str(path))
            idle("upscale")
            expect(page.locator("#upscale-output")).to_have_attribute("src", re.compile("^data:"))
            shot("upscale")
        if args.translation:
            test = load_dataset("fashion-mnist", split="test")  # the edges of an ankle boot: a pix2pix edges run's input
            stream = io.BytesIO()
            Image.fromarray(task_inputs(test.images[:1], "edges")[0, 0].numpy()).save(stream, format="PNG")
            path = Path(folder) / "ankle-boot.png"
            path.write_bytes(stream.getvalue())
            page.locator("#run-select").select_option(ids[-1])
            page.locator("#translate-file").set_input_files(str(path))
            idle("translate")
            shot("translate")
        page.locator("#run-select").select_option(ids[0])
        page.locator("button.tab[data-tab=compare]").click()
        page.locator("#compare-n").fill(str(args.compare_samples))
        page.locator("#compare-go").click()
        idle("compare")
        expect(page.locator("#compare-table tr").nth(2)).to_be_visible()
        shot("compare")
        browser.close()
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
