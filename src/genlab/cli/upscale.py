"""`genlab upscale RUN`: enlarge an image with a super-resolution run."""
from __future__ import annotations

import argparse
import sys

import genlab
from genlab.cli.options import bounded_int
from genlab.tools.upscale import AUTO_TILE, AUTO_TILE_PIXELS, upscale_file

MAX_TILE = 10_000
_TILE_SIZE = bounded_int(1, MAX_TILE)


def tile_size(text: str) -> str | int | None:
    """--tile: auto, off (one pass) or a size in low-res pixels."""
    word = text.strip().lower()
    if word in ("auto", "off"):
        return None if word == "off" else "auto"
    try:
        return _TILE_SIZE(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected auto, off or an integer in 1..{MAX_TILE}, got {text.strip()}") from None


tile_size.range_text = f"auto, off or 1..{MAX_TILE}"  # type: ignore[attr-defined]


def add_parser(commands: argparse._SubParsersAction) -> None:
    upscale = commands.add_parser("upscale", help="enlarge an image with a super-resolution run")
    upscale.add_argument("run", help="run directory of `genlab train sr`")
    upscale.add_argument("--image", required=True, help="image file to enlarge (PNG, JPEG, ...)")
    upscale.add_argument("-o", "--output", required=True, help="image file to write")
    upscale.add_argument("--tile", type=tile_size, default="auto", metavar="N|auto|off",
                         help="upscale in N×N low-res tiles, which bound the memory of large images and give the same "
                              "result as one pass; N must be at least 4× the net's receptive-field radius (96 for the "
                              f"default ×4 net; the error names the number). auto: tiles of {AUTO_TILE} above "
                              f"{AUTO_TILE_PIXELS:,} low-res pixels, else one pass; off: always one pass")
    upscale.add_argument("--overlap", type=bounded_int(0, MAX_TILE - 1), default=None, metavar="N",
                         help="low-res pixels shared by neighbouring tiles (default and least: 2× the net's "
                              "receptive-field radius, 48 for the default ×4 net)")
    upscale.add_argument("--no-progress", action="store_true", help="no progress bar over the tiles")
    upscale.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    path, before, after, note = upscale_file(genlab.load(args.run), args.image, args.output, args.tile, args.overlap,
                                             progress=not args.no_progress)
    if note:
        print(f"note: {note}", file=sys.stderr)
    print(f"{path} ({before[0]}×{before[1]} → {after[0]}×{after[1]})")
    return 0
