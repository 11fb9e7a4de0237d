"""`genlab interpolate RUN`: morph between two images through the latent space."""
from __future__ import annotations

import argparse

import genlab
from genlab.cli.demo import pick_pair
from genlab.cli.options import (
    MAX_INDEX,
    add_image_source,
    add_inversion_options,
    add_labels_option,
    bounded_int,
    images_for,
    labels_for,
    require_labels,
)
from genlab.errors import ConfigError, DataError
from genlab.reporting.pictures import write_morph
from genlab.tools.editing import num_classes
from genlab.tools.inversion import read_image_for
from genlab.tools.latent import morph

STEPS = (2, 200)  # frames: a one-row strip of 200 frames at scale 3 is 18,000 pixels wide


def add_parser(commands: argparse._SubParsersAction) -> None:
    interpolate = commands.add_parser("interpolate", help="morph between two images through the latent space")
    interpolate.add_argument("run", help="run directory")
    add_image_source(interpolate)
    index = bounded_int(0, MAX_INDEX)
    interpolate.add_argument("--from-index", type=index, default=None, metavar="I",
                             help="index of the first image, below the dataset's size (default: a sneaker)")
    interpolate.add_argument("--to-index", type=index, default=None, metavar="I",
                             help="index of the second image, below the dataset's size (default: an ankle boot)")
    interpolate.add_argument("--steps", type=bounded_int(*STEPS), default=10, metavar="N", help="frames, endpoints included")
    interpolate.add_argument("--method", choices=["slerp", "lerp"], default="slerp", help="spherical or straight path")
    interpolate.add_argument("-o", "--output", default="morph.png", help="PNG strip")
    interpolate.add_argument("--gif", default=None, help="also write a looping GIF here")
    interpolate.add_argument("--from", dest="from_image", default=None, metavar="A.png", help="first image file (instead of --from-index)")
    interpolate.add_argument("--to", dest="to_image", default=None, metavar="B.png", help="second image file (instead of --to-index)")
    add_labels_option(interpolate, "one for both images or one each (default with images from the data: their own); "
                                   "the frames switch class halfway")
    add_inversion_options(interpolate)
    interpolate.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    model = genlab.load(args.run)
    labels = labels_for(args, model, 2, at_most=2)
    if (args.from_image is None) != (args.to_image is None):
        raise ConfigError("give both --from and --to image files (or neither, to take images from the data)")
    if args.from_image is not None:
        if args.from_index is not None or args.to_index is not None:
            raise ConfigError("give --from/--to image files or --from-index/--to-index, not both")
        first, second = read_image_for(model, args.from_image, "--from"), read_image_for(model, args.to_image, "--to")
    else:
        dataset = images_for(args)
        default_from, default_to = pick_pair(dataset)
        a = default_from if args.from_index is None else args.from_index
        b = default_to if args.to_index is None else args.to_index
        for option, index in (("--from-index", a), ("--to-index", b)):
            if not 0 <= index < len(dataset):
                raise DataError(f"{option} {index} is out of range for {dataset.name!r} ({len(dataset)} images)")
        first, second = dataset.float_images([a])[0], dataset.float_images([b])[0]
        if labels is None and num_classes(model) and dataset.labels is not None:
            labels = [int(dataset.labels[a]), int(dataset.labels[b])]
    require_labels(model, labels, "each image")
    encoder = genlab.load(args.encoder) if args.encoder else None
    frames = morph(model, first, second, args.steps, args.method, encoder=encoder, projection_steps=args.projection_steps,
                   labels=labels, progress=True)
    for path in write_morph(frames, args.output, args.gif):
        print(path)
    return 0
