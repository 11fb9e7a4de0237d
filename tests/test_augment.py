"""Data augmentation by synthesis: the exact k-per-class sampler, the real + synthetic mixing dataset, and
`genlab augment` (its output loads with load_dataset; unconditional runs, shipped judges and bad options are refused)."""
from __future__ import annotations

import contextlib
import pickle

import numpy as np
import pytest
import torch
from conftest import make_blobs

import genlab
from genlab.cli.main import main
from genlab.data import MixedDataset, k_per_class, load_dataset, split_per_class
from genlab.data.subsets import per_class_indices
from genlab.errors import ConfigError, DataError
from genlab.evaluation.judges import train_judge
from genlab.models.judge import JudgeConfig
from genlab.tools.augment import class_folder_names, synthesize, write_synthetic

TINY_VAE = ["--latent-dim", "4", "--channels", "8,16", "--hidden-dim", "32", "--batch-size", "32", "--no-progress"]


# ----- exactly k per class -----
def test_k_per_class_is_exact_and_seed_determined():
    data = make_blobs(200, seed=1)
    few, rest = split_per_class(data, 7, seed=3)
    assert torch.equal(torch.bincount(few.labels, minlength=4), torch.full((4,), 7))
    assert len(few) + len(rest) == len(data)
    chosen = per_class_indices(data.labels, 7, seed=3)
    assert torch.equal(few.images, data.images[chosen]) and torch.equal(few.labels, data.labels[chosen])
    others = torch.ones(len(data), dtype=torch.bool)
    others[chosen] = False
    assert torch.equal(rest.images, data.images[others])  # the rest is exactly what was not chosen
    assert torch.equal(k_per_class(data, 7, seed=3).images, few.images)  # the same seed, the same images
    assert not torch.equal(per_class_indices(data.labels, 7, seed=4), chosen)
    assert set(per_class_indices(data.labels, 3, seed=3).tolist()) <= set(chosen.tolist())  # nested in k


def test_k_larger_than_a_class_names_the_class_and_its_count():
    data = make_blobs(200, seed=1)
    smallest = int(torch.bincount(data.labels).argmin())
    count = int(torch.bincount(data.labels).min())
    with pytest.raises(DataError, match=rf"class {smallest} \('{data.classes[smallest]}'\) of dataset 'blobs16' holds only "
                                        rf"{count}; use k <= {count}"):
        k_per_class(data, count + 1, seed=0)
    with pytest.raises(DataError, match="has no labels"):
        k_per_class(genlab.Dataset(data.images), 1, seed=0)
    with pytest.raises(DataError, match="k must be an integer >= 1"):
        k_per_class(data, 0, seed=0)


# ----- mixing real and synthetic -----
class LabelPainter:
    """A conditional 'model' whose images say their class and seed: every pixel (label + 1) / 10 plus seeded noise."""

    kind, image_shape = "painter", (1, 16, 16)

    def __init__(self, classes: int = 4) -> None:
        self.config = type("Config", (), {"num_classes": classes})()

    def sample(self, n, *, seed=None, labels=None, truncation=None):
        labels = torch.as_tensor(labels)
        noise = torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed)) * 0.04
        return (labels.float() + 1).div(10).view(-1, 1, 1, 1) + noise


def painted_label(image: torch.Tensor) -> int:
    return round(float(image.min()) * 10 - 1)  # blobs are 0 or 1 everywhere: only painted images are in between


