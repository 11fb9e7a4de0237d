"""`genlab inpaint [RUN]`: fill holes (inpainting) or extend borders (outpainting) with a trained model."""
from __future__ import annotations

import argparse

import torch

import genlab
from genlab.cli.options import add_labels_option, add_seed_option, bounded_int, first_n, labels_for
from genlab.data import load_dataset
from genlab.errors import ConfigError
from genlab.io.grids import save_image
from genlab.tools.editing import num_classes
from genlab.tools.inpainting import comparison_picture, inpaint, resolve_method
from genlab.tools.inversion import read_image_for
from genlab.tools.masks import parse_mask

MAX_IMAGES = 1000  # rows of original | masked | completed


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("inpaint", help="fill holes (inpainting) or extend borders (outpainting) with a trained model",
                                 description="Writes original | masked | completed side by side. Masks: center, random, "
                                 "left, right, top, bottom, border (outpainting), each optionally KIND:SIZE (a fraction of "
                                 "the side), or a mask picture the images' size (white = hole).")
    parser.add_argument("run", nargs="?", default=None, help="run directory of a VAE or GAN (none: --method mean or nearest)")
    parser.add_argument("--image", default=None, help="one image file to complete")
    parser.add_argument("--data", default=None, help="or complete the first -n images of this dataset (name, folder or .npz)")
    parser.add_argument("--split", default="test", help="which split of a named dataset")
    parser.add_argument("-n", type=bounded_int(1, MAX_IMAGES), default=None,
                        help="images to take from --data, the first n (default: 16, or all of fewer)")
    parser.add_argument("--mask", default="center", metavar="KIND[:SIZE]|PNG", help="what to hide (see above)")
    parser.add_argument("--method", choices=["auto", "mean", "nearest", "vae-iterative", "vae-optimize", "gan"], default="auto",
                        help="auto: vae-optimize for a VAE, gan for a GAN, nearest without a run")
    parser.add_argument("--steps", type=bounded_int(0, 100_000), default=None, metavar="N",
                        help="chain iterations or optimiser steps (default: per method)")
    parser.add_argument("--restarts", type=bounded_int(1, 100), default=None, metavar="N",
                        help="gan: random starts per image, the best fit kept (default: 2)")
    parser.add_argument("--blend", type=bounded_int(0, 1000), default=2, metavar="PX",
                        help="feather the fill into the known pixels over PX pixels (0: paste)")
    add_labels_option(parser, "repeated in order over the images (default with --data: the dataset's)")
    add_seed_option(parser, "for random masks and optimiser starts")
    parser.add_argument("-o", "--output", default="inpainted.png", help="PNG to write")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if (args.image is None) == (args.data is None):
        raise ConfigError("give either --image FILE or --data NAME, not " + ("both" if args.image else "neither"))
    model = genlab.load(args.run) if args.run else None
    if args.labels is not None and model is None:
        raise ConfigError("--labels needs a run: they choose the classes of a class-conditional GAN")
    method = resolve_method(model, args.method)
    labels = None
    if args.image is not None:
        images = read_image_for(model, args.image, "--image").unsqueeze(0)
    else:
        dataset = load_dataset(args.data, split=args.split)
        n = first_n(args.n, dataset, args.split)
        images = dataset.float_images(slice(0, n))
        if model is not None and num_classes(model) and dataset.labels is not None:
            labels = dataset.labels[:n]
    if args.labels is not None:
        labels = torch.tensor(labels_for(args, model, len(images)))
    mask = parse_mask(args.mask, images.shape, seed=args.seed)
    options = {} if args.restarts is None else {"restarts": args.restarts}
    completed = inpaint(model, images, mask, method, blend=args.blend, steps=args.steps, seed=args.seed, labels=labels,
                        progress=not args.no_progress, **options)
    picture = comparison_picture(images, mask, completed, nrow=min(8, len(images)))
    save_image(picture, args.output, scale=4 if len(images) == 1 else 2)
    hidden = 100 * (1 - float(mask.mean()))
    print(f"{args.output}: original | masked | completed ({len(images)} image(s), {hidden:.0f}% hidden, method {method})")
    return 0
