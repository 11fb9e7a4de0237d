"""`genlab upscale RUN`: enlarge an image with a super-resolution run."""
from __future__ import annotations

import argparse
import sys

import genlab
from genlab.cli.options import bounded_int
from genlab.errors import ConfigError
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


def alpha_value(text: str) -> float:
    """--alpha: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text.strip()}")
    return value


def scale_factor(text: str) -> int:
    """--scale: 2 or 4."""
    if text.strip() not in ("2", "4"):
        raise argparse.ArgumentTypeError(f"expected 2 or 4, got {text.strip()}")
    return int(text)


scale_factor.range_text = "2 or 4"  # type: ignore[attr-defined]
alpha_value.range_text = "0..1"  # type: ignore[attr-defined]


def add_parser(commands: argparse._SubParsersAction) -> None:
    upscale = commands.add_parser("upscale", help="enlarge an image with a super-resolution run")
    upscale.add_argument("run", help="run directory of `genlab train sr`")
    upscale.add_argument("image_file", nargs="?", default=None, metavar="IMAGE",
                         help="image file to enlarge (PNG, JPEG, ...; any size, 1 or 3 channels, transparency kept)")
    upscale.add_argument("--image", default=None, help="the image file, as an option (the same as IMAGE)")
    upscale.add_argument("-o", "--output", required=True, help="image file to write")
    upscale.add_argument("--scale", type=scale_factor, default=None, metavar="2|4",
                         help="check that the run enlarges by this factor (a run has one scale, fixed when it was trained)")
    upscale.add_argument("--alpha", type=alpha_value, default=None, metavar="A",
                         help="esrgan runs: network interpolation (Wang et al. 2018 §3.4) between the PSNR-oriented net "
                              "it started from (0) and the GAN net (1); 0.8 is the paper's balance")
    upscale.add_argument("--tile", type=tile_size, default="auto", metavar="N|auto|off",
                         help="upscale in N×N low-res tiles, which bound the memory of large images and give the same "
                              "result as one pass; N must be at least 4× the net's receptive-field radius (96 for the "
                              f"default ×4 net; the error names the number). auto: tiles of {AUTO_TILE} above "
                              f"{AUTO_TILE_PIXELS:,} low-res pixels, else one pass; off: always one pass")
    upscale.add_argument("--overlap", type=bounded_int(0, MAX_TILE - 1), default=None, metavar="N",
                         help="low-res pixels shared by neighbouring tiles (default and least: 2× the net's "
                              "receptive-field radius, 48 for the default ×4 net)")
    upscale.add_argument("--approximate", action="store_true",
                         help="allow tiles and overlaps below those limits (deep nets such as ESRGAN's): the seams then "
                              "differ slightly from one pass")
    upscale.add_argument("--drop-alpha", action="store_true", help="write no transparency channel even where the file has one")
    upscale.add_argument("--no-progress", action="store_true", help="no progress bar over the tiles")
    upscale.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.image_file and args.image and args.image_file != args.image:
        raise ConfigError(f"two images given ({args.image_file} and --image {args.image}); upscale one at a time")
    image = args.image_file or args.image
    if not image:
        raise ConfigError("no image given: genlab upscale RUN IMAGE -o OUTPUT")
    model = genlab.load(args.run)
    if args.scale is not None and getattr(model, "scale", args.scale) != args.scale:
        raise ConfigError(f"{args.run} enlarges ×{model.scale}, not ×{args.scale}; train a ×{args.scale} run "
                          f"(genlab train sr --scale {args.scale}) or leave --scale out")
    path, before, after, note = upscale_file(model, image, args.output, args.tile, args.overlap,
                                             progress=not args.no_progress, exact=not args.approximate, alpha=args.alpha,
                                             keep_alpha=not args.drop_alpha)
    if note:
        print(f"note: {note}", file=sys.stderr)
    print(f"{path} ({before[0]}×{before[1]} → {after[0]}×{after[1]})")
    return 0
