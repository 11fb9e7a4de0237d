import pytest
import torch

from genlab.data.dataset import Dataset


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
