"""Inversion, measured: how well each way of finding a code reconstructs real images, and at what cost;
plus what a class-to-class edit direction does, measured by the judge.

On N (default 200) Fashion-MNIST test images (the first N; 1 torch thread), reconstruction PSNR and SSIM
(genlab.metrics.psnr/ssim), the judge's agreement with the true class, and seconds per image of:

- VAE: the VAE's own reconstruction, decode(μ(x));
- VAE + projector: μ(x) refined by the projector on the VAE's decoder (``project(vae, x, init="encoder")``);
- GAN projector: ``project(gan, x, init="mean")`` (Adam on z from the prior mean);
- GAN encoder: G(E(x)) with the learned encoder alone (Zhu et al. 2016's learned projection);
- GAN hybrid: E(x) refined by the projector (Zhu et al. 2016's hybrid), with as many steps and with fewer.

All projector rows use ``project``'s defaults (lr 0.05, pixel 1, judge features 0.1, prior 1e-3, no D term),
every image of a row optimised in one batch; seconds per image = the row's wall time / N.
Then the direction "Sneaker->Ankle boot" (mean code of 500 training ankle boots − mean code of 500
training sneakers), applied at several strengths to the first N test sneakers, for the VAE (codes μ(x)) and
the GAN (codes from the encoder for the direction; hybrid codes for the edited images), measured with
``genlab.tools.editing.measure_direction``: the judge's flip rate to "Ankle boot" and the judge-feature distance
to the strength-0 image.

The runs it reads, and how each was made:

    # VAE: the "genlab VAE" contender of benchmarks/vae_vs_gan.py (600 s on full Fashion-MNIST, 1 thread)
    python -m benchmarks.vae_vs_gan --only "genlab VAE" --work-dir runs/vvg
    # GAN: the unconditional defaults, 10 epochs (64 min on 1 busy thread)
    genlab train gan --data fashion-mnist --epochs 10 --out runs/gan-fmnist
    # GAN encoder: 600 s of training on 1 thread, batch 64, Adam 1e-3 cosine-annealed to 0 by the 600 s
    python -m benchmarks.inversion --train-encoder runs/gan-encoder --gan runs/gan-fmnist --seconds 600

    python -m benchmarks.inversion --vae runs/vvg/genlab_VAE --gan runs/gan-fmnist \\
        --encoder runs/gan-encoder --pictures docs/images          # about 10 min on 1 busy thread

Results: benchmarks/results/inversion.{json,md}; with --pictures, DIR/inversion.png (a column per method)
and DIR/edits.png (the VAE's sneaker → ankle boot edits).
"""
from __future__ import annotations

import argparse
import functools
import os
import time
from pathlib import Path
from typing import Any

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.inversion", description=__doc__.split("\n\n")[0])
    parser.add_argument("--vae", help="VAE run directory")
    parser.add_argument("--gan", help="GAN run directory")
    parser.add_argument("--encoder", help="GAN-encoder run directory (of --gan)")
    parser.add_argument("-n", "--num-images", type=int, default=200, help="test images (default 200)")
    parser.add_argument("--steps", type=int, default=200, help="projector steps (default 200)")
    parser.add_argument("--short-steps", type=int, default=50, help="the hybrid's shorter run (default 50)")
    parser.add_argument("--direction", default="Sneaker->Ankle boot", help="the measured edit direction")
    parser.add_argument("--pictures", default=None, metavar="DIR", help="also write inversion.png and edits.png here")
    parser.add_argument("--name", default="inversion", help="results file name (default inversion)")
    parser.add_argument("--train-encoder", default=None, metavar="OUT", help="instead: train a GAN encoder for --gan into OUT")
    parser.add_argument("--seconds", type=float, default=600.0, help="--train-encoder: training time budget (default 600)")
    parser.add_argument("--rerender", default=None, metavar="JSON", help="instead: rewrite the Markdown of an earlier results file")
    args = parser.parse_args(argv)
    if args.train_encoder is None and args.rerender is None and not (args.vae and args.encoder):
        parser.error("--vae and --encoder are needed (or --train-encoder OUT to make the encoder)")
    if args.num_images < 1 or args.steps < 1 or args.short_steps < 1:
        parser.error("--num-images, --steps and --short-steps must be >= 1")
    return args


