"""`genlab reconstruct RUN`: images above their reconstructions."""
from __future__ import annotations

import argparse

import genlab
from genlab.cli.options import add_image_source, bounded_int, first_n, images_for
from genlab.reporting.pictures import write_reconstructions

MAX_IMAGES = 1000  # 125 rows of 8 pairs: a picture of 2,000 tiles


def add_parser(commands: argparse._SubParsersAction) -> None:
    reconstruct = commands.add_parser("reconstruct", help="originals above their reconstructions")
    reconstruct.add_argument("run", help="run directory")
    add_image_source(reconstruct)
    reconstruct.add_argument("-n", type=bounded_int(1, MAX_IMAGES), default=None,
                             help="number of images, the first n (default: 16, or all of fewer)")
    reconstruct.add_argument("-o", "--output", default="reconstructions.png", help="PNG to write")
    reconstruct.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    dataset = images_for(args)
    images = dataset.float_images(slice(0, first_n(args.n, dataset, args.split)))
    print(write_reconstructions(genlab.load(args.run), images, args.output))
    return 0