@pytest.mark.parametrize("ratio", [0.5, 1.0, 4.0])
def test_the_mix_has_the_ratio_asked_for_and_synthetic_labels_match_their_conditioning(ratio):
    real = make_blobs(40)
    mixed = MixedDataset(real, LabelPainter(), ratio=ratio, seed=0)
    assert (mixed.num_real, mixed.num_synthetic, len(mixed)) == (40, round(40 * ratio), 40 + round(40 * ratio))
    seen = {"real": 0, "synthetic": 0}
    for images, labels in torch.utils.data.DataLoader(mixed, batch_size=16, shuffle=True):
        assert images.dtype == torch.float32 and labels.dtype == torch.int64 and images.shape[1:] == (1, 16, 16)
        assert float(images.min()) >= 0 and float(images.max()) <= 1
        for image, label in zip(images, labels, strict=True):
            painted = 0 < float(image.min()) < 1
            seen["synthetic" if painted else "real"] += 1
            if painted:
                assert painted_label(image) == int(label)
    assert seen == {"real": 40, "synthetic": round(40 * ratio)}
    assert torch.equal(torch.bincount(mixed.synthetic_labels, minlength=4), torch.full((4,), round(40 * ratio) // 4))


def test_synthetic_labels_can_follow_the_real_class_balance():
    real = make_blobs(40)
    mixed = MixedDataset(real, LabelPainter(), ratio=2, labels="real")
    assert torch.equal(torch.bincount(mixed.synthetic_labels, minlength=4), 2 * torch.bincount(real.labels, minlength=4))


def test_fresh_synthetic_images_each_epoch_or_one_fixed_set():
    real = make_blobs(20)
    fresh = MixedDataset(real, LabelPainter(), ratio=1, fresh=True, seed=5)
    first = fresh.synthetic_images.clone()
    fresh.set_epoch(0)
    assert torch.equal(fresh.synthetic_images, first)
    fresh.set_epoch(1)
    assert not torch.equal(fresh.synthetic_images, first)
    again = MixedDataset(real, LabelPainter(), ratio=1, fresh=True, seed=5)
    again.set_epoch(1)
    assert torch.equal(again.synthetic_images, fresh.synthetic_images)  # (seed, epoch) decides
    fixed = MixedDataset(real, LabelPainter(), ratio=1, fresh=False, seed=5)
    fixed.set_epoch(3)
    assert torch.equal(fixed.synthetic_images, first)


def test_dataloader_workers_get_the_drawn_images_without_the_model():
    mixed = MixedDataset(make_blobs(20), LabelPainter(), ratio=1, fresh=True, seed=1)
    mixed.set_epoch(2)
    loaded = torch.cat([labels for _, labels in torch.utils.data.DataLoader(mixed, batch_size=8, num_workers=1)])
    assert torch.equal(loaded, torch.cat([mixed.real.labels, mixed.synthetic_labels]))
    copy = pickle.loads(pickle.dumps(mixed))
    assert copy.model is None and torch.equal(copy.synthetic_images, mixed.synthetic_images)
    with pytest.raises(ConfigError, match="holds no model"):
        copy.set_epoch(3)


def test_a_pool_is_mixed_as_it_is_and_must_be_large_enough():
    real = make_blobs(20)
    pool = genlab.Dataset((torch.arange(60) + 1).view(60, 1, 1, 1).expand(60, 1, 16, 16).to(torch.uint8).contiguous(),
                          torch.arange(60) % 4, real.classes, "pool")
    mixed = MixedDataset(real, pool, ratio=2, seed=0)
    values = mixed.synthetic_images[:, 0, 0, 0].long() - 1  # which pool items were taken
    assert len(set(values.tolist())) == 40 and torch.equal(mixed.synthetic_labels, values % 4)
    image, label = mixed[len(mixed) - 1]
    assert int(label) == (round(float(image[0, 0, 0]) * 255) - 1) % 4
    with pytest.raises(DataError, match="holds 60 images; ratio 4 of 20 real images needs 80"):
        MixedDataset(real, pool, ratio=4)
    with pytest.raises(DataError, match="expected the same shape"):
        MixedDataset(real, make_blobs(60, size=8), ratio=1)


def test_an_unconditional_model_or_a_bad_ratio_is_refused():
    real = make_blobs(20)
    vae = genlab.VAE(genlab.VAEConfig(image_shape=(1, 16, 16), latent_dim=4, channels=(4, 8), hidden_dim=16))
    with pytest.raises(ConfigError, match="vae model is unconditional"):
        MixedDataset(real, vae)
    with pytest.raises(ConfigError, match="ratio"):
        MixedDataset(real, LabelPainter(), ratio=-1)


def test_a_conditional_vae_feeds_a_plain_pytorch_loop():
    real = make_blobs(32)
    cvae = genlab.VAE(genlab.VAEConfig(image_shape=(1, 16, 16), latent_dim=4, channels=(4, 8), hidden_dim=16, num_classes=4))
    mixed = MixedDataset(real, cvae.eval(), ratio=0.5, fresh=True)
    classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 4))
    optimizer = torch.optim.SGD(classifier.parameters(), lr=0.1)
    for epoch in range(2):
        mixed.set_epoch(epoch)
        for images, labels in torch.utils.data.DataLoader(mixed, batch_size=16, shuffle=True):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(classifier(images), labels).backward()
            optimizer.step()
    assert len(mixed) == 48


