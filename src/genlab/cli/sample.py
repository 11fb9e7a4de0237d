"""`genlab sample RUN`: a grid of samples from a trained run (diffusion runs: with the sampler, steps, guidance
and η given here, or their run's defaults)."""
from __future__ import annotations

import argparse

import torch

import genlab
from genlab.cli.options import add_labels_option, add_seed_option, bounded_float, bounded_int, labels_for
from genlab.errors import ConfigError
from genlab.io.grids import save_image
from genlab.reporting.pictures import MAX_PICTURE_IMAGES, write_samples

DIFFUSION_OPTIONS = ("sampler", "steps", "guidance", "eta")
TRUNCATIONS = (0.02, 100.0)  # below 0.02 redrawing |z| > τ takes thousands of rounds; above 100 nothing is truncated
MIX_ROWS, MIX_COLUMNS = 4, 6  # a style-mixing grid: row sources (coarse styles) × column sources (fine styles)


def add_parser(commands: argparse._SubParsersAction) -> None:
    sample = commands.add_parser("sample", help="write a grid of samples from a trained run")
    sample.add_argument("run", help="run directory")
    sample.add_argument("-n", type=bounded_int(1, MAX_PICTURE_IMAGES), default=64,
                        help="number of samples (drawn in batches of 1,000; one picture holds at most "
                             f"{MAX_PICTURE_IMAGES:,})")
    add_seed_option(sample, "the same seed gives the same samples")
    sample.add_argument("-o", "--output", default="samples.png", help="PNG grid to write")
    add_labels_option(sample, "repeated in order to fill -n (default: every class in turn)")
    sample.add_argument("--truncation", type=bounded_float(0.0, TRUNCATIONS[1]), default=None, metavar="TAU",
                        help=f"truncation trick: |z| <= TAU, {TRUNCATIONS[0]}..{TRUNCATIONS[1]:g} (GANs); for a style GAN ψ of "
                             "the truncation in W, w̄ + ψ(w − w̄), 0..1 typical (0: the mean image)")
    sample.add_argument("--mix", action="store_true",
                        help=f"style GANs: a style-mixing grid instead: {MIX_ROWS} row sources (seeds SEED..) give the coarse "
                             f"styles, {MIX_COLUMNS} column sources (the next seeds) the fine ones, the mixes between")
    sample.add_argument("--mix-layer", type=bounded_int(1, 64), default=None, metavar="L",
                        help="with --mix: the first layer whose style comes from the column (default: the first 16-pixel "
                             "layer, i.e. coarse = 4² and 8²)")
    diffusion = sample.add_argument_group("diffusion runs (default: the run's own settings)")
    diffusion.add_argument("--sampler", choices=("ddim", "ddpm"), default=None,
                           help="ddim (--steps steps) or ddpm (ancestral, all T steps)")
    diffusion.add_argument("--steps", type=bounded_int(1, 1000), default=None, metavar="N", help="DDIM denoising steps")
    diffusion.add_argument("--guidance", type=bounded_float(0.0, 100.0), default=None, metavar="W",
                           help="classifier-free guidance w (conditional runs; 0: the plain conditional model)")
    diffusion.add_argument("--eta", type=bounded_float(0.0, 1.0), default=None, metavar="ETA",
                           help="DDIM's η: 0 deterministic given the seed, 1 DDPM-like")
    sample.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    model = genlab.load(args.run)
    style = getattr(getattr(model, "config", None), "architecture", None) == "style"
    if args.truncation is not None and not style and args.truncation < TRUNCATIONS[0]:
        raise ConfigError(f"--truncation {args.truncation:g}: τ must be in {TRUNCATIONS[0]}..{TRUNCATIONS[1]:g} "
                          f"(only a style GAN's ψ may go down to 0)")
    if args.mix or args.mix_layer is not None:
        if not style:
            raise ConfigError(f"--mix needs a style GAN run (genlab train gan --arch style); {args.run} holds a "
                              f"{getattr(model.config, 'architecture', model.kind)} {model.kind} run")
        print(write_mixing_grid(model, args.output, args.seed, args.mix_layer, args.truncation))
        return 0
    options = {}
    if args.labels is not None:
        options["labels"] = labels_for(args, model, args.n)
    if args.truncation is not None:
        options["truncation"] = args.truncation
    given = {name: getattr(args, name) for name in DIFFUSION_OPTIONS if getattr(args, name) is not None}
    if model.kind == "diffusion":
        model.set_sampling(**given)
        model.progress = True  # a bar over the denoising steps
    elif given:
        raise ConfigError(f"{', '.join('--' + name for name in given)}: options of diffusion runs; {args.run} holds a "
                          f"{model.kind} run")
    print(write_samples(model, args.output, n=args.n, seed=args.seed, **options))
    return 0


def write_mixing_grid(model, path: str, seed: int | None, layer: int | None, truncation: float | None):
    """StyleGAN's Fig. 3 layout: a blank corner, the column sources along the top, the row sources down the left,
    and in cell (i, j) row i's coarse styles with column j's fine styles (``GAN.mix``)."""
    first = 0 if seed is None else seed
    rows, columns = list(range(first, first + MIX_ROWS)), list(range(first + MIX_ROWS, first + MIX_ROWS + MIX_COLUMNS))
    mixes = model.mix(rows, columns, layer, truncation=truncation).cpu()
    k = model.config.num_classes  # a conditional model's sources take classes 0, 1, ... in turn, as ``mix`` does

    def source(s: int, i: int) -> torch.Tensor:
        return model.sample(1, seed=s, truncation=truncation, **({"labels": [i % k]} if k else {})).cpu()

    grid = [torch.ones(1, *model.image_shape), *(source(s, j) for j, s in enumerate(columns))]
    for i, s in enumerate(rows):
        grid += [source(s, i), mixes[i]]
    return save_image(torch.cat(grid), path, nrow=MIX_COLUMNS + 1, scale=2)
