"""`genlab train vae|gan|encoder|sr|pix2pix|cyclegan|autoencoder|diffusion`: the model and training options are built
from the config dataclasses (VAEConfig, GANConfig, GANEncoderConfig, SRConfig, Pix2PixConfig, CycleGANConfig,
AutoencoderConfig, DiffusionConfig, TrainConfig), so a new field is a new option.

With --resume, the training and data options left off the command line keep the run's saved values (its
config.json), not the defaults: their defaults are wrapped in :class:`NotGiven` so ``run`` can tell them
from the same value typed out. The library then refuses any change outside ``RESUMABLE``.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
from pathlib import Path
from typing import Any

import torch

import genlab
from genlab.cli.options import IMAGE_SIZES, add_config_options, add_data_options, bounded_int, config_values, subparser
from genlab.config import MAX_SEED, TrainConfig, check_size
from genlab.data import Dataset
from genlab.data.domains import load_domains
from genlab.data.pairs import load_folder_pairs, load_side_by_side, make_pairs
from genlab.errors import CheckpointError, ConfigError, DataError
from genlab.io.checkpoints import STATE_FILE, read_run_config
from genlab.models.autoencoder import Autoencoder, AutoencoderConfig
from genlab.models.diffusion import Diffusion, DiffusionConfig
from genlab.models.gan.encoder import GANEncoderConfig, encoder_for
from genlab.models.gan.model import GANConfig
from genlab.models.sr.model import SRConfig
from genlab.models.translation import CycleGAN, CycleGANConfig, Pix2Pix, Pix2PixConfig
from genlab.models.vae import VAEConfig
from genlab.training.loop import RESUMABLE, TrainingInterrupted

# Fields that are no option, and where their value comes from instead (tests/test_cli.py checks that every
# other field of these configs is an option of `genlab train`).
NOT_OPTIONS = {
    "image_shape": "the data",
    "num_classes": "--conditional and the data's classes",
    "gan": "the --gan run",
    "gan_run": "the --gan run",
    "source_channels": "the data",
    "first_stage": "the --first-stage run",
    "first_stage_run": "the --first-stage run",
    "scale_factor": "the --first-stage run's latents of the data (1/std)",
}
TRAIN_FLAGS = {"out_dir": ["-o", "--out"], "ema_decay": ["--ema", "--ema-decay"]}
MODEL_FLAGS = {"gan": {"architecture": ["--architecture", "--arch"]}}
# GANs train with lr_g and lr_d: TrainConfig.lr would be an option that does nothing.
TRAIN_SKIP = {"gan": ("lr",), "pix2pix": ("lr",), "cyclegan": ("lr",)}
# GAN, encoder and SR runs are measured and documented at batch 64 (DCGAN's recipe; see GANConfig and
# SRConfig), the VAE at TrainConfig's 128. The translation papers train on 1 to 10 images a step; batches of
# 64 (pix2pix) and 16 (CycleGAN: two generators and two Ds per step) keep a CPU busy at 28–64 px.
BATCH_SIZES = {"vae": 128, "gan": 64, "encoder": 64, "sr": 64, "pix2pix": 64, "cyclegan": 16, "autoencoder": 64, "diffusion": 128}
# CycleGAN's schedule (Zhu et al. §4): the rate constant for the first half, then linearly to 0.
# GANs sample from an exponential moving average of their weights (Yazıcı et al. 2019, "The Unusual
# Effectiveness of Averaging in GAN Training"); 0.99 (a ~100-step horizon) pays from the first few hundred
# steps: conditional GAN on fashion-mnist-mini, judge label accuracy after ~950 steps 0.84 with it, 0.81 without.
# Diffusion samples from an EMA too (Ho et al. 2020 use 0.9999 over 800k steps); 0.999, a ~1,000-step horizon, suits
# runs of a few thousand steps on a CPU.
TRAIN_DEFAULTS = {"cyclegan": {"lr_schedule": "linear", "lr_decay_start": 0.5}, "gan": {"ema_decay": 0.99},
                  "diffusion": {"ema_decay": 0.999}}
CONDITIONAL_HELP = {
    "vae": "condition on the dataset's labels: a conditional VAE (one-hot label into the encoder and the decoder)",
    "gan": "condition on the dataset's labels (labels into G and D, conditional BN in G, projection D)",
    "diffusion": "condition on the dataset's labels (a class embedding, dropped with probability --label-dropout "
                 "for classifier-free guidance)",
}
KINDS = {
    "vae": (VAEConfig, "a convolutional variational autoencoder, optionally class-conditional"),
    "gan": (GANConfig, "a DCGAN, style-based (--arch style) or BigGAN-style (--arch big) GAN for images, or an MLP GAN "
                       "for 2-D points; optionally class-conditional"),
    "encoder": (GANEncoderConfig, "a learned inverse (image → z) for a trained GAN's frozen generator"),
    "sr": (SRConfig, "super-resolution: SRResNet or SRGAN, trained on any image data (low-res made by box downsampling)"),
    "pix2pix": (Pix2PixConfig, "paired image-to-image translation (U-Net + PatchGAN), on pairs made by --task or your own"),
    "cyclegan": (CycleGANConfig, "unpaired image-to-image translation between two domains (--domain-a, --domain-b)"),
    "autoencoder": (AutoencoderConfig, "the first stage of latent diffusion: a KL-regularised autoencoder with a spatial latent"),
    "diffusion": (DiffusionConfig, "denoising diffusion (DDPM, DDIM sampling) in a first stage's latent space "
                                   "(--first-stage RUN) or on the pixels (--pixel)"),
}


TRAIN_NAMES = [field.name for field in dataclasses.fields(TrainConfig)]
RESUME_HELP = ("continue the run in --out from its last checkpoint. Options left out keep the run's saved values, its data "
               "included; only these may change: " + ", ".join("--" + name.replace("_", "-") for name in RESUMABLE if name != "out_dir")
               + " (each change is written to the run's events.log and config.json); any other option that differs is refused")


def add_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train a model")
    kinds = train.add_subparsers(dest="kind", required=True, metavar="MODEL", parser_class=subparser)
    for kind, (config_class, description) in KINDS.items():
        parser = kinds.add_parser(kind, help=description, description=description[0].upper() + description[1:] + ".")
        if kind == "encoder":
            parser.add_argument("--gan", required=True, metavar="RUN",
                                help="the GAN run to invert (its weights are copied into the new run)")
        if kind == "diffusion":
            space = parser.add_mutually_exclusive_group(required=True)
            space.add_argument("--first-stage", metavar="RUN", help="latent diffusion on this autoencoder run's latents "
                               "(from genlab train autoencoder; its weights are copied into the new run)")
            space.add_argument("--pixel", action="store_true", help="diffusion on the pixels, no first stage")
        if kind == "cyclegan":
            add_domain_options(parser)
        else:
            add_data_options(parser)
        if kind == "pix2pix":
            data = next(group for group in parser._action_groups if group.title == "data")
            data.add_argument("--inputs", default=None, metavar="DIR",
                              help="--task folders: the folder of input images, matched by file name with the targets in --data")
        model = parser.add_argument_group("model")
        if kind in CONDITIONAL_HELP:
            model.add_argument("--conditional", action="store_true", help=CONDITIONAL_HELP[kind])
        add_config_options(model, config_class, skip=NOT_OPTIONS, required=("domain_a", "domain_b"), flags=MODEL_FLAGS.get(kind))
        training = parser.add_argument_group("training")
        defaults, helps = {"batch_size": BATCH_SIZES[kind], **TRAIN_DEFAULTS.get(kind, {})}, {}
        if kind == "sr":  # SR's rate depends on the variant: set in _build_sr when not given
            defaults["lr"] = None
            helps["lr"] = "G's Adam learning rate (default: 1e-3 for srresnet and rrdb, 1e-4 for srgan and esrgan)"
            model.add_argument("--init-from", default=None, metavar="RUN",
                               help="start G from this SR run's generator (e.g. SRGAN from an SRResNet)")
        added = add_config_options(training, TrainConfig, skip=TRAIN_SKIP.get(kind, ()), flags=TRAIN_FLAGS, defaults=defaults,
                                   helps=helps, required=("out_dir",))
        training.add_argument("--resume", action="store_true", help=RESUME_HELP)
        training.add_argument("--dry-run", action="store_true", help="two steps only: check that a new run fits together")
        # A switch that is off by default (store_true) needs no mark: typed, it reads True.
        wrapped = {name: NotGiven(parser.get_default(name)) for name in [*added, "data", "split"]
                   if name != "out_dir" and parser.get_default(name) is not False}
        parser.set_defaults(handler=run, wrapped_defaults=frozenset(wrapped), **wrapped)


class NotGiven:
    """An option's default, marked as not typed on the command line (shown as the plain value in --help)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        return str(self.value)

    def __repr__(self) -> str:
        return repr(self.value)

    def __bool__(self) -> bool:
        return bool(self.value)

    def __eq__(self, other: object) -> bool:
        return self.value == (other.value if isinstance(other, NotGiven) else other)

    __hash__ = None  # type: ignore[assignment]


