"""The explorer behind ``genlab serve``: trained runs, and what a page may ask of them.

Each operation takes a request's JSON body (a dict) and returns the JSON answer, pictures as data URLs; it
calls the same tools as the command line (``genlab.tools``: latent paths, editing, inpainting, upscaling,
translation; ``genlab.reporting.compare``), so the page shows what ``genlab sample``/``interpolate``/``edit``/
``inpaint``/``upscale``/``translate``/``compare`` would write. Forward-only calls run in
``torch.inference_mode()``; the ones that optimise codes (GAN projection, inpainting by optimisation) cannot
(their optimiser needs autograd) and leave gradients to the tools, which freeze the weights. The HTTP side (limits, queue, time limit)
is ``genlab.web.server``.
"""
from __future__ import annotations

import contextlib
import hashlib
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from genlab.data import load_dataset
from genlab.errors import GenlabError
from genlab.io.checkpoints import read_run_config
from genlab.models.base import truncated_normal
from genlab.reporting.comparison import compare
from genlab.runs import load
from genlab.tools.editing import Direction, edit, label_direction, principal_direction
from genlab.tools.inpainting import comparison_picture, inpaint, show_holes
from genlab.tools.inversion import decode, invert, latent_dim
from genlab.tools.latent import interpolation_path, morph
from genlab.tools.upscale import upscale_image
from genlab.tools.wspace import class_direction_in_w, synthesize, w_codes
from genlab.web.catalog import (
    LATENT,
    SAMPLERS,
    Run,
    code_classes,
    describe,
    direction_list,
    num_classes,
    run_ids,
)
from genlab.web.uploads import (
    Limits,
    RequestError,
    choice,
    gif_url,
    integer,
    number,
    png_url,
    read_upload,
    upload_name,
    view_scale,
)

MAX_SEED = 2**31 - 1
MIN_COMPARE_SAMPLES = 200  # FID's covariance of the judge's 128 features needs more samples than features
MAX_STRENGTH = 4.0
# Optimiser steps where the page projects onto a GAN or fills holes by optimisation: a page answers in seconds,
# the command line's defaults (more steps, restarts) take tens of seconds a picture on a CPU.
PAGE_STEPS = {"projection": 100, "gan": 100, "vae-optimize": 100}
DIFFUSION_STEPS = 20  # DDIM steps for a diffusion run's samples on the page (a CPU draws a 16-grid in seconds)


