"""Inpainting and outpainting on Fashion-MNIST, measured: which method fills a hole best?

For each mask (center, random, left, border; ``genlab.tools.masks``) and each method of
``genlab.tools.inpainting`` (the baselines mean and nearest; vae-iterative and vae-optimize with a VAE;
gan, Yeh et al.'s semantic inpainting, with a GAN), on ``--n`` Fashion-MNIST test images:

- hole PSNR and hole SSIM against the original (``hole_psnr``/``hole_ssim``: over the hole pixels only),
  mean over images;
- FID of the completed images against all 10,000 real test images, in the shipped judge's features
  (the same ``--n`` originals give the floor, shown as "originals");
- seconds per image (wall clock of ``inpaint`` on the whole batch / n, 1 torch thread).

It also draws ``docs/images/inpainting.png``: for each mask, six test images (columns) and, top to
bottom, the masked input, each method's completion and the original.

The runs measured (both on full Fashion-MNIST, 1 thread on CPU):

    python -m benchmarks.vae_vs_gan --work-dir runs/vvg       # its genlab_VAE: VAEConfig() defaults, 600 s
    genlab train gan --data fashion-mnist --epochs 10 --out runs/gan-fmnist --no-progress   # GANConfig() defaults

    python -m benchmarks.inpainting --vae runs/vvg/genlab_VAE --gan runs/gan-fmnist --n 500

took 17 minutes on 1 torch thread of this project's 2-core machine while other jobs ran (load average ~5);
the gan method is three quarters of it (0.37 s per image), so --n 1000, the default, takes about twice that.
Results: benchmarks/results/inpainting.{json,md}.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

MASKS = ("center", "random", "left", "border")
METHODS = ("mean", "nearest", "vae-iterative", "vae-optimize", "gan")
PICTURE_COLUMNS = 6
REPO = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.inpainting", description=__doc__.split("\n\n")[0])
    parser.add_argument("--vae", default=None, help="VAE run directory (needed for the vae-* methods)")
    parser.add_argument("--gan", default=None, help="GAN run directory (needed for the gan method)")
    parser.add_argument("--n", type=int, default=1000, help="test images per mask (default 1,000)")
    parser.add_argument("--masks", default=",".join(MASKS), help="comma-separated mask kinds")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
    parser.add_argument("--iterative-steps", type=int, default=None, help="vae-iterative chain length (default: inpaint's)")
    parser.add_argument("--optimize-steps", type=int, default=None, help="vae-optimize Adam steps (default: inpaint's)")
    parser.add_argument("--gan-steps", type=int, default=None, help="gan Adam steps (default: inpaint's)")
    parser.add_argument("--gan-restarts", type=int, default=None, help="gan random starts per image (default: inpaint's)")
    parser.add_argument("--seed", type=int, default=0, help="test subset, random masks, optimiser starts")
    parser.add_argument("--picture", default=str(REPO / "docs" / "images" / "inpainting.png"), help="PNG to draw ('' for none)")
    parser.add_argument("--name", default="inpainting", help="results file name")
    parser.add_argument("--rerender", default=None, metavar="JSON", help="rewrite the Markdown of an earlier results file")
    args = parser.parse_args(argv)
    args.masks = [m.strip() for m in args.masks.split(",") if m.strip()]
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; expected some of {', '.join(METHODS)}")
    if args.rerender:
        return args
    if any(m.startswith("vae") for m in args.methods) and not args.vae:
        parser.error("the vae-* methods need --vae RUN (or leave them out with --methods)")
    if "gan" in args.methods and not args.gan:
        parser.error("the gan method needs --gan RUN (or leave it out with --methods)")
    if args.n < 10:
        parser.error("--n must be >= 10")
    return args


def measure(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run every (mask, method) pair; returns the results and the picture's tensors."""
    import torch

    import genlab
    from genlab.metrics import frechet_distance
    from genlab.tools.inpainting import hole_psnr, hole_ssim, inpaint
    from genlab.tools.masks import make_mask

    test = genlab.load_dataset("fashion-mnist", split="test")
    subset = torch.randperm(len(test), generator=torch.Generator().manual_seed(args.seed))[:args.n]
    images = test.float_images(subset)
    judge = genlab.load_judge()
    reference = judge.features(test.float_images())
    models = {"vae": genlab.load(args.vae) if args.vae else None, "gan": genlab.load(args.gan) if args.gan else None}
    steps = {"vae-iterative": args.iterative_steps, "vae-optimize": args.optimize_steps, "gan": args.gan_steps}
    results: dict[str, Any] = {"originals_fid": frechet_distance(reference, judge.features(images)), "masks": {}}
    picture: dict[str, Any] = {}
    for kind in args.masks:
        mask = make_mask(kind, images.shape, seed=args.seed)
        rows = {"masked": images[:PICTURE_COLUMNS], "mask": mask[:PICTURE_COLUMNS]}
        entry: dict[str, Any] = {"known_fraction": float(mask.mean()), "methods": {}}
        for method in args.methods:
            model = models["gan"] if method == "gan" else models["vae"] if method.startswith("vae") else None
            torch.manual_seed(args.seed)
            started = time.perf_counter()
            options = {"restarts": args.gan_restarts} if method == "gan" and args.gan_restarts else {}
            completed = inpaint(model, images, mask, method, steps=steps.get(method), seed=args.seed, progress=True,
                                **options)
            seconds = time.perf_counter() - started
            psnr, ssim = hole_psnr(completed, images, mask), hole_ssim(completed, images, mask)
            entry["methods"][method] = {
                "hole_psnr_db": float(psnr.mean()), "hole_psnr_std": float(psnr.std()),
                "hole_ssim": float(ssim.mean()), "hole_ssim_std": float(ssim.std()),
                "fid": frechet_distance(reference, judge.features(completed)),
                "seconds_per_image": seconds / len(images), "seconds": seconds,
            }
            rows[method] = completed[:PICTURE_COLUMNS]
            print(f"{kind:8s} {method:14s} " + "  ".join(f"{k} {v:.4g}" for k, v in entry["methods"][method].items()),
                  flush=True)
        rows["original"] = images[:PICTURE_COLUMNS]
        results["masks"][kind] = entry
        picture[kind] = rows
    return results, picture