def run(args: argparse.Namespace) -> int:
    given = given_options(args)
    if args.resume:
        keep_saved_values(args, given)
    check_size("seed", args.seed, MAX_SEED, minimum=0)  # before torch.manual_seed sees it
    dataset = LOADERS.get(args.kind, _load_images)(args)
    torch.manual_seed(args.seed)  # weight initialisation
    model = BUILDERS[args.kind](args, dataset)  # may fill in a model-specific default (SR's lr)
    values = config_values(TrainConfig, args, NOT_OPTIONS)
    if args.dry_run:
        values["max_steps"] = 2
    train_config = TrainConfig(**values)
    try:
        genlab.train(model, dataset, train_config, resume=args.resume)
    except TrainingInterrupted as stop:
        if stop.signal_name != "SIGTERM":
            raise  # Ctrl-C: main prints it and exits with 130
        print(f"genlab: {stop}", file=sys.stderr)
        return 128 + signal.SIGTERM  # 143, what a process ended by SIGTERM reports
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one line from rank 0 only
        print(f"Run written to {args.out_dir}: {', '.join(written_files(args.out_dir))}")
    return 0


def given_options(args: argparse.Namespace) -> set[str]:
    """The names of the options typed on the command line; the others get their plain defaults back in ``args``."""
    given = set()
    for name, value in vars(args).items():
        if isinstance(value, NotGiven):
            setattr(args, name, value.value)
        elif name in args.wrapped_defaults or (value is not None and value is not False):  # a switch left off reads False
            given.add(name)
    return given


