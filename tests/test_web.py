"""genlab serve: the explorer's operations on tiny trained runs, its refusals of bad input, and the HTTP side
(limits, queue, time limit, a bug answered as an error while the server keeps serving, a small load test).
The page in a real browser: tests/test_web_browser.py."""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from PIL import Image
from web_runs import data_url, decode_url, make_runs, running

import genlab
from genlab.cli.main import main
from genlab.tools.inpainting import inpaint
from genlab.web import Explorer, Limits, RequestError
from genlab.web.server import Gate


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    return make_runs(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def explorer(runs) -> Explorer:
    return Explorer([runs["vae"], runs["cgan"], runs["sr"], runs["p2p"]])


def blank(size: int = 28, value: int = 128, mode: str = "L") -> Image.Image:
    return Image.new(mode, (size, size), value)


def box_mask(size: int = 28, box: tuple[int, int, int, int] = (7, 7, 21, 21)) -> str:
    mask = blank(size, 0)
    mask.paste(255, box)
    return data_url(mask)


# ------------------------------------------------------------------------------------------- describing


def test_each_run_gets_the_tabs_and_choices_of_its_kind(explorer):
    described = {run["id"]: run for run in explorer.describe()["runs"]}
    assert described["vae"]["tabs"] == ["sample", "morph", "edit", "inpaint"]
    assert described["sr"]["tabs"] == ["upscale"] and described["sr"]["scale"] == 4
    assert described["p2p"]["tabs"] == ["translate"] and described["p2p"]["translate_directions"] == ["a2b"]
    cgan = described["cgan"]
    assert cgan["classes"][7] == "Sneaker" and cgan["inpaint_methods"][0] == "gan"
    assert described["vae"]["classes"] == []  # unconditional: no class picker
    # The run's data (the bundled subset) loads here: test images to pick, and a VAE's class directions.
    assert described["vae"]["pick_from_data"] and {"id": "7->9", "label": "Sneaker → Ankle boot"} in described["vae"]["directions"]
    assert [d["id"] for d in cgan["directions"]] == ["pc0", "pc1", "pc2", "pc3", "pc4"]  # a GAN: no projecting 1,000 images
    assert all(run["help"]["compare"] for run in described.values())
    assert explorer.describe()["compare"] is True


def test_two_runs_with_one_folder_name_get_distinct_ids(runs, tmp_path):
    twin = tmp_path / "copy" / "vae"
    twin.parent.mkdir()
    twin.symlink_to(runs["vae"], target_is_directory=True)
    assert list(Explorer([runs["vae"], twin], load_data=False).runs) == ["vae", "vae-2"]


# ------------------------------------------------------------------------------------------- operations


def test_sample_is_a_function_of_the_seed_and_takes_classes(explorer):
    a = decode_url(explorer.sample({"run": "cgan", "seed": 3, "n": 4})["image"])
    assert torch.equal(a, decode_url(explorer.sample({"run": "cgan", "seed": 3, "n": 4})["image"]))
    assert not torch.equal(a, decode_url(explorer.sample({"run": "cgan", "seed": 4, "n": 4})["image"]))
    sneakers = decode_url(explorer.sample({"run": "cgan", "seed": 3, "n": 4, "label": 7})["image"])
    assert not torch.equal(a, sneakers)
    # The grid holds what the model samples: its first tile, at the view scale (×3 for 28 px), is sample 0.
    expected = genlab.load(explorer.runs["cgan"].path).sample(4, seed=3, labels=[7] * 4)[0, 0]
    tile = sneakers[0, 6:6 + 84:3, 6:6 + 84:3]  # the grid's 2 px of padding, ×3 too
    assert (tile - expected).abs().max() <= 1 / 255 + 1e-6  # 8-bit rounding


def test_morph_frames_start_and_end_at_the_two_seeds_samples(explorer):
    answer = explorer.morph({"run": "vae", "seeds": [5, 9], "frames": 7, "method": "lerp"})
    frames = [decode_url(f) for f in answer["frames"]]
    assert len(frames) == 7 and answer["gif"].startswith("data:image/gif;base64,")
    assert decode_url(answer["strip"]).shape[-1] == 7 * 28 * 3 + 8 * 2 * 3  # every frame in a row, at the view scale
    model = explorer.runs["vae"].model
    for frame, seed in ((frames[0], 5), (frames[-1], 9)):
        scale = frame.shape[-1] // 28
        assert (frame[0, ::scale, ::scale] - model.sample(1, seed=seed)[0, 0]).abs().max() <= 1 / 255 + 1e-6
    assert not torch.equal(frames[0], frames[3])


def test_morph_between_two_uploads_on_a_vae(explorer):
    a, b = blank(value=10), blank(value=240)
    answer = explorer.morph({"run": "vae", "images": [data_url(a), data_url(b)], "frames": 5})
    assert len(answer["frames"]) == 5


def test_edit_at_strength_zero_is_the_original(explorer):
    zero = explorer.edit({"run": "vae", "direction": "pc0", "strength": 0, "seed": 2})
    assert zero["original"] == zero["edited"] and zero["direction"] == "GANSpace component 0"
    moved = explorer.edit({"run": "vae", "direction": "7->9", "strength": 3, "seed": 2})
    assert moved["original"] == zero["original"] and moved["edited"] != moved["original"]
    assert moved["direction"] == "Sneaker → Ankle boot"


def test_a_style_gan_edits_by_category_directions_in_w(tmp_path):
    mini = genlab.load_dataset("fashion-mnist-mini", split="train")
    torch.manual_seed(0)
    model = genlab.GAN(genlab.GANConfig(architecture="style", num_classes=10, latent_dim=10, g_width=4, d_width=4))
    genlab.train(model, mini, genlab.TrainConfig(max_steps=1, batch_size=8, out_dir=str(tmp_path / "style"), progress=False,
                                                 tensorboard=False, device="cpu", num_sample_images=0))
    style = Explorer([tmp_path / "style"], load_data=False)
    ids = [d["id"] for d in style.describe()["runs"][0]["directions"]]
    assert ids[:5] == ["pc0", "pc1", "pc2", "pc3", "pc4"] and "w:7->9" in ids and len(ids) == 5 + 90
    answer = style.edit({"run": "style", "direction": "w:7->9", "strength": 1, "seed": 4})
    assert answer["direction"] == "Sneaker → Ankle boot (in W)"
    model = style.runs["style"].model
    expected = model.sample(1, seed=4, labels=[7])  # the seed's sneaker: w of the same z under class 7
    assert (decode_url(answer["original"])[0, ::6, ::6] - expected[0, 0]).abs().max() <= 1 / 255 + 1e-6
    assert answer["edited"] != answer["original"]
    with pytest.raises(RequestError, match="W directions edit generated images"):
        style.edit({"run": "style", "direction": "w:7->9", "image": data_url(blank())})


def test_inpaint_keeps_the_known_pixels_and_fills_the_hole(explorer):
    picked = explorer.pick({"run": "vae", "index": 3})
    test_image = genlab.load_dataset("fashion-mnist-mini", split="test").float_images([3])[0]
    assert torch.equal(decode_url(picked["image"]), test_image)
    answer = explorer.inpaint({"run": "vae", "image": picked["image"], "mask": box_mask(), "method": "vae-iterative"})
    assert answer["hidden"] == pytest.approx(14 * 14 / 28**2)
    completed = decode_url(answer["completed"])[0, ::6, ::6]  # sent at ×6 (the view scale ×2)
    known = torch.ones(28, 28, dtype=torch.bool)
    known[7:21, 7:21] = False
    # Two pixels of feathering (the CLI's --blend 2) reach into the known side of the hole's edge.
    far = known.clone()
    far[5:23, 5:23] = False
    assert torch.equal(completed[far], test_image[0][far])
    assert not torch.equal(completed[~known], test_image[0][~known])
    # The same call of the tool gives the same fill: the page shows what `genlab inpaint` computes.
    mask = known[None, None].float()
    direct = inpaint(explorer.runs["vae"].model, test_image[None], mask, "vae-iterative", progress=False)
    assert (completed - direct[0, 0]).abs().max() <= 1 / 255 + 1e-6


def test_upscale_enlarges_by_the_runs_scale_and_translate_answers(explorer):
    answer = explorer.upscale({"run": "sr", "image": data_url(blank(20)), "image_name": "small.png"})
    assert answer["size_in"] == [20, 20] and answer["size_out"] == [80, 80]
    assert decode_url(answer["output"]).shape[-2:] == (80, 80)
    translated = explorer.translate({"run": "p2p", "image": data_url(blank(40)), "image_name": "any-size.png"})
    assert decode_url(translated["input"]).shape[-1] == decode_url(translated["output"]).shape[-1]  # resized to 28 first


def test_compare_measures_the_runs_on_their_test_data(explorer):
    answer = explorer.compare({"runs": ["vae", "cgan"], "num_samples": 200})
    assert answer["columns"] == ["property", "measure", "vae", "cgan"]
    rows = {row[0]: row for row in answer["rows"]}
    assert len(rows) >= 3 and all(len(row) == 4 for row in answer["rows"]) and answer["verdict"]
    assert any("FID is biased upwards at small N" in note for note in answer["notes"])  # shown, not swallowed
    with pytest.raises(RequestError, match=r"num_samples: expected an integer in 200\.\.5000"):
        explorer.compare({"runs": ["vae"], "num_samples": 100})
    with pytest.raises(RequestError, match="'sr' is a sr run"):
        explorer.compare({"runs": ["sr"]})


# ------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(("body", "message"), [
    ({"run": "nope"}, "no run 'nope' here"),
    ({"run": "sr", "n": 4}, "'sr' is a sr run; this needs a vae or gan or diffusion run"),
    ({"run": "vae", "n": 0}, "n: expected an integer in 1..64, got 0"),
    ({"run": "vae", "n": 65}, "n: expected an integer in 1..64"),
    ({"run": "vae", "seed": -1}, "seed: expected an integer"),
    ({"run": "vae", "seed": "x"}, "seed: expected an integer"),
    ({"run": "vae", "label": 2}, "label: this model is not class-conditional"),
    ({"run": "cgan", "label": 10}, "label: expected an integer in 0..9"),
    ({"run": "cgan", "truncation": "nan"}, "truncation: expected a number"),
])
def test_bad_sample_fields_are_named(explorer, body, message):
    with pytest.raises(RequestError, match=message.replace("(", r"\(").replace("'", "'")):
        explorer.sample(body)


