"""Issue 14: commands given out-of-range numbers, unwritable outputs or huge counts fail with one clear line
(exit code 2) instead of a traceback or a strange result, and keep what was already saved."""
import argparse
import dataclasses
import errno
import os

import numpy as np
import pytest
import torch

from genlab.cli.main import build_parser, main
from genlab.cli.options import HelpFormatter
from genlab.cli.train import KINDS
from genlab.config import TrainConfig
from genlab.data import load_dataset
from genlab.errors import ConfigError
from genlab.reporting.pictures import MAX_PICTURE_IMAGES, sample_in_batches, write_samples


# ----- every numeric option has a range, checked by the parser -----
@pytest.mark.parametrize(("argv", "line"), [
    (["sample", "RUN", "-n", "-1"], "argument -n: expected an integer in 1..10000, got -1"),
    (["sample", "RUN", "-n", "0"], "argument -n: expected an integer in 1..10000, got 0"),
    (["sample", "RUN", "-n", "200000"], "argument -n: expected an integer in 1..10000, got 200000"),
    (["sample", "RUN", "-n", "ten"], "argument -n: expected an integer in 1..10000, got ten"),
    (["sample", "RUN", "--seed", str(2**64)], f"argument --seed: expected an integer in 0..4294967295, got {2**64}"),
    (["sample", "RUN", "--seed", "-1"], "argument --seed: expected an integer in 0..4294967295, got -1"),
    (["sample", "RUN", "--truncation", "-1"], "argument --truncation: expected a number in 0..100, got -1"),
    (["sample", "RUN", "--truncation", "nan"], "argument --truncation: expected a number in 0..100, got nan"),
    (["reconstruct", "RUN", "-n", "-3"], "argument -n: expected an integer in 1..1000, got -3"),
    (["reconstruct", "RUN", "-n", "0"], "argument -n: expected an integer in 1..1000, got 0"),
    (["reconstruct", "RUN", "-n", "100000"], "argument -n: expected an integer in 1..1000, got 100000"),
    (["interpolate", "RUN", "--steps", "100000"], "argument --steps: expected an integer in 2..200, got 100000"),
    (["interpolate", "RUN", "--steps", "1"], "argument --steps: expected an integer in 2..200, got 1"),
    (["interpolate", "RUN", "--from-index", "-1"], "argument --from-index: expected an integer in 0..2147483647, got -1"),
    (["interpolate", "RUN", "--projection-steps", "-1"], "argument --projection-steps: expected an integer in 0..10000, got -1"),
    (["train", "vae", "--out", "x", "--image-size", "100000"], "argument --image-size: expected an integer in 4..512, got 100000"),
    (["edit", "RUN", "-n", "0"], "argument -n/--num-images: expected an integer in 1..1000, got 0"),
    (["edit", "RUN", "--measure", "-1"], "argument --measure: expected an integer in 0..10000, got -1"),
    (["inpaint", "--data", "x", "-n", "0"], "argument -n: expected an integer in 1..1000, got 0"),
    (["inpaint", "--data", "x", "--blend", "-2"], "argument --blend: expected an integer in 0..1000, got -2"),
    (["upscale", "R", "--image", "a", "-o", "b", "--tile", "big"],
     "argument --tile: expected auto, off or an integer in 1..10000, got big"),
    (["upscale", "R", "--image", "a", "-o", "b", "--tile", "0"], "argument --tile: expected auto, off or an integer in 1..10000, got 0"),
    (["evaluate", "RUN", "--data", "x", "-n", "1"], "argument -n/--num-samples: expected an integer in 2..100000, got 1"),
    (["evaluate", "RUN", "--data", "x", "--batch-size", "0"], "argument --batch-size: expected an integer in 1..10000, got 0"),
    (["compare", "A", "--data", "x", "-o", "y", "-n", "1000000"],
     "argument -n/--num-samples: expected an integer in 2..100000, got 1000000"),
    (["judge", "train", "--data", "x", "-o", "y", "--lr", "0"], "argument --lr: expected a number > 0 and <= 1, got 0"),
    (["demo", "--epochs", "0"], "argument --epochs: expected an integer in 1..1000, got 0"),
])
def test_out_of_range_numbers_are_one_line_from_the_parser(argv, line, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("genlab ") and last.endswith(f"error: {line}"), last


def _actions(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, (*path, name))
        else:
            yield path, action


def test_every_numeric_option_has_a_range_stated_in_its_help():
    # Options made from config dataclasses are checked by the dataclasses themselves.
    configs = (*(config for config, _ in KINDS.values()), TrainConfig)  # every `genlab train` kind's config
    generated = {f.name for cls in configs for f in dataclasses.fields(cls)}
    checked = 0
    for path, action in _actions(build_parser()):
        if path[:1] == ("train",) and action.dest in generated:
            continue
        assert action.type not in (int, float), f"genlab {' '.join(path)} {'/'.join(action.option_strings)} has no range"
        allowed = getattr(action.type, "range_text", None)
        if allowed:
            checked += 1
            assert f"(range {allowed})" in HelpFormatter("genlab")._get_help_string(action), action.option_strings
    assert checked >= 30


# ----- many samples: in batches, and at most one picture's worth -----
class Stub:
    """A model that records its sample calls; seeded samples depend on the seed only."""

    kind, grid_columns = "stub", None

    def __init__(self, classes: int = 0) -> None:
        self.config = type("Config", (), {"num_classes": classes})()
        self.calls = []

    def sample(self, n, *, seed=None, labels=None, truncation=None):
        self.calls.append((n, seed, None if labels is None else torch.as_tensor(labels).tolist()))
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        return torch.rand(n, 1, 2, 2, generator=generator)


def test_many_samples_are_drawn_in_batches_and_reproducibly():
    stub = Stub()
    first = sample_in_batches(stub, 2500, seed=7)
    assert [n for n, _, _ in stub.calls] == [1000, 1000, 500] and stub.calls[0][1] == 7
    assert len({seed for _, seed, _ in stub.calls}) == 3  # a seed of its own per batch
    torch.testing.assert_close(sample_in_batches(Stub(), 2500, seed=7), first)  # the same seed, the same samples
    assert not torch.equal(sample_in_batches(Stub(), 2500, seed=8), first)
    few = Stub()
    torch.testing.assert_close(sample_in_batches(few, 64, seed=3), Stub().sample(64, seed=3))  # up to a batch: one plain call
    assert few.calls == [(64, 3, None)]
    conditional = Stub(classes=3)  # default classes continue 0, 1, 2, 0, ... across batches, as one call would draw them
    sample_in_batches(conditional, 2001, seed=0)
    assert [labels[:2] for _, _, labels in conditional.calls] == [[0, 1], [1, 2], [2]]


def test_a_picture_of_too_many_samples_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"samples: expected 1..10,000 images for one picture, got 10001"):
        write_samples(Stub(), tmp_path / "s.png", n=MAX_PICTURE_IMAGES + 1)
    with pytest.raises(ConfigError, match="got 0"):
        write_samples(Stub(), tmp_path / "s.png", n=0)
    assert not (tmp_path / "s.png").exists()


