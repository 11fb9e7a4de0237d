"""Exponential moving average of the weights, used for sampling and saving when ``ema_decay`` is set."""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import torch
from tqdm.auto import tqdm


class EMA:
    """Exponential moving average of a model's floating-point parameters and buffers."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        current = model.state_dict()
        names = list(self.shadow)
        # shadow ← shadow + (1 − decay)·(current − shadow)
        torch._foreach_lerp_([self.shadow[k] for k in names], [current[k].detach() for k in names], 1.0 - self.decay)

    def state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The model's state dict with EMA values in place of the averaged tensors."""
        return {k: self.shadow.get(k, v) for k, v in model.state_dict().items()}

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module) -> Iterator[None]:
        """Temporarily load the EMA weights into ``model`` (e.g. to sample)."""
        backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.state_dict(model))
        try:
            yield
        finally:
            model.load_state_dict(backup)


def warn_if_it_outlasts_the_run(decay: float, steps: int) -> None:
    """An EMA averages over about 1/(1 − decay) steps; over a shorter run it mostly holds early weights."""
    horizon = 1.0 / (1.0 - decay)
    if horizon > steps / 3:
        tqdm.write(f"warning: ema_decay={decay} averages over ~{horizon:.0f} steps but the run has at most "
                   f"{steps}; the averaged weights will lag far behind (use a decay below {1 - 3 / steps:.4f})",
                   file=sys.stderr)
