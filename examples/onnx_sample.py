"""Run a model exported by `genlab export` with onnxruntime alone: no PyTorch, no genlab.

Needs numpy, onnxruntime and Pillow (pip install numpy onnxruntime pillow).

    genlab export runs/cgan -o cgan.onnx
    python examples/onnx_sample.py cgan.onnx -n 100 --seed 0 -o grid.png               # a sample grid
    python examples/onnx_sample.py cgan.onnx --labels 7,9 --truncation 0.7 -o two.png     # chosen classes
    python examples/onnx_sample.py sr.onnx --image small.png -o big.png                  # image-to-image parts

The file's genlab.contract metadata says what the network takes: latent codes ``z`` (N×d, float32, plus ``labels``
N int64 for conditional models) or images (N×C×H×W float32 in [0, 1]); it returns float images in [0, 1].
Truncation is done here, on the caller's side, by redrawing values outside [−τ, τ].
"""
from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np
import onnxruntime
from PIL import Image


def contract_of(session: onnxruntime.InferenceSession) -> dict:
    meta = session.get_modelmeta().custom_metadata_map
    if "genlab.contract" not in meta:
        sys.exit(f"error: {session._model_path}: no genlab.contract metadata; export it with `genlab export`")
    return json.loads(meta["genlab.contract"])


def truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], tau: float | None) -> np.ndarray:
    """N(0, I) draws; with ``tau`` every value outside [−τ, τ] is drawn again until it falls inside."""
    z = rng.standard_normal(shape, dtype=np.float32)
    if tau is not None:
        outside = np.abs(z) > tau
        while outside.any():
            z[outside] = rng.standard_normal(int(outside.sum()), dtype=np.float32)
            outside = np.abs(z) > tau
    return z


def grid(images: np.ndarray, columns: int) -> Image.Image:
    """N×C×H×W floats in [0, 1] → one picture, ``columns`` wide, 2-pixel gaps."""
    n, c, h, w = images.shape
    rows = math.ceil(n / columns)
    canvas = np.zeros((rows * (h + 2) + 2, columns * (w + 2) + 2, c), dtype=np.uint8)
    pixels = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    for i, tile in enumerate(pixels):
        top, left = 2 + (i // columns) * (h + 2), 2 + (i % columns) * (w + 2)
        canvas[top:top + h, left:left + w] = tile
    return Image.fromarray(canvas[..., 0] if c == 1 else canvas)


def read_image(path: str, channels: int) -> np.ndarray:
    image = Image.open(path).convert("L" if channels == 1 else "RGB")
    array = np.asarray(image, dtype=np.float32) / 255.0
    return (array[None, None] if channels == 1 else array.transpose(2, 0, 1)[None]).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a .onnx file written by `genlab export`")
    parser.add_argument("-n", type=int, default=64, help="images to make (z-input parts)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", default=None, help="comma-separated class indices, one per image or one for all "
                                                       "(conditional models; default 0, 1, …, K−1, 0, …)")
    parser.add_argument("--truncation", type=float, default=None, help="τ: redraw z values outside [−τ, τ]")
    parser.add_argument("--z", default=None, help="a .npy file of latent codes (N×d float32) instead of drawing them")
    parser.add_argument("--image", default=None, help="input image (parts that take images: upscaler, translator, encoder)")
    parser.add_argument("-o", "--output", default="onnx_samples.png", help="PNG to write")
    parser.add_argument("--save-array", default=None, help="also save the raw output array (.npy)")
    args = parser.parse_args(argv)

    session = onnxruntime.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    contract = contract_of(session)
    inputs = {spec["name"]: spec for spec in contract["inputs"]}
    if "z" in inputs:
        dim = int(inputs["z"]["shape"][1])
        z = (np.load(args.z).astype(np.float32) if args.z
             else truncated_normal(np.random.default_rng(args.seed), (args.n, dim), args.truncation))
        if z.ndim != 2 or z.shape[1] != dim:
            sys.exit(f"error: --z: expected an N×{dim} array, got {z.shape}")
        feeds = {"z": z}
        columns = max(1, round(math.sqrt(len(z))))
        if "labels" in inputs:
            classes = int(inputs["labels"]["classes"])
            given = [int(x) for x in args.labels.split(",")] if args.labels else None
            labels = (np.arange(len(z)) % classes if given is None
                      else np.resize(np.asarray(given), len(z)))
            if labels.min() < 0 or labels.max() >= classes:
                sys.exit(f"error: --labels must be in 0..{classes - 1}")
            feeds["labels"] = labels.astype(np.int64)
            columns = classes if given is None else columns
    else:
        if not args.image:
            sys.exit(f"error: this {contract['part']} takes images: give --image FILE")
        name, spec = next(iter(inputs.items()))
        feeds = {name: read_image(args.image, int(spec["shape"][1]))}
        columns = 1
    images = session.run(None, feeds)[0]
    if args.save_array:
        np.save(args.save_array, images)
    if images.ndim == 4:
        grid(images, columns).save(args.output)
        print(f"{args.output}: {len(images)} image(s) of {images.shape[1]}×{images.shape[2]}×{images.shape[3]}")
    else:
        print(f"output {images.shape}: not images (use --save-array)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
