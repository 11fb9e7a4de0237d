"""`genlab augment RUN --n-per-class N --out synth.npz|folder/`: a labelled synthetic dataset from a conditional run."""
from __future__ import annotations

import argparse

from genlab.cli.options import add_labels_option, add_seed_option, bounded_float, bounded_int, labels_for
from genlab.cli.sample import TRUNCATIONS
from genlab.tools.augment import FILTER_JUDGE_HELP, augment, load_conditional

MAX_PER_CLASS = 1_000_000


def add_parser(commands: argparse._SubParsersAction) -> None:
    description = ("Write N synthetic images of each class of a class-conditional run (GAN or VAE trained with "
                   "--conditional) as a labelled dataset that every genlab command loads like a real one: a .npz file "
                   "(labels keep the run's class indices and names) or a folder with one sub-folder per class.")
    parser = commands.add_parser("augment", help="write a labelled synthetic dataset from a conditional run",
                                 description=description)
    parser.add_argument("run", help="run directory of a class-conditional GAN or VAE")
    parser.add_argument("--n-per-class", type=bounded_int(1, MAX_PER_CLASS), required=True, metavar="N",
                        help="images of each class")
    parser.add_argument("-o", "--out", required=True, metavar="PATH",
                        help="synth.npz, or a new folder (one sub-folder per class, named NN_class)")
    add_labels_option(parser, "only these classes (default: every class)")
    parser.add_argument("--truncation", type=bounded_float(*TRUNCATIONS), default=None, metavar="TAU",
                        help="truncation trick: draw z with |z| <= TAU (fewer odd images, less variety)")
    add_seed_option(parser, "the same seed gives the same dataset")
    parser.add_argument("--filter-confidence", type=bounded_float(0.0, 1.0, low_open=True), default=None, metavar="C",
                        help="keep only images the --filter-judge gives their class with probability >= C, drawing more "
                             "until each class has N")
    parser.add_argument("--filter-judge", default=None, metavar="DIR", help=FILTER_JUDGE_HELP)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    model, classes = load_conditional(args.run)  # before --labels, so an unconditional run hears why
    labels = labels_for(args, model, None)
    written = augment(model, args.out, args.n_per_class, labels=labels, truncation=args.truncation, seed=args.seed,
                      filter_judge=args.filter_judge, filter_confidence=args.filter_confidence, classes=classes)
    count = len(written["classes"])
    line = (f"wrote {written['images']:,} images ({written['n_per_class']:,} per class × {count} "
            f"{'class' if count == 1 else 'classes'}) to {written['path']}")
    if written["filter_confidence"] is not None:
        line += (f"; kept {written['kept']:,} of {written['drawn']:,} drawn (confidence >= {written['filter_confidence']:g} "
                 f"under {args.filter_judge})")
    print(line)
    return 0
