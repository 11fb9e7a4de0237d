"""What each run served by ``genlab serve`` is, and what the page may do with it: the tabs of its kind, its
classes, directions, inpainting methods and truncation, with a sentence of help per tab (``GET /api/runs``)."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.data import Dataset
from genlab.tools.editing import Direction
from genlab.tools.inversion import latent_dim
from genlab.web.uploads import label

SAMPLERS = ("vae", "gan", "diffusion")  # kinds with a sample() and a place in `genlab compare`
LATENT = ("vae", "gan")  # kinds with a code to walk, edit and fill holes through
PRINCIPAL_COMPONENTS = 5  # GANSpace directions offered per run
HELP = {
    "sample": "Draw new images from the model. The same seed always gives the same images; a new seed, new ones.",
    "morph": "Walk the latent space in a straight line (lerp) or along the sphere (slerp) from one image's code to "
             "another's, and slide t to watch one image turn into the other.",
    "edit": "Move an image's code along a direction - from one class towards another, a principal component of "
            "the generator (GANSpace), or a category direction in a style GAN's W - and drag the strength to see "
            "what the direction changes.",
    "inpaint": "Paint over part of an image (or pick a preset mask) and let the model fill the hole with what fits "
               "the rest; a border mask extends the image outwards (outpainting).",
    "upscale": "Upload a small image: the super-resolution model enlarges it (the input, enlarged by pixel "
               "repetition, is shown beside it for comparison).",
    "translate": "Upload an image of one domain and see the model's translation into the other.",
    "compare": "Measure the runs side by side on their test data (sample quality, diversity, likelihood where there "
               "is one): the numbers behind 'VAE vs GAN'. Takes a minute or more on a CPU.",
}
TABS = {"vae": ["sample", "morph", "edit", "inpaint"], "gan": ["sample", "morph", "edit", "inpaint"],
        "diffusion": ["sample"], "sr": ["upscale"], "pix2pix": ["translate"], "cyclegan": ["translate"]}


@dataclass
class Run:
    """One served run: the model, what the page may do with it, and what is worth keeping between requests."""

    id: str
    path: Path
    model: Any
    dataset: str | None  # the run's dataset name, when its config records one
    classes: list[str]
    test: Dataset | None = None  # the run's test split, when it loads here (picking images, class names)
    directions: dict[str, Direction] = field(default_factory=dict)
    codes: OrderedDict = field(default_factory=OrderedDict)  # upload hash → code, a few (GAN projection is slow)

    @property
    def kind(self) -> str:
        return self.model.kind

    def conditional_label(self, body: dict[str, Any], name: str = "label") -> int | None:
        return label(body, self.classes if num_classes(self.model) else [], name)

    def code_label(self, body: dict[str, Any], name: str = "label") -> int | None:
        """The class for a code path (morph, edit, inpaint): a conditional GAN's, else None (ignored)."""
        return label(body, self.classes, name) if code_classes(self.model) else None


def num_classes(model: Any) -> int:
    return int(getattr(getattr(model, "config", None), "num_classes", 0) or 0)


def code_classes(model: Any) -> int:
    """Classes a model's code paths take (a conditional GAN's G(z, y)); a conditional VAE samples by class, but
    the latent tools walk its codes without one."""
    return num_classes(model) if model.kind == "gan" else 0


def run_ids(paths: Sequence[Path]) -> list[str]:
    ids: list[str] = []
    for path in paths:
        base = path.name or "run"
        name, k = base, 2
        while name in ids:
            name, k = f"{base}-{k}", k + 1
        ids.append(name)
    return ids


def describe(run: Run) -> dict[str, Any]:
    model, kind = run.model, run.kind
    shape = [int(s) for s in model.image_shape] if hasattr(model, "image_shape") else list(model.config.image_shape)
    tabs = TABS.get(kind, [])
    architecture = getattr(model.config, "architecture", None)
    truncation = None
    if kind == "gan" and architecture == "style":
        truncation = {"name": "ψ", "help": "truncation in W: 0 the average image, 1 none", "min": 0.0, "max": 1.0,
                      "step": 0.05, "default": 0.7}
    elif kind in LATENT:
        truncation = {"name": "τ", "help": "truncation: redraw code entries beyond ±τ (smaller: safer, less varied)",
                      "min": 0.02, "max": 3.0, "step": 0.05, "default": 1.0}
    methods = {"vae": ["vae-optimize", "vae-iterative", "nearest", "mean"], "gan": ["gan", "nearest", "mean"]}
    parts = [kind.upper() if kind in ("vae", "gan", "sr") else kind, architecture if kind == "gan" else None,
             run.dataset, "×".join(map(str, shape)),
             f"latent {model.config.latent_dim}" if kind in LATENT else None,
             f"×{model.scale} {model.config.variant}" if kind == "sr" else None,
             f"{len(run.classes)} classes" if num_classes(model) else None]
    return {"id": run.id, "path": str(run.path), "kind": kind, "title": f"{run.id}: " + " · ".join(p for p in parts if p),
            "image_shape": shape, "classes": run.classes if num_classes(model) else [], "tabs": tabs,
            "truncation": truncation, "morph_images": kind in LATENT, "directions": direction_list(run),
            "inpaint_methods": methods.get(kind, []), "pick_from_data": run.test is not None,
            "comparable": kind in SAMPLERS and run.dataset is not None,
            "translate_directions": ["a2b", "b2a"] if kind == "cyclegan" else ["a2b"] if kind == "pix2pix" else [],
            "scale": getattr(model, "scale", None) if kind == "sr" else None,
            "alpha": kind == "sr" and model.config.variant == "esrgan" and bool(int(getattr(model, "psnr_reference", 0))),
            "help": {tab: HELP[tab] for tab in [*tabs, "compare"]}}

def direction_list(run: Run) -> list[dict[str, str]]:
    if run.kind not in LATENT:
        return []
    d = latent_dim(run.model)
    found = [{"id": f"pc{k}", "label": f"GANSpace component {k}"} for k in range(min(PRINCIPAL_COMPONENTS, d))]
    # Class directions need the data's codes: a VAE encodes 1,000 images in a blink; a GAN would project them
    # (minutes), so a GAN gets its principal components only.
    if run.kind == "vae" and run.test is not None and run.test.labels is not None and run.classes:
        found += [{"id": f"{a}->{b}", "label": f"{run.classes[a]} → {run.classes[b]}"}
                  for a in range(len(run.classes)) for b in range(len(run.classes)) if a != b]
    # A conditional style G: category directions in W (class means of mapping(z, y); genlab.tools.wspace).
    if is_style(run.model) and code_classes(run.model):
        found += [{"id": f"w:{a}->{b}", "label": f"{run.classes[a]} → {run.classes[b]} (in W)"}
                  for a in range(len(run.classes)) for b in range(len(run.classes)) if a != b]
    return found


def is_style(model: Any) -> bool:
    return model.kind == "gan" and getattr(model.config, "architecture", None) == "style"
