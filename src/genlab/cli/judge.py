"""`genlab judge train`: the classifier whose features the metrics see images through."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from genlab.cli.options import add_seed_option, bounded_float, bounded_int, subparser
from genlab.data import load_dataset
from genlab.data.registry import DATASETS
from genlab.evaluation.judges import JUDGE_INFO_FILE, judge_accuracy, train_judge
from genlab.models.judge import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_LR


def add_parser(commands: argparse._SubParsersAction) -> None:
    judge = commands.add_parser("judge", help="the classifier that metrics see images through")
    actions = judge.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=subparser)
    parser = actions.add_parser("train", help="train a judge on a labelled dataset; prints its test accuracy")
    parser.add_argument("--data", required=True, help="dataset name, image folder (class sub-folders) or .npz")
    parser.add_argument("--split", default="train", help="split to train on (the test split, if any, is scored)")
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="judge run directory (pass it as --judge DIR)")
    parser.add_argument("--epochs", type=bounded_int(1, 1000), default=DEFAULT_EPOCHS, metavar="N", help="passes over the data")
    parser.add_argument("--batch-size", type=bounded_int(1, 10_000), default=DEFAULT_BATCH_SIZE, metavar="N", help="images per step")
    parser.add_argument("--lr", type=bounded_float(0.0, 1.0, low_open=True), default=DEFAULT_LR,
                        help="Adam learning rate (cosine-annealed to 0)")
    add_seed_option(parser, "weight init, data order, augmentation")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    judge.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    train_set = load_dataset(args.data, split=args.split)
    spec = DATASETS.get(args.data)  # a folder or .npz is one set: no test split to score on
    test_set = load_dataset(args.data, split="test") if spec and "test" in spec.splits and args.split != "test" else None
    progress = not args.no_progress
    judge = train_judge(train_set, args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                        progress=progress, test_dataset=test_set)
    if test_set is None:
        print(f"Judge training accuracy on {train_set.name!r} (no test split to score on): {judge_accuracy(judge, train_set):.4f}")
    else:  # train_judge measured it and wrote it to judge.json; the library prints nothing itself
        accuracy = json.loads((Path(args.out) / JUDGE_INFO_FILE).read_text())["test_accuracy"]
        print(f"Judge test accuracy on {test_set.name!r} ({len(test_set)} images): {accuracy:.4f}")
    print(f"Judge written to {args.out}; use it with --judge {args.out}")
    return 0
