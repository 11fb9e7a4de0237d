"""`genlab train vae|gan|encoder|sr`: the model and training options are built from the config dataclasses
(VAEConfig, GANConfig, GANEncoderConfig, SRConfig, TrainConfig), so a new field is a new option."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

import genlab
from genlab.cli.options import add_config_options, add_data_options, config_values, subparser
from genlab.config import TrainConfig
from genlab.data import Dataset
from genlab.errors import ConfigError, DataError
from genlab.models.gan.encoder import GANEncoderConfig, encoder_for
from genlab.models.gan.model import GANConfig
from genlab.models.sr.model import SRConfig
from genlab.models.vae import VAEConfig

# Fields that are no option, and where their value comes from instead (tests/test_cli.py checks that every
# other field of these configs is an option of `genlab train`).
NOT_OPTIONS = {
    "image_shape": "the data",
    "num_classes": "--conditional and the data's classes",
    "gan": "the --gan run",
    "gan_run": "the --gan run",
}
TRAIN_FLAGS = {"out_dir": ["-o", "--out"], "ema_decay": ["--ema", "--ema-decay"]}
# GANs train with lr_g and lr_d: TrainConfig.lr would be an option that does nothing.
TRAIN_SKIP = {"gan": ("lr",)}
# GAN, encoder and SR runs are measured and documented at batch 64 (DCGAN's recipe; see GANConfig and
# SRConfig), the VAE at TrainConfig's 128.
BATCH_SIZES = {"vae": 128, "gan": 64, "encoder": 64, "sr": 64}
KINDS = {
    "vae": (VAEConfig, "a convolutional variational autoencoder"),
    "gan": (GANConfig, "a DCGAN (images) or MLP GAN (2-D points), optionally class-conditional"),
    "encoder": (GANEncoderConfig, "a learned inverse (image → z) for a trained GAN's frozen generator"),
    "sr": (SRConfig, "super-resolution: SRResNet or SRGAN, trained on any image data (low-res made by box downsampling)"),
}


def add_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train a model")
    kinds = train.add_subparsers(dest="kind", required=True, metavar="MODEL", parser_class=subparser)
    for kind, (config_class, description) in KINDS.items():
        parser = kinds.add_parser(kind, help=description, description=description[0].upper() + description[1:] + ".")
        if kind == "encoder":
            parser.add_argument("--gan", required=True, metavar="RUN",
                                help="the GAN run to invert (its weights are copied into the new run)")
        add_data_options(parser)
        model = parser.add_argument_group("model")
        if kind == "gan":
            model.add_argument("--conditional", action="store_true",
                               help="condition on the dataset's labels (conditional BN in G, projection D)")
        add_config_options(model, config_class, skip=NOT_OPTIONS)
        training = parser.add_argument_group("training")
        defaults, helps = {"batch_size": BATCH_SIZES[kind]}, {}
        if kind == "sr":  # SR's rate depends on the variant: set in _build_sr when not given
            defaults["lr"] = None
            helps["lr"] = "G's Adam learning rate (default: 1e-3 for srresnet, 1e-4 for srgan)"
            model.add_argument("--init-from", default=None, metavar="RUN",
                               help="start G from this SR run's generator (e.g. SRGAN from an SRResNet)")
        add_config_options(training, TrainConfig, skip=TRAIN_SKIP.get(kind, ()), flags=TRAIN_FLAGS, defaults=defaults,
                           helps=helps, required=("out_dir",))
        training.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
        training.add_argument("--dry-run", action="store_true", help="two steps only: check that everything fits together")
        parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    dataset = genlab.load_dataset(args.data, split=args.split, image_size=args.image_size)
    torch.manual_seed(args.seed)  # weight initialisation
    model = BUILDERS[args.kind](args, dataset)
    values = config_values(TrainConfig, args, NOT_OPTIONS)
    if args.dry_run:
        values["max_steps"] = 2
    genlab.train(model, dataset, TrainConfig(**values), resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one line from rank 0 only
        print(f"Run written to {args.out_dir}: {', '.join(written_files(args.out_dir))}")
    return 0


def written_files(run_dir: str | os.PathLike) -> list[str]:
    """What the run folder holds, the usual files first (folders with a trailing /); only what exists."""
    usual = ["config.json", "model.safetensors", "metrics.csv", "samples", "loss.png", "monitor.png"]
    present = {path.name: path for path in Path(run_dir).iterdir() if not path.name.startswith(".")}
    order = [name for name in usual if name in present] + sorted(set(present) - set(usual))
    return [name + "/" if present[name].is_dir() else name for name in order]


def _build_vae(args: argparse.Namespace, dataset: Dataset):
    return genlab.VAE(VAEConfig(image_shape=dataset.image_shape, **config_values(VAEConfig, args, NOT_OPTIONS)))


def _build_gan(args: argparse.Namespace, dataset: Dataset):
    if args.conditional and dataset.labels is None:
        raise DataError(f"--conditional needs a labelled dataset; {dataset.name!r} has no labels")
    return genlab.GAN(GANConfig(image_shape=dataset.image_shape, num_classes=dataset.num_classes if args.conditional else 0,
                                **config_values(GANConfig, args, NOT_OPTIONS)))


def _build_sr(args: argparse.Namespace, dataset: Dataset):
    model = genlab.SR(SRConfig(image_shape=dataset.image_shape, **config_values(SRConfig, args, NOT_OPTIONS)))
    if args.lr is None:  # Ledig et al. train SRGAN at 1e-4; measured here (150 steps from an SRResNet): FID 155 against 212 at 1e-3
        args.lr = 1e-4 if args.variant == "srgan" else 1e-3
    if args.init_from and not args.resume:  # on --resume the checkpoint's weights win anyway
        model.copy_generator_from(genlab.load(args.init_from), where=args.init_from)
    return model


def _build_encoder(args: argparse.Namespace, dataset: Dataset):
    gan = genlab.load(args.gan)
    if gan.kind != "gan":
        raise ConfigError(f"--gan {args.gan}: holds a {gan.kind} run; an encoder inverts a GAN")
    return encoder_for(gan, gan_run=str(args.gan), **config_values(GANEncoderConfig, args, NOT_OPTIONS))


BUILDERS = {"vae": _build_vae, "gan": _build_gan, "sr": _build_sr, "encoder": _build_encoder}
