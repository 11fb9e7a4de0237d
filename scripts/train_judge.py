"""Train a judge with ``train_judge``'s defaults; with ``--export``, write the weights genlab ships.

    OMP_NUM_THREADS=1 python scripts/train_judge.py --data fashion-mnist -o judge_fmnist --seed 0 --export

does what ``genlab judge train --data fashion-mnist -o judge_fmnist --seed 0`` does (train on the
train split, measure on the test split), and ``--export`` then writes
src/genlab/models/weights/judge_fashion_mnist.safetensors (weights only) and its .json (config,
command, SHA-256 of the data files read, test accuracy, versions, training time).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
from pathlib import Path

import torch


def file_hashes(name: str, split: str) -> dict[str, str]:
    """SHA-256 of the local files ``load_dataset(name, split)`` reads, by file name (empty for non-IDX sets)."""
    from genlab.data.registry import DATASETS
    from genlab.data.sources import find_local

    spec = DATASETS.get(name)
    hashes = {}
    for file in spec.files.get(split, ()) if spec else ():
        path = find_local(name, file.filename)
        if path is not None:
            hashes[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def main() -> None:
    from genlab import load_dataset
    from genlab.data.registry import DATASETS
    from genlab.data.sources import find_local
    from genlab.evaluation.judges import train_judge
    from genlab.io.checkpoints import WEIGHTS_FILE, load_tensors, save_tensors
    from genlab.models.judge import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_LR, WEIGHTS_DIR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("-o", "--out", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--export", action="store_true", help=f"write the shipped weights into {WEIGHTS_DIR}")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    train = load_dataset(args.data, split="train")
    test = load_dataset(args.data, split="test")
    judge = train_judge(train, args.out, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                        test_dataset=test, device=args.device)
    if not args.export:
        return
    run_info = json.loads((args.out / "judge.json").read_text())
    train_config = json.loads((args.out / "config.json").read_text())["train"]
    defaults = (args.epochs, args.batch_size) == (DEFAULT_EPOCHS, DEFAULT_BATCH_SIZE)
    options = "" if defaults else f" --epochs {args.epochs} --batch-size {args.batch_size}"
    name = f"judge_{args.data.replace('-', '_')}"
    first = DATASETS[args.data].files["train"][0].filename
    info = {
        "model": {"kind": judge.kind, "config": json.loads((args.out / "config.json").read_text())["model"]["config"]},
        "test_accuracy": run_info["test_accuracy"],
        "test_dataset": run_info["test_dataset"],
        "train_dataset": run_info["dataset"],
        "command": f"genlab judge train --data {args.data} -o {args.out.name} --seed {args.seed}{options}",
        "produced_with": f"OMP_NUM_THREADS=1 python scripts/train_judge.py --data {args.data} -o {args.out.name} "
                         f"--seed {args.seed}{options} --export",
        "train_files_dir": str(find_local(args.data, first).parent),
        "train_files_sha256": file_hashes(args.data, "train"),
        "test_files_sha256": file_hashes(args.data, "test"),
        "train": {key: train_config[key] for key in ("epochs", "batch_size", "lr", "lr_schedule", "seed", "device")},
        "default_lr": DEFAULT_LR,
        "train_time_s": run_info["train_time_s"],
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} thread(s); other training jobs shared the CPU",
    }
    weights, _ = load_tensors(args.out / WEIGHTS_FILE)
    save_tensors(WEIGHTS_DIR / f"{name}.safetensors", weights, {"judge": name, "test_accuracy": info["test_accuracy"]})
    info["weights_sha256"] = hashlib.sha256((WEIGHTS_DIR / f"{name}.safetensors").read_bytes()).hexdigest()
    (WEIGHTS_DIR / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {WEIGHTS_DIR / name}.safetensors and .json (test accuracy {info['test_accuracy']:.4f})", file=sys.stderr)


if __name__ == "__main__":
    main()