def keep_saved_values(args: argparse.Namespace, given: set[str]) -> None:
    """On --resume: the run's own data and saved training options wherever the command line gave none."""
    out = Path(args.out_dir)
    if not (out / STATE_FILE).is_file():
        raise CheckpointError(f"{out}: nothing to resume ({STATE_FILE} not found); start without --resume")
    if args.dry_run:
        raise ConfigError("--dry-run tries two steps of a new run; with --resume it would end this one at step 2: leave it out")
    saved = read_run_config(out)
    data = saved.get("dataset", {})
    if "data" not in given and data.get("name"):
        args.data = data["name"]
    elif data.get("name") and not same_data(args.data, data["name"]):
        raise ConfigError(f"--data {args.data}: the run in {out} was trained on {data['name']!r} and a resumed run keeps "
                          "its data; leave --data out, or start a new run in another folder")
    shape = data.get("image_shape")
    if "image_size" not in given and isinstance(shape, list) and len(shape) == 3:
        args.image_size = (shape[1], shape[2])  # the size the run was trained at (a no-op when the data has it)
    train = saved.get("train", {})
    for name in TRAIN_NAMES:
        if name in train and hasattr(args, name) and name not in given:
            setattr(args, name, train[name])


def same_data(given: str, saved: str) -> bool:
    """The same dataset name, or two spellings of the same file or folder."""
    if given == saved:
        return True
    try:
        return os.path.samefile(Path(given).expanduser(), Path(saved).expanduser())
    except OSError:
        return False


def written_files(run_dir: str | os.PathLike) -> list[str]:
    """What the run folder holds, the usual files first (folders with a trailing /); only what exists."""
    usual = ["config.json", "model.safetensors", "metrics.csv", "samples", "loss.png", "monitor.png"]
    present = {path.name: path for path in Path(run_dir).iterdir() if not path.name.startswith(".")}
    order = [name for name in usual if name in present] + sorted(set(present) - set(usual))
    return [name + "/" if present[name].is_dir() else name for name in order]


def _num_classes(args: argparse.Namespace, dataset: Dataset) -> int:
    """--conditional: the dataset's classes (a DataError for unlabelled data); else 0."""
    if not args.conditional:
        return 0
    if dataset.labels is None:
        raise DataError(f"--conditional needs a labelled dataset; {dataset.name!r} has no labels")
    return max(dataset.num_classes, int(dataset.labels.max()) + 1) if len(dataset) else dataset.num_classes


def _build_vae(args: argparse.Namespace, dataset: Dataset):
    return genlab.VAE(VAEConfig(image_shape=dataset.image_shape, num_classes=_num_classes(args, dataset),
                                **config_values(VAEConfig, args, NOT_OPTIONS)))


def _build_gan(args: argparse.Namespace, dataset: Dataset):
    return genlab.GAN(GANConfig(image_shape=dataset.image_shape, num_classes=_num_classes(args, dataset),
                                **config_values(GANConfig, args, NOT_OPTIONS)))


