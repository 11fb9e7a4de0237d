"""The data order: shuffled index batches, epoch after epoch, resumable mid-epoch."""
from __future__ import annotations

from typing import Any

import torch

from genlab.errors import CheckpointError, ConfigError


class BatchSampler:
    """Shuffled index batches, epoch after epoch (the last incomplete batch is dropped).

    Its state is the RNG state at the start of the current epoch plus the position in it, so a
    run resumed mid-epoch sees exactly the batches an uninterrupted run would.

    Several processes: ``batch_size`` is the global batch; every rank draws the same order
    (same seed) and takes the items ``rank, rank + world_size, ...`` of each global batch. Before
    a checkpoint the loop puts every rank's noise-RNG state in ``rank_rng_states``; they are saved
    and restored with the sampler's own (``state``/``restore``), so a resumed multi-process run
    continues every rank's noise stream.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, device: torch.device,
                 rank: int = 0, world_size: int = 1) -> None:
        self.num_items = num_items
        self.batch_size = min(batch_size, num_items) // world_size * world_size
        if self.batch_size < 1:
            raise ConfigError(f"the dataset has {num_items} items, fewer than the {world_size} processes")
        self.batches_per_epoch = num_items // self.batch_size
        self.device = device
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.position = 0
        self._epoch_start_state = self.generator.get_state()
        self._order: torch.Tensor | None = None
        self.rank_rng_states: list[torch.Tensor] | None = None

    @property
    def batches_drawn(self) -> int:
        """Batches drawn since the run began (over all epochs, and over resumes)."""
        return self.epoch * self.batches_per_epoch + self.position

    def next(self) -> torch.Tensor:
        if self._order is None:
            self._epoch_start_state = self.generator.get_state()
            self._order = torch.randperm(self.num_items, generator=self.generator).to(self.device)
        start = self.position * self.batch_size
        index = self._order[start:start + self.batch_size]
        if self.world_size > 1:
            index = index[self.rank::self.world_size]
        self.position += 1
        if self.position == self.batches_per_epoch:
            self.epoch, self.position, self._order = self.epoch + 1, 0, None
        return index

    def state(self) -> tuple[torch.Tensor, dict[str, Any]]:
        rng = self._epoch_start_state if self._order is not None else self.generator.get_state()
        state: dict[str, Any] = {"epoch": self.epoch, "position": self.position}
        if self.rank_rng_states:
            rng = torch.cat([rng, *self.rank_rng_states])
            state["rank_rng_bytes"] = [int(r.numel()) for r in self.rank_rng_states]
        return rng, state

    def restore(self, rng: torch.Tensor, state: dict[str, Any]) -> None:
        sizes = state.get("rank_rng_bytes", [])
        own = rng.numel() - sum(sizes)
        self.rank_rng_states = list(rng[own:].split(sizes)) if sizes else None
        self.generator.set_state(rng[:own].clone())
        position = state["position"]
        if not (isinstance(position, int) and 0 <= position < self.batches_per_epoch):
            raise CheckpointError(f"training state: data position {position!r} is not a batch of an epoch of "
                                  f"{self.batches_per_epoch} batches; the state was written for other data or is damaged")
        self.epoch, self.position, self._order = state["epoch"], 0, None
        if position:
            self.next()  # regenerates this epoch's order from its starting RNG state
            self.position = position
