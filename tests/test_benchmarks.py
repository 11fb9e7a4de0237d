"""The parts of the benchmark scripts whose mistakes would skew a published number."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root holds `benchmarks`

from benchmarks.step_profile import CLASSES, classify
from benchmarks.time_to_quality import Curve, _final

HEAVY, ELEMENTWISE, OPTIMIZER, MEMORY, OTHER = CLASSES


@pytest.mark.parametrize(("name", "inside_optimizer", "expected"), [
    ("aten::convolution_backward", False, HEAVY),
    ("aten::_convolution", False, HEAVY),
    ("aten::mkldnn_convolution", False, HEAVY),
    ("aten::addmm", False, HEAVY),
    ("aten::mm", False, HEAVY),
    ("aten::_fused_adam_", False, OPTIMIZER),
    ("Optimizer.step#Adam.step", False, OPTIMIZER),
    ("aten::add_", True, OPTIMIZER),  # the optimizer's own arithmetic is the optimizer's
    ("aten::add_", False, ELEMENTWISE),
    ("aten::threshold_backward", False, ELEMENTWISE),
    ("aten::leaky_relu_backward", False, ELEMENTWISE),
    ("aten::native_batch_norm", False, ELEMENTWISE),
    ("aten::binary_cross_entropy_with_logits", False, ELEMENTWISE),
    ("aten::copy_", False, MEMORY),
    ("aten::_to_copy", False, MEMORY),
    ("aten::index", False, MEMORY),
    ("aten::empty_strided", False, MEMORY),
    ("aten::mmm_unknown", False, OTHER),
    ("autograd::engine::evaluate_function: AddmmBackward0", False, OTHER),
])
def test_step_profile_puts_each_operator_in_its_class(name, inside_optimizer, expected):
    assert classify(name, inside_optimizer) == expected


def test_loop_options_refuses_fp16_on_cpu_and_steps_a_model():
    from benchmarks import loop_options

    with pytest.raises(SystemExit):
        loop_options.parse_args(["--variants", "fp32 NCHW", "fp16 autocast, channels-last"])
    assert "fp16 autocast, channels-last" not in loop_options.parse_args([]).variants  # default runs on any CPU
    run, first = loop_options.make_stepper("vae", "fp32 channels-last (default)", batch_size=8, steps=2)
    assert first > 0 and run() == 16 and run(3) == 24


def test_time_to_quality_reads_its_milestones_off_the_curve():
    """The first curve point at or above 0.8 / 0.9 (not the last, not a rounded-up 0.8995), the best accuracy
    at or before step 1,000, and the run's own final step and seconds."""
    curve = Curve(scorer=None, every=1.0, samples=10)
    curve.points = [[10.0, 200, 0.5, 900.0], [20.0, 900, 0.81, 300.0], [30.0, 1100, 0.8995, 200.0],
                    [40.0, 1500, 0.9, 150.0], [50.0, 1900, 0.95, 120.0]]
    final = _final(curve, model=None, scorer=lambda sample, n, seed: (0.93, 111.0),
                   args=argparse.Namespace(final_samples=10), seconds=55.04, steps=2000)
    assert (final["seconds_to_accuracy_0_8"], final["steps_to_accuracy_0_8"]) == (20.0, 900)
    assert (final["seconds_to_accuracy_0_9"], final["steps_to_accuracy_0_9"]) == (40.0, 1500)
    assert final["best_accuracy_within_1000_steps"] == 0.81
    assert final["final"] == {"seconds": 55.0, "steps": 2000, "label_accuracy": 0.93, "fid": 111.0, "samples": 10}


