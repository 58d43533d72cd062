"""Data-parallel training over several processes: GPUs of one machine, or several machines.

Started by ``torchrun`` (``torchrun --nproc-per-node N -m hourglass train ...``), every process (a
*rank*) runs the same command. :func:`setup` reads the variables torchrun sets (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) and joins the
process group: NCCL when training on CUDA (each rank on GPU ``LOCAL_RANK``), gloo on CPU. Without
them (or with ``WORLD_SIZE=1``) nothing changes: one process trains as always.

What the ranks share and split (Li et al. 2020, "PyTorch Distributed: Experiences on Accelerating
Data Parallel Training"):

* Every rank reads the data and makes the same splits (they are seeded); the model starts from the
  same seeded weights, and DistributedDataParallel broadcasts rank 0's on construction.
* ``batch_size`` is the *global* batch. Each epoch's order is drawn from the shared shuffling seed, so
  every rank draws the same permutation; rank r takes examples ``r, r + N, r + 2N, ...`` of each global
  batch (:meth:`~hourglass.data.batches.TensorBatches.shard`, and the streaming source reads only its
  own rows). DDP averages the gradients over ranks, so a step with N ranks takes the step one process
  would take on the whole batch, up to the order of floating-point sums (and batch norm, which
  normalises over each rank's part). A final global batch smaller than N gives the ranks without an
  example of their own one of the batch's examples again: every rank must take every step.
* The model's ``training_step`` runs inside the DDP wrapper (:class:`StepModule`), so the gradients
  of every phase are all-reduced. Models with several optimizers (adversarial phases, layer-wise
  pretraining) use different parameters in different phases; for them ``find_unused_parameters=True``
  lets DDP skip those a phase does not reach.
* Random noise (dropout, corruption, the reparameterisation's draws) differs between ranks: rank r
  seeds torch with ``seed + r``; rank 0 draws what one process would.
* Training loss sums and the validation numbers (each rank scores its shard, weighted by its number
  of examples) are summed over ranks, so the history is the global one; early stopping and the
  non-finite-loss check act on the same numbers everywhere, and a stop request (SIGTERM, Ctrl-C) on any
  rank stops all of them at the same step.
* Only rank 0 writes: the run directory, checkpoints, TensorBoard, progress, evaluation, figures and
  the report. A checkpoint holds the model and optimizer state, which are the same on every rank, so a
  run resumes with any number of ranks (a resumed multi-rank run draws other noise on ranks > 0 than
  the uninterrupted one would have: only a single process resumes bit for bit).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ConfigError

ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class Context:
    """Where this process stands in the group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str | None = None

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_context = Context()


@contextlib.contextmanager
def alone():
    """Train as one process inside a group: for what one rank trains by itself (rank 0 evaluates, and its
    evaluation trains the reference classifier), which must neither shard its data nor wait for the
    other ranks' gradients, as they are not taking part."""
    global _context
    outer, _context = _context, Context()
    try:
        yield
    finally:
        _context = outer


def current() -> Context:
    """The context :func:`setup` established (one process, rank 0, before it or without torchrun)."""
    return _context


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not a whole number") from None


def from_env() -> Context:
    """The context torchrun's variables describe (no process group is joined)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    if world < 1 or not 0 <= rank < world or not 0 <= local_rank < local_world:
        raise ConfigError(f"torchrun variables out of range: RANK={rank}, WORLD_SIZE={world}, "
                          f"LOCAL_RANK={local_rank}, LOCAL_WORLD_SIZE={local_world}")
    return Context(rank, world, local_rank, local_world)


def setup(device: str = "auto") -> Context:
    """Join the process group torchrun describes (once per process) and return this rank's context.

    ``device`` is the run's ``TrainConfig.device``: on CUDA each rank takes GPU ``LOCAL_RANK`` and the
    group talks NCCL; on CPU, gloo. One process (no torchrun) returns the single-process context."""
    global _context
    ctx = from_env()
    if not ctx.active:
        return _context
    import torch.distributed as dist

    if dist.is_initialized():
        return _context
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if missing:
        raise ConfigError(f"WORLD_SIZE={ctx.world_size} but {', '.join(missing)} not set: start the processes "
                          "with torchrun (torchrun --nproc-per-node N -m hourglass train ...)")
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested but CUDA is not available on this machine")
        if ctx.local_rank >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK={ctx.local_rank} but this machine has {torch.cuda.device_count()} "
                              "CUDA device(s): start at most that many processes per node")
        torch.cuda.set_device(ctx.local_rank)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend, timeout=TIMEOUT)
    _context = Context(ctx.rank, ctx.world_size, ctx.local_rank, ctx.local_world_size, backend)
    return _context


def teardown() -> None:
    """Leave the process group (at the end of the command)."""
    global _context
    if _context.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        _context = Context()


def device_for(name: str) -> str:
    """The device a rank trains on: ``cuda:LOCAL_RANK`` for CUDA runs, else ``name``."""
    ctx = current()
    if ctx.active and ctx.backend == "nccl" and (name == "auto" or name.startswith("cuda")):
        return f"cuda:{ctx.local_rank}"
    return name


def barrier() -> None:
    if current().active:
        import torch.distributed as dist

        dist.barrier()


# The tensors hourglass hands to all-reduce, one per (device, dtype, shape), kept for the life of the process.
# The backend's worker thread (gloo's run loop, NCCL's watchdog) lets go of a collective's tensors only after
# the caller has been told it is done. Were its reference the last one to a tensor Python had created, that
# thread would need the interpreter lock to free it; at interpreter exit it cannot have it, and the process
# aborts ("terminate called without an active exception"; rank 1 of a 2-rank CPU run, 3 exits in 28 beside
# two busy processes). DDP keeps the process group, and so those threads, alive until exit: destroying the
# group does not join them. Kept here (never cleared), such a tensor outlives the thread's reference, and the
# thread only lowers a count.
_reduced: dict[tuple[torch.device, torch.dtype, tuple[int, ...]], torch.Tensor] = {}


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over ranks (``t`` itself in one process). Gloo reduces on the CPU; NCCL on the GPU."""
    if not current().active:
        return t
    import torch.distributed as dist

    key = (t.device, t.dtype, tuple(t.shape))
    buffer = _reduced.get(key)
    if buffer is None:
        buffer = _reduced[key] = torch.empty(t.shape, dtype=t.dtype, device=t.device)
    buffer.copy_(t.detach())
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
    return buffer.clone()


def any_rank(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` is true on any rank (a collective: every rank must call it at the same point)."""
    if not current().active:
        return flag
    return bool(all_reduce_sum(torch.tensor([1.0 if flag else 0.0], device=device)).item() > 0)


class StepModule(torch.nn.Module):
    """The model as DDP sees it: ``forward(batch, phase)`` is the model's ``training_step``, so DDP's
    gradient hooks are armed for every phase."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: Any, phase: str) -> dict[str, torch.Tensor]:
        return self.model.training_step(batch, phase)


def wrap(model: torch.nn.Module, device: torch.device, phases: int) -> torch.nn.Module | None:
    """The DDP wrapper of ``model`` (which trains in ``phases`` phases) when this process is one of several
    ranks, else None."""
    if not current().active:
        return None
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    # One optimizer: every step reaches every parameter. Several (adversarial phases, layer-wise
    # pretraining): a phase may leave some out, which DDP must look for after each forward.
    return DistributedDataParallel(StepModule(model), device_ids=ids, find_unused_parameters=phases > 1)
