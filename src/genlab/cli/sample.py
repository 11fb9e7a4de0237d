"""`genlab sample RUN`: a grid of samples from a trained run (diffusion runs: with the sampler, steps, guidance
and η given here, or their run's defaults)."""
from __future__ import annotations

import argparse

import genlab
from genlab.cli.options import add_labels_option, add_seed_option, bounded_float, bounded_int, labels_for
from genlab.errors import ConfigError
from genlab.reporting.pictures import MAX_PICTURE_IMAGES, write_samples

DIFFUSION_OPTIONS = ("sampler", "steps", "guidance", "eta")
TRUNCATIONS = (0.02, 100.0)  # below 0.02 redrawing |z| > τ takes thousands of rounds; above 100 nothing is truncated


def add_parser(commands: argparse._SubParsersAction) -> None:
    sample = commands.add_parser("sample", help="write a grid of samples from a trained run")
    sample.add_argument("run", help="run directory")
    sample.add_argument("-n", type=bounded_int(1, MAX_PICTURE_IMAGES), default=64,
                        help="number of samples (drawn in batches of 1,000; one picture holds at most "
                             f"{MAX_PICTURE_IMAGES:,})")
    add_seed_option(sample, "the same seed gives the same samples")
    sample.add_argument("-o", "--output", default="samples.png", help="PNG grid to write")
    add_labels_option(sample, "repeated in order to fill -n (default: every class in turn)")
    sample.add_argument("--truncation", type=bounded_float(*TRUNCATIONS), default=None, metavar="TAU",
                        help="truncation trick: |z| <= TAU (GANs)")
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
