"""`genlab compare RUN RUN ...`: the VAE-vs-GAN property table for runs, measured, as a report."""
from __future__ import annotations

import argparse
from pathlib import Path

from genlab.cli.options import add_reference_options, add_seed_option, bounded_int
from genlab.data import load_dataset
from genlab.reporting.comparison import compare

NUM_SAMPLES = (2, 100_000)  # prdc's distances grow as N²: 100,000 is about half an hour of them on a CPU


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("compare", help="the VAE-vs-GAN property table for runs, measured: Markdown + HTML report")
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    add_reference_options(parser)
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for report.md, report.html, results.json")
    parser.add_argument("-n", "--num-samples", type=bounded_int(*NUM_SAMPLES), default=5000, metavar="N",
                        help="samples per run (and real images to use, at most); each metric also has a minimum")
    add_seed_option(parser, "for samples and subsets")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    dataset = load_dataset(args.data, split=args.split)
    results = compare(args.runs, dataset, args.out, num_samples=args.num_samples, judge=args.judge,
                      features=args.features, seed=args.seed, progress=not args.no_progress)
    print("\n" + results["verdict"])
    print(f"\nReport written to {Path(args.out).resolve()}: report.md, report.html, results.json")
    return 0