def draw(picture: dict[str, Any], methods: list[str], path: str) -> Path:
    """One block per mask (labelled), each a grid: columns = images; rows = masked input, each method, original."""
    import torch

    from genlab.io.grids import concat_images, label_rows, make_grid, save_image
    from genlab.tools.inpainting import show_holes

    blocks = []
    names = ["masked", *methods, "original"]
    for rows in picture.values():
        stack = [show_holes(rows["masked"], rows["mask"])]
        stack += [rows[m].expand(-1, 3, -1, -1) for m in methods] + [rows["original"].expand(-1, 3, -1, -1)]
        grid = make_grid(torch.cat(stack), nrow=len(rows["masked"]))
        blocks.append(grid if blocks else label_rows(grid, names))  # row names once, on the left
    return save_image(concat_images(blocks, gap=8, labels=list(picture)), path, scale=2)


def markdown_report(settings: dict[str, Any], results: dict[str, Any], machine: dict[str, Any] | None = None) -> str:
    masks = list(results["masks"])
    methods = settings["methods"]
    lines = [
        "# Inpainting and outpainting on Fashion-MNIST",
        "",
        (f"{settings['n']:,} test images (a seeded random subset), per mask: the hole filled by each method of "
         "`genlab.tools.inpainting`, known pixels kept exactly, blend 2 px. Hole PSNR/SSIM: over the hole pixels only, mean "
         "over images (↑). FID: completed images against all 10,000 test images in the shipped judge's features (↓; "
         f"the same {settings['n']:,} originals score {results['originals_fid']:.1f}, the floor). Seconds per image: "
         "1 torch thread."),
        "",
        (f"Runs: VAE `{settings['vae']}`, GAN `{settings['gan']}`. Steps: vae-iterative "
         f"{settings['steps']['vae-iterative']}, vae-optimize {settings['steps']['vae-optimize']} (after a "
         f"{settings['steps']['vae-iterative']}-step chain), gan {settings['steps']['gan']} from each of "
         f"{settings['gan_restarts']} random starts (the best fit kept)."),
        "",
        (f"The whole run took {results['wall_seconds_total'] / 60:.0f} min" + (
            f", load average {machine['load_average_at_start'][0]:.1f} at the start and "
            f"{machine['load_average_at_end'][0]:.1f} at the end (other jobs shared the 2 cores)." if machine else ".")),
        "",
        "| mask | " + " | ".join(masks) + " |",
        "|---|" + "---:|" * len(masks),
        "| known fraction | " + " | ".join(f"{results['masks'][k]['known_fraction']:.2f}" for k in masks) + " |",
    ]
    for key, label, fmt in (("hole_psnr_db", "hole PSNR (dB) ↑", "{:.2f}"), ("hole_ssim", "hole SSIM ↑", "{:.3f}"),
                            ("fid", "FID (judge) ↓", "{:.1f}"), ("seconds_per_image", "seconds per image", "{:.4f}")):
        lines.append(f"| **{label}** |" + " |" * len(masks))
        for method in methods:
            cells = [fmt.format(results["masks"][k]["methods"][method][key]) for k in masks]
            best = _best(results, k_list=masks, method=method, key=key, methods=methods)
            cells = [f"**{c}**" if b else c for c, b in zip(cells, best, strict=True)]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "Bold: the best method for that mask. Best per metric, counted over the masks: " + "; ".join(
        f"{label} {_winners(results, masks, methods, key)}" for key, label in
        (("hole_psnr_db", "hole PSNR"), ("hole_ssim", "hole SSIM"), ("fid", "FID"))) + ".", "",
        "Beats both baselines (mean, nearest) on hole PSNR, SSIM and FID:", ""]
    for method in [m for m in methods if m not in ("mean", "nearest")]:
        verdicts = []
        for k in masks:
            scores = results["masks"][k]["methods"]
            won = [name for name, key, sign in (("PSNR", "hole_psnr_db", 1), ("SSIM", "hole_ssim", 1), ("FID", "fid", -1))
                   if all(sign * (scores[method][key] - scores[b][key]) > 0 for b in ("mean", "nearest") if b in scores)]
            verdicts.append(f"{k}: {', '.join(won) if won else 'none'}")
        lines.append(f"- {method}: " + "; ".join(verdicts))
    caption = "Picture: per mask, six test images; rows top to bottom: masked input (hole in red), " + ", ".join(methods)
    lines += ["", "![inpainting](../../docs/images/inpainting.png)", "", caption + ", original."]
    return "\n".join(lines)