# ----- end to end on a tiny VAE -----
@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hardening")
    assert main(["train", "vae", "--data", "fashion-mnist-mini", "--dry-run", "--no-progress", "--out", str(root / "vae"),
                 "--latent-dim", "4", "--channels", "8,8", "--hidden-dim", "16"]) == 0
    five = root / "five.npz"  # a dataset of 5 images
    test = load_dataset("fashion-mnist-mini", split="test")
    np.savez(five, images=test.images[:5, 0].numpy(), labels=test.labels[:5].numpy(), classes=np.array(test.classes))
    return root / "vae", five


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(("failing", "code", "reason"), [
    ("replace", errno.ENOSPC, "no space left on the device"),
    ("replace", errno.EROFS, "read-only file system"),
    ("fsync", errno.EACCES, "permission denied"),
])
def test_an_unwritable_output_is_one_line_and_keeps_the_previous_file(vae_run, tmp_path, monkeypatch, capsys, failing, code, reason):
    out = tmp_path / "samples.png"
    assert main(["sample", str(vae_run[0]), "-n", "4", "-o", str(out)]) == 0
    before = out.read_bytes()
    capsys.readouterr()

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, failing, fail)
    assert main(["sample", str(vae_run[0]), "-n", "9", "--seed", "1", "-o", str(out)]) == 2
    assert _one_line(capsys) == f"genlab: error: cannot write {out}: {reason}"
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["samples.png"]


def test_outputs_where_a_file_or_folder_is_in_the_way_are_one_line(vae_run, tmp_path, capsys):
    (tmp_path / "file").write_bytes(b"x")
    assert main(["sample", str(vae_run[0]), "-n", "4", "-o", str(tmp_path / "file" / "s.png")]) == 2
    assert _one_line(capsys).endswith("s.png: a part of the path is a file, not a folder")
    (tmp_path / "folder.png").mkdir()
    assert main(["sample", str(vae_run[0]), "-n", "4", "-o", str(tmp_path / "folder.png")]) == 2
    assert _one_line(capsys).endswith("folder.png: it is a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.png"] and not any((tmp_path / "folder.png").iterdir())


def test_more_images_than_the_data_holds_is_one_line(vae_run, tmp_path, capsys):
    run, five = vae_run
    assert main(["reconstruct", str(run), "--data", str(five), "-n", "6", "-o", str(tmp_path / "r.png")]) == 2
    assert "-n 6: " in _one_line(capsys) and not (tmp_path / "r.png").exists()
    assert main(["reconstruct", str(run), "--data", str(five), "-o", str(tmp_path / "r.png")]) == 0  # default: 16, or all 5
    assert main(["inpaint", str(run), "--data", str(five), "-n", "7", "-o", str(tmp_path / "i.png")]) == 2
    assert "holds only 5 images; use -n 5 or fewer" in _one_line(capsys)


def test_evaluate_below_a_metrics_minimum_is_one_line(vae_run, capsys):
    assert main(["evaluate", str(vae_run[0]), "--data", "fashion-mnist-mini", "-n", "10", "--metrics", "prdc", "--no-progress"]) == 2
    err = _one_line(capsys)
    assert err.startswith("genlab: error: 'prdc' needs at least 100 samples and as many real images (")
    assert err.endswith("got 10 samples and 10 real images; raise -n / num_samples to 100 or more")