def test_bad_uploads_say_what_is_wrong_with_which_file(explorer, tmp_path):
    text = data_url(b"hello, I am not a picture", "text/plain")
    with pytest.raises(RequestError, match=r"notes\.txt: is not an image file"):
        explorer.upscale({"run": "sr", "image": text, "image_name": "notes.txt"})
    with pytest.raises(RequestError, match=r"shirt\.png: is 30×30 \(width×height\) but run 'vae' takes 28×28"):
        explorer.inpaint({"run": "vae", "image": data_url(blank(30)), "image_name": "shirt.png", "mask": box_mask()})
    with pytest.raises(RequestError, match=r"the mask is 14×14 but the image is 28×28"):
        explorer.inpaint({"run": "vae", "image": data_url(blank()), "mask": box_mask(14, (2, 2, 8, 8))})
    with pytest.raises(RequestError, match="the mask is empty"):
        explorer.inpaint({"run": "vae", "image": data_url(blank()), "mask": data_url(blank(value=0))})
    with pytest.raises(RequestError, match="expected the file as a data: URL"):
        explorer.upscale({"run": "sr", "image": "/etc/passwd"})
    with pytest.raises(RequestError, match="not valid base64"):
        explorer.upscale({"run": "sr", "image": "data:image/png;base64,@@@"})
    with pytest.raises(RequestError, match="the upscale tab takes at most 65,536") as error:
        explorer.upscale({"run": "sr", "image": data_url(blank(300)), "image_name": "big.png"})
    assert error.value.status == 413


