"""How many intra-op threads torch uses on the CPU, chosen from the size of the work.

torch's default (one thread per core) pays off for large tensors. The tiny generator's ops are
small (a few thousand to a few hundred thousand elements), so a step is dominated by thread
start-up and synchronisation; on a machine where other processes compete for the cores, every
op then waits for its slowest thread and a step gets several times slower (issue 16: 2.3 s with
one thread against 11.5 s with the default on 2 busy cores). `choose_threads` therefore
picks one thread for small CPU work and torch's default otherwise.

Override, in order: the ``--threads`` option of ``texkit train``/``generate``/``demo``; the
environment variable ``TEXKIT_NUM_THREADS``; an explicit ``OMP_NUM_THREADS`` (kept as torch read
it). ``0`` means torch's default.
"""

from __future__ import annotations

import os
from typing import Any

import torch

__all__ = ["SMALL_WORK_PARAMS", "SMALL_WORK_PIXELS", "choose_threads", "apply_threads", "model_parameters", "ENV_VAR"]

ENV_VAR = "TEXKIT_NUM_THREADS"
SMALL_WORK_PARAMS = 20_000_000
"""Generators with fewer parameters than this count as small work (the tiny model has ~0.1 M;
SD 1.5 has ~860 M)."""
SMALL_WORK_PIXELS = 256 * 256
"""Largest image (texture or render, in pixels) that still counts as small work."""


def model_parameters(obj: Any) -> int:
    """Parameters of every ``torch.nn.Module`` held directly by ``obj`` (a generator), counted once."""
    seen: set[int] = set()
    total = 0
    modules = [obj] if isinstance(obj, torch.nn.Module) else [v for v in vars(obj).values() if isinstance(v, torch.nn.Module)]
    for module in modules:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
    return total


def choose_threads(device: torch.device | str, params: int, pixels: int, override: int | None = None) -> tuple[int | None, str]:
    """The intra-op thread count for one process and why.

    Args:
        device: where the model runs; GPU work keeps torch's default (CPU threads only feed it).
        params: generator parameters (`model_parameters`).
        pixels: the largest image of the run (texture or render), in pixels.
        override: ``--threads``; ``None`` when not given.

    Returns:
        ``(threads, reason)``; ``threads`` is None to keep torch's default.
    """
    if override is not None:
        return (override or None), f"--threads {override}"
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            from texkit.errors import ConfigError

            raise ConfigError(f"{ENV_VAR}={env!r} is not a whole number; set it to a thread count (0: torch's default)") from None
        return (value or None), f"{ENV_VAR}={value}"
    if os.environ.get("OMP_NUM_THREADS", "").strip():
        return None, "OMP_NUM_THREADS is set"
    if torch.device(device).type != "cpu":
        return None, f"{torch.device(device).type} device"
    if params < SMALL_WORK_PARAMS and pixels <= SMALL_WORK_PIXELS:
        return 1, f"small CPU work ({params / 1e6:.2f} M parameters, {pixels} px images)"
    return None, "large CPU work"


def apply_threads(device: torch.device | str, params: int, pixels: int, override: int | None = None) -> tuple[int, str]:
    """`choose_threads` and ``torch.set_num_threads``; returns ``(threads now in use, reason)``."""
    if override is not None and override < 0:
        from texkit.errors import ConfigError

        raise ConfigError(f"--threads {override}: pass a thread count >= 1, or 0 for torch's default")
    threads, reason = choose_threads(device, params, pixels, override)
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads(), reason
