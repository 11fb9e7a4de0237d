"""Two cores, two ways: one process with 2 threads, or torchrun with 2 single-thread processes.

    python -m benchmarks.cpu_processes               # default VAE, full Fashion-MNIST, 3 rounds of 300 steps
    python -m benchmarks.cpu_processes --quick       # smoke run

Contenders (each launched as its own command, in rotating order, ``--rounds`` times):
- plain PyTorch, 1 process × ``--threads`` threads: the pytorch/examples VAE loop of
  ``benchmarks.vae_contenders`` (DataLoader, plain Adam, ``loss.item()`` every step);
- genlab, 1 process × ``--threads`` threads: ``genlab train vae`` (TrainConfig defaults);
- genlab, ``torchrun --nproc_per_node --threads`` × 1 thread: the same command under torchrun,
  the same global batch (each process trains on half of it; gradients averaged).

The rate excludes start-up (imports, data loading): images between the first and the last timed
step, over the seconds between them (genlab: the ``time`` column of metrics.csv, written every
``--log-every`` steps; plain: its own clock).
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import harness

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpu_processes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="cores to use: threads of one process, or processes (default 2)")
    parser.add_argument("--steps", type=int, default=300, help="training steps per run (default 300)")
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="smoke run: 60 steps, 1 round")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.rounds, args.log_every = 60, 1, 10
    args.name = args.name or ("cpu_processes_quick" if args.quick else "cpu_processes")
    return args


def plain_worker(steps: int, batch_size: int, skip: int) -> None:
    """The plain loop for ``steps`` steps; prints 'RATE images/s' over the steps after ``skip``."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from benchmarks.vae_contenders import _initial_vae, _train_images, plain_forward, plain_loss

    images = _train_images(None)
    model = _initial_vae(0)
    loader = DataLoader(TensorDataset(images.float() / 255.0), batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    step, start = 0, None
    while step < steps:
        for (x,) in loader:
            if step == skip:
                start = time.perf_counter()
            optimizer.zero_grad()
            logits, mu, log_var = plain_forward(model, x)
            loss = plain_loss(logits, x, mu, log_var)
            loss.backward()
            loss.item()
            optimizer.step()
            step += 1
            if step == steps:
                break
    print(f"RATE {(steps - skip) * batch_size / (time.perf_counter() - start):.3f}", flush=True)


def genlab_rate(run_dir: Path, batch_size: int) -> float:
    """images/s between the first and the last metrics.csv rows (start-up and the step-0 checkpoint excluded)."""
    with (run_dir / "metrics.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("time")]
    first, last = rows[0], rows[-1]
    return (int(last["step"]) - int(first["step"])) * batch_size / (float(last["time"]) - float(first["time"]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def genlab_worker(steps: int, batch_size: int, log_every: int, out: str) -> None:
    """``genlab.train`` of the default VAE for ``steps`` steps (under torchrun: this process's part)."""
    import torch

    import genlab

    torch.manual_seed(0)
    config = genlab.TrainConfig(epochs=100, max_steps=steps, batch_size=batch_size, log_every=log_every, out_dir=out,
                                device="cpu", progress=False, tensorboard=False)
    genlab.train(genlab.VAE(genlab.VAEConfig()), genlab.load_dataset("fashion-mnist", split="train"), config)


def run_contender(name: str, args: argparse.Namespace, work_dir: Path, index: int) -> float:
    """Launch one contender's run as its own command; returns its images/s."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])}
    run_dir = work_dir / f"{index}-{name.split()[0]}"
    worker = ["-m", "benchmarks.cpu_processes", "--worker", "genlab", "--steps", str(args.steps),
              "--batch-size", str(args.batch_size), "--log-every", str(args.log_every), "--out", str(run_dir)]
    if name.startswith("plain"):
        env["OMP_NUM_THREADS"] = str(args.threads)
        command = [sys.executable, "-m", "benchmarks.cpu_processes", "--worker", "plain", "--steps", str(args.steps),
                   "--batch-size", str(args.batch_size), "--log-every", str(args.log_every)]
    elif "torchrun" in name:
        env["OMP_NUM_THREADS"] = "1"
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(args.threads),
                   "--master_addr", "127.0.0.1", "--master_port", str(free_port()), *worker]
    else:
        env["OMP_NUM_THREADS"] = str(args.threads)
        command = [sys.executable, *worker]
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    if name.startswith("plain"):
        return float(next(line for line in result.stdout.splitlines() if line.startswith("RATE")).split()[1])
    return genlab_rate(run_dir, args.batch_size)


def contender_names(threads: int) -> list[str]:
    return [f"plain PyTorch, 1 process × {threads} threads", f"genlab, 1 process × {threads} threads",
            f"genlab, torchrun {threads} processes × 1 thread"]


def markdown_report(args: argparse.Namespace, rates: dict[str, list[float]], machine: dict[str, Any]) -> str:
    names = list(rates)
    base = statistics.median(rates[names[0]])
    lines = [
        f"# {args.threads} cores: threads or processes{' (QUICK SMOKE RUN — not a measurement)' if args.quick else ''}",
        "",
        f"Default VAE on full Fashion-MNIST, global batch {args.batch_size}, {args.steps} steps per run, {args.rounds} runs "
        "per contender in rotating order; images/s over the steps after the first log row (start-up excluded).",
        "",
        "| contender | images/s (median) | × plain | runs |",
        "|---|---:|---:|---|",
    ]
    for name in names:
        median = statistics.median(rates[name])
        lines.append(f"| {name} | {median:.0f} | {median / base:.2f} | {', '.join(f'{r:.0f}' for r in rates[name])} |")
    lines += ["", "The torchrun processes each train on half of every global batch and average gradients (gloo); "
                  "the VAE has no batch norm, so this is the same optimisation as one process.",
              "", f"{harness.load_sentence(machine)}. "
                  "Runs while other jobs hold cores favour single-thread processes; compare rows only from a quiet machine."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser_args = argv if argv is not None else sys.argv[1:]
    if "--worker" in parser_args:  # one contender's process (launched by run_contender)
        worker = argparse.ArgumentParser()
        worker.add_argument("--worker", choices=("plain", "genlab"))
        worker.add_argument("--steps", type=int)
        worker.add_argument("--batch-size", type=int)
        worker.add_argument("--log-every", type=int)
        worker.add_argument("--out", default=None)
        w = worker.parse_args(parser_args)
        if w.worker == "plain":
            plain_worker(w.steps, w.batch_size, w.log_every)
        else:
            genlab_worker(w.steps, w.batch_size, w.log_every, w.out)
        return 0
    args = parse_args(argv)
    machine = harness.machine_info()
    names = contender_names(args.threads)
    rates: dict[str, list[float]] = {name: [] for name in names}
    work_dir = Path(tempfile.mkdtemp(prefix="genlab-cpu-processes-"))
    try:
        for r in range(args.rounds):
            for name in harness.rotated(names, r):
                rates[name].append(run_contender(name, args, work_dir, sum(len(done) for done in rates.values())))
                print(f"  round {r + 1} · {name:45s} {rates[name][-1]:8.1f} images/s", flush=True)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    machine["load_average_at_end"] = os.getloadavg()
    harness.publish(args.name, {"settings": vars(args), "rates": rates}, markdown_report(args, rates, machine), machine=machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