def test_upload_limits_apply_before_decoding(runs):
    small = Explorer([runs["sr"]], Limits(max_upload_bytes=1000, max_pixels=10_000), load_data=False)
    with pytest.raises(RequestError, match=r"big\.png: is [\d,]+ bytes, more than the 1,000 allowed") as error:
        small.upscale({"run": "sr", "image": data_url(bytes(3000)), "image_name": "big.png"})
    assert error.value.status == 413
    # A bomb: 20,000² pixels that compress to a few kB (the header is read, the pixels never are).
    few = Explorer([runs["sr"]], Limits(max_pixels=10_000), load_data=False)
    with pytest.raises(RequestError, match=r"wide\.png: is 200×100 = 20,000 pixels, more than the 10,000 this server takes"):
        few.upscale({"run": "sr", "image": data_url(Image.new("L", (200, 100))), "image_name": "wide.png"})
    bomb = Image.new("1", (20_000, 20_000))  # 400 megapixels in a few kB
    with pytest.raises(RequestError, match=r"has more pixels than Pillow opens .*, far more than the 10,000") as error:
        few.upscale({"run": "sr", "image": data_url(bomb)})
    assert error.value.status == 413


# ------------------------------------------------------------------------------------------- HTTP


def call(server, path: str, body: dict | bytes | None = None, headers: dict | None = None) -> tuple[int, dict | str]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.url.rstrip("/") + path, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw, kind = response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers["Content-Type"]
    return status, json.loads(raw) if kind == "application/json" else raw.decode()


