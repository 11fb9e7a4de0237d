"""`genlab upscale RUN`: enlarge an image with a super-resolution run."""
from __future__ import annotations

import argparse
import sys

import genlab
from genlab.tools.upscale import upscale_file


def add_parser(commands: argparse._SubParsersAction) -> None:
    upscale = commands.add_parser("upscale", help="enlarge an image with a super-resolution run")
    upscale.add_argument("run", help="run directory of `genlab train sr`")
    upscale.add_argument("--image", required=True, help="image file to enlarge (PNG, JPEG, ...)")
    upscale.add_argument("-o", "--output", required=True, help="image file to write")
    upscale.add_argument("--tile", type=int, default=None, metavar="N",
                         help="upscale in N×N low-res tiles (bounds memory for large images)")
    upscale.add_argument("--overlap", type=int, default=None, metavar="N",
                         help="low-res pixels shared by neighbouring tiles (default: the net's receptive-field radius, at most N/2)")
    upscale.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    path, before, after, note = upscale_file(genlab.load(args.run), args.image, args.output, args.tile, args.overlap)
    if note:
        print(f"note: {note}", file=sys.stderr)
    print(f"{path} ({before[0]}×{before[1]} → {after[0]}×{after[1]})")
    return 0
