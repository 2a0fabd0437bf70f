"""Data-parallel training glue over ``torch.distributed`` (launched by ``torchrun``).

``torchrun --nproc-per-node N`` (or ``python -m torch.distributed.run``) starts N copies of
``texkit train`` and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` for each. `init_distributed` reads them, joins the process group (``nccl``
on CUDA, ``gloo`` otherwise) and pins the process to GPU ``LOCAL_RANK``. Without these variables
(or with ``WORLD_SIZE=1``) every function here is a no-op, so a single-process run is unchanged.

Data parallelism as in PyTorch's DistributedDataParallel (Li et al., "PyTorch Distributed:
Experiences on Accelerating Data Parallel Training", VLDB 2020): every rank starts from the same
parameters (`broadcast_parameters`), computes gradients on its own samples, and the
gradients are averaged over ranks (`all_reduce_gradients`) before the identical optimiser
step on every rank, so the parameters stay equal without further communication.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from texkit.errors import TexkitError

__all__ = [
    "DistributedError",
    "DistributedContext",
    "context",
    "init_distributed",
    "cleanup",
    "is_main",
    "barrier",
    "device_for_rank",
    "broadcast_parameters",
    "all_reduce_gradients",
    "all_reduce_mean",
    "all_gather_objects",
    "write_rank_snapshot",
    "SNAPSHOT_ENV",
]

SNAPSHOT_ENV = "TEXKIT_RANK_SNAPSHOT_DIR"
"""When set, `write_rank_snapshot` writes each rank's tensors there (for tests and debugging)."""

_ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


class DistributedError(TexkitError):
    """The distributed launch is inconsistent (bad torchrun variables, too few GPUs)."""


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job.

    Attributes:
        rank: global rank in ``[0, world_size)``.
        world_size: number of processes (1 without torchrun).
        local_rank: rank on this host; picks the GPU.
        backend: ``"nccl"``, ``"gloo"`` or None when not distributed.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes outputs and checkpoints."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise DistributedError(f"environment variable {name}={raw!r} is not an integer; launch with torchrun") from None


def context() -> DistributedContext:
    """The current context: from the process group when initialised, else from the environment.

    Returns a context of one process when no torchrun variables are set.
    """
    if dist.is_available() and dist.is_initialized():
        return DistributedContext(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0), dist.get_backend())
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise DistributedError(f"RANK={rank} is not in [0, WORLD_SIZE={world}); launch with torchrun")
    return DistributedContext(rank, world, local, None)


def _wants_cuda(device: str) -> bool:
    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def device_for_rank(device: str, ctx: DistributedContext | None = None) -> torch.device:
    """The device of this rank for a config's ``device`` string.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:i"``.
        ctx: the context (default `context`).

    Returns:
        ``cuda:LOCAL_RANK`` for ``auto``/``cuda`` under a multi-process launch with CUDA, the
        device as given otherwise (``auto`` resolving to cuda or cpu).

    Raises:
        DistributedError: when this host has fewer GPUs than local ranks.
    """
    ctx = ctx or context()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if not ctx.enabled or device != "cuda":
        return torch.device(device)
    count = torch.cuda.device_count()
    if ctx.local_rank >= count:
        raise DistributedError(f"local rank {ctx.local_rank} has no GPU (this host has {count}); use --nproc-per-node {count} or fewer")
    return torch.device("cuda", ctx.local_rank)


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistributedContext:
    """Join the process group when launched by torchrun; a no-op for a single process.

    Args:
        device: the config's device string; CUDA devices use ``nccl``, everything else ``gloo``.
            ``TEXKIT_DIST_BACKEND`` overrides the choice (e.g. ``gloo`` on GPUs for debugging).
        timeout_s: how long collectives wait for a slow rank before failing.

    Returns:
        The context of this process.
    """
    ctx = context()
    if not ctx.enabled or dist.is_initialized():
        return context()
    if not dist.is_available():
        raise DistributedError("this torch build has no torch.distributed; run a single process")
    backend = os.environ.get("TEXKIT_DIST_BACKEND") or ("nccl" if _wants_cuda(device) else "gloo")
    kwargs: dict[str, Any] = {"backend": backend, "timeout": datetime.timedelta(seconds=timeout_s)}
    if backend == "nccl":
        dev = device_for_rank(device, ctx)
        torch.cuda.set_device(dev)
        kwargs["device_id"] = dev
    dist.init_process_group(**kwargs)
    return context()