def test_the_server_serves_the_page_the_api_and_json_errors(explorer):
    with running(explorer) as server:
        status, page = call(server, "/")
        assert status == 200 and "genlab explorer" in page and "http" not in page.split("<body", 1)[0].replace("http-equiv", "")
        status, described = call(server, "/api/runs")
        assert status == 200 and [run["id"] for run in described["runs"]] == ["vae", "cgan", "sr", "p2p"]
        status, answer = call(server, "/api/sample", {"run": "vae", "seed": 1, "n": 2})
        assert status == 200 and answer["image"].startswith("data:image/png") and answer["seconds"] >= 0
        assert call(server, "/api/sample", b"{not json")[1] == {"error": "the request body is not JSON"}
        assert call(server, "/api/sample", {"run": "vae", "n": 0}) == (400, {"error": "n: expected an integer in 1..64, got 0"})
        assert call(server, "/api/explode", {})[0] == 404
        assert call(server, "/static/../../setup.py")[0] == 404
        status, refused = call(server, "/api/runs", headers={"Host": "attacker.example:7860"})
        assert status == 403 and "127.0.0.1" in refused["error"]
        status, answer = call(server, "/api/sample", b"x" * 10, headers={"Content-Length": str(10**9)})
        assert status == 413 and "more than the" in answer["error"]


def test_a_bug_is_answered_as_an_error_and_the_server_keeps_serving(explorer, monkeypatch, capsys):
    def broken(body):
        raise RuntimeError("something inside broke")

    with running(explorer) as server:
        monkeypatch.setattr(explorer, "sample", broken)
        status, answer = call(server, "/api/sample", {"run": "vae"})
        assert status == 500 and "RuntimeError: something inside broke" in answer["error"]
        monkeypatch.undo()
        assert call(server, "/api/sample", {"run": "vae", "n": 1})[0] == 200
    assert "Traceback" in capsys.readouterr().err  # the log has the whole story


def test_the_gate_refuses_beyond_its_queue_and_answers_late_requests_with_504():
    gate = Gate(workers=1, queue=1, name="test")
    release = threading.Event()
    try:
        with ThreadPoolExecutor(2) as pool:
            running_call = pool.submit(gate.call, lambda: release.wait(10) and {"done": 1}, 30)
            time.sleep(0.1)
            waiting = pool.submit(gate.call, lambda: {"second": 1}, 30)
            time.sleep(0.1)
            with pytest.raises(RequestError, match="busy: 2 requests are already running or waiting") as busy:
                gate.call(dict, 30)
            assert busy.value.status == 503
            release.set()
            assert running_call.result() == {"done": 1} and waiting.result() == {"second": 1}
        with pytest.raises(RequestError, match=r"took longer than this server's limit of 0\.05 s") as late:
            gate.call(lambda: time.sleep(0.5) or {}, 0.05)
        assert late.value.status == 504
        time.sleep(0.6)
        assert gate.call(lambda: {"again": 1}, 5) == {"again": 1}  # the slot came back when the late call ended
    finally:
        gate.close()


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the process's memory from /proc (Linux)")
def test_a_small_load_leaves_no_errors_and_no_memory_growth(explorer):
    """4 clients × 25 sample requests: every answer 200 (the queue of 8 holds them all), and the process's
    memory after a second round within 64 MiB of after the first (no per-request leak: 100 grids of 16 images
    at ~10 kB a PNG would show as ~1 MB even if every one were kept; a model-sized leak as much more)."""
    body = {"run": "cgan", "n": 16}

    def client(k: int) -> list[int]:
        return [call(server, "/api/sample", {**body, "seed": 100 * k + i})[0] for i in range(25)]

    with running(explorer) as server:
        for round_ in range(2):
            with ThreadPoolExecutor(4) as pool:
                statuses = [s for result in pool.map(client, range(4)) for s in result]
            assert statuses == [200] * 100
            if round_ == 0:
                after_first = rss_bytes()
    assert rss_bytes() - after_first < 64 << 20


def test_the_serve_command_refuses_a_missing_run_in_one_line(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing" in err
