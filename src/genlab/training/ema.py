"""Exponential moving average of the weights, used for sampling and saving when ``ema_decay`` is set."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


class EMA:
    """Exponential moving average of a model's floating-point parameters and buffers.

    With ``step`` given, the decay warms up as min(decay, (1 + step)/(10 + step)) (the ``num_updates`` rule of
    TensorFlow's ExponentialMovingAverage, also used by the latent-diffusion code of Rombach et al. 2022), so a
    run shorter than the average's horizon 1/(1 − decay) does not keep mostly its initial weights."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    def decay_at(self, step: int | None) -> float:
        """The decay of update number ``step`` (1 for the first); None: the plain ``decay``."""
        return self.decay if step is None else min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int | None = None) -> None:
        current = model.state_dict()
        names = list(self.shadow)
        # shadow ← shadow + (1 − decay_t)·(current − shadow)
        torch._foreach_lerp_([self.shadow[k] for k in names], [current[k].detach() for k in names],
                             1.0 - self.decay_at(step))

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
