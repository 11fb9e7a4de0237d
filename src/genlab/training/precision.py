"""Mixed precision for the training step: autocast, and loss scaling for fp16."""
from __future__ import annotations

from typing import Any

import torch

from genlab.errors import ConfigError


class Precision:
    """Mixed precision: autocast to bf16/fp16 for forward passes; fp16 also scales the loss.

    fp16 has a narrow range, so its gradients are computed for loss × S and unscaled before the
    step; steps whose gradients overflow are skipped and S shrinks (torch.amp.GradScaler;
    Micikevicius et al. 2018, "Mixed Precision Training", §3.2). Weights and optimizer state stay fp32.
    """

    def __init__(self, name: str, device: torch.device) -> None:
        if name == "fp16" and device.type != "cuda":
            raise ConfigError(f"precision 'fp16' needs a CUDA device (this run is on {device.type}); use 'bf16' or 'fp32'")
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(name)
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None

    def autocast(self) -> Any:
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)  # skipped when the unscaled gradients hold Inf/NaN
            self.scaler.update()
