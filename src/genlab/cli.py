"""The `genlab` command: a thin layer over the public API.

Errors caused by input (files, options, checkpoints) print one line and exit with code 2.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from genlab.config import TrainConfig
from genlab.errors import DataError, GenlabError
from genlab.models.gan import GANConfig

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
  genlab data list
  genlab judge train --data fashion-mnist -o runs/judge            # the classifier metrics see images through
  genlab evaluate runs/gan --data fashion-mnist --json gan.json     # FID, KID, precision/recall, ...
  genlab evaluate runs/vae --data fashion-mnist --metrics fid,likelihood -n 2000
  genlab evaluate --images my_samples/ --data fashion-mnist         # images made by anything
  genlab compare runs/vae runs/gan --data fashion-mnist -o report/  # the VAE-vs-GAN table, measured
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
    evaluate.add_argument("--metrics", default=None, metavar="A,B", help="comma-separated metric names (default: all that apply)")
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
    group.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="bf16 runs forward passes under autocast")
    group.add_argument("--log-every", type=int, default=50, metavar="STEPS", help="steps between metric rows")
    group.add_argument("--checkpoint-every", type=int, default=0, metavar="STEPS", help="steps between checkpoints (0: every epoch)")
    group.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    group.add_argument("--dry-run", action="store_true", help="two steps only: check that everything fits together")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")


def _metric_help() -> str:
    from genlab.evaluation import describe_metrics

    return describe_metrics()


def _add_reference_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="the real data to measure against (name, folder or .npz)")
    parser.add_argument("--split", default="test", help="which split of a named dataset")
    parser.add_argument("--judge", default=None, metavar="DIR",
                        help="judge run from `genlab judge train` (default: the shipped one, 1×28×28 Fashion-MNIST only)")
    parser.add_argument("--features", choices=["judge", "inception"], default="judge",
                        help="feature space of fid/kid/prdc/smoothness; inception needs torch-fidelity and its weights")


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
    import genlab

    dataset = genlab.load_dataset(args.data, split=args.split, image_size=args.image_size)
    torch.manual_seed(args.seed)  # weight initialisation
    model = MODEL_BUILDERS[args.kind](args, dataset)
    config = genlab.TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=getattr(args, "lr", 1e-3), seed=args.seed, out_dir=args.out,
        device=args.device, precision=args.precision, ema_decay=args.ema, log_every=args.log_every,
        lr_schedule=args.lr_schedule, lr_decay_start=args.lr_decay_start,
        checkpoint_every=args.checkpoint_every, max_steps=2 if args.dry_run else None, progress=not args.no_progress,
    )
    genlab.train(model, dataset, config, resume=args.resume)
    print(f"Run written to {args.out}: config.json, model.safetensors, metrics.csv, samples/, loss.png")
    return 0


def _build_vae(args: argparse.Namespace, dataset):
    import genlab

    return genlab.VAE(genlab.VAEConfig(
        image_shape=dataset.image_shape, latent_dim=args.latent_dim, channels=args.channels, hidden_dim=args.hidden_dim,
        likelihood=args.likelihood, binarize=args.binarize, gaussian_sigma=args.gaussian_sigma,
        learn_sigma=args.learn_sigma, beta=args.beta,
    ))


def _build_gan(args: argparse.Namespace, dataset):
    import genlab

    if args.conditional and dataset.labels is None:
        raise DataError(f"--conditional needs a labelled dataset; {dataset.name!r} has no labels")
    return genlab.GAN(genlab.GANConfig(
        image_shape=dataset.image_shape, latent_dim=args.latent_dim, num_classes=dataset.num_classes if args.conditional else 0,
        g_width=args.g_width, d_width=args.d_width, loss=args.loss, lr_g=args.lr_g, lr_d=args.lr_d,
        betas=args.betas, d_steps=args.d_steps, gp_weight=args.gp_weight, r1_gamma=args.r1_gamma, r1_every=args.r1_every,
        spectral_norm=args.spectral_norm, diffaugment=args.diffaugment,
    ))


MODEL_BUILDERS = {"vae": _build_vae, "gan": _build_gan}


def cmd_sample(args: argparse.Namespace) -> int:
    from genlab import load
    from genlab.visuals import write_samples

    options = {}
    if args.labels is not None:
        options["labels"] = [args.labels[i % len(args.labels)] for i in range(args.n)]
    if args.truncation is not None:
        options["truncation"] = args.truncation
    print(write_samples(load(args.run), args.output, n=args.n, seed=args.seed, **options))
    return 0


def _images_for(args: argparse.Namespace):
    """The dataset a reconstruct/interpolate command takes its images from."""
    from genlab.checkpoint import read_run_config
    from genlab.data import load_dataset

    name = args.data or read_run_config(args.run).get("dataset", {}).get("name")
    try:
        return load_dataset(name, split=args.split)
    except DataError as error:
        if args.data:
            raise
        raise DataError(f"cannot load the run's dataset {name!r} ({error}); pass --data NAME_OR_PATH") from None


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from genlab import load
    from genlab.visuals import write_reconstructions

    dataset = _images_for(args)
    print(write_reconstructions(load(args.run), dataset.float_images(slice(0, args.n)), args.output))
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from genlab import load
    from genlab.demo import pick_pair
    from genlab.visuals import morph, write_morph

    dataset = _images_for(args)
    default_from, default_to = pick_pair(dataset)
    a = default_from if args.from_index is None else args.from_index
    b = default_to if args.to_index is None else args.to_index
    for option, index in (("--from-index", a), ("--to-index", b)):
        if not 0 <= index < len(dataset):
            raise DataError(f"{option} {index} is out of range for {dataset.name!r} ({len(dataset)} images)")
    frames = morph(load(args.run), dataset.float_images([a])[0], dataset.float_images([b])[0], args.steps, args.method)
    for path in write_morph(frames, args.output, args.gif):
        print(path)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from genlab.data import dataset_info, list_datasets

    if args.action == "list":
        for entry in list_datasets():
            print(f"{entry['name']:<20} {entry.get('description', '')}  [{entry.get('location', '')}]")
    else:
        print(json.dumps(dataset_info(args.name), indent=2, default=str))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from genlab.demo import run_demo

    written = run_demo(args.out, epochs=args.epochs, gan_epochs=args.gan_epochs, seed=args.seed)
    print(f"\nThe demo wrote to {Path(args.out).resolve()}:")
    for name, path in written.items():
        print(f"  {name:<16} {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from genlab.data import load_dataset
    from genlab.errors import ConfigError
    from genlab.evaluation import evaluate, evaluate_images, format_results, parse_metrics

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
        from genlab import load

        results = evaluate(load(args.run), dataset, metrics, args.num_samples, **options)
        subject = args.run
    print(f"{subject} against {dataset.name!r} ({args.split}), {args.features} features:")
    print(format_results(results))
    if args.json:
        from genlab.fileio import atomic_write

        with atomic_write(args.json) as stream:
            stream.write((json.dumps({"subject": str(subject), "data": dataset.name, "split": args.split,
                                      "features": args.features, "results": _finite(results)}, indent=2) + "\n").encode())
        print(f"Results written to {args.json}")
    return 0


def _finite(results: dict[str, float]) -> dict:
    """JSON has no NaN/inf: write them as strings."""
    return {key: value if math.isfinite(value) else str(value) for key, value in results.items()}


def cmd_compare(args: argparse.Namespace) -> int:
    from genlab.comparison import compare
    from genlab.data import load_dataset

    dataset = load_dataset(args.data, split=args.split)
    results = compare(args.runs, dataset, args.out, num_samples=args.num_samples, judge=args.judge,
                      features=args.features, seed=args.seed, progress=not args.no_progress)
    print("\n" + results["verdict"])
    print(f"\nReport written to {Path(args.out).resolve()}: report.md, report.html, results.json")
    return 0


def cmd_judge(args: argparse.Namespace) -> int:
    from genlab.data import load_dataset
    from genlab.data.registry import DATASETS
    from genlab.models.judge import judge_accuracy, train_judge


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


COMMANDS = {"evaluate": cmd_evaluate, "compare": cmd_compare, "judge": cmd_judge, "train": cmd_train, "sample": cmd_sample, "reconstruct": cmd_reconstruct, "interpolate": cmd_interpolate,
            "data": cmd_data, "demo": cmd_demo}

if __name__ == "__main__":
    sys.exit(main())