# ----- genlab augment -----
@pytest.fixture(scope="module")
def blobs_npz(tmp_path_factory):
    data = make_blobs(128)
    path = tmp_path_factory.mktemp("data") / "blobs.npz"
    np.savez(path, images=data.images[:, 0].numpy(), labels=data.labels.numpy(), classes=np.array(data.classes))
    return path


@pytest.fixture(scope="module")
def cvae_run(tmp_path_factory, blobs_npz):
    run = tmp_path_factory.mktemp("runs") / "cvae"
    assert main(["train", "vae", "--conditional", "--data", str(blobs_npz), "--epochs", "1", "--out", str(run), *TINY_VAE]) == 0
    return run


def test_train_vae_conditional_writes_a_conditional_run(cvae_run):
    model = genlab.load(cvae_run)
    assert model.config.num_classes == 4 and model.grid_columns == 4


def test_train_vae_conditional_needs_labels(tmp_path, capsys):
    path = tmp_path / "unlabelled.npz"
    np.savez(path, images=make_blobs(64).images[:, 0].numpy())
    assert main(["train", "vae", "--conditional", "--data", str(path), "--out", str(tmp_path / "run"), *TINY_VAE]) == 2
    assert "--conditional needs a labelled dataset" in capsys.readouterr().err


def test_augment_writes_an_npz_that_loads_like_real_data(cvae_run, tmp_path, capsys):
    out = tmp_path / "synth.npz"
    assert main(["augment", str(cvae_run), "--n-per-class", "6", "--seed", "3", "-o", str(out)]) == 0
    assert f"wrote 24 images (6 per class × 4 classes) to {out}" in capsys.readouterr().out
    synth = load_dataset(out)
    assert synth.classes == ("tl", "tr", "bl", "br") and synth.image_shape == (1, 16, 16)
    assert torch.equal(synth.labels, torch.arange(4).repeat_interleave(6))
    expected, _ = synthesize(genlab.load(cvae_run), 6, seed=3, classes=synth.classes)
    assert torch.equal(synth.images, expected.images)  # the same seed, the same images
    again = tmp_path / "again.npz"
    assert main(["augment", str(cvae_run), "--n-per-class", "6", "--seed", "4", "-o", str(again)]) == 0
    assert not torch.equal(load_dataset(again).images, synth.images)


def test_augment_writes_a_folder_that_loads_with_the_same_images_and_classes(cvae_run, tmp_path):
    npz, folder = tmp_path / "synth.npz", tmp_path / "synth"
    for out in (npz, folder):
        assert main(["augment", str(cvae_run), "--n-per-class", "3", "-o", str(out)]) == 0
    from_npz, from_folder = load_dataset(npz), load_dataset(folder)
    assert from_folder.classes == ("0_tl", "1_tr", "2_bl", "3_br")
    assert torch.equal(from_folder.labels, from_npz.labels) and torch.equal(from_folder.images, from_npz.images)
    assert main(["augment", str(cvae_run), "--n-per-class", "3", "-o", str(folder)]) == 2  # never mixed into an old folder


def test_augment_takes_chosen_classes_by_name_or_index(cvae_run, tmp_path):
    out = tmp_path / "two.npz"
    assert main(["augment", str(cvae_run), "--n-per-class", "2", "--labels", "br,1", "--truncation", "0.5", "-o", str(out)]) == 0
    synth = load_dataset(out)
    assert synth.labels.tolist() == [3, 3, 1, 1] and synth.classes == ("tl", "tr", "bl", "br")


def test_class_folders_sort_in_class_order_and_are_safe_names():
    names = class_folder_names([f"c{i}" for i in range(9)] + ["T-shirt/top", "Ankle boot"])
    assert names[:2] == ["00_c0", "01_c1"] and names[9:] == ["09_T-shirt-top", "10_Ankle-boot"]
    assert sorted(names) == names


