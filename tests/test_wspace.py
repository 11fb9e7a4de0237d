"""Category directions in a style GAN's W (genlab.tools.wspace): the direction is the difference of class means of
w, computed here independently; edits move w along it; the flip rate is what the judge says of the edited images."""
from __future__ import annotations

import pytest
import torch

from genlab.errors import ConfigError
from genlab.models.gan import GAN, GANConfig
from genlab.models.judge import load_judge
from genlab.tools.wspace import class_direction_in_w, measure_w_direction, synthesize, w_codes


def tiny_style(num_classes: int = 10, seed: int = 0) -> GAN:
    torch.manual_seed(seed)
    return GAN(GANConfig(image_shape=(1, 28, 28), architecture="style", num_classes=num_classes, latent_dim=10,
                         g_width=4, d_width=4)).eval()


def test_the_conditional_direction_is_the_difference_of_the_class_means_of_w():
    model = tiny_style()
    direction = class_direction_in_w(model, 7, 9, num_samples=300, seed=5)
    g = model.generator
    z7 = torch.randn(300, 10, generator=torch.Generator().manual_seed(5))
    z9 = torch.randn(300, 10, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        expected = g.mapping(z9, torch.full((300,), 9)).mean(0) - g.mapping(z7, torch.full((300,), 7)).mean(0)
    torch.testing.assert_close(direction.vector, expected, rtol=1e-5, atol=1e-6)
    assert (direction.source_class, direction.target_class) == (7, 9)


def test_synthesis_of_mapped_w_is_the_models_sample():
    model = tiny_style()
    labels = torch.tensor([3, 1, 4])
    w = w_codes(model, 3, labels, seed=11)
    torch.testing.assert_close(synthesize(model, w), model.sample(3, seed=11, labels=labels), rtol=1e-5, atol=1e-6)


def test_measuring_reports_the_judges_view_of_each_strength():
    model, judge = tiny_style(), load_judge()
    direction = class_direction_in_w(model, 7, 9, num_samples=200)
    rows = measure_w_direction(model, direction, [1.0, 2.0], judge=judge, num_images=40, seed=3)
    assert [r["strength"] for r in rows] == [0.0, 1.0, 2.0]
    assert rows[0]["feature_distance"] == 0.0
    # The flip rate at strength 1, recomputed from the edited images.
    w = w_codes(model, 40, torch.full((40,), 7), seed=3)
    edited = synthesize(model, w + direction.vector)
    assert rows[1]["flip_rate"] == pytest.approx(float((judge.predict(edited) == 9).float().mean()))
    assert rows[1]["feature_distance"] > 0


def test_an_unconditional_style_g_takes_its_classes_from_the_judge():
    model, judge = tiny_style(num_classes=0), load_judge()
    predicted = judge.predict(synthesize(model, w_codes(model, 400, seed=0)))
    a, b = predicted.bincount(minlength=10).topk(2).indices.tolist()  # two classes the judge does see
    direction = class_direction_in_w(model, a, b, num_samples=400, judge=judge)
    w = w_codes(model, 400, seed=0)
    expected = w[predicted == b].mean(0) - w[predicted == a].mean(0)
    torch.testing.assert_close(direction.vector, expected, rtol=1e-5, atol=1e-6)


def test_other_generators_are_refused():
    dcgan = GAN(GANConfig(image_shape=(1, 28, 28), latent_dim=10, g_width=4, d_width=4))
    with pytest.raises(ConfigError, match="W-space edits need a style GAN"):
        w_codes(dcgan, 2)
