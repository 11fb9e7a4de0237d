"""`genlab demo`: train a VAE and a GAN on the bundled Fashion-MNIST subset and write what they
learned as pictures, side by side."""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from genlab.cli.options import add_seed_option, bounded_int
from genlab.config import TrainConfig
from genlab.data import Dataset, load_dataset
from genlab.data.pairs import make_pairs
from genlab.io.checkpoints import CONFIG_FILE
from genlab.io.files import atomic_write_bytes
from genlab.io.grids import concat_images, make_grid, save_image
from genlab.models import GAN, VAE, GANConfig, Pix2Pix, Pix2PixConfig, VAEConfig
from genlab.reporting.comparison import compare
from genlab.reporting.pictures import write_morph, write_reconstructions
from genlab.tools.latent import morph
from genlab.tools.translate import translation_grid
from genlab.training.loop import train

# The GAN the demo trains: GANConfig's defaults (DCGAN nets). No weight EMA: it averages over
# ~1/(1 − decay) steps, and the demo's 930 steps are too few (measured: with decay 0.999 the EMA
# generator's samples were 0.02× as diverse as the data, the raw generator's about 1×).
DEMO_GAN: dict = {}
DEMO_GAN_EMA = None
REPORT_SAMPLES = 2000  # samples per model for the demo's report (see the end of run_demo)
# The demo's translation: pix2pix, edges → garment, for a few hundred steps (recognisable garments after
# 250 steps of batch 64 on fashion-mnist-mini, measured; the full measurement is benchmarks/translation.py).
DEMO_PIX2PIX_STEPS = 300
EPOCHS = (1, 1000)


def pick_pair(dataset: Dataset, first: str = "Sneaker", second: str = "Ankle boot") -> tuple[int, int]:
    """Indices of the first images of two named classes (or simply images 0 and 1)."""
    if dataset.labels is not None and first in dataset.classes and second in dataset.classes:
        labels = dataset.labels.tolist()
        return labels.index(dataset.classes.index(first)), labels.index(dataset.classes.index(second))
    return 0, 1


def _fresh(run_dir: Path) -> Path:
    if (run_dir / CONFIG_FILE).exists():
        shutil.rmtree(run_dir)  # the demo always starts fresh; it only removes its own run folders
    return run_dir


