"""VAE vs GAN, measured: each trained for the same time budget on full Fashion-MNIST, then scored.

Contenders (all with their library defaults, 1 torch thread each):
- genlab VAE: ``VAE(VAEConfig())``, batch 128, Adam 1e-3 (``genlab train vae``'s defaults);
- pythae VAE: the same encoder/decoder and initial weights, trained by pythae's own pipeline
  (batch 128, Adam 1e-3, Bernoulli/BCE), to check genlab's VAE against an independent trainer;
- genlab GAN: ``GAN(GANConfig())``, batch 64 (``genlab train gan``'s defaults);
- genlab conditional GAN: the same with ``num_classes=10`` (``--conditional``), so CAS applies.

Each gets ``--budget`` seconds of training (wall clock of the training loop, setup excluded;
pythae stops at the first step past the budget). ``--parallel`` runs that many contenders at
once, each on its own core, so pairs see the same background load. Every trained model is then
scored by ``genlab.evaluate`` against the 10,000 test images with the shipped judge's features:
FID, KID, precision/recall/density/coverage, Inception Score, classes covered, sharpness, and
where they apply likelihood bounds (ELBO, IWAE-100 on 1,000 images), reconstruction error,
latent smoothness and CAS.

    python -m benchmarks.vae_vs_gan                  # 600 s each: about 20 min of training, 10 of scoring
    python -m benchmarks.vae_vs_gan --quick          # 20 s each, 1,000 samples: a smoke run

Results: benchmarks/results/vae_vs_gan.{json,md} (vae_vs_gan_quick.* for --quick).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

CONTENDERS = ("genlab VAE", "pythae VAE", "genlab GAN", "genlab conditional GAN")
BATCH = {"genlab VAE": 128, "pythae VAE": 128, "genlab GAN": 64, "genlab conditional GAN": 64}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vae_vs_gan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=600.0, help="training seconds per contender (default 600)")
    parser.add_argument("--num-samples", type=int, default=10_000, help="samples scored per model (default 10,000)")
    parser.add_argument("--only", nargs="+", choices=CONTENDERS, default=list(CONTENDERS), metavar="NAME",
                        help=f"contenders to run, of: {', '.join(CONTENDERS)}")
    parser.add_argument("--parallel", type=int, default=2, help="contenders trained at once, 1 thread each (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--score-only", action="store_true",
                        help="score the runs already in --work-dir (from an earlier call) without training")
    parser.add_argument("--rerender", default=None, metavar="JSON", help="rewrite the Markdown of an earlier results file")
    parser.add_argument("--quick", action="store_true", help="20 s budgets and 1,000 samples: a smoke run")
    parser.add_argument("--name", default=None, help="results file name (default vae_vs_gan or vae_vs_gan_quick)")
    args = parser.parse_args(argv)
    if args.quick:
        args.budget, args.num_samples = 20.0, 1000
    if args.budget <= 0 or args.num_samples < 10 or args.parallel < 1:
        parser.error("--budget must be > 0, --num-samples >= 10 and --parallel >= 1")
    if args.score_only and not args.work_dir:
        parser.error("--score-only needs the --work-dir of an earlier run")
    args.name = args.name or ("vae_vs_gan_quick" if args.quick else "vae_vs_gan")
    return args


# ----- training, one contender per process -----
def train_contender(name: str, budget: float, seed: int, out_dir: str) -> dict[str, Any]:
    """Train one contender into ``out_dir`` (a genlab run directory); returns what it did."""
    import torch

    torch.set_num_threads(1)
    import genlab

    train = genlab.load_dataset("fashion-mnist", split="train")
    if name == "pythae VAE":
        return _train_pythae(train, budget, seed, out_dir)
    torch.manual_seed(seed)
    if name == "genlab VAE":
        model = genlab.VAE(genlab.VAEConfig())
    else:
        model = genlab.GAN(genlab.GANConfig(num_classes=10 if "conditional" in name else 0))
    config = genlab.TrainConfig(epochs=10**6, batch_size=BATCH[name], seed=seed, out_dir=out_dir, max_seconds=budget,
                                device="cpu", progress=False, tensorboard=False)
    started = time.perf_counter()
    genlab.train(model, train, config)
    from safetensors import safe_open

    from genlab.io.checkpoints import STATE_FILE

    with safe_open(str(Path(out_dir) / STATE_FILE), "pt") as handle:
        meta = json.loads(handle.metadata()["genlab"])
    steps = int(meta["step"])
    return {"name": name, "steps": steps, "train_seconds": float(meta["elapsed"]),
            "wall_seconds_with_setup": time.perf_counter() - started, "batch_size": BATCH[name],
            "images_seen": steps * BATCH[name], "epochs": steps * BATCH[name] / len(train)}


def _train_pythae(train: Any, budget: float, seed: int, out_dir: str) -> dict[str, Any]:
    """pythae's TrainingPipeline on the genlab VAE's own networks, stopped when the budget is spent;
    the trained weights are then written as a genlab run (config.json + model.safetensors)."""
    from pythae.models import VAE as PythaeVAE
    from pythae.models import VAEConfig as PythaeVAEConfig
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback
    from safetensors.torch import save

    from benchmarks.vae_contenders import _initial_vae, _pythae_networks
    from genlab.config import TrainConfig
    from genlab.io.files import atomic_write
    from genlab.runs import write_run_config

    vae = _initial_vae(seed)
    encoder, decoder = _pythae_networks(vae)
    model = PythaeVAE(PythaeVAEConfig(input_dim=(1, 28, 28), latent_dim=vae.config.latent_dim, reconstruction_loss="bce"),
                      encoder=encoder, decoder=decoder)
    config = BaseTrainerConfig(output_dir=str(Path(out_dir) / "pythae"), per_device_train_batch_size=BATCH["pythae VAE"],
                               learning_rate=1e-3, num_epochs=10**4, seed=seed, no_cuda=True)

    class BudgetSpent(Exception):
        pass

    clock = {"start": 0.0, "steps": 0}

    class Budget(TrainingCallback):
        def on_train_step_end(self, training_config: Any, **kwargs: Any) -> None:
            clock["steps"] += 1
            if time.perf_counter() - clock["start"] >= budget:
                raise BudgetSpent

    started = clock["start"] = time.perf_counter()
    pipeline = TrainingPipeline(model=model, training_config=config)
    with contextlib.suppress(BudgetSpent):
        pipeline(train_data=train.images.float() / 255.0, eval_data=None, callbacks=[Budget()])
    seconds = time.perf_counter() - started
    # pythae key "encoder.encoder.net.0.weight" → genlab key "encoder.net.0.weight", etc.
    state = {k.split(".", 1)[1]: v.detach().contiguous() for k, v in pipeline.trainer.model.state_dict().items()}
    vae.load_state_dict(state)
    write_run_config(Path(out_dir), vae, TrainConfig(batch_size=BATCH["pythae VAE"], out_dir=out_dir), train.info())
    with atomic_write(Path(out_dir) / "model.safetensors") as stream:
        stream.write(save(vae.state_dict()))
    steps = clock["steps"]
    return {"name": "pythae VAE", "steps": steps, "train_seconds": seconds, "wall_seconds_with_setup": seconds,
            "batch_size": BATCH["pythae VAE"], "images_seen": steps * BATCH["pythae VAE"],
            "epochs": steps * BATCH["pythae VAE"] / len(train)}


def evaluate_contender(name: str, run_dir: str, num_samples: int, seed: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    import genlab

    test = genlab.load_dataset("fashion-mnist", split="test")
    timings: dict[str, float] = {}
    metrics = genlab.evaluate(genlab.load(run_dir), test, num_samples=num_samples, seed=seed, progress=False,
                              timings=timings)
    return {"name": name, "metrics": metrics, "timings": timings}


def _in_processes(function: Any, jobs: list[tuple], parallel: int) -> list[dict[str, Any]]:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=parallel, mp_context=context) as pool:
        futures = [pool.submit(function, *job) for job in jobs]
        results = []
        for future in futures:
            result = future.result()
            print(f"  {result['name']}: done", flush=True)
            results.append(result)
    return results


# ----- report -----
ROWS = [  # (key in evaluate's results, label, number format)
    ("fid", "FID (judge features) ↓", "{:.1f}"),
    ("kid_mean", "KID (judge features) ↓", "{:.1f}"),
    ("precision", "precision (fidelity) ↑", "{:.3f}"),
    ("recall", "recall (diversity) ↑", "{:.3f}"),
    ("density", "density ↑", "{:.3f}"),
    ("coverage", "coverage ↑", "{:.3f}"),
    ("inception_score_mean", "Inception Score (judge) ↑", "{:.2f}"),
    ("classes_covered", "classes covered (of 10)", "{:.0f}"),
    ("classes_kl_to_reference", "class KL to the data (nats) ↓", "{:.3f}"),
    ("sharpness", "sharpness (Laplacian energy ÷ real)", "{:.2f}"),
    ("cas", "CAS: judge trained on samples, real test accuracy ↑", "{:.3f}"),
    ("elbo_nats", "ELBO (nats/image) ↑", "{:.1f}"),
    ("iwae_nats", "IWAE bound, k=100 (nats/image) ↑", "{:.1f}"),
    ("bits_per_dim", "IWAE bits/dim ↓", "{:.3f}"),
    ("recon_psnr", "reconstruction PSNR (dB) ↑", "{:.2f}"),
    ("smoothness_evenness", "latent path evenness (CV of steps) ↓", "{:.3f}"),
]


def markdown_report(args: argparse.Namespace, trained: list[dict[str, Any]], scored: list[dict[str, Any]],
                    load: dict[str, Any]) -> str:
    names = [t["name"] for t in trained]
    metrics = {s["name"]: s["metrics"] for s in scored}
    lines = [
        "# VAE vs GAN on Fashion-MNIST, each trained for the same time budget",
        "",
        f"Training budget: {args.budget:.0f} s per model (1 torch thread, {args.parallel} models at a time); "
        f"scored by `genlab.evaluate` on {args.num_samples:,} samples against the Fashion-MNIST test set "
        "with the shipped judge's features (`genlab.models.judge`).",
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
        "| steps (batch) | " + " | ".join(f"{t['steps']:,} ({t['batch_size']})" for t in trained) + " |",
        "| epochs of the train set | " + " | ".join(f"{t['epochs']:.1f}" for t in trained) + " |",
        "| training seconds | " + " | ".join(f"{t['train_seconds']:.0f}" for t in trained) + " |",
    ]
    for key, label, fmt in ROWS:
        values = [metrics[n].get(key) for n in names]
        if all(v is None for v in values):
            continue
        cells = ["—" if v is None else fmt.format(v) for v in values]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "`—`: does not apply (no likelihood or encoder for a GAN; CAS needs class labels). FID/KID are in the "
        "judge's feature space (not Inception's), so compare them only with each other. "
        f"Load average during the run: {load['start']} at the start, {load['end']} at the end.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from benchmarks import harness

    args = parse_args(argv)
    if args.rerender:
        def render(payload: dict[str, Any]) -> str:
            results, machine = payload["results"], payload["machine"]
            load = {"start": machine["load_average_at_start"], "end": machine["load_average_at_end"]}
            return markdown_report(argparse.Namespace(**results["settings"]), results["trained"], results["scored"], load)

        print(harness.rerender(args.rerender, render).read_text())
        return 0
    machine = harness.machine_info()
    work_dir = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="genlab-vae-vs-gan-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    runs = {name: str(work_dir / name.replace(" ", "_")) for name in args.only}
    started = time.perf_counter()
    try:
        if args.score_only:
            trained = json.loads((work_dir / "trained.json").read_text())
        else:
            for run_dir in runs.values():
                if Path(run_dir).exists():
                    shutil.rmtree(run_dir)
            print(f"training {', '.join(args.only)}: {args.budget:.0f} s each, {args.parallel} at a time (runs in {work_dir})",
                  flush=True)
            trained = _in_processes(train_contender, [(n, args.budget, args.seed, runs[n]) for n in args.only], args.parallel)
            (work_dir / "trained.json").write_text(json.dumps(trained, indent=2))
        print(f"scoring with genlab.evaluate, {args.num_samples:,} samples each", flush=True)
        scored = _in_processes(evaluate_contender, [(n, runs[n], args.num_samples, args.seed) for n in args.only],
                               args.parallel)
        load = {"start": machine["load_average_at_start"], "end": [round(x, 2) for x in os.getloadavg()]}
        machine["load_average_at_end"] = load["end"]
        markdown = markdown_report(args, trained, scored, load)
        payload = {"settings": {k: v for k, v in vars(args).items() if k != "work_dir"}, "trained": trained,
                   "scored": scored, "wall_seconds_total": time.perf_counter() - started}
        harness.publish(args.name, payload, markdown, machine=machine)
    finally:
        if not args.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
