"""The `genlab` command: a thin layer over the public API.

Errors caused by input (files, options, checkpoints) print one line and exit with code 2.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import torch

import genlab
from genlab import load
from genlab.cli.demo import pick_pair, run_demo
from genlab.config import TrainConfig
from genlab.data import dataset_info, list_datasets, load_dataset
from genlab.data.registry import DATASETS
from genlab.errors import ConfigError, DataError, GenlabError
from genlab.evaluation.api import describe_metrics, evaluate, evaluate_images, format_results, parse_metrics
from genlab.evaluation.judges import judge_accuracy, train_judge
from genlab.io.checkpoints import read_run_config
from genlab.io.files import atomic_write
from genlab.io.images import save_image
from genlab.models.gan.encoder import encoder_for
from genlab.models.gan.model import GANConfig
from genlab.models.sr.model import SRConfig
from genlab.reporting.comparison import compare
from genlab.reporting.pictures import write_morph, write_reconstructions, write_samples
from genlab.tools.editing import (
    edit,
    edit_grid,
    folder_direction,
    format_measurements,
    label_direction,
    measure_direction,
    parse_direction,
    parse_strengths,
    principal_direction,
)
from genlab.tools.inpainting import comparison_picture, inpaint, resolve_method
from genlab.tools.inversion import read_image_for
from genlab.tools.latent import morph
from genlab.tools.masks import parse_mask
from genlab.tools.upscale import upscale_file

EXAMPLES = """examples:
  genlab demo                                          # a VAE and a GAN on the bundled subset, a few minutes
  genlab train vae --data fashion-mnist --epochs 10 --out runs/vae
  genlab train vae --data fashion-mnist --epochs 20 --out runs/vae --resume
  genlab train gan --data fashion-mnist --conditional --epochs 10 --out runs/cgan
  genlab train gan --data ring8 --epochs 5 --out runs/ring     # 2-D mode-collapse toy: writes scatter plots
  genlab sample runs/cgan --labels 0,1,2 --truncation 0.7 -o shirts_trousers_pullovers.png
  genlab sample runs/vae -n 64 --seed 0 -o samples.png
  genlab reconstruct runs/vae -o recon.png
  genlab interpolate runs/vae --steps 10 -o morph.png --gif morph.gif
  genlab interpolate runs/gan --from a.png --to b.png --encoder runs/gan-encoder -o morph.png   # GANs: by inversion
  genlab train encoder --gan runs/gan --data fashion-mnist --epochs 1 --out runs/gan-encoder    # learned GAN inversion
  genlab edit runs/vae --direction "Sneaker->Ankle boot" --strength 0,0.5,1,1.5 -o edits.png    # or pc0, --from-dir/--to-dir
  genlab inpaint runs/vae --image shirt.png --mask center -o filled.png   # or --data fashion-mnist -n 16 --mask border
  genlab data list
  genlab judge train --data fashion-mnist -o runs/judge            # the classifier metrics see images through
  genlab evaluate runs/gan --data fashion-mnist --json gan.json     # FID, KID, precision/recall, ...
  genlab evaluate runs/vae --data fashion-mnist --metrics fid,likelihood -n 2000
  genlab evaluate --images my_samples/ --data fashion-mnist         # images made by anything
  genlab compare runs/vae runs/gan --data fashion-mnist -o report/  # the VAE-vs-GAN table, measured
  genlab train sr --data fashion-mnist --scale 4 --out runs/sr     # super-resolution (SRResNet); --variant srgan
  genlab upscale runs/sr --image small.png -o big.png --tile 64     # any size; tiles bound the memory
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows every option's default, except the uninformative None and False."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.option_strings and action.default not in (None, "", argparse.SUPPRESS) and action.default is not False and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text.strip()


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 32,64, got {text!r}") from None
    return values


def _float_pair(text: str) -> tuple[float, float]:
    try:
        first, second = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two comma-separated numbers like 0.5,0.999, got {text!r}") from None
    return first, second


