"""The judge (the classifier metrics grade with) and the Classification Accuracy Score."""
import json

import pytest
import torch
from safetensors.torch import load_file

import genlab
from genlab.config import TrainConfig
from genlab.data.dataset import Dataset
from genlab.errors import CheckpointError, ConfigError, DataError
from genlab.evaluation.cas import classification_accuracy_score
from genlab.evaluation.judges import judge_accuracy, train_judge
from genlab.models.judge import WEIGHTS_DIR, Judge, JudgeConfig, load_judge, shift_and_flip

TINY = {"image_shape": (1, 16, 16), "num_classes": 4, "channels": (8, 16), "feature_dim": 32}


def make_shapes(n: int, seed: int) -> Dataset:
    """16×16 images of four mirror-symmetric shapes at random places, with noise: a horizontal bar,
    a vertical bar, a filled square and a hollow square (so flip augmentation keeps the labels)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 60, (n, 1, 16, 16), generator=generator, dtype=torch.uint8)
    labels = torch.arange(n) % 4
    for i, label in enumerate(labels.tolist()):
        top, left = torch.randint(1, 8, (2,), generator=generator).tolist()
        if label == 0:
            images[i, 0, top + 3, left:left + 8] = 255
        elif label == 1:
            images[i, 0, top:top + 8, left + 3] = 255
        elif label == 2:
            images[i, 0, top + 1:top + 6, left + 1:left + 6] = 255
        else:
            images[i, 0, top:top + 7, left:left + 7] = 255
            images[i, 0, top + 1:top + 6, left + 1:left + 6] = 0
    return Dataset(images, labels, ("hbar", "vbar", "square", "frame"), "shapes")


@pytest.fixture(scope="module")
def shipped():
    return load_judge()


@pytest.fixture(scope="module")
def mini_test():
    return genlab.load_dataset("fashion-mnist-mini", split="test")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny judge trained on the shapes, and its run directory."""
    run_dir = tmp_path_factory.mktemp("judge") / "run"
    judge = train_judge(make_shapes(256, seed=0), run_dir, epochs=4, batch_size=16, progress=False, seed=0,
                        config=JudgeConfig(**TINY), device="cpu")
    return judge, run_dir


# ----- the shipped Fashion-MNIST judge -----
def test_shipped_judge_classifies_fashion_mnist(shipped, mini_test):
    assert judge_accuracy(shipped, mini_test) >= 0.90


def test_shipped_judge_outputs_have_documented_shapes(shipped, mini_test):
    x = mini_test.float_images(slice(0, 37))
    assert shipped.logits(x).shape == (37, 10)
    assert shipped.features(x).shape == (37, shipped.feature_dim)
    assert shipped.predict(x).dtype == torch.int64
    assert shipped.features(x).min() >= 0  # after the ReLU


def test_shipped_judge_metadata_is_complete():
    info = json.loads((WEIGHTS_DIR / "judge_fashion_mnist.json").read_text())
    assert info["model"]["kind"] == "judge"
    assert info["test_accuracy"] >= 0.93
    assert "genlab judge train --data fashion-mnist" in info["command"]
    assert set(info["train_files_sha256"]) == {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"}
    assert all(len(digest) == 64 for digest in info["train_files_sha256"].values())
    weights = load_file(WEIGHTS_DIR / "judge_fashion_mnist.safetensors")
    assert set(weights) == set(Judge(JudgeConfig(**info["model"]["config"])).state_dict())


@pytest.mark.numerics
def test_logits_in_chunks_match_one_pass_and_keep_the_mode(shipped, mini_test):
    x = mini_test.float_images(slice(0, 50))
    shipped.train()
    try:
        chunked = shipped.logits(x, batch_size=7)
        assert shipped.training  # judging switched to eval mode only for the call
    finally:
        shipped.eval()
    with torch.no_grad():
        whole = shipped(x)
    torch.testing.assert_close(chunked, whole)  # float32 convolutions at another batch size: within a few ulp
    assert not chunked.requires_grad
    torch.testing.assert_close(shipped.logits(mini_test.images[:50]), whole)  # uint8 images are scaled to [0, 1]


@pytest.mark.parametrize(("shape", "message"), [
    ((2, 3, 32, 32), "the judge expects 1×28×28 images, got 3×32×32 (use --judge DIR trained on this data)"),
    ((2, 1, 32, 32), "the judge expects 1×28×28 images, got 1×32×32"),
    ((2, 3, 28, 28), "the judge expects 1×28×28 images, got 3×28×28"),
    ((28, 28), "the judge expects images N×1×28×28, got a tensor of shape (28, 28)"),
])
def test_wrong_image_shape_is_a_clear_config_error(shipped, shape, message):
    with pytest.raises(ConfigError) as error:
        shipped.features(torch.rand(shape))
    assert message in str(error.value)


def test_unknown_judge_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match=r"unknown judge 'nonexistent': expected 'fashion-mnist'"):
        load_judge("nonexistent")
    with pytest.raises(CheckpointError, match=r"config\.json: not found"):
        load_judge(tmp_path)  # a folder, but not a run


