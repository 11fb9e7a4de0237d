"""Kill soak: a training run killed at random moments and resumed each time ends bit-identical to one that never was.

    python scripts/kill_soak.py [--kills 20] [--epochs 40] [--images 512] [--seed 0] [--keep DIR] [--verbose]

Trains the tiny VAE (latent 4, channels 8,16, hidden 32) on the first ``--images`` images of the
bundled fashion-mnist-mini, on the CPU with one thread, through the CLI (`python -m genlab train
vae`): once without interruption, then again killed ``--kills`` times, SIGKILL and SIGTERM
alternately, each time restarted with --resume (or afresh when the kill came before the first
checkpoint). Kill moments are random: a quarter in the start-up (imports, data, lock, resume), a
quarter while a file is being written (caught by polling for its temporary file), the others a
random 1..N steps into training plus up to 0.1 s (mid-step), with N small enough that the run is
far from its end at the last kill. After every kill the run folder
must load (genlab.load) and the next start must get its writer lock and resume; at the end no
temporary file may be left, and the final weights and the whole training state must equal the
uninterrupted run's, tensor for tensor, bit for bit. Prints one line (``--verbose``: one per start
too); exits 1 on any mismatch. Not part of `make test` (a few minutes).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import genlab  # noqa: E402
from genlab.data import load_dataset  # noqa: E402

STATE, WEIGHTS = "training_state.safetensors", "model.safetensors"


def train_command(data: Path, out: Path, epochs: int, seed: int, resume: bool) -> list[str]:
    command = [sys.executable, "-m", "genlab", "train", "vae", "--data", str(data), "--out", str(out), "--epochs", str(epochs),
               "--seed", str(seed), "--latent-dim", "4", "--channels", "8,16", "--hidden-dim", "32", "--batch-size", "32",
               "--log-every", "5", "--checkpoint-every", "7", "--num-sample-images", "8", "--device", "cpu",
               "--no-progress", "--no-plots", "--no-tensorboard"]
    return [*command, "--resume"] if resume else command


def environment() -> dict[str, str]:
    python_path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": python_path}


def run_to_end(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=environment(), capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"kill soak: a run that should finish failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return time.perf_counter() - started


def saved_step(run: Path) -> int:
    """The step of the run's latest checkpoint (-1: none yet)."""
    if not (run / STATE).exists():
        return -1
    with safe_open(str(run / STATE), "pt") as handle:
        return int(json.loads(handle.metadata()["genlab"])["step"])


def last_logged_step(run: Path) -> int:
    """The step of the last row of metrics.csv (-1: none yet)."""
    try:
        last = (run / "metrics.csv").read_text().strip().splitlines()[-1]
    except (OSError, IndexError):
        return -1
    step = last.split(",", 1)[0]
    return int(step) if step.isdigit() else -1


def writing(run: Path) -> bool:
    """Is a temporary file of atomic_write there (a write in progress, or one a kill interrupted)?"""
    for folder in (run, run / "samples"):
        with contextlib.suppress(FileNotFoundError), os.scandir(folder) as entries:
            if any(entry.name.endswith(".tmp") for entry in entries):
                return True
    return False


def kill_moment(process: subprocess.Popen, rng: random.Random, run: Path, startup: float, steps: int) -> str | None:
    """Wait for a random moment to kill ``process``: a quarter of the time somewhere in its start-up (imports,
    data, lock, resume, the first checkpoint: a random delay below ``startup``, cut short when it logs a
    step); a quarter while it writes a file (a temporary file exists), once it has trained a few steps;
    otherwise once it has trained 1 to ``steps`` steps past its checkpoint, plus up to 0.1 s (mid-step,
    mid-write). Says which; None if the process ended first."""
    started = time.perf_counter()
    # Rows past the checkpoint that a SIGKILL left are dropped and logged again: count from the later of the two.
    base = max(saved_step(run), last_logged_step(run), 0)
    mode = rng.random()
    if mode < 1 / 4:
        delay = rng.uniform(0.0, startup)
        while time.perf_counter() - started < delay and last_logged_step(run) <= base:
            if process.poll() is not None:
                return None
            time.sleep(0.01)
        return f"{time.perf_counter() - started:.2f} s into the start"
    target = base + rng.randint(1, steps)
    if mode < 1 / 2:
        while last_logged_step(run) <= base:  # the start-up writes files too: wait for training
            if process.poll() is not None:
                return None
            time.sleep(0.01)
        while last_logged_step(run) < target + steps:
            if process.poll() is not None:
                return None
            if writing(run):
                return "while it wrote a file"
        return f"after logging step {target + steps} (no write caught)"
    while last_logged_step(run) < target:
        if process.poll() is not None:
            return None
        if time.perf_counter() - started > 600:
            process.kill()
            sys.exit(f"kill soak: a start made no progress in 600 s (wanted step {target})")
        time.sleep(0.02)
    extra = rng.uniform(0.0, 0.1)
    try:
        process.wait(timeout=extra)
    except subprocess.TimeoutExpired:
        return f"{extra:.2f} s after logging step {target} or later"
    return None


