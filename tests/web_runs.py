"""Tiny trained runs for the explorer's tests (tests/test_web.py, tests/test_web_browser.py): a VAE and a
class-conditional GAN on the bundled Fashion-MNIST subset (so the runs record a dataset the explorer can load
test images and class directions from), an SR run and a pix2pix run, each a few steps old."""
from __future__ import annotations

import base64
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import genlab
from genlab.data.pairs import make_pairs
from genlab.web import Explorer, ExplorerServer

COMMON = dict(batch_size=16, out_dir="", progress=False, tensorboard=False, device="cpu", precision="fp32",
              num_sample_images=0)


def make_runs(root: Path) -> dict[str, Path]:
    torch.manual_seed(0)
    mini = genlab.load_dataset("fashion-mnist-mini", split="train")
    models = {
        "vae": genlab.VAE(genlab.VAEConfig(latent_dim=4, channels=(8, 16), hidden_dim=32)),
        "cgan": genlab.GAN(genlab.GANConfig(num_classes=10, latent_dim=8, g_width=8, d_width=8)),
        "sr": genlab.SR(genlab.SRConfig(image_shape=(1, 28, 28), scale=4, channels=8, blocks=1, d_width=4)),
        "p2p": genlab.Pix2Pix(genlab.Pix2PixConfig(image_shape=(1, 28, 28), task="edges", g_width=4, d_width=4)),
    }
    runs = {}
    for name, model in models.items():
        runs[name] = root / name
        data = make_pairs(mini, "edges") if name == "p2p" else mini
        genlab.train(model, data, genlab.TrainConfig(**{**COMMON, "out_dir": str(runs[name])}, max_steps=2))
    return runs


def data_url(image: Image.Image | bytes, kind: str = "image/png") -> str:
    if isinstance(image, Image.Image):
        stream = io.BytesIO()
        image.save(stream, format="PNG")
        image = stream.getvalue()
    return f"data:{kind};base64," + base64.b64encode(image).decode()


def decode_url(url: str) -> torch.Tensor:
    """A data URL's picture as float C×H×W in [0, 1] (1 channel for grayscale PNGs)."""
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as picture:
        array = np.asarray(picture.convert("L" if picture.mode in ("L", "P") else "RGB"), dtype=np.float32)
    return torch.from_numpy(array.reshape(*array.shape[:2], -1)).permute(2, 0, 1).div(255.0).contiguous()


@contextmanager
def running(explorer: Explorer) -> Iterator[ExplorerServer]:
    """The explorer's server on a free loopback port, in a thread, for the length of the block."""
    server = ExplorerServer(explorer, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