def _subparser(**kwargs) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(**{"formatter_class": _HelpFormatter, **kwargs})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genlab", description="Train, sample and explore generative image models.",
                                     epilog=EXAMPLES, formatter_class=_HelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_subparser)

    train = commands.add_parser("train", help="train a model")
    kinds = train.add_subparsers(dest="kind", required=True, metavar="MODEL", parser_class=_subparser)
    vae = kinds.add_parser("vae", help="a convolutional variational autoencoder")
    _add_data_options(vae)
    model = vae.add_argument_group("model")
    model.add_argument("--latent-dim", type=int, default=16, metavar="N", help="size of the code z")
    model.add_argument("--channels", type=_int_list, default="32,64", metavar="W,W", help="conv widths, each halving the resolution")
    model.add_argument("--hidden-dim", type=int, default=256, metavar="N", help="fully connected layer between convs and code")
    model.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default="bernoulli", help="p(x|z): BCE or MSE")
    model.add_argument("--binarize", action="store_true", help="dynamic binarization of training images")
    model.add_argument("--gaussian-sigma", type=float, default=0.1, metavar="S", help="decoder σ for --likelihood gaussian")
    model.add_argument("--learn-sigma", action="store_true", help="learn the Gaussian decoder's σ")
    model.add_argument("--beta", type=float, default=1.0, metavar="B", help="KL weight (β-VAE)")
    model.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    _add_training_options(vae, batch_size=128)

    gan = kinds.add_parser("gan", help="a DCGAN (images) or MLP GAN (2-D points), optionally class-conditional")
    _add_data_options(gan)
    model = gan.add_argument_group("model")
    model.add_argument("--conditional", action="store_true", help="condition on the dataset's labels (conditional BN in G, projection D)")
    model.add_argument("--loss", choices=["ns", "minimax", "hinge", "wgan-gp", "lsgan"], default="ns", help="adversarial loss")
    model.add_argument("--latent-dim", type=int, default=None, metavar="N", help="size of z (default: 100 for images, 2 for points)")
    model.add_argument("--g-width", type=int, default=None, metavar="N", help="G width (default: 64 conv / 400 MLP)")
    model.add_argument("--d-width", type=int, default=None, metavar="N", help="D width (default: 64 conv / 200 MLP)")
    model.add_argument("--lr-g", type=float, default=GANConfig.lr_g, help="G's Adam learning rate")
    model.add_argument("--lr-d", type=float, default=GANConfig.lr_d, help="D's Adam learning rate (TTUR: may differ from G's)")
    model.add_argument("--betas", type=_float_pair, default=GANConfig.betas, metavar="B1,B2", help="Adam's β1,β2")
    model.add_argument("--d-steps", type=int, default=GANConfig.d_steps, metavar="N", help="D updates per G update")
    model.add_argument("--r1-gamma", type=float, default=GANConfig.r1_gamma, metavar="G", help="R1 penalty weight γ (0: off)")
    model.add_argument("--r1-every", type=int, default=GANConfig.r1_every, metavar="K", help="lazy R1: every K steps")
    model.add_argument("--gp-weight", type=float, default=GANConfig.gp_weight, metavar="L", help="λ for --loss wgan-gp")
    model.add_argument("--spectral-norm", action="store_true", help="spectral norm on every D layer")
    model.add_argument("--diffaugment", default="", metavar="POLICY", help="e.g. translation,cutout,color")
    _add_training_options(gan, batch_size=64)

    encoder = kinds.add_parser("encoder", help="a learned inverse (image → z) for a trained GAN's frozen generator")
    encoder.add_argument("--gan", required=True, metavar="RUN", help="the GAN run to invert (its weights are copied into the new run)")
    _add_data_options(encoder)
    model = encoder.add_argument_group("model")
    model.add_argument("--channels", type=_int_list, default="32,64,128", metavar="W,W", help="conv widths, each halving the resolution")
    model.add_argument("--hidden-dim", type=int, default=512, metavar="N", help="fully connected layer before z")
    model.add_argument("--latent-weight", type=float, default=1.0, metavar="W", help="weight of ‖E(G(z)) − z‖²/d on G's samples")
    model.add_argument("--image-weight", type=float, default=1.0, metavar="W", help="weight of ‖G(E(x)) − x‖² per pixel on real images")
    model.add_argument("--feature-weight", type=float, default=0.1, metavar="W", help="weight of the judge-feature distance (1×28×28 only)")
    model.add_argument("--lr", type=float, default=1e-3, help="E's Adam learning rate")
    _add_training_options(encoder, batch_size=64)

    sr = kinds.add_parser("sr", help="super-resolution: SRResNet or SRGAN, trained on any image data (low-res made by box downsampling)")
    _add_data_options(sr)
    model = sr.add_argument_group("model")
    model.add_argument("--scale", type=int, default=SRConfig.scale, metavar="S", help="upscaling factor, 2 or 4")
    model.add_argument("--variant", choices=["srresnet", "srgan"], default=SRConfig.variant,
                       help="srresnet: pixel MSE (highest PSNR); srgan: judge-feature content loss + adversarial (sharper)")
    model.add_argument("--channels", type=int, default=SRConfig.channels, metavar="N", help="feature maps in G")
    model.add_argument("--blocks", type=int, default=SRConfig.blocks, metavar="N", help="residual blocks in G")
    model.add_argument("--no-residual", action="store_true", help="G predicts the image itself, not a correction to bicubic")
    model.add_argument("--content-weight", type=float, default=SRConfig.content_weight, metavar="W", help="srgan: judge-feature MSE weight")
    model.add_argument("--pixel-weight", type=float, default=SRConfig.pixel_weight, metavar="W", help="srgan: pixel MSE weight")
    model.add_argument("--adversarial-weight", type=float, default=SRConfig.adversarial_weight, metavar="W", help="srgan: adversarial weight")
    model.add_argument("--judge", default=SRConfig.judge, metavar="DIR",
                       help="srgan content features: auto (shipped judge for 1x28x28), none, or a judge run directory")
    model.add_argument("--content-block", type=int, default=SRConfig.content_block, metavar="K",
                       help="srgan: compare the judge's conv block K features (0: first, like VGG22; -1: last, like VGG54)")
    model.add_argument("--d-width", type=int, default=SRConfig.d_width, metavar="N", help="srgan: D's first conv width")
    model.add_argument("--lr", type=float, default=None, help="G's Adam learning rate (default: 1e-3 for srresnet, 1e-4 for srgan)")
    model.add_argument("--lr-d", type=float, default=None, help="srgan: D's Adam learning rate (default: --lr)")
    model.add_argument("--init-from", default=None, metavar="RUN", help="start G from this SR run's generator (e.g. SRGAN from an SRResNet)")
    _add_training_options(sr, batch_size=64)

    sample = commands.add_parser("sample", help="write a grid of samples from a trained run")
    sample.add_argument("run", help="run directory")
    sample.add_argument("-n", type=int, default=64, help="number of samples")
    sample.add_argument("--seed", type=int, default=0, help="the same seed gives the same samples")
    sample.add_argument("-o", "--output", default="samples.png", help="PNG grid to write")
    sample.add_argument("--labels", type=_int_list, default=None, metavar="C,C", help="classes to draw (conditional GANs), repeated to fill -n")
    sample.add_argument("--truncation", type=float, default=None, metavar="TAU", help="truncation trick: |z| <= TAU (GANs)")

    reconstruct = commands.add_parser("reconstruct", help="originals above their reconstructions")
    reconstruct.add_argument("run", help="run directory")
    _add_image_source(reconstruct)
    reconstruct.add_argument("-n", type=int, default=16, help="number of images")
    reconstruct.add_argument("-o", "--output", default="reconstructions.png", help="PNG to write")

    interpolate = commands.add_parser("interpolate", help="morph between two images through the latent space")
    interpolate.add_argument("run", help="run directory")
    _add_image_source(interpolate)
    interpolate.add_argument("--from-index", type=int, default=None, help="index of the first image (default: a sneaker)")
    interpolate.add_argument("--to-index", type=int, default=None, help="index of the second image (default: an ankle boot)")
    interpolate.add_argument("--steps", type=int, default=10, help="frames, endpoints included")
    interpolate.add_argument("--method", choices=["slerp", "lerp"], default="slerp", help="spherical or straight path")
    interpolate.add_argument("-o", "--output", default="morph.png", help="PNG strip")
    interpolate.add_argument("--gif", default=None, help="also write a looping GIF here")
    interpolate.add_argument("--from", dest="from_image", default=None, metavar="A.png", help="first image file (instead of --from-index)")
    interpolate.add_argument("--to", dest="to_image", default=None, metavar="B.png", help="second image file (instead of --to-index)")
    _add_inversion_options(interpolate)

    edit = commands.add_parser("edit", help="move images along a latent direction: class to class, a GANSpace component, or folder to folder")
    edit.add_argument("run", help="run directory (VAE, GAN or GAN encoder)")
    edit.add_argument("--image", action="append", default=None, metavar="X.png",
                      help="image file to edit, repeatable (default: -n test images of the direction's source class)")
    edit.add_argument("--direction", default=None, metavar="'A->B'|pcK",
                      help="class to class by the data's class names (e.g. 'Sneaker->Ankle boot'), or GANSpace component K (pc0, pc1, ...)")
    edit.add_argument("--from-dir", default=None, metavar="DIR", help="folder of example images of the start (with --to-dir)")
    edit.add_argument("--to-dir", default=None, metavar="DIR", help="folder of example images of the goal (with --from-dir)")
    edit.add_argument("--strength", default="0,0.5,1,1.5", metavar="S,S,...", help="strengths, one column each; 0 = the reconstruction (a list starting with a negative needs the = form: --strength=-2,-1,0,1,2)")
    edit.add_argument("--data", default=None, help="labelled dataset for class directions and names (default: the run's dataset)")
    edit.add_argument("--split", default="train", help="split the class directions are computed on (measuring uses the test split)")
    edit.add_argument("--max-per-class", type=int, default=500, metavar="N", help="images per class for a class direction")
    edit.add_argument("-n", "--num-images", type=int, default=8, metavar="N", help="images to edit when no --image is given")
    edit.add_argument("--measure", type=int, default=100, metavar="N",
                      help="measure the direction (judge flip rate, feature distance) on N test images; 0: skip")
    edit.add_argument("-o", "--output", default="edits.png", help="PNG grid: a row per image, a column per strength")
    _add_inversion_options(edit)
    edit.add_argument("--no-progress", action="store_true", help="no progress bars")

    upscale = commands.add_parser("upscale", help="enlarge an image with a super-resolution run")
    upscale.add_argument("run", help="run directory of `genlab train sr`")
    upscale.add_argument("--image", required=True, help="image file to enlarge (PNG, JPEG, ...)")
    upscale.add_argument("-o", "--output", required=True, help="image file to write")
    upscale.add_argument("--tile", type=int, default=None, metavar="N", help="upscale in N×N low-res tiles (bounds memory for large images)")
    upscale.add_argument("--overlap", type=int, default=None, metavar="N", help="low-res pixels shared by neighbouring tiles (default: the net's receptive-field radius, at most N/2)")

    data_cmd = commands.add_parser("data", help="list or describe datasets")
    data_sub = data_cmd.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=_subparser)
    data_sub.add_parser("list", help="the named datasets and where they are")
    info = data_sub.add_parser("info", help="one dataset: splits, shape, classes, location")
    info.add_argument("name", help="a dataset name from `genlab data list`")

    evaluate = commands.add_parser("evaluate", help="measure a run (or a folder of images) against real data",
                                   description="Metrics (default: every one that applies to the model):\n"
                                   + _metric_help())
    evaluate.add_argument("run", nargs="?", default=None, help="run directory (or use --images)")
    evaluate.add_argument("--images", default=None, metavar="DIR", help="evaluate a folder (or .npz) of generated images instead")
    _add_reference_options(evaluate)
    evaluate.add_argument("--metrics", default=None, metavar="A,B", help="comma-separated metric names (default: all that apply, except the slow cas)")
    evaluate.add_argument("-n", "--num-samples", type=int, default=10000, metavar="N", help="samples to draw (and real images to use, at most)")
    evaluate.add_argument("--json", default=None, metavar="FILE", help="also write the results here as JSON")
    evaluate.add_argument("--batch-size", type=int, default=500, metavar="N", help="images per sampling/judging batch")
    evaluate.add_argument("--seed", type=int, default=0, help="for samples and subsets")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar")

    compare = commands.add_parser("compare", help="the VAE-vs-GAN property table for runs, measured: Markdown + HTML report")
    compare.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    _add_reference_options(compare)
    compare.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for report.md, report.html, results.json")
    compare.add_argument("-n", "--num-samples", type=int, default=5000, metavar="N", help="samples per run")
    compare.add_argument("--seed", type=int, default=0, help="for samples and subsets")
    compare.add_argument("--no-progress", action="store_true", help="no progress bar")

    judge = commands.add_parser("judge", help="the classifier that metrics see images through")
    judge_sub = judge.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=_subparser)
    judge_train = judge_sub.add_parser("train", help="train a judge on a labelled dataset; prints its test accuracy")
    judge_train.add_argument("--data", required=True, help="dataset name, image folder (class sub-folders) or .npz")
    judge_train.add_argument("--split", default="train", help="split to train on (the test split, if any, is scored)")
    judge_train.add_argument("-o", "--out", required=True, metavar="DIR", help="judge run directory (pass it as --judge DIR)")
    judge_train.add_argument("--epochs", type=int, default=None, metavar="N", help="passes over the data (default: train_judge's)")
    judge_train.add_argument("--batch-size", type=int, default=None, metavar="N", help="images per step (default: train_judge's)")
    judge_train.add_argument("--seed", type=int, default=0, help="weight init, data order, augmentation")
    judge_train.add_argument("--no-progress", action="store_true", help="no progress bar")

    inpaint = commands.add_parser("inpaint", help="fill holes (inpainting) or extend borders (outpainting) with a trained model",
                                  description="Writes original | masked | completed side by side. Masks: center, random, "
                                  "left, right, top, bottom, border (outpainting), each optionally KIND:SIZE (a fraction of "
                                  "the side), or a mask picture the images' size (white = hole).")
    inpaint.add_argument("run", nargs="?", default=None, help="run directory of a VAE or GAN (none: --method mean or nearest)")
    inpaint.add_argument("--image", default=None, help="one image file to complete")
    inpaint.add_argument("--data", default=None, help="or complete the first -n images of this dataset (name, folder or .npz)")
    inpaint.add_argument("--split", default="test", help="which split of a named dataset")
    inpaint.add_argument("-n", type=int, default=16, help="images to take from --data")
    inpaint.add_argument("--mask", default="center", metavar="KIND[:SIZE]|PNG", help="what to hide (see above)")
    inpaint.add_argument("--method", choices=["auto", "mean", "nearest", "vae-iterative", "vae-optimize", "gan"], default="auto",
                         help="auto: vae-optimize for a VAE, gan for a GAN, nearest without a run")
    inpaint.add_argument("--steps", type=int, default=None, metavar="N", help="chain iterations or optimiser steps (default: per method)")
    inpaint.add_argument("--restarts", type=int, default=None, metavar="N", help="gan: random starts per image, the best fit kept (default: 2)")
    inpaint.add_argument("--blend", type=int, default=2, metavar="PX", help="feather the fill into the known pixels over PX pixels (0: paste)")
    inpaint.add_argument("--labels", type=_int_list, default=None, metavar="C,C", help="classes for a conditional GAN (default with --data: the dataset's)")
    inpaint.add_argument("--seed", type=int, default=0, help="for random masks and optimiser starts")
    inpaint.add_argument("-o", "--output", default="inpainted.png", help="PNG to write")
    inpaint.add_argument("--no-progress", action="store_true", help="no progress bar")

    demo = commands.add_parser("demo", help="train a VAE and a GAN on the bundled subset and write pictures (a few minutes)")
    demo.add_argument("--out", default="demo", help="folder for the pictures")
    demo.add_argument("--epochs", type=int, default=12, help="VAE training epochs on the 6000-image subset")
    demo.add_argument("--gan-epochs", type=int, default=10, help="GAN training epochs on the same subset")
    demo.add_argument("--seed", type=int, default=0, help="for training and sampling")
    return parser


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--data", default="fashion-mnist", help="dataset name (see `genlab data list`), image folder or .npz")
    data.add_argument("--split", default="train", help="which split of a named dataset")
    data.add_argument("--image-size", type=int, default=None, metavar="N", help="resize images to N×N")


