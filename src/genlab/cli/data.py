"""`genlab data list|info`: the named datasets and where they are."""
from __future__ import annotations

import argparse
import json

from genlab.cli.options import subparser
from genlab.data import dataset_info, list_datasets


def add_parser(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="list or describe datasets")
    actions = data.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=subparser)
    actions.add_parser("list", help="the named datasets and where they are")
    info = actions.add_parser("info", help="one dataset: splits, shape, classes, location")
    info.add_argument("name", help="a dataset name from `genlab data list`")
    data.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        for entry in list_datasets():
            print(f"{entry['name']:<20} {entry.get('description', '')}  [{entry.get('location', '')}]")
    else:
        print(json.dumps(dataset_info(args.name), indent=2, default=str))
    return 0
