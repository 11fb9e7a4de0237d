"""Latent editing: directions in code space, moving images along them, and measuring what a direction does.

A direction v is a vector in the model's code space; an edit of strength s maps a code z to z + s·v
and decodes it (White 2016, "Sampling Generative Networks", attribute vectors; Radford et al.
2016, DCGAN, vector arithmetic on face samples). Strength 0 is the identity on codes, so on images it gives
the model's reconstruction of the image.

Where directions come from:
- labels (:func:`label_direction`): mean code of class B minus mean code of class A, codes from the
  VAE's encoder or from GAN inversion (``genlab.tools.inversion.invert``); strength 1 moves the mean A
  code exactly onto the mean B code;
- two folders of examples (:func:`folder_direction`): the same with "A" and "B" given by example images;
- no labels at all, for any model with a decoder network (:func:`principal_directions`): GANSpace
  (Härkönen et al. 2020, "GANSpace: Discovering Interpretable GAN Controls", principal feature directions as for BigGAN,
  whose z enters G directly like ours): sample z_j ~ N(0, I), take the first layer's activations
  y_j = G_1(z_j), find their principal axes V (PCA), express each y_j in them, x_j = Vᵀ(y_j − ȳ),
  and regress back to latent space, U = argmin_U Σ_j ‖U x_j − z_j‖² (least squares); column k of U
  is the latent direction that moves the features along principal axis k. We then orthonormalise
  the columns in order (QR: column 0 keeps its direction, later ones lose their overlap with earlier
  ones), so components do not interfere and a strength counts prior standard deviations (a unit
  vector's coordinate of z ~ N(0, I) has σ = 1). Sign convention: the entry of largest magnitude is positive.

:func:`measure_direction` reports, for increasing strengths, how often the judge's predicted class
becomes the target class (the flip rate) and how far the edited images moved in judge features from
the strength-0 image (what is kept of the rest).
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genlab.data import load_dataset
from genlab.errors import ConfigError, DataError
from genlab.io.grids import concat_images, make_grid
from genlab.models.judge import resolve_judge
from genlab.tools.inversion import Progress, _Inference, _unwrap, check_images, decode, invert, latent_dim


@dataclass
class Direction:
    """A direction in code space and where it came from."""

    vector: torch.Tensor  # d
    name: str  # e.g. "Sneaker->Ankle boot", "pc0"
    source_class: int | None = None  # the class it leads away from (label directions)
    target_class: int | None = None  # the class it leads to (label directions), for measuring flips


# ------------------------------------------------------------------------------------ classes


def num_classes(model: Any) -> int:
    """How many classes a class-conditional model (or a GAN-encoder run's GAN) is conditioned on; 0 for the rest."""
    inner, _ = _unwrap(model, None)
    return int(getattr(getattr(inner, "config", None), "num_classes", 0) or 0)


def repeat_to(labels: Sequence[int] | torch.Tensor, n: int) -> torch.Tensor:
    """``labels`` repeated in order until there are ``n`` (e.g. 0,1,2 for 7 images: 0,1,2,0,1,2,0)."""
    labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
    if labels.numel() == 0:
        raise ConfigError("labels must hold at least one class")
    return labels.repeat(-(-n // labels.numel()))[:n]


def _class_key(name: str) -> str:
    """How class names are compared: case, hyphens, underscores and repeated spaces do not count ('ankle-boot' is 'Ankle boot')."""
    return " ".join(name.replace("-", " ").replace("_", " ").casefold().split())


def class_index(name_or_index: str | int, classes: Sequence[str], what: str = "class") -> int:
    """A class given by name (see :func:`_class_key`) or index, as an index; unknown ones are a ConfigError naming the choices."""
    if isinstance(name_or_index, int) or (isinstance(name_or_index, str) and name_or_index.strip().isdigit()):
        index = int(name_or_index)
        if not 0 <= index < len(classes):
            raise ConfigError(f"{what} {index} is out of range: the data has {len(classes)} classes ({', '.join(classes)})")
        return index
    wanted = _class_key(str(name_or_index))
    for index, name in enumerate(classes):
        if _class_key(name) == wanted:
            return index
    raise ConfigError(f"unknown {what} {str(name_or_index).strip()!r}; the data's classes are: {', '.join(classes) or '(none)'}")


def parse_direction(text: str, classes: Sequence[str]) -> tuple[str, int, int] | tuple[str, int]:
    """``"A->B"`` → ("labels", index of A, index of B); ``"pcK"`` → ("pc", K). Anything else is a ConfigError."""
    text = text.strip()
    if text.lower().startswith("pc") and text[2:].isdigit():
        return ("pc", int(text[2:]))
    if "->" in text:
        source, target = (part.strip() for part in text.split("->", 1))
        if not source or not target:
            raise ConfigError(f"--direction {text!r}: expected 'CLASS->CLASS', e.g. 'Sneaker->Ankle boot'")
        a, b = class_index(source, classes), class_index(target, classes)
        if a == b:
            raise ConfigError(f"--direction {text!r}: the two classes are the same")
        return ("labels", a, b)
    raise ConfigError(f"--direction {text!r}: expected 'CLASS->CLASS' (e.g. 'Sneaker->Ankle boot') or 'pcK' (e.g. pc0)")


# --------------------------------------------------------------------------------- directions


def mean_code_difference(codes_a: torch.Tensor, codes_b: torch.Tensor) -> torch.Tensor:
    """mean(codes_b) − mean(codes_a): the attribute vector from A to B (White 2016)."""
    if codes_a.shape[0] == 0 or codes_b.shape[0] == 0:
        raise DataError("a direction needs at least one example on each side")
    return codes_b.mean(0) - codes_a.mean(0)


def label_direction(model: Any, dataset: Any, source: str | int, target: str | int, *, max_per_class: int = 500,
                    encoder: Any = None, steps: int | None = None, progress: Progress = True, **invert_options: Any) -> Direction:
    """The direction from class ``source`` to class ``target`` of a labelled ``dataset`` (names or indices):
    mean code of (at most ``max_per_class``, the first) target images − mean code of source images.
    Codes by ``genlab.tools.inversion.invert`` (``encoder``, ``steps`` and ``invert_options`` go there)."""
    if dataset.labels is None:
        raise DataError(f"dataset {dataset.name!r} has no labels; label directions need a labelled dataset")
    a, b = class_index(source, dataset.classes), class_index(target, dataset.classes)
    codes = []
    for index in (a, b):
        members = (dataset.labels == index).nonzero().flatten()[:max_per_class]
        if members.numel() == 0:
            raise DataError(f"dataset {dataset.name!r} has no images of class {dataset.classes[index]!r}")
        images = dataset.float_images(members)
        if num_classes(model):  # a class-conditional GAN projects each image under its own class
            invert_options["labels"] = dataset.labels[members]
        codes.append(invert(model, images, encoder=encoder, steps=steps, progress=progress, **invert_options))
    name = f"{dataset.classes[a]}->{dataset.classes[b]}"
    return Direction(mean_code_difference(*codes), name, a, b)


def read_folder(model: Any, folder: str | os.PathLike) -> torch.Tensor:
    """Every image in ``folder`` (and its sub-folders) as float N×C×H×W of the model's shape, or a DataError."""
    path = Path(folder)
    if not path.is_dir():
        raise DataError(f"{path}: folder not found")
    dataset = load_dataset(str(path))
    shape = tuple(_unwrap(model, None)[0].image_shape)
    if tuple(dataset.image_shape) != shape:
        raise DataError(f"{path}: images are {'×'.join(map(str, dataset.image_shape))}, the model makes "
                        f"{'×'.join(map(str, shape))} (channels×height×width)")
    return dataset.float_images()


def folder_direction(model: Any, from_dir: str | os.PathLike, to_dir: str | os.PathLike, **invert_options: Any) -> Direction:
    """The direction from the images in ``from_dir`` to those in ``to_dir``: difference of their mean codes
    (see :func:`examples_direction`, which ``invert_options`` go to)."""
    return examples_direction(model, read_folder(model, from_dir), read_folder(model, to_dir),
                              f"{Path(from_dir).name}->{Path(to_dir).name}", **invert_options)


def examples_direction(model: Any, start: torch.Tensor, goal: torch.Tensor, name: str, *, encoder: Any = None,
                       steps: int | None = None, progress: Progress = True, **invert_options: Any) -> Direction:
    """The direction from example images ``start`` to ``goal`` (N×C×H×W each): difference of their mean codes.
    For a class-conditional GAN, ``labels`` in ``invert_options`` (the examples' classes) are repeated over each set."""
    labels = invert_options.pop("labels", None)
    codes = []
    for images in (start, goal):
        if labels is not None:
            invert_options["labels"] = repeat_to(labels, images.shape[0])
        codes.append(invert(model, images, encoder=encoder, steps=steps, progress=progress, **invert_options))
    return Direction(mean_code_difference(*codes), name)


def first_layer_features(model: Any, z: torch.Tensor) -> torch.Tensor:
    """G_1(z), flattened: the activations after the generator's first block (a GAN's first transposed conv +
    batch norm + ReLU; a VAE decoder's first fully connected layers), the layer GANSpace takes PCA in."""
    model, _ = _unwrap(model, None)
    if getattr(model, "kind", None) == "gan":
        return model.generator.first_block(z, model.resolve_labels(z.shape[0], None)).flatten(1)
    if hasattr(model, "from_latent"):
        return model.from_latent[:2](z).flatten(1)  # Linear → ReLU
    raise ConfigError(f"principal directions need a GAN or VAE; got a {getattr(model, 'kind', type(model).__name__)} model")


@torch.no_grad()
def principal_directions(model: Any, num_components: int = 10, *, num_samples: int = 5000, seed: int = 0
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """GANSpace directions (see the module docstring): ``num_components`` × d orthonormal rows, in order of
    explained variance of the first-layer features, and that variance fraction of each principal axis."""
    d = latent_dim(model)
    if not 1 <= num_components <= d:
        raise ConfigError(f"num_components must be in 1..{d} (the latent size), got {num_components}")
    if num_samples < 2 * num_components:
        raise ConfigError(f"num_samples must be at least {2 * num_components} for {num_components} components")
    inner, _ = _unwrap(model, None)
    z = torch.randn(num_samples, d, generator=torch.Generator().manual_seed(seed)).to(inner.device)
    with _Inference(inner):
        features = first_layer_features(inner, z)
    centred = features - features.mean(0)
    # PCA by randomized SVD of the centred features (Halko et al. 2011; the full SVD of 5000 × 12544 DCGAN
    # features took 6 minutes on one CPU thread, this a few seconds): columns of v are the principal axes V,
    # s² their variances (times n − 1).
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)  # svd_lowrank draws a random test matrix: keep the result a function of the seed
    try:
        _, s, v = torch.svd_lowrank(centred, q=min(num_components + 10, *centred.shape), niter=6)
    finally:
        torch.random.set_rng_state(generator_state)
    coefficients = (centred @ v[:, :num_components]).double()  # x_j = Vᵀ(y_j − ȳ), num_samples × k
    # Regress z on the coefficients: U (k × d) minimising Σ_j ‖x_j U − z_j‖² (GANSpace's transfer of feature PCA to z).
    u = torch.linalg.lstsq(coefficients, z.double()).solution
    q, _ = torch.linalg.qr(u.T)  # d × k, orthonormal columns, column 0 ∥ u_0, ...
    signs = torch.sign(q[q.abs().argmax(0), torch.arange(num_components)])  # largest entry positive
    directions = (q * signs).T.float()
    explained = (s[:num_components].double() ** 2 / centred.double().square().sum()).float()
    return directions, explained


def principal_direction(model: Any, component: int, *, num_samples: int = 5000, seed: int = 0) -> Direction:
    """GANSpace component ``component`` (0 = most variance) as a Direction."""
    d = latent_dim(model)
    if not 0 <= component < d:
        raise ConfigError(f"pc{component}: components run from pc0 to pc{d - 1} (the latent size is {d})")
    directions, _ = principal_directions(model, component + 1, num_samples=num_samples, seed=seed)
    return Direction(directions[component], f"pc{component}")


# -------------------------------------------------------------------------------------- edits


def parse_strengths(text: str) -> list[float]:
    """``"0,0.5,1"`` → [0.0, 0.5, 1.0]; anything else is a ConfigError."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--strength {text!r}: expected comma-separated numbers like 0,0.5,1,1.5") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"--strength {text!r}: expected finite comma-separated numbers like 0,0.5,1,1.5")
    return values


def edit_codes(z: torch.Tensor, direction: Direction | torch.Tensor, strengths: Sequence[float]) -> torch.Tensor:
    """z + s·v for each strength s: S×N×d. Strength 0 returns z exactly."""
    v = direction.vector if isinstance(direction, Direction) else direction
    v = v.to(z.device, z.dtype).reshape(-1)
    if z.dim() != 2 or v.shape[0] != z.shape[1]:
        raise ConfigError(f"a direction of size {v.shape[0]} does not fit codes of shape {tuple(z.shape)}")
    s = torch.as_tensor(list(strengths), dtype=z.dtype, device=z.device)
    if s.dim() != 1 or s.numel() == 0:
        raise ConfigError("strengths must be a non-empty list of numbers")
    return z.unsqueeze(0) + s.view(-1, 1, 1) * v


def codes_of(model: Any, images_or_codes: torch.Tensor, **invert_options: Any) -> torch.Tensor:
    """Codes as they are (N×d), or the codes of images (N×C×H×W) by ``genlab.tools.inversion.invert``."""
    if images_or_codes.dim() == 2:
        if images_or_codes.shape[1] != latent_dim(model):
            raise ConfigError(f"codes must be N×{latent_dim(model)}, got {tuple(images_or_codes.shape)}")
        return images_or_codes.to(_unwrap(model, None)[0].device).float()
    return invert(model, check_images(model, images_or_codes), **invert_options)


@torch.no_grad()
def edit(model: Any, images_or_codes: torch.Tensor, direction: Direction | torch.Tensor, strengths: Sequence[float],
         **invert_options: Any) -> torch.Tensor:
    """The images (S×N×C×H×W in [0, 1]) of ``images_or_codes`` moved along ``direction`` by each strength.

    Images are inverted first (``invert_options`` go to ``genlab.tools.inversion.invert``); strength 0 then
    gives their reconstruction. Codes are used as they are. A class-conditional GAN needs ``labels`` (one class
    per image) in ``invert_options``; every edit of an image keeps its class.
    """
    with torch.enable_grad():  # inversion may optimise
        z = codes_of(model, images_or_codes, **invert_options)
    codes = edit_codes(z, direction, strengths)
    labels = invert_options.get("labels")
    if labels is not None:
        labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1).repeat(codes.shape[0])  # the same classes per strength
    inner, _ = _unwrap(model, None)
    with _Inference(inner):
        images = decode(inner, codes.flatten(0, 1), labels)
    return images.view(codes.shape[0], codes.shape[1], *images.shape[1:])


def labelled_columns(columns: Sequence[torch.Tensor], labels: Sequence[str], gap: int = 2, scale: int = 3) -> torch.Tensor:
    """One picture: each N×C×H×W batch a column, its label above it, the images of all columns level.
    Images are enlarged ``scale``× (nearest neighbour) first, so labels are drawn sharp at the font's own size
    (save the result with scale=1)."""
    columns = [c.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1) for c in columns]
    grids = [make_grid(column, nrow=1, padding=2 * scale) for column in columns]
    return concat_images(grids, gap=gap * scale, labels=list(labels))  # one strip height: the images line up


def edit_grid(edited: torch.Tensor, strengths: Sequence[float]) -> torch.Tensor:
    """One picture: a column per strength (labelled with it), a row per image."""
    return labelled_columns(list(edited), [f"{s:g}" for s in strengths])


# ------------------------------------------------------------------------------------ measuring


@torch.no_grad()
def measure_direction(model: Any, images_or_codes: torch.Tensor, direction: Direction | torch.Tensor,
                      strengths: Sequence[float], *, target_class: int | None = None, judge: Any = None,
                      **invert_options: Any) -> list[dict[str, float]]:
    """For each strength: ``flip_rate``, the fraction of images the judge puts in ``target_class`` (default: the
    direction's target; for unlabelled directions, the fraction whose predicted class differs from the
    strength-0 image's), and ``feature_distance``, the mean Euclidean distance in judge features between
    each edited image and its strength-0 image (how much of the rest moved; 0 at strength 0), also as
    ``feature_distance_kept`` over the images that did not flip (NaN if all flipped).
    """
    if isinstance(direction, Direction) and target_class is None:
        target_class = direction.target_class
    strengths = list(strengths)
    if 0.0 not in strengths:
        strengths = [0.0, *strengths]
    edited = edit(model, images_or_codes, direction, strengths, **invert_options)
    judge = resolve_judge(judge, tuple(edited.shape[2:]))
    flat = edited.flatten(0, 1)
    features = judge.features(flat).view(edited.shape[0], edited.shape[1], -1)
    predicted = judge.predict(flat).view(edited.shape[0], edited.shape[1])
    base = strengths.index(0.0)
    rows = []
    for i, strength in enumerate(strengths):
        flipped = predicted[i] == target_class if target_class is not None else predicted[i] != predicted[base]
        distance = (features[i] - features[base]).norm(dim=1)
        kept = distance[~flipped]
        rows.append({"strength": float(strength), "flip_rate": float(flipped.float().mean()),
                     "feature_distance": float(distance.mean()),
                     "feature_distance_kept": float(kept.mean()) if kept.numel() else float("nan")})
    return rows


def format_measurements(rows: list[dict[str, float]], direction_name: str = "") -> str:
    """The measurements as a small Markdown table."""
    lines = [f"direction {direction_name}".rstrip(), "",
             "| strength | flip rate | judge-feature distance to strength 0 | … of the images not flipped |",
             "|---:|---:|---:|---:|"]
    lines += [f"| {r['strength']:g} | {r['flip_rate']:.2f} | {r['feature_distance']:.3f} | {r['feature_distance_kept']:.3f} |"
              for r in rows]
    return "\n".join(lines)


__all__ = [
    "Direction", "class_index", "edit", "edit_codes", "edit_grid", "examples_direction", "folder_direction", "format_measurements",
    "label_direction", "labelled_columns", "mean_code_difference", "measure_direction", "num_classes", "parse_direction", "parse_strengths",
    "principal_direction", "principal_directions", "repeat_to",
]