def _add_training_options(parser: argparse.ArgumentParser, batch_size: int) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory (checkpoints, samples, metrics)")
    group.add_argument("--epochs", type=int, default=10, metavar="N", help="passes over the data (total, also when resuming)")
    group.add_argument("--batch-size", type=int, default=batch_size, metavar="N", help="items per step")
    group.add_argument("--seed", type=int, default=0, help="weight init, data order, noise")
    group.add_argument("--ema", type=float, default=None, metavar="DECAY", help="keep an EMA of the weights (e.g. 0.999)")
    group.add_argument("--lr-schedule", choices=["constant", "linear", "cosine"], default=TrainConfig.lr_schedule,
                       help="anneal the learning rates to 0 by the end of the run")
    group.add_argument("--lr-decay-start", type=float, default=TrainConfig.lr_decay_start, metavar="F",
                       help="fraction of the run after which the annealing starts")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    group.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default=TrainConfig.precision,
                       help="bf16/fp16: forward passes under autocast (fp16: CUDA only; bf16 pays only on CPUs/GPUs with bf16 units)")
    group.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=TrainConfig.channels_last,
                       help="NHWC memory format for conv nets")
    group.add_argument("--compile", action="store_true", help="torch.compile the networks (on a 2-core CPU: 12–27 s to compile, then no faster than the default; see the README)")
    group.add_argument("--log-every", type=int, default=50, metavar="STEPS", help="steps between metric rows")
    group.add_argument("--checkpoint-every", type=int, default=0, metavar="STEPS", help="steps between checkpoints (0: every epoch)")
    group.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    group.add_argument("--dry-run", action="store_true", help="two steps only: check that everything fits together")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")