def test_augment_refuses_an_unconditional_run(blobs_npz, tmp_path, capsys):
    run = tmp_path / "vae"
    assert main(["train", "vae", "--data", str(blobs_npz), "--epochs", "1", "--out", str(run), *TINY_VAE]) == 0
    capsys.readouterr()
    assert main(["augment", str(run), "--n-per-class", "2", "-o", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "holds an unconditional vae (num_classes=0)" in err and "--conditional" in err
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--filter-confidence", "0.5"], "filtering needs both"),
    (["--filter-confidence", "0.5", "--filter-judge", "fashion-mnist"], "the judge shipped with genlab"),
    (["--labels", "nine"], "unknown --labels class 'nine'"),
    (["--filter-confidence", "0"], "expected a number > 0 and <= 1"),
])
def test_bad_augment_options_are_one_line(cvae_run, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) if "expected a number" in message else contextlib.nullcontext():  # the parser exits
        assert main(["augment", str(cvae_run), "--n-per-class", "2", "-o", str(tmp_path / "x.npz"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err


@pytest.fixture(scope="module")
def blobs_judge(tmp_path_factory):
    """A judge trained only on the labelled blobs (as the filter must be): tiny, one epoch."""
    out = tmp_path_factory.mktemp("judge") / "judge"
    config = JudgeConfig(image_shape=(1, 16, 16), num_classes=4, channels=(4, 8), feature_dim=8)
    train_judge(make_blobs(128), out, epochs=1, batch_size=32, config=config, progress=False, device="cpu")
    return out


def test_the_confidence_filter_keeps_only_images_the_judge_believes(cvae_run, blobs_judge, tmp_path, capsys):
    model, judge = genlab.load(cvae_run), genlab.load_judge(blobs_judge)
    unfiltered, _ = synthesize(model, 40, seed=0)
    scores = torch.softmax(judge.logits(unfiltered.float_images()), 1)[torch.arange(160), unfiltered.labels]
    threshold = min(float(scores[unfiltered.labels == label].median()) for label in range(4))  # some draws of each class fail
    kept, counts = synthesize(model, 10, seed=0, filter_judge=blobs_judge, filter_confidence=threshold)
    assert torch.equal(kept.labels, torch.arange(4).repeat_interleave(10))
    confidence = torch.softmax(judge.logits(kept.float_images()), 1)[torch.arange(40), kept.labels]
    assert bool((confidence >= threshold).all())
    assert counts["drawn"] > counts["kept"] == 40
    out = tmp_path / "filtered.npz"
    assert main(["augment", str(cvae_run), "--n-per-class", "10", "--filter-confidence", f"{threshold:.6f}",
                 "--filter-judge", str(blobs_judge), "-o", str(out)]) == 0
    assert "kept 40 of" in capsys.readouterr().out and len(load_dataset(out)) == 40


def test_a_confidence_no_image_reaches_is_an_error_naming_the_class(cvae_run, blobs_judge):
    with pytest.raises(ConfigError, match=r"only 0 of 40 images drawn of class 0 \('tl'\) reached confidence 1"):
        synthesize(genlab.load(cvae_run), 2, seed=0, classes=("tl", "tr", "bl", "br"), filter_judge=blobs_judge,
                   filter_confidence=1.0)


def test_a_filter_judge_of_other_classes_is_refused(cvae_run, tmp_path):
    other = genlab.Dataset(make_blobs(64).images, make_blobs(64).labels, ("a", "b", "c", "d"), "other")
    config = JudgeConfig(image_shape=(1, 16, 16), num_classes=4, channels=(4, 8), feature_dim=8)
    train_judge(other, tmp_path / "judge", epochs=1, batch_size=32, config=config, progress=False, device="cpu")
    with pytest.raises(ConfigError, match="trained on the classes a, b, c, d, the model draws tl, tr, bl, br"):
        synthesize(genlab.load(cvae_run), 2, classes=("tl", "tr", "bl", "br"), filter_judge=tmp_path / "judge",
                   filter_confidence=0.5)


def test_write_synthetic_refuses_an_output_of_another_kind(tmp_path):
    data = make_blobs(8)
    with pytest.raises(ConfigError, match=r"expected a \.npz file or a folder"):
        write_synthetic(data, tmp_path / "x.png")
