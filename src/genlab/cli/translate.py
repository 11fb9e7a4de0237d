"""`genlab translate RUN [INPUTS ...]`: translate images with a pix2pix or CycleGAN run and write the grid
input | output | target (the target where the inputs were made from known images)."""
from __future__ import annotations

import argparse

import genlab
from genlab.cli.options import bounded_int
from genlab.errors import ConfigError
from genlab.io.grids import save_image
from genlab.tools.translate import MAX_IMAGES, check_translator, inputs_from_data, inputs_from_files, translation_grid


def add_parser(commands: argparse._SubParsersAction) -> None:
    translate = commands.add_parser("translate", help="translate images with a pix2pix or cyclegan run: input | output | target")
    translate.add_argument("run", help="run directory of `genlab train pix2pix` or `genlab train cyclegan`")
    translate.add_argument("inputs", nargs="*", metavar="INPUT",
                           help="image files or folders to translate (resized to the run's image size); none: --data")
    translate.add_argument("--data", default=None, metavar="NAME_OR_PATH",
                           help="take the inputs from a dataset instead: for a pix2pix run trained on a --task, the task "
                                "makes them from its images (then shown as targets); for a cyclegan run, a domain like "
                                "fashion-mnist:sneaker (default: the run's own data, or the domain --direction starts from)")
    translate.add_argument("--split", default="test", help="which split of a named dataset")
    translate.add_argument("-n", type=bounded_int(1, MAX_IMAGES), default=None,
                           help="translate the first N images (default: all inputs given, or 8 from --data)")
    translate.add_argument("--direction", choices=["a2b", "b2a"], default="a2b",
                           help="a2b: input → target domain; b2a: back (cyclegan runs only)")
    translate.add_argument("-o", "--output", required=True, help="PNG picture to write")
    translate.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    model = check_translator(genlab.load(args.run), where=args.run)
    if args.inputs and args.data:
        raise ConfigError("give the inputs as files or folders, or as --data, not both")
    targets = None
    if args.inputs:
        inputs = inputs_from_files(model, args.inputs, args.direction, n=args.n)
    else:
        inputs, targets = inputs_from_data(model, args.data, args.run, direction=args.direction, split=args.split,
                                           n=args.n or 8)
    outputs = model.translate(inputs, args.direction)
    path = save_image(translation_grid(inputs, outputs, targets), args.output, scale=2)
    shown = "input | output | target" if targets is not None else "input | output"
    print(f"{path} ({len(inputs)} images, {model.kind} {args.direction}: {shown})")
    return 0
