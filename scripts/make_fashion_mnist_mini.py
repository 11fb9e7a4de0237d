"""Make the bundled ``fashion-mnist-mini`` set from the real Fashion-MNIST.

    python scripts/make_fashion_mnist_mini.py [--out src/genlab/data/bundled]

Takes 600 images per class from train and 100 per class from test, drawn without replacement
by ``np.random.default_rng(0)`` (one generator per split, classes drawn in label order), and
keeps them in their original order. Same input, same output: the tests rebuild the selection
and compare. ``source_indices`` records where each image came from in the full split.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

PER_CLASS = {"train": 600, "test": 100}
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "genlab" / "data" / "bundled"


def select_indices(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``per_class`` examples of each label, drawn with ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == label), per_class, replace=False) for label in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def main() -> None:
    from genlab.data import load_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write the .npz files to")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for split, per_class in PER_CLASS.items():
        full = load_dataset("fashion-mnist", split=split, download=False)
        labels = full.labels.numpy()
        indices = select_indices(labels, per_class)
        path = args.out / f"fashion-mnist-mini-{split}.npz"
        np.savez_compressed(
            path,
            images=full.images[indices, 0].numpy(),  # N×28×28 uint8
            labels=labels[indices].astype(np.uint8),
            classes=np.array(full.classes),
            source_indices=indices.astype(np.int32),
        )
        print(f"{path}: {len(indices)} images, {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
