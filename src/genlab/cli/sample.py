"""`genlab sample RUN`: a grid of samples from a trained run."""
from __future__ import annotations

import argparse

import genlab
from genlab.cli.options import add_labels_option, add_seed_option, bounded_float, bounded_int, labels_for
from genlab.reporting.pictures import MAX_PICTURE_IMAGES, write_samples

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
    sample.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    model = genlab.load(args.run)
    options = {}
    if args.labels is not None:
        options["labels"] = labels_for(args, model, args.n)
    if args.truncation is not None:
        options["truncation"] = args.truncation
    print(write_samples(model, args.output, n=args.n, seed=args.seed, **options))
    return 0