def cleanup(wait: bool = True) -> None:
    """Leave the process group; a no-op when not distributed.

    Args:
        wait: meet the other ranks at a barrier first (False after an error, where the other
            ranks may never arrive).
    """
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def is_main() -> bool:
    """True on rank 0 (and in a single process)."""
    return context().is_main


def barrier() -> None:
    """Wait for every rank; a no-op when not distributed."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _collective_device(tensors: list[torch.Tensor]) -> torch.device:
    """nccl needs CUDA tensors, gloo CPU or CUDA; use the parameters' device."""
    return tensors[0].device if tensors else torch.device("cpu")


def broadcast_parameters(params: Iterable[torch.Tensor], src: int = 0) -> None:
    """Copy the values of ``params`` from rank ``src`` to every rank (in place, one flat message).

    Args:
        params: tensors of the same shapes and order on every rank.
        src: the rank whose values win.
    """
    tensors = list(params)
    if not tensors or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    with torch.no_grad():
        flat = torch.cat([t.detach().reshape(-1).to(torch.float64) for t in tensors])
        dist.broadcast(flat, src)
        offset = 0
        for t in tensors:
            t.copy_(flat[offset : offset + t.numel()].view_as(t).to(t.dtype))
            offset += t.numel()


def all_reduce_gradients(params: Iterable[torch.Tensor], local_ok: bool = True) -> bool:
    """Average the gradients of ``params`` over ranks, in place, in one all-reduce.

    A missing gradient counts as zero (and is materialised), so every rank sends the same layout.
    The skip decision travels in the same message: the result is False on every rank as soon as
    one rank reports ``local_ok=False`` (e.g. a non-finite loss), so all ranks skip together.

    Args:
        params: tensors with the same shapes and order on every rank (fp32 LoRA and angles).
        local_ok: whether this rank's loss was usable.

    Returns:
        True when every rank's ``local_ok`` was True (always ``local_ok`` in a single process).
    """
    tensors = list(params)
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return local_ok
    world = dist.get_world_size()
    device = _collective_device(tensors)
    parts = [(t.grad if t.grad is not None else torch.zeros_like(t)).detach().reshape(-1).to(device, torch.float32) for t in tensors]
    # trailer: one "has a gradient" count per tensor (a tensor no rank reached keeps grad None,
    # as in a single process), then the number of ranks whose loss was unusable
    parts.append(torch.tensor([float(t.grad is not None) for t in tensors] + [0.0 if local_ok else 1.0], device=device))
    flat = torch.cat(parts)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    has_grad = flat[-len(tensors) - 1 : -1].tolist()
    offset = 0
    for t, count in zip(tensors, has_grad):
        grad = (flat[offset : offset + t.numel()] / world).view_as(t).to(t.dtype)
        offset += t.numel()
        if count == 0:
            t.grad = None
        elif t.grad is None:
            t.grad = grad.clone()
        else:
            t.grad.copy_(grad)
    return bool(flat[-1].item() == 0.0)


def all_reduce_mean(values: dict[str, float], device: torch.device | str = "cpu") -> dict[str, float]:
    """Average scalar metrics over ranks (every rank must pass the same keys).

    Args:
        values: name -> number on this rank.
        device: where the message tensor lives (a CUDA device under nccl).

    Returns:
        name -> mean over ranks (the input itself in a single process).
    """
    if not values or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return dict(values)
    keys = sorted(values)
    flat = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    return {k: float(v) for k, v in zip(keys, flat.tolist())}


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` in rank order (``[obj]`` in a single process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def write_rank_snapshot(tag: str, tensors: dict[str, Any]) -> Path | None:
    """Save this rank's ``tensors`` to ``$TEXKIT_RANK_SNAPSHOT_DIR/<tag>_rank<r>.pt`` when that is set.

    A test hook: it lets a multi-process test compare the LoRA weights of every rank. Without the
    environment variable it does nothing and returns None.

    Args:
        tag: e.g. ``"start"`` or ``"end"``.
        tensors: name -> tensor (moved to the CPU) or any picklable value.

    Returns:
        The written file, or None.
    """
    folder = os.environ.get(SNAPSHOT_ENV)
    if not folder:
        return None
    path = Path(folder) / f"{tag}_rank{context().rank}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: (v.detach().cpu().clone() if isinstance(v, torch.Tensor) else v) for k, v in tensors.items()}, path)
    return path
