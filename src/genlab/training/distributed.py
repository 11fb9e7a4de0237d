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

Waiting and failing: joining the process group and every collective wait at most
``GENLAB_DIST_TIMEOUT`` seconds (default 300, not PyTorch's 30 minutes) for the other processes. A
peer that never arrives, or one that dies mid-run (killed, out of memory), ends each remaining rank
with one :class:`DistributedError` line naming its rank and the world size, not a traceback per
rank; the last checkpoint resumes with ``--resume``. Raise the timeout when rank 0 does slow work
the others wait for (a callback that evaluates every epoch, a first compile). The rendezvous
store listens on MASTER_PORT (torchrun's ``--master_port``, or the port of ``--rdzv-endpoint``;
``--standalone`` picks a free one) on every interface of rank 0's machine, unauthenticated:
MASTER_ADDR only says where the others connect. Keep the port firewalled to loopback (one machine)
or to a private network (several; GLOO_SOCKET_IFNAME picks gloo's interface): see the README.

Not done (yet): DDP's overlap of the gradient all-reduce with the backward pass (here it starts
when the backward pass ends; it matters for large models on fast interconnects, not for these).
On one 2-core CPU, two single-thread processes train the VAE at 0.81× the rate of one process with
two threads (they also pay the all-reduce and half-size batches; benchmarks/results/cpu_processes.md):
the point is several machines or GPUs, not the cores of one CPU.
"""
from __future__ import annotations

import atexit
import functools
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from genlab.errors import ConfigError, GenlabError

TIMEOUT_ENV = "GENLAB_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 300.0
F = TypeVar("F", bound=Callable[..., Any])


class DistributedError(GenlabError):
    """The processes of a torchrun launch could not form their group, or lost one of theirs mid-run."""


def timeout_seconds() -> float:
    """How long process-group setup and each collective wait for the other processes: GENLAB_DIST_TIMEOUT, or 300 s."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise ConfigError(f"{TIMEOUT_ENV} must be a number of seconds > 0, got {text!r}")
    return seconds


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _collective(method: F) -> F:
    """A collective that fails (a peer died, or did not answer within the timeout) becomes one DistributedError."""

    @functools.wraps(method)
    def wrapper(self: Distributed, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except RuntimeError as error:  # gloo's and NCCL's errors (DistBackendError, DistNetworkError, ...)
            _BROKEN.set()
            raise DistributedError(
                f"rank {self.rank} of {self.world_size}: lost contact with the other processes ({_first_line(error)}); "
                f"one of them died, was killed or waited longer than {TIMEOUT_ENV}={timeout_seconds():g} s: see its own "
                "output, then continue from the last checkpoint with --resume"
            ) from None

    return wrapper  # type: ignore[return-value]


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
    @_collective
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

    @_collective
    def any_rank(self, *flags: bool) -> list[bool]:
        """For each flag: is it true on at least one rank? (So every rank takes the same branch.)"""
        if not self.enabled:
            return [bool(f) for f in flags]
        values = torch.tensor([float(f) for f in flags], device=self.collective_device)
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return [bool(v) for v in values.tolist()]

    @_collective
    def every_rank(self, flag: bool | torch.Tensor) -> bool:
        """Is ``flag`` true on every rank?"""
        if not self.enabled:
            return bool(flag)
        value = torch.as_tensor(flag, dtype=torch.float32).reshape(1).to(self.collective_device)
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return bool(value.item())

    @_collective
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

    @_collective
    def gather_bytes(self, data: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's uint8 vector (all of one length), on the CPU, in rank order."""
        if not self.enabled:
            return [data]
        local = data.to(self.collective_device)
        parts = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(parts, local)
        return [p.cpu() for p in parts]

    @_collective
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
        _join(device)
    return Distributed(dist.get_rank(), dist.get_world_size(), local_rank), device


def _join(device: torch.device) -> None:
    """init_process_group with GENLAB_DIST_TIMEOUT; a group that does not form is one line naming this rank."""
    seconds = timeout_seconds()
    rank, world_size = os.environ.get("RANK", "?"), os.environ.get("WORLD_SIZE", "?")
    where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
    try:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", timeout=timedelta(seconds=seconds))
    except (RuntimeError, ValueError) as error:  # DistStoreError, DistNetworkError (no one listening, timed out), ...
        raise DistributedError(
            f"rank {rank} of {world_size}: the {world_size} processes did not all join at {where} within {seconds:g} s "
            f"({_first_line(error)}); start every rank (the same --nnodes and --nproc-per-node on every machine, one "
            f"--node-rank each) and check that this machine reaches {where}, or wait longer with {TIMEOUT_ENV}=SECONDS"
        ) from None
    atexit.register(_shutdown)


# Set once a collective has failed: the group cannot be torn down cleanly any more (destroying it then can
# abort the process in gloo's C++ teardown, "terminate called without an active exception").
_BROKEN = threading.Event()


def group_is_broken() -> bool:
    """Whether a collective of this process has failed (a peer died or timed out)."""
    return _BROKEN.is_set() and dist.is_initialized()


def _shutdown() -> None:
    if dist.is_initialized() and not _BROKEN.is_set():
        dist.destroy_process_group()
