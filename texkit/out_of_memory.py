"""Out of memory, on the GPU or the CPU, as one line with the batch size that fits.

``texkit train`` and ``texkit generate`` run their work inside `out_of_memory_as_error`: a
``torch.OutOfMemoryError`` (CUDA, and the CPU allocator of recent torch), a ``MemoryError``
(Python, NumPy) or an allocator ``RuntimeError`` ("can't allocate memory", "out of memory")
becomes a `texkit.errors.DeviceError` saying how much the run asked for and which batch size to
set instead: the planner's largest batch for the GPU's memory (`texkit.planning.plan_run`) where it
has memory measurements and that is smaller than what failed, else half of what failed. Work that
has no batch size (scoring a texture) uses `out_of_memory_while`, which says what was being done and
what to lower.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from typing import Any

from texkit.errors import DeviceError

__all__ = ["is_out_of_memory", "batch_that_fits", "out_of_memory_as_error", "out_of_memory_while"]

_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory", "failed to allocate")


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` says an allocation failed (GPU or CPU)."""
    import torch

    if isinstance(err, (MemoryError, torch.OutOfMemoryError)):
        return True
    return isinstance(err, RuntimeError) and any(m in str(err).lower() for m in _MESSAGES)


def batch_that_fits(config: Any, device: Any, failed: int) -> tuple[int, str]:
    """The batch size to suggest after ``failed`` ran out of memory, and where the number comes from.

    Args:
        config: the run's `texkit.config.RunConfig`.
        device: the ``torch.device`` it ran on (None: unknown).
        failed: the batch size that ran out of memory.

    Returns:
        ``(batch size >= 1, basis)``; the planner's largest batch for the GPU when it is below
        ``failed``, else ``failed // 2``.
    """
    if device is not None and getattr(device, "type", "") == "cuda":
        from texkit.planning import plan_run

        try:
            plan = plan_run(config, device)
        except Exception:  # noqa: BLE001 - the suggestion must not hide the out-of-memory error itself
            plan = None
        if plan is not None and plan.largest_batch is not None and 0 < plan.largest_batch < failed:
            return plan.largest_batch, f"the planner's largest for {plan.memory_gib:.0f} GiB"
    return max(1, failed // 2), f"half of {failed}; the planner has no memory measurements for this device"


def _first_line(err: BaseException) -> str:
    """What the allocator said, short: the size asked for when it says it, else its first sentence."""
    text = " ".join(str(err).split())
    cpu = re.search(r"allocate (\d+) bytes", text)
    if cpu:
        return f"an allocation of {int(cpu.group(1)) / 2**30:.2f} GiB failed"
    gpu = re.search(r"[Tt]ried to allocate ([\d.]+ ?[KMGT]i?B)", text)
    if gpu:
        return f"an allocation of {gpu.group(1)} failed"
    return (text.split(". ")[0][:140]) if text else type(err).__name__


def describe(config: Any, device: Any, err: BaseException, samples: int | None = None) -> str:
    """The one-line message for an out-of-memory ``err`` of a training run (``samples``: a ``generate --samples`` batch)."""
    where = str(device) if device is not None else config.device
    tex = config.texture
    smaller = f"lower texture.size ({tex.size}) or texture.render_size ({tex.render_size})"
    if samples is not None:
        if samples <= 1:
            return f"out of memory on {where} painting one texture ({_first_line(err)}); {smaller}, or use a device with more memory"
        fits, basis = batch_that_fits(config, device, samples)
        return f"out of memory on {where} painting {samples} samples in one batch ({_first_line(err)}); pass --samples {fits} or fewer ({basis})"
    training = config.training
    failed = training.batch_size
    if failed <= 1:
        return (
            f"out of memory on {where} at training.batch_size 1 ({_first_line(err)}); {smaller}, "
            "set training.view_checkpointing = true or training.mixed_precision, or use a device with more memory"
        )
    fits, basis = batch_that_fits(config, device, failed)
    accum = math.ceil(failed * training.grad_accum / fits)
    return (
        f"out of memory on {where} at training.batch_size {failed} ({_first_line(err)}); set training.batch_size to {fits} "
        f"or less ({basis}), and training.grad_accum to {accum} to keep the effective batch"
    )


@contextlib.contextmanager
def out_of_memory_as_error(config: Any, samples: int | None = None) -> Iterator[None]:
    """Turn an out-of-memory error in the body into a one-line `DeviceError` (see `describe`).

    Args:
        config: the run's config (batch size, device, texture sizes).
        samples: for ``texkit generate``: the number of samples painted in one batch.
    """
    try:
        yield
    except BaseException as err:
        if not is_out_of_memory(err):
            raise
        device = None
        with contextlib.suppress(Exception):
            from texkit.devices import resolve_device

            device = resolve_device(config.device)
        raise DeviceError(describe(config, device, err, samples)) from None


@contextlib.contextmanager
def out_of_memory_while(task: str, advice: str, device: Any) -> Iterator[None]:
    """Turn an out-of-memory error in the body into one `DeviceError` line about ``task``.

    Args:
        task: what the body does, e.g. ``"scoring the texture with symmetry"``.
        advice: what to change, e.g. ``"pass a render size below 1024 (--size)"``.
        device: where it ran (named in the line).

    Example line: ``out of memory on cuda:0 scoring the texture with symmetry (an allocation of 2.00 GiB
    failed); pass a render size below 1024 (--size), or use a device with more memory``.
    """
    try:
        yield
    except BaseException as err:
        if not is_out_of_memory(err):
            raise
        raise DeviceError(f"out of memory on {device} {task} ({_first_line(err)}); {advice}, or use a device with more memory") from None
