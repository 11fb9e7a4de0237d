import os

import pytest
import torch

from genlab.config import TrainConfig
from genlab.data.dataset import Dataset
from genlab.models import VAE, VAEConfig
from genlab.training.sampler import BatchSampler

# Environment variables that choose which CPU kernels compute the numbers: MKL (LAPACK/BLAS: eigh, qr, matmul),
# ATen's vectorized kernels (sums, elementwise maths, even torch.randn's float32 values) and oneDNN (convolutions).
KERNEL_ENV = ("MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS")


def kernels_in_use() -> str:
    chosen = " ".join(f"{name}={os.environ[name]}" for name in KERNEL_ENV if name in os.environ) or "none"
    return (f"torch {torch.__version__}: CPU capability {torch.backends.cpu.get_cpu_capability()}, "
            f"{torch.get_num_threads()} threads; kernel env: {chosen}")


def pytest_report_header(config) -> list[str]:
    """Which kernels this run uses: results that differ between CPUs can then be traced to the machine."""
    return [kernels_in_use()]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if config.get_verbosity() < 0:  # -q (as `make test` runs) hides the header: say it at the end instead
        terminalreporter.write_line(kernels_in_use())


def make_blobs(n: int = 96, size: int = 16, channels: int = 1, seed: int = 0) -> Dataset:
    """Tiny structured images: one bright rectangle on a dark background; label = its quadrant."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, channels, size, size, dtype=torch.uint8)
    labels = torch.empty(n, dtype=torch.int64)
    half = size // 2
    for i in range(n):
        top, left = torch.randint(0, size - 4, (2,), generator=generator).tolist()
        h, w = torch.randint(3, half, (2,), generator=generator).tolist()
        images[i, :, top:top + h, left:left + w] = 255
        labels[i] = 2 * (top >= half // 1 - 2) + (left >= half - 2)
    return Dataset(images, labels, ("tl", "tr", "bl", "br"), f"blobs{size}")


@pytest.fixture
def blobs() -> Dataset:
    return make_blobs()


def vae_one_step_in(config: VAEConfig) -> tuple[VAE, dict, BatchSampler]:
    """A VAE (seeded init) one Adam step in, with a data sampler one batch into its epoch: live objects
    whose training state has every kind of entry (weights, optimizer moments, RNG, data position)."""
    torch.manual_seed(0)
    model = VAE(config)
    optimizers = model.make_optimizers(TrainConfig())
    for parameter in model.parameters():
        parameter.grad = torch.ones_like(parameter)
    optimizers["vae"].step()
    sampler = BatchSampler(16, 4, seed=0, device=torch.device("cpu"))
    sampler.next()
    return model, optimizers, sampler