def run_demo(out_dir: str | Path = "demo", *, epochs: int = 12, gan_epochs: int = 10, data: str = "fashion-mnist-mini",
             seed: int = 0, progress: bool = True, log=print) -> dict[str, Path]:
    """Train a VAE, a GAN and a pix2pix (edges → garment), then write the VAE's and GAN's samples side by
    side, the VAE's reconstructions, a morph strip and GIF, a translation grid (edges | pix2pix | target),
    loss plots, the GAN's monitor plot and test-set likelihood bounds to ``out_dir``, and ends with the
    measured comparison report (``out_dir/report/``, see
    ``genlab.compare``). Returns what was written, by name."""
    started = time.perf_counter()
    out = Path(out_dir)
    train_set, test_set = load_dataset(data, split="train"), load_dataset(data, split="test")
    log_every = max(1, min(10, len(train_set) // 64 // 4))  # at least four points per epoch on the curves
    run_dir = _fresh(out / "vae")
    log(f"Training a VAE on {train_set!r} for {epochs} epochs → {run_dir}")
    torch.manual_seed(seed)
    model = VAE(VAEConfig(image_shape=train_set.image_shape, latent_dim=16))
    train(model, train_set, TrainConfig(epochs=epochs, batch_size=64, lr=2e-3, seed=seed, out_dir=str(run_dir),
                                        log_every=log_every, progress=progress))
    gan_dir = _fresh(out / "gan")
    log(f"Training a GAN on {train_set!r} for {gan_epochs} epochs → {gan_dir}")
    torch.manual_seed(seed)
    gan = GAN(GANConfig(image_shape=train_set.image_shape, **DEMO_GAN))
    train(gan, train_set, TrainConfig(epochs=gan_epochs, batch_size=64, seed=seed, out_dir=str(gan_dir), log_every=log_every,
                                      ema_decay=DEMO_GAN_EMA, progress=progress))

    p2p_dir = _fresh(out / "pix2pix")
    log(f"Training pix2pix (edges → garment) on {train_set!r} for {DEMO_PIX2PIX_STEPS} steps → {p2p_dir}")
    torch.manual_seed(seed)
    pix2pix = Pix2Pix(Pix2PixConfig(image_shape=train_set.image_shape, task="edges"))
    train(pix2pix, make_pairs(train_set, "edges"), TrainConfig(epochs=gan_epochs, batch_size=64, seed=seed,
                                                               out_dir=str(p2p_dir), max_steps=DEMO_PIX2PIX_STEPS,
                                                               log_every=log_every, num_sample_images=0, progress=progress))

    written = {"vae_run": run_dir, "gan_run": gan_dir, "pix2pix_run": p2p_dir}
    pairs = make_pairs(test_set, "edges")
    edges, targets = pairs.float_sources(slice(0, 8)), pairs.float_images(slice(0, 8))
    written["translation"] = save_image(translation_grid(edges, pix2pix.translate(edges), targets),
                                        out / "translation.png", scale=2)
    side_by_side = concat_images([make_grid(model.sample(64, seed=seed)), make_grid(gan.sample(64, seed=seed))],
                                 gap=12, labels=["VAE samples", "GAN samples"])
    written["samples"] = save_image(side_by_side, out / "samples.png", scale=2)
    x_test = test_set.float_images(slice(0, 16))
    written["reconstructions"] = write_reconstructions(model, x_test, out / "reconstructions.png")
    a, b = pick_pair(test_set)
    frames = morph(model, test_set.float_images([a])[0], test_set.float_images([b])[0], steps=10)
    written["morph"], written["morph_gif"] = write_morph(frames, out / "morph.png", out / "morph.gif")
    for name, source in (("vae_loss", run_dir / "loss.png"), ("gan_loss", gan_dir / "loss.png"),
                         ("gan_monitor", gan_dir / "monitor.png")):
        if source.exists():
            written[name] = out / f"{name}.png"
            atomic_write_bytes(written[name], source.read_bytes())  # a failed write is one line, never half a file

    # The measured VAE-vs-GAN table (genlab.compare). 2,000 samples per model, not evaluate's
    # 10,000, keep it short; FID is biased upwards at small N, so compare FIDs only at equal N.
    # The VAE's test-set bounds in summary.json are the report's (ELBO and IWAE, k=100).
    log(f"Measuring both models against the test images ({REPORT_SAMPLES} samples each) → {out / 'report'}")
    report = compare([run_dir, gan_dir], test_set, out / "report", num_samples=REPORT_SAMPLES, seed=seed,
                     progress=progress, log=log)
    written["report"] = out / "report" / "report.html"
    written["report_md"] = out / "report" / "report.md"
    written["report_json"] = out / "report" / "results.json"
    vae_metrics = report["runs"][0]["metrics"]
    elbo, iwae, k = vae_metrics["elbo_nats"], vae_metrics["iwae_nats"], int(vae_metrics["iwae_k"])
    summary = {
        "dataset": test_set.name, "test_images": int(vae_metrics["likelihood_images"]), "epochs": epochs,
        "test_elbo_nats": round(elbo, 2), "test_elbo_bits_per_dim": round(vae_metrics["elbo_bits_per_dim"], 4),
        f"test_iwae_k{k}_nats": round(iwae, 2), "seconds": round(time.perf_counter() - started, 1),
    }
    written["summary"] = out / "summary.json"
    atomic_write_bytes(written["summary"], (json.dumps(summary, indent=2) + "\n").encode())
    log(f"Test ELBO {elbo:.1f} nats/image ({summary['test_elbo_bits_per_dim']} bits/dim, Bernoulli on grey levels); "
        f"IWAE(k={k}) {iwae:.1f} nats/image, on {summary['test_images']} test images")
    log(report["verdict"])
    return written


def add_parser(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="train a VAE and a GAN on the bundled subset and write pictures (a few minutes)")
    demo.add_argument("--out", default="demo", help="folder for the pictures")
    demo.add_argument("--epochs", type=bounded_int(*EPOCHS), default=12, metavar="N", help="VAE training epochs on the 6000-image subset")
    demo.add_argument("--gan-epochs", type=bounded_int(*EPOCHS), default=10, metavar="N", help="GAN training epochs on the same subset")
    add_seed_option(demo, "for training and sampling")
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    written = run_demo(args.out, epochs=args.epochs, gan_epochs=args.gan_epochs, seed=args.seed)
    print(f"\nThe demo wrote to {Path(args.out).resolve()}:")
    for name, path in written.items():
        print(f"  {name:<16} {path}")
    return 0
