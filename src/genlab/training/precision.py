"""Mixed precision for the training step: which precision ``auto`` picks on this hardware, autocast,
and loss scaling for fp16.

Where the casts are: autocast lowers the matrix products (convolutions, linear layers, matmuls) to
bf16/fp16 inside each sub-network; :func:`fp32_outputs` casts every sub-network's outputs (the model's
direct children: encoder, decoder, generator, discriminator, ...) back to fp32, so every loss,
likelihood and penalty a model computes from them is fp32, for every model kind alike. The loop sums
logged values in fp32 (training/monitor.py); weights and optimizer state stay fp32.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch

from genlab.errors import ConfigError

# oneDNN ISA limits (ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA) under which its bf16 kernels are still native.
_BF16_ISAS = ("ALL", "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512",
              "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2")


def _cpu_flag(name: str) -> bool:
    """torch.cpu._is_<name>_supported() (cpuinfo's view of the hardware), False where this torch lacks it."""
    probe = getattr(torch.cpu, f"_is_{name}_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


def native_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether ``device`` multiplies bf16 matrices natively, and why (one phrase).

    CPU: AMX tiles or AVX-512 BF16 (measured, benchmarks/results/precision.md: bf16 autocast 1.7–2.0× fp32
    with AVX-512 BF16, 0.05–0.08× on an AVX2-only CPU, where oneDNN emulates bf16), with ATen and oneDNN
    allowed to use them (ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA can hold both back). CUDA:
    torch.cuda.is_bf16_supported() without emulation (Ampere and later).
    """
    if device.type == "cuda":
        if _cuda_bf16():
            return True, f"{torch.cuda.get_device_name(device)} has bf16 tensor cores"
        return False, f"{torch.cuda.get_device_name(device)} has no native bf16"
    if device.type != "cpu":
        return False, f"no bf16 policy for device type {device.type}"
    units = [name for flag, name in (("amx_tile", "AMX"), ("avx512_bf16", "AVX-512 BF16")) if _cpu_flag(flag)]
    if not units:
        return False, "this CPU has no bf16 units (no AMX or AVX-512 BF16; bf16 would be emulated, far slower)"
    capability = torch.backends.cpu.get_cpu_capability()
    if not capability.startswith(("AVX512", "AMX")):
        return False, f"this CPU has {' and '.join(units)} but torch runs its {capability} kernels (ATEN_CPU_CAPABILITY)"
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    if isa and isa.upper() not in _BF16_ISAS:
        return False, f"this CPU has {' and '.join(units)} but oneDNN is limited to {isa} (ONEDNN_MAX_CPU_ISA)"
    return True, f"this CPU has {' and '.join(units)}"


def _cuda_bf16() -> bool:
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch < 2.4: no emulation flag, and the check is the compute capability (>= 8.0) alone
        return torch.cuda.is_bf16_supported()


def choose_precision(device: torch.device) -> tuple[str, str]:
    """What ``precision="auto"`` means on ``device``: ("bf16" or "fp32", why)."""
    native, why = native_bf16(device)
    return ("bf16" if native else "fp32"), why


class Precision:
    """Mixed precision: autocast to bf16/fp16 for forward passes; fp16 also scales the loss.

    fp16 has a narrow range, so its gradients are computed for loss × S and unscaled before the
    step; steps whose gradients overflow are skipped and S shrinks (torch.amp.GradScaler;
    Micikevicius et al. 2018, "Mixed Precision Training", §3.2). Weights and optimizer state stay fp32.
    """

    def __init__(self, name: str, device: torch.device) -> None:
        if name == "auto":
            name, _ = choose_precision(device)
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


@contextlib.contextmanager
def fp32_outputs(model: torch.nn.Module, precision: str) -> Iterator[None]:
    """While training in bf16/fp16, each direct child of ``model`` (its sub-networks) returns fp32 tensors
    (a forward hook; tensors in tuples, lists and dicts too), so the model's losses are computed in fp32."""
    if precision not in ("bf16", "fp16"):
        yield
        return
    handles = [child.register_forward_hook(_outputs_to_fp32) for child in model.children()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _outputs_to_fp32(module: torch.nn.Module, inputs: Any, output: Any) -> Any:
    return _to_fp32(output)


def _to_fp32(value: Any) -> Any:
    if torch.is_tensor(value):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_to_fp32(item) for item in value)
    if isinstance(value, list):
        return [_to_fp32(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_fp32(item) for key, item in value.items()}
    return value