# ----- training -----
def test_a_tiny_judge_learns_a_separable_task(tiny_run):
    judge, _ = tiny_run
    assert judge_accuracy(judge, make_shapes(200, seed=1)) >= 0.9  # chance: 0.25


def test_training_is_deterministic_for_a_seed(tmp_path):
    data = make_shapes(64, seed=2)

    def weights(name, seed):
        train_judge(data, tmp_path / name, epochs=2, batch_size=16, seed=seed, progress=False,
                    config=JudgeConfig(**TINY), device="cpu")
        return load_file(tmp_path / name / "model.safetensors")

    first, second, other = weights("a", 0), weights("b", 0), weights("c", 1)
    assert all(torch.equal(first[name], second[name]) for name in first)  # exact: the same training, same process
    assert not all(torch.equal(first[name], other[name]) for name in first)


def test_load_judge_round_trips_a_run(tiny_run):
    judge, run_dir = tiny_run
    x = make_shapes(20, seed=3).float_images()
    for loaded in (load_judge(run_dir), load_judge(str(run_dir)), genlab.load(run_dir)):
        assert isinstance(loaded, Judge) and loaded.config == judge.config
        torch.testing.assert_close(loaded.logits(x), judge.logits(x))
    assert json.loads((run_dir / "judge.json").read_text())["dataset"]["num_images"] == 256


def test_load_judge_refuses_a_run_of_another_kind(tmp_path, blobs):
    vae = genlab.VAE(genlab.VAEConfig(image_shape=(1, 16, 16), latent_dim=2, channels=(4,), hidden_dim=8))
    genlab.train(vae, blobs, TrainConfig(epochs=1, max_steps=1, out_dir=str(tmp_path), progress=False,
                                         num_sample_images=0, tensorboard=False, device="cpu"))
    with pytest.raises(CheckpointError, match="holds a vae run, not a judge"):
        load_judge(tmp_path)


def test_judge_cannot_sample_and_says_so_before_training(tmp_path):
    judge = Judge(JudgeConfig(**TINY))
    with pytest.raises(ConfigError, match="num_sample_images=0"):
        genlab.train(judge, make_shapes(16, seed=0), TrainConfig(out_dir=str(tmp_path), progress=False))
    with pytest.raises(ConfigError, match="cannot sample"):
        judge.sample(4)


def test_training_needs_labels(tmp_path):
    unlabelled = Dataset(make_shapes(16, seed=0).images)
    with pytest.raises(DataError, match="has no labels"):
        train_judge(unlabelled, tmp_path, epochs=1, progress=False)


def test_shift_and_flip_moves_content_without_changing_it():
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 9, 9)
    x[:, 0, 4, 3] = 1.0  # one bright pixel left of centre
    y = shift_and_flip(x, max_shift=2, flip=True)
    assert y.shape == x.shape and torch.equal(y.sum(dim=(1, 2, 3)), torch.ones(64))  # never pushed out
    rows, cols = y[:, 0].flatten(1).argmax(1).div(9, rounding_mode="floor"), y[:, 0].flatten(1).argmax(1) % 9
    assert set(rows.tolist()) == {2, 3, 4, 5, 6}  # every vertical shift in [−2, 2] occurs
    assert set(cols.tolist()) == {1, 2, 3, 4, 5} | {3, 4, 5, 6, 7}  # shifted, and mirrored (column 5) then shifted
    assert torch.equal(shift_and_flip(x, max_shift=0, flip=False), x)


# ----- Classification Accuracy Score -----
@pytest.fixture(scope="module")
def cas_data():
    train = genlab.load_dataset("fashion-mnist-mini", split="train").subset(slice(0, 1000))
    test = genlab.load_dataset("fashion-mnist-mini", split="test")
    return train.float_images(), train.labels, test


# Small, and without dropout (stated, not left to the defaults), so 3 epochs on 1,000 images learn something.
CAS_CONFIG = JudgeConfig(channels=(8, 16), feature_dim=32, dropout=0.0, feature_dropout=0.0)


def test_cas_of_real_labelled_images_is_well_above_chance(cas_data):
    images, labels, test = cas_data
    score = classification_accuracy_score(images, labels, test, epochs=3, batch_size=32, config=CAS_CONFIG, device="cpu")
    assert score >= 0.6  # chance: 0.1


def test_cas_of_images_with_shuffled_labels_is_near_chance(cas_data):
    images, labels, test = cas_data
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    score = classification_accuracy_score(images, shuffled, test, epochs=3, batch_size=32, config=CAS_CONFIG, device="cpu")
    # Chance is 0.1, but a classifier that sorts clothes into clusters and names each cluster at
    # random can land a cluster on its true class by luck, so the spread around 0.1 is wide.
    assert score <= 0.3


def test_cas_checks_its_inputs(cas_data):
    images, labels, test = cas_data
    with pytest.raises(ConfigError, match="like the test set"):
        classification_accuracy_score(torch.rand(4, 3, 32, 32), labels[:4], test)
    with pytest.raises(ConfigError, match="labels must be int64"):
        classification_accuracy_score(images[:4], labels[:4].float(), test)
