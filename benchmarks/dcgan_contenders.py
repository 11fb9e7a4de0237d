"""The two ways of training genlab's DCGAN that ``dcgan_throughput`` compares, and its data choice.

Each ``train_with_*`` runs in its own process (see ``harness.run_interleaved_workers``): it loads
the data and builds the networks untimed, calls ``turn.begin()``, trains, and calls
``turn.boundary()`` at the start of every epoch after the first, so the contenders take turns
epoch by epoch. Everything between ``turn.begin()`` and ``turn.end()`` is timed: the library's
own setup, every step, and its per-epoch work (checkpoints, sample grids, logs).

Both start from the same weights: ``torch.manual_seed(seed)`` before ``GAN(GANConfig(...))``;
the plain loop trains that GAN's own ``.generator`` and ``.discriminator`` modules.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmarks.vae_contenders import EpochTurns
from genlab.data import Dataset, dataset_info, load_dataset
from genlab.models.gan.model import GAN, GANConfig

AUTO_DATA = ("cifar10", "fashion-mnist")  # --data auto: the first whose files are on this machine


# ----- data -----
def dataset_is_local(name: str) -> bool:
    """Are all files of named dataset ``name`` on this machine (cache, $GENLAB_DATA, system folders)?"""
    from genlab.data.sources import find_local

    return all(find_local(name, filename) is not None for filename in dataset_info(name)["files"])


def resolve_data(choice: str) -> str:
    """``auto`` → CIFAR-10 if its archive is already here, else Fashion-MNIST; never downloads."""
    if choice != "auto":
        return choice
    for name in AUTO_DATA:
        if dataset_is_local(name):
            return name
    raise SystemExit(f"--data auto: none of {', '.join(AUTO_DATA)} is on this machine; pass --data NAME_OR_PATH")


def load_training_set(data: str, image_size: int, train_subset: int | None) -> Dataset:
    """The train split of ``data`` as uint8 N×C×S×S (resized to ``image_size`` where it differs)."""
    dataset = load_dataset(data, split="train", image_size=image_size)
    return dataset.subset(slice(0, train_subset)) if train_subset else dataset


# The DCGAN recipe (Radford et al. 2016 §4; pytorch/examples dcgan): pinned, so the benchmark measures what
# it says even if GANConfig's defaults move (the learning rates do not change the cost of a step).
# Everything else (latent 100, widths 64, batch norm in G and D) is GANConfig's default for the shape.
DCGAN_RECIPE = {"loss": "ns", "lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999), "d_steps": 1}


def initial_gan(image_shape: tuple[int, ...], seed: int) -> GAN:
    """genlab's DCGAN for ``image_shape`` with the DCGAN recipe, its weights drawn after ``manual_seed(seed)``."""
    torch.manual_seed(seed)
    return GAN(GANConfig(image_shape=tuple(image_shape), **DCGAN_RECIPE))


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


# ----- genlab: the library's own loop -----
def _last_epoch_means(metrics_csv: Path, epochs: int, columns: tuple[str, ...]) -> dict[str, float]:
    """Means of ``columns`` over the metrics.csv rows logged in the last epoch (a sanity check, not a score)."""
    with metrics_csv.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("epoch")]
    last = [r for r in rows if float(r["epoch"]) > epochs - 1] or rows[-1:]
    return {c: sum(float(r[c]) for r in last) / len(last) for c in columns if last and all(r.get(c) for r in last)}


def train_with_genlab(*, turn: Any, data: str, image_size: int, train_subset: int | None, epochs: int,
                      batch_size: int, seed: int, out_dir: str, train_options: dict[str, Any] | None = None) -> None:
    import genlab
    from genlab.config import config_to_dict

    dataset = load_training_set(data, image_size, train_subset)  # with its labels, as a user would pass it
    model = initial_gan(dataset.image_shape, seed)
    turns = EpochTurns(turn)
    # lr is unused by GAN (it has lr_g / lr_d); num_sample_images stays at its default (64): the
    # fixed-noise grid and the diversity alarm after every epoch are what a genlab user gets.
    config = genlab.TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed, out_dir=out_dir, device="cpu",
                                progress=False, tensorboard=False, **(train_options or {}))
    turn.begin()
    genlab.train(model, dataset, config, callbacks=[turns])
    turn.end()
    files = sorted(str(p.relative_to(out_dir)) for p in Path(out_dir).rglob("*") if p.is_file())
    turn.finish({"steps": turns.steps, "files_written": files, "num_sample_images": config.num_sample_images,
                 "log_every": config.log_every, "genlab_version": _version("genlab"), "train_config": config_to_dict(config),
                 "optimizers": {name: {"class": type(opt).__name__, "fused": bool(opt.defaults.get("fused"))}
                                for name, opt in model.make_optimizers(config).items()},
                 "last_epoch_means": _last_epoch_means(Path(out_dir) / "metrics.csv", epochs,
                                                       ("D/loss", "G/loss", "D/real_prob", "D/fake_prob"))})