def differences(reference: Path, soaked: Path) -> list[str]:
    """Tensors of the two runs' weights and training states that are not bit-identical (or missing)."""
    found = []
    for name in (WEIGHTS, STATE):
        a, b = load_file(reference / name), load_file(soaked / name)
        found += [f"{name}: {key} missing in one" for key in sorted(set(a) ^ set(b))]
        found += [f"{name}: {key}" for key in sorted(set(a) & set(b))
                  if a[key].dtype != b[key].dtype or a[key].shape != b[key].shape or not torch.equal(a[key], b[key])]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0, help="the training seed and the seed of the kill moments")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--verbose", action="store_true", help="a line per start: when it was killed, how, where the run was")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        work = args.keep or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        mini = load_dataset("fashion-mnist-mini", split="train")
        data = work / "soak.npz"
        np.savez(data, images=mini.images[:args.images, 0].numpy(), labels=mini.labels[:args.images].numpy(),
                 classes=np.array(mini.classes))
        reference, soaked = work / "reference", work / "soaked"
        for folder in (reference, soaked):
            if folder.exists():
                sys.exit(f"kill soak: {folder} exists; give an empty --keep folder")

        started = time.perf_counter()
        startup = run_to_end([*train_command(data, work / "dry", args.epochs, args.seed, resume=False), "--dry-run"])
        whole = run_to_end(train_command(data, reference, args.epochs, args.seed, resume=False))
        # At most 1/(2 × kills) of the run between a start's checkpoint and its kill: the run is far from its
        # end when the last kill lands, however fast or loaded the machine.
        steps = max(1, saved_step(reference) // (2 * args.kills))
        if args.verbose:
            print(f"start-up (a --dry-run) {startup:.1f} s, the uninterrupted run {whole:.1f} s, {saved_step(reference)} steps")
        rng = random.Random(args.seed)
        kills: list[tuple[str, int]] = []
        restarts = progressed = mid_write = 0
        while len(kills) < args.kills:
            resume = (soaked / STATE).exists()
            step_before = saved_step(soaked)
            process = subprocess.Popen(train_command(data, soaked, args.epochs, args.seed, resume), env=environment(),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            restarts += 1
            moment = kill_moment(process, rng, soaked, startup, steps)
            if moment is not None:
                sent = signal.SIGKILL if len(kills) % 2 == 0 else signal.SIGTERM
                process.send_signal(sent)
                _, err = process.communicate()
                kills.append((sent.name, process.returncode))
                if process.returncode not in (-signal.SIGKILL, -signal.SIGTERM, 128 + signal.SIGTERM):
                    print(f"kill soak: FAILED: after {sent.name} the run exited with {process.returncode}: {err.strip()[-2000:]}")
                    return 1
                if (soaked / WEIGHTS).exists():
                    genlab.load(soaked)  # whatever moment the kill hit, what is there loads
                progressed += saved_step(soaked) > step_before
                mid_write += any(soaked.rglob("*.tmp"))  # killed while writing a file: the next start removes it
                if args.verbose:
                    print(f"start {restarts}: {sent.name} {moment} → exit {process.returncode}, saved step "
                          f"{step_before} → {saved_step(soaked)}")
                continue
            _, err = process.communicate()
            if args.verbose:
                print(f"start {restarts}: ended by itself → exit {process.returncode}, saved step "
                      f"{step_before} → {saved_step(soaked)}: {err.strip()[-500:]}")
            if process.returncode != 0:
                print(f"kill soak: FAILED: a resumed run exited with {process.returncode}: {err.strip()[-2000:]}")
                return 1
            print(f"kill soak: FAILED: the run finished after {len(kills)} of {args.kills} kills; give more --epochs")
            return 1
        run_to_end(train_command(data, soaked, args.epochs, args.seed, resume=True))
        leftovers = [str(path.relative_to(soaked)) for path in soaked.rglob("*.tmp")]
        mismatched = differences(reference, soaked)
        saved_checkpoints = sum(code == 128 + signal.SIGTERM for _, code in kills)
        term = sum(name == "SIGTERM" for name, _ in kills)
        summary = (f"{len(kills)} kills ({len(kills) - term} SIGKILL, {term} SIGTERM of which {saved_checkpoints} saved a "
                   f"checkpoint and exited 143; {progressed} after the run had moved on since its start, {mid_write} in the middle "
                   f"of writing a file), {restarts + 1} "
                   f"starts, {saved_step(soaked)} steps ({args.epochs} epochs of {args.images} images), "
                   f"{time.perf_counter() - started:.0f} s")
        if mismatched or leftovers:
            print(f"kill soak: FAILED: {summary}; differing tensors: {', '.join(mismatched[:5]) or 'none'}"
                  f"{f' (+{len(mismatched) - 5})' if len(mismatched) > 5 else ''}; temporary files left: {leftovers or 'none'}")
            return 1
        tensors = len(load_file(soaked / STATE)) + len(load_file(soaked / WEIGHTS))
        print(f"kill soak: OK: {summary}; the final weights and training state ({tensors} tensors) are bit-identical "
              "to the uninterrupted run's")
        return 0


if __name__ == "__main__":
    sys.exit(main())
