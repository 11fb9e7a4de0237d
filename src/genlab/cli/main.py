"""The `genlab` command: a thin layer over the public API. This module assembles the parser from one
module per command (each with ``add_parser(commands)`` and ``run(args) -> int``) and runs the command.

Errors caused by input (files, options, checkpoints) print one line and exit with code 2; library
warnings print one line each, ``warning: ...``, on stderr.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Iterator

from genlab.cli import (
    augment,
    compare,
    data,
    demo,
    edit,
    evaluate,
    export,
    inpaint,
    interpolate,
    judge,
    reconstruct,
    sample,
    serve,
    train,
    translate,
    upscale,
)
from genlab.cli.options import HelpFormatter, subparser
from genlab.errors import GenlabError
from genlab.training.distributed import group_is_broken

COMMANDS = [train, sample, reconstruct, interpolate, edit, inpaint, upscale, translate, augment, evaluate, compare, export, judge,
            serve, data, demo]

EXAMPLES = """examples:
  genlab demo                                          # a VAE and a GAN on the bundled subset, a few minutes
  genlab train vae --data fashion-mnist --epochs 10 --out runs/vae
  genlab train vae --data fashion-mnist --epochs 20 --out runs/vae --resume
  genlab train gan --data fashion-mnist --conditional --epochs 10 --out runs/cgan
  genlab train gan --data ring8 --epochs 5 --out runs/ring     # 2-D mode-collapse toy: writes scatter plots
  genlab sample runs/cgan --labels Trouser,Sneaker --truncation 0.7 -o trousers_sneakers.png   # classes by name or index
  genlab sample runs/vae -n 64 --seed 0 -o samples.png
  genlab reconstruct runs/vae -o recon.png
  genlab interpolate runs/vae --steps 10 -o morph.png --gif morph.gif
  genlab interpolate runs/gan --from a.png --to b.png --encoder runs/gan-encoder -o morph.png   # GANs: by inversion
  genlab interpolate runs/cgan --from a.png --to b.png --labels Sneaker,'Ankle boot' -o morph.png  # conditional GANs
  genlab train encoder --gan runs/gan --data fashion-mnist --epochs 1 --out runs/gan-encoder    # learned GAN inversion
  genlab edit runs/vae --direction "Sneaker->Ankle boot" --strength 0,0.5,1,1.5 -o edits.png    # or pc0, --from-dir/--to-dir
  genlab inpaint runs/vae --image shirt.png --mask center -o filled.png   # or --data fashion-mnist -n 16 --mask border
  genlab serve runs/vae runs/cgan                     # a web page to poke them: http://127.0.0.1:7860/
  genlab data list
  genlab judge train --data fashion-mnist -o runs/judge            # the classifier metrics see images through
  genlab evaluate runs/gan --data fashion-mnist --json gan.json     # FID, KID, precision/recall, ...
  genlab evaluate runs/vae --data fashion-mnist --metrics fid,likelihood -n 2000
  genlab evaluate runs/cgan --data fashion-mnist --metrics fid,cas  # cas (minutes) runs only when named
  genlab evaluate --images my_samples/ --data fashion-mnist         # images made by anything
  genlab compare runs/vae runs/gan --data fashion-mnist -o report/  # the VAE-vs-GAN table, measured
  genlab train sr --data fashion-mnist --scale 4 --out runs/sr     # super-resolution (SRResNet); --variant srgan
  genlab upscale runs/sr --image small.png -o big.png --tile 128    # any size; tiles bound the memory, same result
  genlab train pix2pix --data fashion-mnist --task edges --out runs/p2p       # paired translation: edges → garment
  genlab train cyclegan --domain-a fashion-mnist:sneaker --domain-b fashion-mnist:ankle-boot --out runs/cyc
  genlab translate runs/p2p -o p2p.png                              # input | output | target, from the run's test data
  genlab translate runs/cyc shoe.png --direction a2b -o boot.png    # your own images; b2a goes back
  genlab augment runs/cgan --n-per-class 100 -o synth.npz          # a labelled synthetic dataset (conditional runs)
  genlab export runs/cgan -o cgan.onnx                             # the generator for onnxruntime (examples/onnx_sample.py)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genlab", description="Train, sample and explore generative image models.",
                                     epilog=EXAMPLES, formatter_class=HelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=subparser)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # warnings.showwarning's signature
    """A warning as one line, ``warning: message``, not Python's ``file:line: UserWarning:`` form."""
    kind = "" if issubclass(category, UserWarning) else f"{category.__name__}: "
    print(f"warning: {kind}{' '.join(str(message).split())}", file=sys.stderr)


@contextlib.contextmanager
def warnings_as_lines() -> Iterator[None]:
    """For the duration of a command: every warning shown is one ``warning: ...`` line on stderr."""
    with warnings.catch_warnings():  # restores showwarning (and the filters) afterwards
        warnings.showwarning = _show_warning
        yield


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings_as_lines():
            return args.handler(args)
    except GenlabError as error:
        print(f"genlab: error: {error}", file=sys.stderr)
        if group_is_broken():  # a torchrun peer died: leave now, before the broken group's C++ teardown can abort
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
        return 2
    except KeyboardInterrupt as interrupt:
        print(f"genlab: {interrupt or 'interrupted'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