# ----- plain PyTorch, as in pytorch/examples dcgan/main.py -----
def train_with_plain_pytorch(*, turn: Any, data: str, image_size: int, train_subset: int | None, epochs: int,
                             batch_size: int, seed: int) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    dataset = load_training_set(data, image_size, train_subset)
    gan = initial_gan(dataset.image_shape, seed)
    netG, netD = gan.generator, gan.discriminator  # genlab's modules; D returns logits, G takes N×nz
    nz, betas = gan.config.latent_dim, tuple(gan.config.betas)
    turn.begin()
    torch.manual_seed(seed)
    # The example's transforms end in Normalize((0.5,), (0.5,)): x ↦ 2x − 1, done here once for all images.
    loader = DataLoader(TensorDataset(dataset.images.float().div_(127.5).sub_(1.0)), batch_size=batch_size,
                        shuffle=True, drop_last=True)  # drop_last: the same images per epoch as genlab
    criterion = nn.BCEWithLogitsLoss()  # the example's BCELoss on D's sigmoid, here on logits (our D has no sigmoid)
    optimizerD = torch.optim.Adam(netD.parameters(), lr=gan.config.lr_d, betas=betas)
    optimizerG = torch.optim.Adam(netG.parameters(), lr=gan.config.lr_g, betas=betas)
    real_label, fake_label = 1.0, 0.0
    epoch_means = []
    for epoch in range(epochs):
        if epoch:
            turn.boundary()
        sums = torch.zeros(5, dtype=torch.float64)
        for i, (real,) in enumerate(loader):
            # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
            netD.zero_grad()
            b = real.size(0)
            label = torch.full((b,), real_label)
            output = netD(real)
            errD_real = criterion(output, label)
            errD_real.backward()
            D_x = output.sigmoid().mean().item()

            noise = torch.randn(b, nz)
            fake = netG(noise)
            label.fill_(fake_label)
            output = netD(fake.detach())
            errD_fake = criterion(output, label)
            errD_fake.backward()
            D_G_z1 = output.sigmoid().mean().item()
            errD = errD_real + errD_fake
            optimizerD.step()

            # (2) Update G: maximize log(D(G(z))), on the same fakes
            netG.zero_grad()
            label.fill_(real_label)  # fake labels are real for generator cost
            output = netD(fake)
            errG = criterion(output, label)
            errG.backward()
            D_G_z2 = output.sigmoid().mean().item()
            optimizerG.step()

            values = (errD.item(), errG.item(), D_x, D_G_z1, D_G_z2)  # host syncs every step, as in the example
            sums += torch.tensor(values, dtype=torch.float64)
            if i % 100 == 0:  # the example prints every step; a line per 100 keeps the worker's log short
                print(f"[{epoch}/{epochs}][{i}/{len(loader)}] Loss_D: {values[0]:.4f} Loss_G: {values[1]:.4f} "
                      f"D(x): {D_x:.4f} D(G(z)): {D_G_z1:.4f} / {D_G_z2:.4f}", flush=True)
            turn.add_images(b)
        epoch_means.append(dict(zip(("D/loss", "G/loss", "D/real_prob", "D/fake_prob", "G/fake_prob"),
                                    (sums / len(loader)).tolist(), strict=True)))
    turn.end()
    turn.finish({"steps": epochs * len(loader), "epoch_means": epoch_means, "last_epoch_means": epoch_means[-1]})


# ----- sampling: genlab's model.sample vs a plain G(z) -----
def sampling_contenders(image_shape: tuple[int, ...], seed: int, num_images: int, batch: int,
                        names: tuple[str, ...]) -> dict[str, Any]:
    """Callables that each draw ``num_images`` samples in batches of ``batch`` and return ``num_images``."""
    model = initial_gan(image_shape, seed)
    model.eval()
    G, nz = model.generator, model.config.latent_dim
    sizes = [min(batch, num_images - start) for start in range(0, num_images, batch)]

    def genlab_sample() -> int:
        for n in sizes:
            model.sample(n)  # z ~ N(0, I), G in eval mode under no_grad, output mapped to [0, 1]
        return num_images

    @torch.no_grad()
    def plain_call() -> int:
        for n in sizes:
            G(torch.randn(n, nz))  # eval mode (set above), output in G's tanh range [-1, 1]
        return num_images

    contenders = {"genlab model.sample": genlab_sample, "plain G(z)": plain_call}
    return {name: contenders[name] for name in names}