class Explorer:
    """The runs given to ``genlab serve`` and the page's operations on them (see the module docstring)."""

    def __init__(self, runs: Sequence[str | Path], limits: Limits | None = None, *, load_data: bool = True,
                 device: str = "cpu") -> None:
        if not runs:
            raise RequestError("give at least one run directory")
        self.limits = limits or Limits()
        self.runs: dict[str, Run] = {}
        paths = [Path(run) for run in runs]
        for run_id, path in zip(run_ids(paths), paths, strict=True):
            model = load(path, device=device)
            saved = read_run_config(path).get("dataset", {}) or {}
            classes = [str(c) for c in saved.get("classes") or []]
            if num_classes(model) and len(classes) != num_classes(model):
                classes = [str(i) for i in range(num_classes(model))]
            entry = Run(run_id, path, model, saved.get("name"), classes)
            if load_data and entry.dataset and model.kind in LATENT:
                with contextlib.suppress(GenlabError, TypeError, OSError):  # no data here: no picking, no class directions
                    test = load_dataset(entry.dataset, split="test")
                    if tuple(test.image_shape) == tuple(model.image_shape) and not test.is_points:
                        entry.test = test
                        entry.classes = entry.classes or list(test.classes or [])
            if model.kind == "diffusion":
                model.set_sampling(steps=DIFFUSION_STEPS)
            self.runs[run_id] = entry
        self._lock = threading.Lock()  # guards the caches (directions, codes) between worker threads

    # ---------------------------------------------------------------------------------------- describing

    def describe(self) -> dict[str, Any]:
        """What ``GET /api/runs`` answers: each run with the tabs and choices that apply to it."""
        return {"runs": [describe(run) for run in self.runs.values()],
                "compare": any(run.kind in SAMPLERS and run.dataset is not None for run in self.runs.values()),
                "limits": self.limits.public()}

    # ---------------------------------------------------------------------------------------- operations

    def run(self, body: dict[str, Any], kinds: Sequence[str] = ()) -> Run:
        run = self.runs.get(body.get("run"))
        if run is None:
            raise RequestError(f"run: no run {body.get('run')!r} here; this server has {', '.join(self.runs)}", 404)
        if kinds and run.kind not in kinds:
            raise RequestError(f"run {run.id!r} is a {run.kind} run; this needs a {' or '.join(kinds)} run")
        return run

    def sample(self, body: dict[str, Any]) -> dict[str, Any]:
        run = self.run(body, SAMPLERS)
        seed = integer(body, "seed", 0, MAX_SEED, 0)
        n = integer(body, "n", 1, self.limits.max_samples, 16)
        options: dict[str, Any] = {}
        chosen = run.conditional_label(body)
        if chosen is not None:
            options["labels"] = [chosen] * n
        described = describe(run)["truncation"]
        if described is not None:
            tau = number(body, "truncation", described["min"] if described["name"] == "τ" else 0.0, 100.0, optional=True)
            if tau is not None:
                options["truncation"] = tau
        with torch.inference_mode():
            images = run.model.sample(n, seed=seed, **options)
        height = images.shape[-2]
        return {"image": png_url(images, nrow=_columns(n), scale=view_scale(height)), "seed": seed, "n": n}

    def pick(self, body: dict[str, Any]) -> dict[str, Any]:
        """An image to start from: a test image of the run's data (``index``) or a sample (``seed``)."""
        run = self.run(body, LATENT)
        if body.get("index") not in (None, ""):
            if run.test is None:
                raise RequestError(f"index: run {run.id!r} has no test data here to pick from; give a seed or upload")
            index = integer(body, "index", 0, len(run.test) - 1)
            image = run.test.float_images([index])
            given = int(run.test.labels[index]) if run.test.labels is not None else None
            caption = f"test image {index}" + (f" ({run.test.classes[given]})" if given is not None and run.test.classes else "")
            return {"image": png_url(image, padding=0), "label": given if code_classes(run.model) else None, "caption": caption}
        seed = integer(body, "seed", 0, MAX_SEED, 0)
        chosen = run.code_label(body)
        with torch.inference_mode():
            image = run.model.sample(1, seed=seed, **({"labels": [chosen]} if chosen is not None else {}))
        return {"image": png_url(image, padding=0), "label": chosen if chosen is not None else (0 if code_classes(run.model) else None),
                "caption": f"sample, seed {seed}"}

    def morph(self, body: dict[str, Any]) -> dict[str, Any]:
        run = self.run(body, LATENT)
        method = choice(body, "method", ("slerp", "lerp"), "slerp")
        steps = integer(body, "frames", 2, self.limits.max_frames, 17)
        labels = body.get("labels")
        if labels is not None:
            if not isinstance(labels, list) or len(labels) != 2:
                raise RequestError("labels: expected two classes, one per end")
            labels = [run.code_label({"label": value}) for value in labels]
            labels = None if None in labels else labels
        if labels is None and code_classes(run.model):
            labels = [0, 0]
        if body.get("images") is not None:
            images = body["images"]
            if not isinstance(images, list) or len(images) != 2:
                raise RequestError("images: expected two uploaded images")
            first, second = (self.upload(run, body, "image", i, images[i]) for i in range(2))
            frames = morph(run.model, first, second, steps, method, labels=labels,
                           projection_steps=_projection_steps(run))
        else:
            seeds = body.get("seeds", [0, 1])
            if not isinstance(seeds, list) or len(seeds) != 2:
                raise RequestError("seeds: expected two seeds")
            a, b = (integer({"seed": s}, "seed", 0, MAX_SEED) for s in seeds)
            with torch.inference_mode():
                z = torch.cat([self._seed_code(run, a), self._seed_code(run, b)])
                path = interpolation_path(z[0], z[1], steps, method=method)
                frame_labels = None if labels is None else torch.where(torch.arange(steps) < steps / 2, labels[0], labels[1])
                frames = decode(run.model, path, frame_labels)
        scale = view_scale(frames.shape[-2]) * 2
        return {"frames": [png_url(frame, padding=0, scale=scale) for frame in frames], "gif": gif_url(frames, scale=scale),
                "strip": png_url(frames, nrow=len(frames), scale=view_scale(frames.shape[-2]))}

    def edit(self, body: dict[str, Any]) -> dict[str, Any]:
        run = self.run(body, LATENT)
        ids = [d["id"] for d in direction_list(run)]
        key = choice(body, "direction", ids, ids[0] if ids else None)
        direction = self._direction(run, key)
        strength = number(body, "strength", -MAX_STRENGTH, MAX_STRENGTH, 1.5)
        label = next(d["label"] for d in direction_list(run) if d["id"] == key)
        if key.startswith("w:"):
            if body.get("image") not in (None, ""):
                raise RequestError("W directions edit generated images (a seed): an upload would need projecting into W")
            w = w_codes(run.model, 1, torch.tensor([direction.source_class]), seed=integer(body, "seed", 0, MAX_SEED, 0))
            both = synthesize(run.model, torch.cat([w, w + strength * direction.vector]))
            scale = view_scale(both.shape[-2]) * 2
            return {"original": png_url(both[0], scale=scale), "edited": png_url(both[1], scale=scale), "direction": label}
        chosen = run.code_label(body)
        if chosen is None and code_classes(run.model):
            chosen = 0
        options = {} if chosen is None else {"labels": [chosen]}
        if body.get("image") not in (None, ""):
            z = self._upload_code(run, body, options)
        else:
            z = self._seed_code(run, integer(body, "seed", 0, MAX_SEED, 0))
        with torch.no_grad():
            both = edit(run.model, z, direction, [0.0, strength], **options)[:, 0]
        scale = view_scale(both.shape[-2]) * 2
        return {"original": png_url(both[0], scale=scale), "edited": png_url(both[1], scale=scale), "direction": label}

    def inpaint(self, body: dict[str, Any]) -> dict[str, Any]:
        run = self.run(body, LATENT)
        methods = describe(run)["inpaint_methods"]
        method = choice(body, "method", methods, methods[0])
        image = self.upload(run, body, "image")[None]
        height, width = image.shape[-2:]
        mask_image = read_upload(body.get("mask"), "the mask", self.limits)
        if tuple(mask_image.shape[1:]) != (height, width):
            raise RequestError(f"the mask is {mask_image.shape[1]}×{mask_image.shape[2]} but the image is {height}×{width} "
                               "(height×width); paint it on the image's own grid")
        hole = mask_image.float().mean(0, keepdim=True)[None] >= 128  # white (or any bright paint) = hole
        if not hole.any():
            raise RequestError("the mask is empty: paint over the part to fill (white = hole)")
        mask = (~hole).float()  # genlab's convention: 1 = known pixel, 0 = hole
        chosen = run.code_label(body)
        labels = None if not code_classes(run.model) else torch.tensor([0 if chosen is None else chosen])
        steps = PAGE_STEPS.get(method)
        with torch.enable_grad():  # the optimising methods need autograd; the rest ignore it
            completed = inpaint(run.model, image, mask, method, steps=steps, labels=labels, progress=False,
                                **({"restarts": 1} if method == "gan" else {}))
        scale = view_scale(height) * 2
        return {"masked": png_url(show_holes(image, mask)[0], scale=scale), "completed": png_url(completed[0], scale=scale),
                "comparison": png_url(comparison_picture(image, mask, completed, nrow=1), scale=view_scale(height)),
                "method": method, "hidden": round(1.0 - float(mask.mean()), 4)}

    def upscale(self, body: dict[str, Any]) -> dict[str, Any]:
        run = self.run(body, ("sr",))
        model = run.model
        alpha = number(body, "alpha", 0.0, 1.0, optional=True)
        if alpha is not None:
            model = model.interpolated(alpha)
        name = upload_name(body)
        image = read_upload(body.get("image"), name, self.limits, channels=int(model.config.image_shape[0]))
        height, width = image.shape[1:]
        if height * width > self.limits.max_upscale_pixels:
            raise RequestError(f"{name}: is {width}×{height} = {height * width:,} pixels; the upscale tab takes at most "
                               f"{self.limits.max_upscale_pixels:,} (use `genlab upscale` for large images)", 413)
        with torch.inference_mode():
            output = upscale_image(model, image.float() / 255.0)
        enlarged = image.float().div(255).repeat_interleave(model.scale, 1).repeat_interleave(model.scale, 2)
        return {"input": png_url(enlarged), "output": png_url(output), "size_in": [height, width],
                "size_out": list(output.shape[1:])}

    def translate(self, body: dict[str, Any]) -> dict[str, Any]:
        run = self.run(body, ("pix2pix", "cyclegan"))
        model = run.model
        direction = choice(body, "direction", describe(run)["translate_directions"], "a2b")
        size = tuple(model.config.image_shape[1:])
        image = read_upload(body.get("image"), upload_name(body), self.limits, channels=model.input_channels(direction),
                            size=size).float()[None] / 255.0
        with torch.inference_mode():
            output = model.translate(image, direction)
        scale = view_scale(size[0]) * 2
        return {"input": png_url(image[0], scale=scale), "output": png_url(output[0], scale=scale)}

    def compare(self, body: dict[str, Any], log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
        ids = body.get("runs") or [run.id for run in self.runs.values() if run.kind in SAMPLERS]
        if not isinstance(ids, list):
            raise RequestError("runs: expected a list of run ids")
        runs = [self.run({"run": i}, SAMPLERS) for i in ids]
        n = integer(body, "num_samples", MIN_COMPARE_SAMPLES, self.limits.max_compare_samples, 500)
        names = {run.dataset for run in runs}
        if len(names) != 1 or None in names:
            raise RequestError(f"runs: compare needs runs of one dataset; these record {sorted(map(str, names))}")
        dataset = load_dataset(names.pop(), split="test")
        with tempfile.TemporaryDirectory(prefix="genlab-compare-") as out, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = compare([str(run.path) for run in runs], dataset, out, num_samples=n, progress=False, log=log)
        notes = list(dict.fromkeys(str(w.message) for w in caught))  # e.g. FID's small-N bias: the page shows them
        return {"columns": ["property", "measure", *(run.id for run in runs)],
                "rows": [[row["property"], row["measure"], *row["values"]] for row in results["table"]],
                "verdict": results["verdict"] + "".join(f"\n\nNote: {note}" for note in notes), "notes": notes}

    # ---------------------------------------------------------------------------------------- helpers

    def upload(self, run: Run, body: dict[str, Any], field: str, index: int | None = None, data: Any = None) -> torch.Tensor:
        """An uploaded image for ``run`` as float C×H×W in [0, 1]: the model's channels; its size exactly (a
        model's size is part of what it learnt: a wrong size is refused, naming both sizes)."""
        name = upload_name(body, field, index)
        channels, height, width = (int(s) for s in run.model.image_shape)
        image = read_upload(body.get(field) if data is None else data, name, self.limits, channels=channels)
        if tuple(image.shape[1:]) != (height, width):
            raise RequestError(f"{name}: is {image.shape[2]}×{image.shape[1]} (width×height) but run {run.id!r} takes "
                               f"{width}×{height} images; resize it first")
        return image.float() / 255.0

    def _seed_code(self, run: Run, seed: int) -> torch.Tensor:
        """The code ``sample(1, seed=seed)`` decodes (the same draw), so that a seed means one image everywhere."""
        return truncated_normal((1, latent_dim(run.model)), None, run.model.noise_generator(seed)).to(run.model.device)

    def _upload_code(self, run: Run, body: dict[str, Any], options: dict[str, Any]) -> torch.Tensor:
        image = self.upload(run, body, "image")
        # A digest, not hash(): two uploads whose 64-bit hashes collide would share one projected code.
        key = (hashlib.sha256(image.numpy().tobytes()).hexdigest(), tuple(options.get("labels") or ()))
        with self._lock:
            if key in run.codes:
                return run.codes[key]
        with torch.enable_grad():
            z = invert(run.model, image[None], steps=_projection_steps(run), progress=False, **options)
        with self._lock:
            run.codes[key] = z
            while len(run.codes) > 16:
                run.codes.popitem(last=False)
        return z

    def _direction(self, run: Run, key: str) -> Direction:
        with self._lock:
            if key in run.directions:
                return run.directions[key]
        if key.startswith("pc"):
            found = principal_direction(run.model, int(key[2:]), num_samples=2000)
        elif key.startswith("w:"):
            source, target = (int(k) for k in key[2:].split("->"))
            found = class_direction_in_w(run.model, source, target, num_samples=1000)
        else:
            source, target = (int(k) for k in key.split("->"))
            train = load_dataset(run.dataset, split="train")
            found = label_direction(run.model, train, source, target, max_per_class=500, progress=False)
        with self._lock:
            run.directions[key] = found
        return found


def _projection_steps(run: Run) -> int | None:
    """A GAN's images are found by the projector (the page's step count); a VAE's by its encoder (None: no steps)."""
    return PAGE_STEPS["projection"] if run.kind == "gan" else None


def _columns(n: int) -> int:
    return max(1, min(8, round(n ** 0.5 + 0.49)))


def timed(operation: Callable[[dict[str, Any]], dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    answer = operation(body)
    answer["seconds"] = round(time.perf_counter() - started, 3)
    return answer
