"""Editing a style-based generator in W, the intermediate latent space of its mapping network.

StyleGAN's argument (Karras et al. 2019, §4): the mapping z → w need not follow a fixed prior, so W can
"unwarp" the factors of variation and is less entangled than Z; a class or attribute becomes closer to a
direction. A category direction here is the difference of class means of w (the mean-difference direction of
Radford et al. 2016 §6 and of ``genlab.tools.editing``, taken in W): for a class-conditional style G, the means
of ``mapping(z, y)`` over random z for the two classes; for an unconditional one, the means over samples a judge
puts in each class. It is measured as ``genlab.tools.editing.measure_direction`` measures directions in Z: the
judge's flip rate to the target class, and how far the edit moves the image in judge features.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from genlab.errors import ConfigError
from genlab.models.judge import resolve_judge
from genlab.nn.modes import eval_mode
from genlab.tools.editing import Direction, mean_code_difference


def _style(model: Any) -> Any:
    if getattr(model, "kind", None) != "gan" or getattr(model.config, "architecture", None) != "style":
        raise ConfigError(f"W-space edits need a style GAN (genlab train gan --arch style), got a "
                          f"{getattr(getattr(model, 'config', None), 'architecture', None) or getattr(model, 'kind', '?')} model")
    return model.generator


@torch.no_grad()
def w_codes(model: Any, n: int, labels: torch.Tensor | None = None, *, seed: int = 0) -> torch.Tensor:
    """``n`` w = mapping(z, y) for z ~ N(0, I) drawn from ``seed`` (N × w_dim); ``labels`` for a conditional G."""
    g = _style(model)
    z = torch.randn(n, model.config.latent_dim, generator=torch.Generator().manual_seed(seed)).to(model.device)
    with eval_mode(g):
        return g.mapping(z, model.resolve_labels(n, labels))


@torch.no_grad()
def synthesize(model: Any, w: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
    """Images in [0, 1] for w (N × w_dim), the same w at every layer, the fixed noise of eval mode."""
    g = _style(model)
    with eval_mode(g):
        return torch.cat([model.from_model_range(g.synthesis(chunk[:, None].expand(-1, g.num_ws, -1)))
                          for chunk in w.to(model.device).split(batch_size)])


def class_direction_in_w(model: Any, source: int, target: int, *, num_samples: int = 2000, seed: int = 0,
                         judge: Any = None) -> Direction:
    """The direction from class ``source`` to class ``target`` in W: mean w of the target − mean w of the source.
    A conditional G: w of random z under each label. An unconditional one: w of ``num_samples`` samples, grouped
    by the class ``judge`` predicts for their images (both classes must occur)."""
    k = model.config.num_classes
    if k:
        if not (0 <= source < k and 0 <= target < k):
            raise ConfigError(f"classes must be in 0..{k - 1}, got {source} and {target}")
        codes = [w_codes(model, num_samples, torch.full((num_samples,), c), seed=seed + i) for i, c in enumerate((source, target))]
        return Direction(mean_code_difference(*codes), f"{source}->{target} in W", source, target)
    w = w_codes(model, num_samples, seed=seed)
    judge = resolve_judge(judge, tuple(model.image_shape))
    predicted = judge.predict(synthesize(model, w))
    codes = [w[predicted == c] for c in (source, target)]
    for c, found in zip((source, target), codes, strict=True):
        if len(found) == 0:
            raise ConfigError(f"none of {num_samples} samples was judged class {c}: no mean to take; sample more")
    return Direction(mean_code_difference(*codes), f"{source}->{target} in W", source, target)


def measure_w_direction(model: Any, direction: Direction, strengths: Sequence[float], *, judge: Any = None,
                        num_images: int = 200, seed: int = 1) -> list[dict[str, float]]:
    """For each strength s: move the w of ``num_images`` source-class samples (fresh z, not those the direction
    was taken from) to w + s·d and report ``flip_rate`` (the judge puts the image in the target class),
    ``source_rate`` (it still sees the source class) and ``feature_distance`` (mean distance in judge features
    from the unedited image; 0 at s = 0)."""
    judge = resolve_judge(judge, tuple(model.image_shape))
    if model.config.num_classes:
        w = w_codes(model, num_images, torch.full((num_images,), direction.source_class), seed=seed)
    else:
        pool = w_codes(model, 20 * num_images, seed=seed)
        w = pool[judge.predict(synthesize(model, pool)) == direction.source_class][:num_images]
        if len(w) == 0:
            raise ConfigError(f"no sample was judged class {direction.source_class}: nothing to edit")
    strengths = [0.0, *(float(s) for s in strengths if float(s) != 0.0)]
    base = judge.features(synthesize(model, w))
    rows = []
    for strength in strengths:
        images = synthesize(model, w + strength * direction.vector.to(w))
        predicted = judge.predict(images)
        rows.append({"strength": strength, "flip_rate": float((predicted == direction.target_class).float().mean()),
                     "source_rate": float((predicted == direction.source_class).float().mean()),
                     "feature_distance": float((judge.features(images) - base).norm(dim=1).mean())})
    return rows