def _metric_help() -> str:
    return describe_metrics()


def _add_reference_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="the real data to measure against (name, folder or .npz)")
    parser.add_argument("--split", default="test", help="which split of a named dataset")
    parser.add_argument("--judge", default=None, metavar="DIR",
                        help="judge run from `genlab judge train` (default: the shipped one, 1×28×28 Fashion-MNIST only)")
    parser.add_argument("--features", choices=["judge", "inception"], default="judge",
                        help="feature space of fid/kid/prdc/smoothness; inception needs torch-fidelity and its weights")


def _add_inversion_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("inversion (GAN runs)")
    group.add_argument("--encoder", default=None, metavar="RUN", help="a GAN-encoder run (`genlab train encoder`) to start the projector from")
    group.add_argument("--projection-steps", type=int, default=None, metavar="N",
                       help="projector steps per image (default: 200 from the prior mean, 100 from --encoder; VAEs: 0)")


def _add_image_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=None, help="dataset to take images from (default: the run's own dataset)")
    parser.add_argument("--split", default="test", help="which split of a named dataset")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except GenlabError as error:
        print(f"genlab: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        print(f"genlab: {interrupt or 'interrupted'}", file=sys.stderr)
        return 130


def cmd_train(args: argparse.Namespace) -> int:
    dataset = genlab.load_dataset(args.data, split=args.split, image_size=args.image_size)
    torch.manual_seed(args.seed)  # weight initialisation
    model = MODEL_BUILDERS[args.kind](args, dataset)
    config = genlab.TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=getattr(args, "lr", 1e-3), seed=args.seed, out_dir=args.out,
        device=args.device, precision=args.precision, channels_last=args.channels_last, compile=args.compile,
        ema_decay=args.ema, log_every=args.log_every,
        lr_schedule=args.lr_schedule, lr_decay_start=args.lr_decay_start,
        checkpoint_every=args.checkpoint_every, max_steps=2 if args.dry_run else None, progress=not args.no_progress,
    )
    genlab.train(model, dataset, config, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one line from rank 0 only
        print(f"Run written to {args.out}: config.json, model.safetensors, metrics.csv, samples/, loss.png")
    return 0


def _build_vae(args: argparse.Namespace, dataset):
    return genlab.VAE(genlab.VAEConfig(
        image_shape=dataset.image_shape, latent_dim=args.latent_dim, channels=args.channels, hidden_dim=args.hidden_dim,
        likelihood=args.likelihood, binarize=args.binarize, gaussian_sigma=args.gaussian_sigma,
        learn_sigma=args.learn_sigma, beta=args.beta,
    ))


def _build_gan(args: argparse.Namespace, dataset):
    if args.conditional and dataset.labels is None:
        raise DataError(f"--conditional needs a labelled dataset; {dataset.name!r} has no labels")
    return genlab.GAN(genlab.GANConfig(
        image_shape=dataset.image_shape, latent_dim=args.latent_dim, num_classes=dataset.num_classes if args.conditional else 0,
        g_width=args.g_width, d_width=args.d_width, loss=args.loss, lr_g=args.lr_g, lr_d=args.lr_d,
        betas=args.betas, d_steps=args.d_steps, gp_weight=args.gp_weight, r1_gamma=args.r1_gamma, r1_every=args.r1_every,
        spectral_norm=args.spectral_norm, diffaugment=args.diffaugment,
    ))


def _build_sr(args: argparse.Namespace, dataset):
    model = genlab.SR(genlab.SRConfig(
        image_shape=dataset.image_shape, scale=args.scale, variant=args.variant, channels=args.channels, blocks=args.blocks,
        residual=not args.no_residual, content_weight=args.content_weight, pixel_weight=args.pixel_weight,
        adversarial_weight=args.adversarial_weight, judge=args.judge, content_block=args.content_block, d_width=args.d_width,
        lr_d=args.lr_d,
    ))
    if args.lr is None:  # Ledig et al. train SRGAN at 1e-4; measured here (150 steps from an SRResNet): FID 155 against 212 at 1e-3
        args.lr = 1e-4 if args.variant == "srgan" else 1e-3
    if args.init_from and not args.resume:  # on --resume the checkpoint's weights win anyway
        model.copy_generator_from(genlab.load(args.init_from), where=args.init_from)
    return model


def _build_encoder(args: argparse.Namespace, dataset):
    gan = load(args.gan)
    if gan.kind != "gan":
        raise ConfigError(f"--gan {args.gan}: holds a {gan.kind} run; an encoder inverts a GAN")
    return encoder_for(gan, gan_run=str(args.gan), channels=args.channels, hidden_dim=args.hidden_dim,
                       latent_weight=args.latent_weight, image_weight=args.image_weight, feature_weight=args.feature_weight)


MODEL_BUILDERS = {"vae": _build_vae, "gan": _build_gan, "sr": _build_sr, "encoder": _build_encoder}


def cmd_sample(args: argparse.Namespace) -> int:
    options = {}
    if args.labels is not None:
        options["labels"] = [args.labels[i % len(args.labels)] for i in range(args.n)]
    if args.truncation is not None:
        options["truncation"] = args.truncation
    print(write_samples(load(args.run), args.output, n=args.n, seed=args.seed, **options))
    return 0


def _images_for(args: argparse.Namespace):
    """The dataset a reconstruct/interpolate command takes its images from."""
    name = args.data or read_run_config(args.run).get("dataset", {}).get("name")
    try:
        return load_dataset(name, split=args.split)
    except DataError as error:
        if args.data:
            raise
        raise DataError(f"cannot load the run's dataset {name!r} ({error}); pass --data NAME_OR_PATH") from None


def cmd_reconstruct(args: argparse.Namespace) -> int:
    dataset = _images_for(args)
    print(write_reconstructions(load(args.run), dataset.float_images(slice(0, args.n)), args.output))
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    model = load(args.run)
    if (args.from_image is None) != (args.to_image is None):
        raise ConfigError("give both --from and --to image files (or neither, to take images from the data)")
    if args.from_image is not None:
        if args.from_index is not None or args.to_index is not None:
            raise ConfigError("give --from/--to image files or --from-index/--to-index, not both")
        first, second = read_image_for(model, args.from_image, "--from"), read_image_for(model, args.to_image, "--to")
    else:
        dataset = _images_for(args)
        default_from, default_to = pick_pair(dataset)
        a = default_from if args.from_index is None else args.from_index
        b = default_to if args.to_index is None else args.to_index
        for option, index in (("--from-index", a), ("--to-index", b)):
            if not 0 <= index < len(dataset):
                raise DataError(f"{option} {index} is out of range for {dataset.name!r} ({len(dataset)} images)")
        first, second = dataset.float_images([a])[0], dataset.float_images([b])[0]
    encoder = load(args.encoder) if args.encoder else None
    frames = morph(model, first, second, args.steps, args.method, encoder=encoder,
                   projection_steps=args.projection_steps, progress=True)
    for path in write_morph(frames, args.output, args.gif):
        print(path)
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    strengths = parse_strengths(args.strength)  # a typo fails before any loading
    if args.direction is not None and (args.from_dir or args.to_dir):
        raise ConfigError("give --direction or --from-dir/--to-dir, not both")
    if args.direction is None and not (args.from_dir and args.to_dir):
        raise ConfigError("give --direction 'A->B' or pcK, or both --from-dir and --to-dir")
    for option in ("max_per_class", "num_images", "measure"):
        if getattr(args, option) < (0 if option == "measure" else 1):
            raise ConfigError(f"--{option.replace('_', '-')} must be >= {0 if option == 'measure' else 1}, got {getattr(args, option)}")
    model = load(args.run)
    images = [read_image_for(model, path, "--image") for path in args.image or []]
    options = {"encoder": load(args.encoder) if args.encoder else None, "steps": args.projection_steps,
               "progress": not args.no_progress}
    dataset = None
    if args.direction is not None and args.direction.strip().lower().startswith("pc") and args.direction.strip()[2:].isdigit():
        direction = principal_direction(model, parse_direction(args.direction, ())[1])
    elif args.direction is not None:
        dataset = _images_for(args)
        if dataset.labels is None or not dataset.classes:
            raise ConfigError(f"--direction {args.direction!r} names classes but {dataset.name!r} has no class names; use pcK or --from-dir/--to-dir")
        _, source, target = parse_direction(args.direction, dataset.classes)
        direction = label_direction(model, dataset, source, target, max_per_class=args.max_per_class, **options)
    else:
        direction = folder_direction(model, args.from_dir, args.to_dir, **options)
    test = _test_images(args, dataset) if (not images or args.measure) else None
    if not images:
        if test is None:
            raise ConfigError("no --image given and no test data to take images from; pass --image X.png")
        images = list(_pick(test, direction.source_class, args.num_images))
    edited = edit(model, torch.stack(images), direction, strengths, **options)
    print(save_image(edit_grid(edited, strengths), args.output))
    if args.measure and test is not None and tuple(test.image_shape) == (1, 28, 28):
        held_out = _pick(test, direction.source_class, args.measure)
        rows = measure_direction(model, held_out, direction, strengths, **options)
        print(format_measurements(rows, f"{direction.name}, {len(held_out)} {test.name!r} test images"
                                        + (f" of class {test.classes[direction.source_class]!r}" if direction.source_class is not None else "")))
    elif args.measure:
        print("(not measured: the shipped judge reads 1×28×28 test images; none were available)")
    return 0


def _test_images(args: argparse.Namespace, dataset):
    """The test split of the data the edit command's directions come from, or None where there is none."""
    name = dataset.name if dataset is not None else args.data or read_run_config(args.run).get("dataset", {}).get("name")
    try:
        return load_dataset(name, split="test")
    except (DataError, TypeError):
        return None


def _pick(dataset, label: int | None, n: int) -> torch.Tensor:
    """The first ``n`` images of class ``label`` (of any class when None) as floats."""
    if label is not None and dataset.labels is not None:
        index = (dataset.labels == label).nonzero().flatten()[:n]
    else:
        index = torch.arange(min(n, len(dataset)))
    return dataset.float_images(index)


def cmd_upscale(args: argparse.Namespace) -> int:
    path, before, after, note = upscale_file(load(args.run), args.image, args.output, args.tile, args.overlap)
    if note:
        print(f"note: {note}", file=sys.stderr)
    print(f"{path} ({before[0]}×{before[1]} → {after[0]}×{after[1]})")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    if args.action == "list":
        for entry in list_datasets():
            print(f"{entry['name']:<20} {entry.get('description', '')}  [{entry.get('location', '')}]")
    else:
        print(json.dumps(dataset_info(args.name), indent=2, default=str))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    written = run_demo(args.out, epochs=args.epochs, gan_epochs=args.gan_epochs, seed=args.seed)
    print(f"\nThe demo wrote to {Path(args.out).resolve()}:")
    for name, path in written.items():
        print(f"  {name:<16} {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    if (args.run is None) == (args.images is None):
        raise ConfigError("give either a run directory or --images DIR, not " + ("both" if args.run else "neither"))
    metrics = parse_metrics(args.metrics)  # a typo fails before any loading
    dataset = load_dataset(args.data, split=args.split)
    options = {"judge": args.judge, "features": args.features, "seed": args.seed, "batch_size": args.batch_size,
               "progress": not args.no_progress}
    if args.images is not None:
        results = evaluate_images(args.images, dataset, metrics, args.num_samples, **options)
        subject = args.images
    else:
        results = evaluate(load(args.run), dataset, metrics, args.num_samples, **options)
        subject = args.run
    print(f"{subject} against {dataset.name!r} ({args.split}), {args.features} features:")
    print(format_results(results))
    if args.json:
        with atomic_write(args.json) as stream:
            stream.write((json.dumps({"subject": str(subject), "data": dataset.name, "split": args.split,
                                      "features": args.features, "results": _finite(results)}, indent=2) + "\n").encode())
        print(f"Results written to {args.json}")
    return 0


def _finite(results: dict[str, float]) -> dict:
    """JSON has no NaN/inf: write them as strings."""
    return {key: value if math.isfinite(value) else str(value) for key, value in results.items()}


def cmd_compare(args: argparse.Namespace) -> int:
    dataset = load_dataset(args.data, split=args.split)
    results = compare(args.runs, dataset, args.out, num_samples=args.num_samples, judge=args.judge,
                      features=args.features, seed=args.seed, progress=not args.no_progress)
    print("\n" + results["verdict"])
    print(f"\nReport written to {Path(args.out).resolve()}: report.md, report.html, results.json")
    return 0


def cmd_judge(args: argparse.Namespace) -> int:

    train_set = load_dataset(args.data, split=args.split)
    spec = DATASETS.get(args.data)  # a folder or .npz is one set: no test split to score on
    test_set = load_dataset(args.data, split="test") if spec and "test" in spec.splits and args.split != "test" else None
    options = {key: value for key, value in (("epochs", args.epochs), ("batch_size", args.batch_size)) if value is not None}
    judge = train_judge(train_set, args.out, seed=args.seed, progress=not args.no_progress, test_dataset=test_set, **options)
    if test_set is not None:
        try:
            accuracy = json.loads((Path(args.out) / "judge.json").read_text())["test_accuracy"]
        except (OSError, ValueError, KeyError):
            accuracy = judge_accuracy(judge, test_set)
        print(f"Judge test accuracy on {test_set.name!r} ({len(test_set)} images): {accuracy:.4f}")
    else:
        print(f"Judge training accuracy on {train_set.name!r} (no test split to score on): "
              f"{judge_accuracy(judge, train_set):.4f}")
    print(f"Judge written to {args.out}; use it with --judge {args.out}")
    return 0


def cmd_inpaint(args: argparse.Namespace) -> int:
    if (args.image is None) == (args.data is None):
        raise ConfigError("give either --image FILE or --data NAME, not " + ("both" if args.image else "neither"))
    model = load(args.run) if args.run else None
    method = resolve_method(model, args.method)
    labels = None
    if args.image is not None:
        images = read_image_for(model, args.image, "--image").unsqueeze(0)
    else:
        if args.n < 1:
            raise ConfigError(f"-n must be >= 1, got {args.n}")
        dataset = load_dataset(args.data, split=args.split)
        images = dataset.float_images(slice(0, args.n))
        if getattr(getattr(model, "config", None), "num_classes", 0) and dataset.labels is not None:
            labels = dataset.labels[:args.n]
    if args.labels is not None:
        labels = torch.tensor([args.labels[i % len(args.labels)] for i in range(len(images))])
    mask = parse_mask(args.mask, images.shape, seed=args.seed)
    options = {} if args.restarts is None else {"restarts": args.restarts}
    completed = inpaint(model, images, mask, method, blend=args.blend, steps=args.steps, seed=args.seed, labels=labels,
                        progress=not args.no_progress, **options)
    picture = comparison_picture(images, mask, completed, nrow=min(8, len(images)))
    save_image(picture, args.output, scale=4 if len(images) == 1 else 2)
    hidden = 100 * (1 - float(mask.mean()))
    print(f"{args.output}: original | masked | completed ({len(images)} image(s), {hidden:.0f}% hidden, method {method})")
    return 0


COMMANDS = {"evaluate": cmd_evaluate, "compare": cmd_compare, "judge": cmd_judge, "train": cmd_train, "sample": cmd_sample, "reconstruct": cmd_reconstruct, "interpolate": cmd_interpolate, "edit": cmd_edit, "upscale": cmd_upscale,
            "data": cmd_data, "demo": cmd_demo, "inpaint": cmd_inpaint}

if __name__ == "__main__":
    sys.exit(main())
