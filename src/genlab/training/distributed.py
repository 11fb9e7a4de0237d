"""Several processes, one run: data-parallel training for THE loop, launched by ``torchrun``.

    torchrun --nproc_per_node 4 -m genlab train vae --out runs/vae          # one machine, 4 processes
    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 8 \\
             --master_addr HOST0 --master_port 29500 -m genlab train gan --out runs/gan   # (node 1: --node_rank 1)

``torchrun`` starts the processes and sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT; :func:`setup` (called by ``genlab.train``) reads them and joins the process group:
gloo on CPU, NCCL on CUDA (process ``LOCAL_RANK`` of a machine uses its GPU ``LOCAL_RANK``).

What data parallelism means here, the same for every model (the loop has no case per model):

- ``TrainConfig.batch_size`` is the GLOBAL batch. Every rank draws the same shuffled order from
  the shared seed and takes a rank-strided share (items ``rank, rank + W, ...``) of each global
  batch, so W processes see exactly the batches one process would, W times faster at best.
- After each phase's backward pass the gradients of that phase's parameters are averaged over
  the ranks (one all-reduce of a flat buffer) before its optimizer steps. Per-rank losses are
  means over the rank's share, so the average is the gradient of the global batch mean: the
  same update as one process with the same global batch. This is what DistributedDataParallel
  does, written out, because a GAN's phases (D with fakes detached, G through a frozen D)
  do not map onto one ``DDP(module).forward``.
- Batch norm normalises over each rank's share (as DDP without SyncBatchNorm; PyTorch's
  SyncBatchNorm runs on GPUs only). Running statistics are averaged over the ranks before every
  checkpoint and sample grid, which for the running means equals averaging after every step
  (they are linear in the batch means).
- Initial weights are broadcast from rank 0. Noise (reparameterisation, G's z) comes from a
  different RNG stream on each rank; checkpoints carry every rank's stream, so a resumed run
  continues exactly where it stopped.
- Only rank 0 writes: config, checkpoints, metrics.csv, sample grids, plots, the progress bar.
  Logged values are averaged over the ranks. Resuming reads the checkpoint on every rank, so
  the run directory must be on a file system all machines share.

Not done (yet): DDP's overlap of the gradient all-reduce with the backward pass (here it starts
when the backward pass ends; it matters for large models on fast interconnects, not for these).
On one 2-core CPU, two single-thread processes train the VAE at 0.81× the rate of one process with
two threads (they also pay the all-reduce and half-size batches; benchmarks/results/cpu_processes.md):
the point is several machines or GPUs, not the cores of one CPU.
"""
from __future__ import annotations

import atexit
import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from genlab.errors import ConfigError


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run. ``world_size == 1`` (the default) is an ordinary run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and shows progress."""
        return self.rank == 0

    # ----- collectives; each is a no-op in a single process -----
    def average_(self, tensors: list[torch.Tensor]) -> None:
        """Replace each tensor by its mean over the ranks, in place, with one all-reduce."""
        if not self.enabled or not tensors:
            return
        flat = torch.cat([t.detach().reshape(-1).float() for t in tensors])
        dist.all_reduce(flat)  # SUM: gloo has no AVG
        flat.div_(self.world_size)
        for tensor, mean in zip(tensors, flat.split([t.numel() for t in tensors]), strict=True):
            tensor.copy_(mean.view_as(tensor))

    def average_gradients(self, parameters: Iterable[torch.Tensor]) -> None:
        """Average the gradients of ``parameters`` over the ranks (the data-parallel step).

        Every rank runs the same phase on the same model, so the same parameters hold gradients.
        """
        self.average_([p.grad for p in parameters if p.grad is not None])

    def average_buffers(self, module: torch.nn.Module, *extra: dict[str, torch.Tensor]) -> None:
        """Average floating-point buffers (batch-norm running statistics) over the ranks; ``extra``
        dicts (an EMA's shadow) get the same for the entries named like a buffer."""
        if not self.enabled:
            return
        buffers = {name: buffer for name, buffer in module.named_buffers() if buffer.is_floating_point()}
        tensors = list(buffers.values()) + [shadow[name] for shadow in extra for name in buffers if name in shadow]
        self.average_(tensors)

    def any_rank(self, *flags: bool) -> list[bool]:
        """For each flag: is it true on at least one rank? (So every rank takes the same branch.)"""
        if not self.enabled:
            return [bool(f) for f in flags]
        values = torch.tensor([float(f) for f in flags], device=self.collective_device)
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return [bool(v) for v in values.tolist()]

    def every_rank(self, flag: bool | torch.Tensor) -> bool:
        """Is ``flag`` true on every rank?"""
        if not self.enabled:
            return bool(flag)
        value = torch.as_tensor(flag, dtype=torch.float32).reshape(1).to(self.collective_device)
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return bool(value.item())

    def broadcast_(self, tensors: Iterable[torch.Tensor]) -> None:
        """Overwrite ``tensors`` on every rank with rank 0's values."""
        if not self.enabled:
            return
        for tensor in tensors:
            dist.broadcast(tensor.data, src=0)

    def from_main(self, value: torch.Tensor | None) -> torch.Tensor:
        """Rank 0's 0-dim float ``value`` on every rank (the others pass None)."""
        if not self.enabled:
            return value  # type: ignore[return-value]
        value = torch.zeros((), device=self.collective_device) if value is None else value.float().to(self.collective_device)
        self.broadcast_([value])
        return value

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers everywhere: every rank starts from the same weights."""
        self.broadcast_(list(module.parameters()) + list(module.buffers()))

    def gather_bytes(self, data: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's uint8 vector (all of one length), on the CPU, in rank order."""
        if not self.enabled:
            return [data]
        local = data.to(self.collective_device)
        parts = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(parts, local)
        return [p.cpu() for p in parts]

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    @property
    def collective_device(self) -> torch.device:
        """Where small tensors for collectives live: NCCL needs them on this rank's GPU."""
        if self.enabled and dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


SINGLE = Distributed()


def setup(device: torch.device) -> tuple[Distributed, torch.device]:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Returns this process's :class:`Distributed` and its device: with CUDA, process LOCAL_RANK of a
    machine takes GPU LOCAL_RANK (unless ``device`` names one). Without WORLD_SIZE > 1 (a plain
    ``python``/``genlab`` run) nothing happens. A process group the caller initialised already
    is used as it is.
    """
    if not dist.is_available():
        return SINGLE, device
    if not dist.is_initialized():
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return SINGLE, device
        missing = [name for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
        if missing:
            raise ConfigError(f"WORLD_SIZE={world_size} is set but {', '.join(missing)} is not; launch with torchrun "
                              "(e.g. torchrun --nproc_per_node 2 -m genlab train ...)")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if device.index is None:
            if local_rank >= torch.cuda.device_count():
                raise ConfigError(f"process LOCAL_RANK={local_rank} has no GPU of its own ({torch.cuda.device_count()} "
                                  "visible); use --nproc_per_node at most the number of GPUs")
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        atexit.register(_shutdown)
    return Distributed(dist.get_rank(), dist.get_world_size(), local_rank), device


def _shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