def train_gan_encoder(gan_run: str, out_dir: str, seconds: float) -> None:
    """The GAN encoder the results use: ``train_encoder`` with these settings on full Fashion-MNIST."""
    import genlab
    from genlab.tools.inversion import train_encoder

    train = genlab.load_dataset("fashion-mnist", split="train")
    train_encoder(gan_run, train, genlab.TrainConfig(
        epochs=10, max_seconds=seconds, batch_size=64, lr=1e-3, lr_schedule="cosine", seed=0, out_dir=out_dir,
        num_sample_images=0, log_every=50))


def reconstruction_scores(name: str, images: Any, targets: Any, labels: Any, seconds: float, judge: Any) -> dict[str, Any]:
    from genlab.metrics import psnr, ssim

    p, s = psnr(images, targets), ssim(images, targets)
    return {"method": name, "psnr_db": float(p.mean()), "psnr_db_median": float(p.median()), "ssim": float(s.mean()),
            "judge_class_kept": float((judge.predict(images) == labels).float().mean()),
            "seconds_per_image": seconds / len(targets)}


def timed(function: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def run(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """Returns (results, pictures' tensors)."""
    import torch

    import genlab
    from genlab.tools.editing import edit, label_direction, measure_direction, parse_direction
    from genlab.tools.inversion import project

    vae, gan, encoder = genlab.load(args.vae), genlab.load(args.gan), genlab.load(args.encoder)
    judge = genlab.load_judge()
    test = genlab.load_dataset("fashion-mnist", split="test")
    train = genlab.load_dataset("fashion-mnist", split="train")
    x, labels = test.float_images(slice(0, args.num_images)), test.labels[: args.num_images]
    rows, outputs = [], {"target": x}

    def add(key: str, name: str, make: Any) -> None:
        images, seconds = timed(make)
        images = images.detach()
        outputs[key] = images
        rows.append(reconstruction_scores(name, images, x, labels, seconds, judge))
        print(f"{name}: PSNR {rows[-1]['psnr_db']:.2f} dB, SSIM {rows[-1]['ssim']:.3f}, "
              f"{rows[-1]['seconds_per_image']:.4f} s/image", flush=True)

    project(gan, x[:2], steps=2, judge=judge, progress=False)  # warm-up, untimed (first-call set-up)
    with torch.no_grad():
        add("VAE", "VAE", lambda: vae.reconstruct(x))
    add("VAE+proj", f"VAE + projector ({args.steps} steps)", lambda: project(vae, x, init="encoder", steps=args.steps, judge=judge).images)
    add("projector", f"GAN projector ({args.steps} steps, from the prior mean)",
        lambda: project(gan, x, init="mean", steps=args.steps, judge=judge).images)
    with torch.no_grad():
        add("encoder", "GAN encoder", lambda: encoder.reconstruct(x))
    add("hybrid short", f"GAN hybrid (encoder + {args.short_steps} steps)",
        lambda: project(gan, x, init="encoder", encoder=encoder, steps=args.short_steps, judge=judge).images)
    add("hybrid", f"GAN hybrid (encoder + {args.steps} steps)",
        lambda: project(gan, x, init="encoder", encoder=encoder, steps=args.steps, judge=judge).images)

    # ----- the edit direction, measured on held-out images of its source class -----
    _, source, target = parse_direction(args.direction, test.classes)
    held_out = test.float_images((test.labels == source).nonzero().flatten()[: args.num_images])
    edits, edit_pictures = {}, {}
    for name, model, options in (("VAE", vae, {}),
                                 ("GAN", gan, {"encoder": encoder, "steps": 0})):
        (direction, seconds) = timed(functools.partial(label_direction, model, train, source, target, max_per_class=500, **options))
        codes_options = {} if name == "VAE" else {"encoder": encoder, "steps": args.steps}
        with torch.enable_grad():
            from genlab.tools.inversion import invert

            codes = invert(model, held_out, **codes_options)
        measured = measure_direction(model, codes, direction, STRENGTHS, judge=judge)
        edits[name] = {"direction": direction.name, "codes_for_direction": "μ(x)" if name == "VAE" else "E(x)",
                       "codes_of_edited_images": "μ(x)" if name == "VAE" else f"hybrid, {args.steps} steps",
                       "direction_norm": float(direction.vector.norm()), "direction_seconds": seconds,
                       "num_images": len(held_out), "rows": measured}
        edit_pictures[name] = edit(model, codes[:8], direction, STRENGTHS)
        print(f"edit {name}: " + ", ".join(f"{r['strength']:g}: {r['flip_rate']:.2f}" for r in measured), flush=True)
    results = {"settings": dict(vars(args)), "reconstruction": rows, "edits": edits,
               "strengths": list(STRENGTHS)}
    return results, {"reconstructions": outputs, "edits": edit_pictures}


def markdown(results: dict[str, Any]) -> str:
    settings = results["settings"]
    lines = [
        "# Inversion: reconstructing real images through a VAE and a GAN",
        "",
        f"The first {settings['num_images']} Fashion-MNIST test images; runs: VAE `{settings['vae']}`, GAN "
        f"`{settings['gan']}`, GAN encoder `{settings['encoder']}`. Projector rows: `genlab.tools.inversion.project` "
        "defaults (Adam lr 0.05 with warm-up and cosine ramp-down, pixel MSE + 0.1 × judge-feature distance + "
        "1e-3 × ‖z‖²/d), all images of a row in one batch; seconds per image = wall time of the row / N "
        "(1 torch thread, on a machine shared with other jobs: compare within this table only). "
        "\"judge class kept\": the fraction of reconstructions the judge puts in the image's true class.",
        "",
        "| method | PSNR (dB) | median PSNR | SSIM | judge class kept | seconds / image |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines.extend(f"| {r['method']} | {r['psnr_db']:.2f} | {r['psnr_db_median']:.2f} | {r['ssim']:.3f} | "
                 f"{r['judge_class_kept']:.2f} | {r['seconds_per_image']:.4f} |" for r in results["reconstruction"])
    for name, entry in results["edits"].items():
        lines += [
            "",
            f"## Edit direction {entry['direction']}, {name}",
            "",
            f"Direction: mean code of 500 training ankle boots − mean code of 500 training sneakers, codes "
            f"{entry['codes_for_direction']} (‖v‖ = {entry['direction_norm']:.2f}); applied to the codes "
            f"({entry['codes_of_edited_images']}) of {entry['num_images']} test sneakers. Flip rate: the fraction "
            "the judge calls \"Ankle boot\"; distance: mean Euclidean distance of judge features (128-D) to the "
            "strength-0 image, over all images and over those not flipped.",
            "",
            "| strength | flip rate | feature distance | … of the images not flipped |",
            "|---:|---:|---:|---:|",
        ]
        lines += [f"| {r['strength']:g} | {r['flip_rate']:.3f} | {r['feature_distance']:.2f} | "
                  f"{r['feature_distance_kept']:.2f} |" for r in entry["rows"]]
    return "\n".join(lines)


def write_pictures(pictures: dict[str, Any], directory: str) -> None:
    import genlab
    from genlab.io.grids import save_image
    from genlab.tools.editing import edit_grid, labelled_columns

    outputs = pictures["reconstructions"]
    test = genlab.load_dataset("fashion-mnist", split="test")
    index, seen = [], set()
    for i, label in enumerate(test.labels[: len(outputs["target"])].tolist()):  # the first image of each class, 8 at most
        if label not in seen and len(index) < 8:
            seen.add(label)
            index.append(i)
    columns = ["target", "VAE", "projector", "encoder", "hybrid"]
    picture = labelled_columns([outputs[key][index] for key in columns], columns)
    save_image(picture, Path(directory) / "inversion.png")
    save_image(edit_grid(pictures["edits"]["VAE"][:, :6], STRENGTHS), Path(directory) / "edits.png")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from benchmarks import harness

    if args.rerender:
        print(harness.rerender(args.rerender, lambda payload: markdown(payload["results"])).read_text())
        return 0
    if args.gan is None:
        raise SystemExit("--gan RUN is needed")
    if args.train_encoder:
        train_gan_encoder(args.gan, args.train_encoder, args.seconds)
        return 0

    machine = harness.machine_info()
    started = time.perf_counter()
    results, pictures = run(args)
    results["wall_seconds_total"] = time.perf_counter() - started
    machine["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    if args.pictures:
        write_pictures(pictures, args.pictures)
    harness.publish(args.name, results, markdown(results), machine=machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
