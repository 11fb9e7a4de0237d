"""`genlab reconstruct RUN`: images above their reconstructions."""
from __future__ import annotations

import argparse

import genlab
from genlab.cli.options import add_image_source, images_for
from genlab.reporting.pictures import write_reconstructions


def add_parser(commands: argparse._SubParsersAction) -> None:
    reconstruct = commands.add_parser("reconstruct", help="originals above their reconstructions")
    reconstruct.add_argument("run", help="run directory")
    add_image_source(reconstruct)
    reconstruct.add_argument("-n", type=int, default=16, help="number of images")
    reconstruct.add_argument("-o", "--output", default="reconstructions.png", help="PNG to write")
    reconstruct.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    dataset = images_for(args)
    print(write_reconstructions(genlab.load(args.run), dataset.float_images(slice(0, args.n)), args.output))
    return 0