def _winners(results: dict[str, Any], masks: list[str], methods: list[str], key: str) -> str:
    counts: dict[str, int] = {}
    for k in masks:
        for method, best in zip(methods, [_best(results, k_list=[k], method=m, key=key, methods=methods)[0] for m in methods],
                                strict=True):
            if best:
                counts[method] = counts.get(method, 0) + 1
    return ", ".join(f"{method} ({count}/{len(masks)})" for method, count in sorted(counts.items(), key=lambda kv: -kv[1]))


def _best(results: dict[str, Any], *, k_list: list[str], method: str, key: str, methods: list[str]) -> list[bool]:
    if key == "seconds_per_image":
        return [False] * len(k_list)
    pick = min if key == "fid" else max
    return [results["masks"][k]["methods"][method][key] == pick(results["masks"][k]["methods"][m][key] for m in methods)
            for k in k_list]


def main(argv: list[str] | None = None) -> int:
    from benchmarks import harness

    args = parse_args(argv)
    if args.rerender:
        print(harness.rerender(args.rerender, lambda p: markdown_report(p["results"]["settings"], p["results"], p["machine"])).read_text())
        return 0
    import torch

    torch.set_num_threads(1)
    from genlab.tools.inpainting import DEFAULT_STEPS, GAN_RESTARTS

    machine = harness.machine_info()
    started = time.perf_counter()
    results, picture = measure(args)
    settings = {"n": args.n, "masks": args.masks, "methods": args.methods, "vae": args.vae, "gan": args.gan, "seed": args.seed,
                "steps": {m: getattr(args, f) if getattr(args, f) is not None else DEFAULT_STEPS[m]
                          for m, f in (("vae-iterative", "iterative_steps"), ("vae-optimize", "optimize_steps"),
                                       ("gan", "gan_steps"))},
                "gan_restarts": args.gan_restarts or GAN_RESTARTS}
    results = {"settings": settings, **results, "wall_seconds_total": time.perf_counter() - started}
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.picture:
        print(f"wrote {draw(picture, args.methods, args.picture)}")
    harness.publish(args.name, results, markdown_report(settings, results, machine), machine=machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
