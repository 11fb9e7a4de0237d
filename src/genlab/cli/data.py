"""`genlab data list|info|get`: the named datasets, where they are, and fetching them."""
from __future__ import annotations

import argparse
import json

from genlab.cli.options import subparser
from genlab.data import dataset_info, list_datasets, load_dataset
from genlab.data.emoji import PACKAGES, get_emoji
from genlab.errors import ConfigError


def add_parser(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="list, describe or fetch datasets")
    actions = data.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=subparser)
    actions.add_parser("list", help="the named datasets and where they are")
    info = actions.add_parser("info", help="one dataset: splits, shape, classes, location")
    info.add_argument("name", help="a dataset name from `genlab data list`")
    get = actions.add_parser(
        "get", help="fetch a named dataset into genlab's cache (the emoji sets with `npm pack`)",
        description="Fetch a named dataset into genlab's cache. The emoji sets (" + ", ".join(PACKAGES) + ") are made "
                    "from an npm package fetched with `npm pack` (or given with --from) and checked against a pinned "
                    "SHA-256; the other sets download as `load_dataset` does.")
    get.add_argument("name", help="a dataset name from `genlab data list`, e.g. emoji-twitter")
    get.add_argument("--from", dest="tarball", metavar="FILE.tgz", default=None,
                     help="an emoji set's npm tarball you already have (`npm pack NAME@VERSION`), instead of running npm")
    get.add_argument("--no-progress", action="store_true", help="no progress bar")
    data.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        for entry in list_datasets():
            print(f"{entry['name']:<20} {entry.get('description', '')}  [{entry.get('location', '')}]")
    elif args.action == "info":
        print(json.dumps(dataset_info(args.name), indent=2, default=str))
    elif args.name in PACKAGES:
        get_emoji_set(args.name, args.tarball, progress=not args.no_progress)
    else:
        if args.tarball is not None:
            raise ConfigError(f"--from: only the emoji sets ({', '.join(PACKAGES)}) are made from a tarball, "
                              f"not {args.name!r}; leave --from out")
        info = dataset_info(args.name)  # an unknown name fails here, listing the known ones
        for split in info["splits"]:
            load_dataset(args.name, split=split)  # downloads what is missing, checked
        print(f"{args.name}: {', '.join(info['splits'])} ready in {dataset_info(args.name)['location']}")
    return 0


def get_emoji_set(name: str, tarball: str | None, *, progress: bool) -> None:
    package = PACKAGES[name]
    source = tarball or f"`npm pack {package.package}@{package.version}` ({package.size / 1e6:.1f} MB)"
    print(f"{name}: reading {source}, checking its SHA-256")
    result = get_emoji(name, tarball, progress=progress)
    for split, path in result.paths.items():
        counts = result.counts[split]
        print(f"{split}: {sum(counts.values())} images → {path}")
        print("  " + ", ".join(f"{label}: {count}" for label, count in counts.items()))
    print(f"licence: {result.licence}")