def _build_sr(args: argparse.Namespace, dataset: Dataset):
    model = genlab.SR(SRConfig(image_shape=dataset.image_shape, **config_values(SRConfig, args, NOT_OPTIONS)))
    if args.lr is None:  # Ledig et al. train SRGAN at 1e-4; measured here (150 steps from an SRResNet): FID 155 against 212 at 1e-3
        args.lr = 1e-4 if args.variant in ("srgan", "esrgan") else 1e-3
    if args.init_from and not args.resume:  # on --resume the checkpoint's weights win anyway
        model.copy_generator_from(genlab.load(args.init_from), where=args.init_from)
    return model


def _build_encoder(args: argparse.Namespace, dataset: Dataset):
    gan = genlab.load(args.gan)
    if gan.kind != "gan":
        raise ConfigError(f"--gan {args.gan}: holds a {gan.kind} run; an encoder inverts a GAN")
    return encoder_for(gan, gan_run=str(args.gan), **config_values(GANEncoderConfig, args, NOT_OPTIONS))


def _build_pix2pix(args: argparse.Namespace, dataset: Dataset):
    return Pix2Pix(Pix2PixConfig(image_shape=dataset.image_shape, source_channels=dataset.source_shape[0],
                                 **config_values(Pix2PixConfig, args, NOT_OPTIONS)))


def _build_cyclegan(args: argparse.Namespace, dataset: Dataset):
    return CycleGAN(CycleGANConfig(image_shape=dataset.image_shape, source_channels=dataset.source_shape[0],
                                   **config_values(CycleGANConfig, args, NOT_OPTIONS)))


def _build_autoencoder(args: argparse.Namespace, dataset: Dataset):
    return Autoencoder(AutoencoderConfig(image_shape=dataset.image_shape, **config_values(AutoencoderConfig, args, NOT_OPTIONS)))


def _build_diffusion(args: argparse.Namespace, dataset: Dataset):
    values = {"num_classes": _num_classes(args, dataset), **config_values(DiffusionConfig, args, NOT_OPTIONS)}
    if args.pixel:
        return Diffusion(DiffusionConfig(image_shape=dataset.image_shape, **values))
    first_stage = genlab.load(args.first_stage)
    if first_stage.kind != "autoencoder":
        raise ConfigError(f"--first-stage {args.first_stage}: holds a {first_stage.kind} run; latent diffusion needs an "
                          "autoencoder run (genlab train autoencoder)")
    if tuple(first_stage.image_shape) != tuple(dataset.image_shape):
        raise ConfigError(f"--first-stage {args.first_stage}: encodes {'×'.join(map(str, first_stage.image_shape))} images, "
                          f"the data has {'×'.join(map(str, dataset.image_shape))}")
    return Diffusion.from_first_stage(first_stage, dataset, first_stage_run=str(args.first_stage), **values)


BUILDERS = {"vae": _build_vae, "gan": _build_gan, "sr": _build_sr, "encoder": _build_encoder, "pix2pix": _build_pix2pix,
            "cyclegan": _build_cyclegan, "autoencoder": _build_autoencoder, "diffusion": _build_diffusion}


# ----- training data: images, or (input, target) pairs for the translation models -----
def add_domain_options(parser: argparse.ArgumentParser) -> None:
    """CycleGAN's data: the two domains are model options (--domain-a, --domain-b, recorded in the run); these
    say which split of a named dataset and what size."""
    data = parser.add_argument_group("data")
    data.add_argument("--split", default="train", help="which split of a named dataset")
    data.add_argument("--image-size", type=bounded_int(*IMAGE_SIZES), default=None, metavar="N", help="resize images to N×N")


def _load_images(args: argparse.Namespace) -> Dataset:
    return genlab.load_dataset(args.data, split=args.split, image_size=args.image_size)


def _load_pairs(args: argparse.Namespace) -> Dataset:
    """pix2pix's pairs: made by --task from --data, or read from side-by-side files or two folders."""
    if args.inputs and args.task != "folders":
        raise ConfigError(f"--inputs gives the input folder of --task folders; with --task {args.task} leave it out")
    if args.task == "folders":
        if not args.inputs:
            raise ConfigError("--task folders needs --inputs DIR: the input images, matched by file name with the targets "
                              "in --data DIR")
        return load_folder_pairs(args.inputs, args.data, args.image_size, name=args.data)
    if args.task == "side-by-side":
        return load_side_by_side(args.data, args.image_size, direction=args.direction, name=args.data)
    return make_pairs(_load_images(args), args.task)


def _load_domains(args: argparse.Namespace) -> Dataset:
    return load_domains(args.domain_a, args.domain_b, split=args.split, image_size=args.image_size, seed=args.seed)


LOADERS = {"pix2pix": _load_pairs, "cyclegan": _load_domains}
