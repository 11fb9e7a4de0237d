"""The image history pool: D trains on a mix of the newest fakes and older ones.

Shrivastava et al. 2017 ("Learning from Simulated and Unsupervised Images through Adversarial Training",
§2.3, "history of refined images"), as CycleGAN uses it (Zhu et al. 2017 §4, "Training details": a buffer of
the 50 previously generated images). Until the pool is full every fake is stored and passed on. Once it is
full each fake is, with probability ½, passed on as it is, or else swapped: D gets a stored image drawn
uniformly and the fake takes its place. D then cannot chase only G's latest move, which damps oscillation.

The pool is part of the training state: its images are buffers, saved with each checkpoint, so a resumed run
continues with the same history. They are stored as uint8, like real images: a checkpoint holds 50 small
images, and neither the EMA nor data-parallel buffer averaging (which touch float buffers) blends them.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ImagePool(nn.Module):
    def __init__(self, size: int, image_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros((size, *image_shape), dtype=torch.uint8))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))  # slots filled so far
        self._count: int | None = None  # ``count`` as a Python int, so a query reads it without a host sync

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._count = None  # restored from a checkpoint: read the buffer again

    @property
    def filled(self) -> int:
        if self._count is None:
            self._count = int(self.count)
        return self._count

    @torch.no_grad()
    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        """The images D should see for this batch of ``fakes`` (in [-1, 1]; detached). Within one batch every
        swap takes a different slot, so a stored image is handed out at most once before it is replaced."""
        if self.size == 0:
            return fakes.detach()
        fakes = fakes.detach()
        out = fakes.clone()
        start = min(self.size - self.filled, len(fakes))  # these still find an empty slot
        if start:
            self.images[self.filled:self.filled + start] = _to_uint8(fakes[:start])
            self._count = self.filled + start
            self.count.fill_(self._count)
        for first in range(start, len(fakes), self.size):  # a batch larger than the pool, in pool-sized pieces
            batch = fakes[first:first + self.size]
            swap = torch.rand(len(batch), device=fakes.device) < 0.5
            slots = torch.randperm(self.size, device=fakes.device)[:len(batch)]
            stored = _to_float(self.images[slots], fakes.dtype)
            out[first:first + len(batch)] = torch.where(swap.view(-1, 1, 1, 1), stored, batch)
            kept = torch.where(swap.view(-1, 1, 1, 1), _to_uint8(batch), self.images[slots])
            self.images[slots] = kept
        return out


def _to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] → uint8 0..255."""
    return ((images.float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


def _to_float(images: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """uint8 0..255 → [-1, 1]."""
    return (images.float() / 127.5 - 1.0).to(dtype)