def test_families_rows_targets_and_correlation():
    """Every family gets its rows (pixel diffusion at its own DDIM step count only), the two issue targets are
    read the right way round, and Pearson's r is r (and nan where it is undefined)."""
    from benchmarks.families import correlation, rows_of, targets_of

    rows = rows_of(2.0, [10, 50, 100], 10)
    names = [name for name, _, _ in rows]
    assert names[:2] == ["VAE (prior samples)", "cGAN"] and len(rows) == 2 + 3 * 2 + 2
    assert [options for name, family, options in rows if family == "pixel diffusion"] == [
        {"steps": 10, "guidance": 0.0}, {"steps": 10, "guidance": 2.0}]
    table = {"VAE (prior samples)": {"fid": 100.0, "latency_ms_b1": 1.0}, "cGAN": {"fid": 60.0, "latency_ms_b1": 2.0},
             "latent diffusion, DDIM 10, w = 2": {"fid": 49.0, "latency_ms_b1": 30.0},
             "latent diffusion, DDIM 50, w = 2": {"fid": 70.0, "latency_ms_b1": 99.0}}
    (fid_text, fid_met), (speed_text, speed_met) = targets_of(table, 2.0, 50)
    assert fid_met and "(49.0) at most half the VAE's (100.0)" in fid_text  # the best latent row counts
    assert not speed_met and "(50× to 99×)" in speed_text  # 99 ms is 99× the VAE but only 49.5× the GAN
    table["latent diffusion, DDIM 50, w = 2"]["latency_ms_b1"] = 100.0
    assert targets_of(table, 2.0, 50)[1][1]
    assert correlation([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(correlation([1, 2], [3, 4])) and math.isnan(correlation([1, 2, 3], [5, 5, 5]))


def test_sr_photos_trains_in_waves_after_the_model_each_starts_from(monkeypatch, tmp_path):
    """--jobs trains independent models together, but a GAN never before the PSNR model it starts from, and the
    runs come back in the table's order (not the order they finished)."""
    from benchmarks import super_resolution_photos as bench

    calls: list[tuple[str, tuple[str, ...]]] = []

    def fake_train(name, spec, args, data, runs, work_dir, test):
        calls.append((name, tuple(runs)))
        return {"run": str(work_dir / name), "init_from": spec[1]}

    monkeypatch.setattr(bench, "train_model", fake_train)
    models = {**bench.MODELS, bench.ABLATION[0]: bench.ABLATION[1]}
    args = argparse.Namespace(jobs=1)
    earlier = {"SRResNet": {"run": "kept", "init_from": None}}
    runs = bench.train_all(models, args, None, earlier, tmp_path, {})
    assert list(runs) == list(models) and runs["SRResNet"]["run"] == "kept"  # reused, not retrained
    trained = [name for name, _ in calls]
    assert trained == ["SRGAN", "RRDB-PSNR", "ESRGAN", bench.ABLATION[0]]  # SRGAN's start is there already: wave 1
    for name, ready in calls:
        start = models[name][1]
        assert start is None or start in ready, f"{name} trained before {start}"


def test_sr_photos_curve_scores_the_model_and_keeps_its_time_off_the_clock(tmp_path):
    """The learning curve's last point is the held-out PSNR-Y of the final model, computed the table's way, and
    the CPU seconds spent scoring are not counted as training."""
    import torch

    import genlab
    from benchmarks import super_resolution_photos as bench
    from benchmarks.families import CPUClock
    from genlab.data.dataset import Dataset
    from genlab.io.images import to_uint8
    from genlab.metrics.image import psnr_y

    generator = torch.Generator().manual_seed(0)
    photo = (torch.rand(3, 40, 44, generator=generator) * 255).to(torch.uint8)
    pairs = bench.held_out_pairs({"noise": photo}, 4)
    low, hr = pairs[0]
    assert hr.shape == (1, 3, 40, 44) and low.shape == (1, 3, 10, 11)
    assert torch.equal(low, torch.round(low * 255) / 255)  # an 8-bit low-res file, as a user would have
    patches = (torch.rand(8, 3, 16, 16, generator=generator) * 255).to(torch.uint8)
    model = genlab.SR(genlab.SRConfig(image_shape=(3, 16, 16), scale=4, channels=4, blocks=1, downsampling="bicubic"))
    clock = CPUClock()
    curve = bench.HeldOutCurve(1e-9, pairs, 4, clock)  # a point after every step
    config = genlab.TrainConfig(epochs=5, max_steps=3, batch_size=4, out_dir=str(tmp_path / "run"), device="cpu",
                                progress=False, tensorboard=False, num_sample_images=0, precision="fp32")
    genlab.train(model, Dataset(patches, None, (), "photos"), config, callbacks=[clock, curve])
    assert [step for _, step, _ in curve.points] == [1, 2, 3]
    assert clock.paused > 0
    final = genlab.load(str(tmp_path / "run"))
    with torch.no_grad():
        expected = float(psnr_y(to_uint8(final.upscale(low)).float() / 255, hr, border=4)[0])
    assert curve.points[-1][2] == pytest.approx(expected, abs=1e-4)


def test_sr_photos_doubling_trend_reads_the_last_two_doublings():
    """A gain that grows by 0.3 dB per doubling of training time gives 0.3 dB per doubling, and +2 dB after the
    doublings still missing; points before t_last / 4 do not count; a flat or short curve gives no trend."""
    from benchmarks.super_resolution_photos import doubling_trend

    points = [[150.0 * i, i, 29.0 + 0.3 * math.log2(i)] for i in range(1, 13)]
    points[0][2] = 99.0  # at 150 s, before 1800 / 4: must not move the fit
    trend = doubling_trend(points, bicubic=29.0)
    assert trend["db_per_doubling"] == pytest.approx(0.3)
    assert trend["gain_at_end"] == pytest.approx(0.3 * math.log2(12))
    assert trend["seconds_to_target"] == pytest.approx(1800 * 2 ** ((2 - 0.3 * math.log2(12)) / 0.3))
    assert doubling_trend([[s, 1, 30.0] for s in (500.0, 1000.0, 2000.0)], bicubic=29.0) is None
    assert doubling_trend(points[-2:], bicubic=29.0) is None


def test_sr_photos_wall_clock_takes_pauses_off_the_run():
    """On a GPU the budget is wall seconds: a pause recorded between two steps (scoring) is taken off
    run.elapsed() once, and not again at the next step."""
    from types import SimpleNamespace

    from benchmarks.super_resolution_photos import WallClock

    clock, run = WallClock(), SimpleNamespace(seconds_before=0.0)
    clock.on_step_end(run)
    assert run.seconds_before == 0.0
    clock.paused += 2.5
    clock.on_step_end(run)
    assert run.seconds_before == -2.5
    clock.on_step_end(run)
    assert run.seconds_before == -2.5


def test_sr_photos_rerender_rewrites_the_report_and_curve_without_training(tmp_path, monkeypatch):
    """--rerender rebuilds the Markdown and the curve picture from a saved JSON; a picture that was saved in a
    temporary folder ("<work dir>/...") goes to --picture instead of a literal "<work dir>" folder in the cwd."""
    import json

    from benchmarks import harness
    from benchmarks import super_resolution_photos as bench

    curve = [[100.0, 10, 30.0], [200.0, 20, 30.5], [400.0, 40, 30.8]]
    row = {"psnr_y": 30.8, "ssim_y": 0.9, "sharpness": 0.1, "lr_psnr": 45.0, "params": 10, "train_seconds": 400.0,
           "ms_per_megapixel": 5.0}
    results = {"settings": {"scale": 4, "name": "q"}, "picture": "<work dir>/q.png", "curve_picture": None,
               "rows": {"bicubic": {**row, "psnr_y": 29.0, "params": 0}, "SRResNet": row},
               "runs": {"SRResNet": {"curve": curve, "init_from": None}}}
    json_path = tmp_path / "q.json"
    json_path.write_text(json.dumps({"results": results, "machine": harness.machine_info(), "command": "x"}))
    monkeypatch.setattr(bench, "markdown_report", lambda saved: "\n".join(bench.curve_lines(saved)))
    monkeypatch.chdir(tmp_path)
    bench.main(["--rerender", str(json_path), "--picture", str(tmp_path / "pictures" / "q.png")])
    assert (tmp_path / "pictures" / "q_curve.png").stat().st_size > 0
    assert not (tmp_path / "<work dir>").exists()
    report = (tmp_path / "q.md").read_text()
    # least-squares slope of the gains 1.0, 1.5, 1.8 dB at log2(s) = x, x+1, x+2: 0.4 dB per doubling; the fitted
    # line is at 1.8333 dB at 400 s, so +2 dB at 400 · 2^(0.1667/0.4) = 534 s = 0.1 CPU hours
    assert "| SRResNet | +1.80 | 0.400 | 0.1 |" in report


def test_sr_recipe_summary_pairs_each_seed_with_the_first_recipe():
    """The paired column is each recipe's gain minus the first recipe's at the same seed, not a difference of means
    over unmatched runs; sd is the sample standard deviation over seeds."""
    import statistics

    from benchmarks import sr_recipe

    runs = [{"recipe": "a", "seed": 0, "gain": 0.10, "steps": 100}, {"recipe": "a", "seed": 1, "gain": 0.30, "steps": 120},
            {"recipe": "b", "seed": 1, "gain": 0.35, "steps": 80}, {"recipe": "b", "seed": 0, "gain": 0.20, "steps": 60}]
    summary = sr_recipe.summarize(runs, ["a", "b"])
    assert summary["a"]["vs_first_mean"] == 0.0
    assert summary["b"]["vs_first_mean"] == pytest.approx((0.10 + 0.05) / 2)
    assert (summary["b"]["vs_first_min"], summary["b"]["vs_first_max"]) == (pytest.approx(0.05), pytest.approx(0.10))
    assert summary["b"]["gain_sd"] == pytest.approx(statistics.stdev([0.20, 0.35]))
    assert summary["b"]["steps_mean"] == 70
    report = sr_recipe.markdown_report({"settings": vars(sr_recipe.parse_args([])), "summary": summary, "runs": runs})
    assert "| b | 2 | 70 | +0.275 ± 0.106 | +0.350, +0.200 | +0.075 (+0.050 … +0.100) |" in report


def test_sr_recipe_run_keeps_the_validation_photos_out_of_training_and_scores_them(tmp_path, monkeypatch):
    """One quick run: the validation photos are not among the photos cut into patches, and the gain it reports is
    the model's PSNR-Y minus bicubic's on those photos, recomputed here from the saved model."""
    import torch

    import genlab
    from benchmarks import sr_recipe
    from genlab.io.images import to_uint8
    from genlab.metrics.image import psnr_y
    from genlab.models.sr.nets import downsample_bicubic, upsample_bicubic

    args = sr_recipe.parse_args(["--quick"])
    photos, validation = sr_recipe.validation_split(grayscale=True, quick=True)
    assert set(validation) == set(sr_recipe.VALIDATION)
    from genlab.data import photos as bundled

    whole = {name: bundled.load_photo(name) for name in sr_recipe.VALIDATION}
    assert all(not any(p.shape == w.shape and torch.equal(p, w) for w in whole.values()) for p in photos)
    monkeypatch.setattr(sr_recipe.shutil, "rmtree", lambda *a, **k: None)  # keep the run to score it again
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # in this process: leave pytest's threads alone
    run = sr_recipe.train_run("fp32", args.recipes["fp32"], 0, args, tmp_path)
    assert run["steps"] > 0 and set(run["gain_by_photo"]) == set(sr_recipe.VALIDATION)
    assert run["gain"] == pytest.approx(sum(run["gain_by_photo"].values()) / 2)
    model = genlab.load(str(next(tmp_path.iterdir())))
    for name, gain in run["gain_by_photo"].items():
        image = validation[name]
        hr = image[None, :, : image.shape[1] // 4 * 4, : image.shape[2] // 4 * 4].float() / 255
        low = to_uint8(downsample_bicubic(hr, 4).clamp(0, 1)).float() / 255
        with torch.no_grad():
            ours = psnr_y(to_uint8(model.upscale(low)).float() / 255, hr, border=4)[0]
        bicubic = psnr_y(to_uint8(upsample_bicubic(low, 4).clamp(0, 1)).float() / 255, hr, border=4)[0]
        assert gain == pytest.approx(float(ours - bicubic), abs=1e-3)


@pytest.mark.parametrize("config", ["[1, 2]", "{not json"])
def test_sr_recipe_refuses_a_config_that_is_not_a_json_object(config, capsys):
    from benchmarks import sr_recipe

    with pytest.raises(SystemExit):
        sr_recipe.parse_args(["--config", config])
    assert "--config: expected a JSON object of SRConfig fields" in capsys.readouterr().err
