"""`genlab evaluate RUN|--images DIR`: measure a run, or a folder of images, against real data."""
from __future__ import annotations

import argparse
import json
import math

import genlab
from genlab.cli.options import add_reference_options, add_seed_option, bounded_int
from genlab.data import load_dataset
from genlab.errors import ConfigError
from genlab.evaluation.api import describe_metrics, evaluate, evaluate_images, format_results, parse_metrics
from genlab.io.files import atomic_write

NUM_SAMPLES = (2, 100_000)  # prdc's distances grow as N²: 100,000 is about half an hour of them on a CPU
BATCH_SIZES = (1, 10_000)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="measure a run (or a folder of images) against real data",
                                 description="Metrics (default: every one that applies to the model, except cas, which "
                                             "runs only when named):\n" + describe_metrics())
    parser.add_argument("run", nargs="?", default=None, help="run directory (or use --images)")
    parser.add_argument("--images", default=None, metavar="DIR", help="evaluate a folder (or .npz) of generated images instead")
    add_reference_options(parser)
    parser.add_argument("--metrics", default=None, metavar="A,B",
                        help="comma-separated metric names (default: all that apply; cas, which trains a classifier on "
                             "samples, runs only when named)")
    parser.add_argument("-n", "--num-samples", type=bounded_int(*NUM_SAMPLES), default=10000, metavar="N",
                        help="samples to draw (and real images to use, at most); each metric also has a minimum (see above)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the results here as JSON")
    parser.add_argument("--batch-size", type=bounded_int(*BATCH_SIZES), default=500, metavar="N", help="images per sampling/judging batch")
    add_seed_option(parser, "for samples and subsets")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if (args.run is None) == (args.images is None):
        raise ConfigError("give either a run directory or --images DIR, not " + ("both" if args.run else "neither"))
    metrics = parse_metrics(args.metrics)  # a typo fails before any loading
    dataset = load_dataset(args.data, split=args.split)
    options = {"judge": args.judge, "features": args.features, "seed": args.seed, "batch_size": args.batch_size,
               "progress": not args.no_progress}
    if args.images is not None:
        results = evaluate_images(args.images, dataset, metrics, args.num_samples, **options)
        subject = args.images
    else:
        results = evaluate(genlab.load(args.run), dataset, metrics, args.num_samples, **options)
        subject = args.run
    print(f"{subject} against {dataset.name!r} ({args.split}), {args.features} features:")
    print(format_results(results))
    if args.json:
        with atomic_write(args.json) as stream:
            stream.write((json.dumps({"subject": str(subject), "data": dataset.name, "split": args.split,
                                      "features": args.features, "results": _finite(results)}, indent=2) + "\n").encode())
        print(f"Results written to {args.json}")
    return 0


def _finite(results: dict[str, float]) -> dict:
    """JSON has no NaN/inf: write them as strings."""
    return {key: value if math.isfinite(value) else str(value) for key, value in results.items()}
