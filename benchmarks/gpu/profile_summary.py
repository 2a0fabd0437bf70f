"""Where a profiled training step's time goes: GPU kernel time by op family and by phase, and the host gaps.

`annotate_phases` wraps the trainer's parts in ``torch.profiler.record_function`` ranges named
``texkit::<phase>`` (denoiser, vae_encode, vae_decode, lora_merge, renderer, back_projection,
trimap, texture_state, reward, optimizer); `summarize`
reads a finished ``torch.profiler.profile``:

* **op family** of every GPU kernel, from its name (`family_of`): attention, convolution, GEMM,
  normalisation, pointwise / fused (Triton, elementwise), layout copies (NCHW <-> NHWC, transposes),
  reductions, optimizer (multi-tensor apply), rasterisation (nvdiffrast), memory (memcpy/memset), other;
* **phase** of every kernel: the innermost ``texkit::`` range around the CPU op that launched it;
  a kernel launched by the autograd engine takes the phase of the forward op that made its graph node
  (matched by ``sequence_nr``), and a compiled graph's backward (``CompiledFunctionBackward``) is the
  denoiser's;
* **busy** = the union of kernel intervals (overlapping streams counted once) and **host gaps** =
  wall time minus busy: time in which the GPU ran nothing (it waited on Python, launches or syncs).

On the CPU (no kernels) the same tables are built from the self CPU time of the aten ops.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections import defaultdict
from typing import Any

import torch

__all__ = ["FAMILIES", "family_of", "annotate_phases", "summarize"]

#: (family, pattern on the lower-cased kernel or op name); the first match wins.
FAMILIES: list[tuple[str, str]] = [
    ("attention", r"flash|fmha|attention|sdpa|_attn|softmax"),
    ("optimizer", r"multi_tensor|adam|foreach"),
    ("rasterization", r"raster|interpolate(fwd|grad)|antialias|texture(fwd|grad)|nvdiffrast"),
    ("layout_copy", r"nchwtonhwc|nhwctonchw|transpose|permute|copy_kernel|direct_copy|cat_|clone"),
    ("convolution", r"conv|fprop|dgrad|wgrad|implicit_gemm|xmma_(?!gemm)|cudnn::(?!.*gemm)|winograd|im2col"),
    ("normalization", r"norm|rowwisemoments|computefusedparams|welford|groupnorm|layernorm"),
    ("gemm", r"gemm|cutlass|nvjet|sm\d+_xmma_gemm|cublas|matmul|_mm_|addmm|\bmm\b|bmm|triton_tem"),
    ("memory", r"memcpy|memset|fill"),
    ("reduction", r"reduce|triton_red|triton_per|sum|mean|max|argmax"),
    ("pointwise", r"triton_poi|elementwise|vectorized|unrolled|pointwise|add|mul|silu|gelu|sigmoid|tanh|exp|where|index"),
]
_COMPILED = [(name, re.compile(pattern)) for name, pattern in FAMILIES]

#: phases `annotate_phases` marks, with the attribute path of the wrapped callable on the trainer
PHASES = {
    "denoiser": ("session.generator.denoiser", "__call__"),
    "vae_encode": ("session.generator", "encode_image"),
    "vae_decode": ("session.generator", "decode_latents"),
    "lora_merge": ("session.generator.merged_lora", "refresh"),
    "renderer": ("session.renderer", "render"),
    "reward": ("session", "score_batch"),
    "optimizer": ("optimizer", "step"),
}


def family_of(name: str) -> str:
    """The op family of a kernel (or, on the CPU, an aten op) from its name."""
    low = name.lower()
    for family, pattern in _COMPILED:
        if pattern.search(low):
            return family
    return "other"


def _resolve(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


@contextlib.contextmanager
def annotate_phases(trainer: Any, extra: dict[str, tuple[Any, str]] | None = None):
    """Wrap the trainer's parts in ``record_function("texkit::<phase>")`` while the context is open.

    Args:
        trainer: a built `texkit.training.Trainer`.
        extra: more ``{phase: (object, method name)}`` to wrap (e.g. module-level functions' owners).

    The denoising call is wrapped on its instance (``DenoiserCall.__call__`` is looked up on the
    class, so the class method is swapped for the duration); everything is restored on exit.
    """
    from torch.profiler import record_function

    restore: list[tuple[Any, str, Any, bool]] = []

    def wrap(owner: Any, name: str, phase: str) -> None:
        if owner is None or not hasattr(owner, name):
            return
        on_class = name.startswith("__")
        target = type(owner) if on_class else owner
        original = getattr(target, name)
        had_own = name in vars(target)

        @functools.wraps(original)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with record_function(f"texkit::{phase}"):
                return original(*args, **kwargs)

        setattr(target, name, wrapped)
        restore.append((target, name, original, had_own))

    for phase, (path, name) in PHASES.items():
        wrap(_resolve(trainer, path), name, phase)
    import texkit.back_projection as back_projection
    import texkit.view_loop as view_loop

    wrap(view_loop, "back_project", "back_projection")
    wrap(view_loop, "trimap", "trimap")
    wrap(back_projection.TextureState, "texture", "texture_state")
    for phase, (owner, name) in (extra or {}).items():
        wrap(owner, name, phase)
    try:
        yield
    finally:
        for target, name, original, had_own in reversed(restore):
            if had_own:
                setattr(target, name, original)
            else:
                delattr(target, name)


def _phase_of(event: Any, seq_phase: dict[int, str]) -> str:
    """The innermost ``texkit::`` range around ``event``; for autograd-engine work, its forward op's phase."""
    node = event
    backward = False
    while node is not None:
        name = node.name
        if name.startswith("texkit::"):
            return name.removeprefix("texkit::")
        if "CompiledFunctionBackward" in name:
            return "denoiser"
        if name.startswith("autograd::engine::evaluate_function"):
            backward = True
            seq = getattr(node, "sequence_nr", -1)
            if seq is not None and seq >= 0 and seq in seq_phase:
                return seq_phase[seq]
        node = node.cpu_parent
    return "backward_other" if backward else "other"


def _is_annotation(event: Any) -> bool:
    """A ``record_function`` range drawn on the GPU timeline (e.g. ``texkit::denoiser``), not a kernel.

    torch.profiler repeats each range on the device as a "GPU user annotation" spanning the kernels
    launched inside it; counted as a kernel it would add the whole range again (call 8 of issue 29
    reported 12.2 s of "kernels" where 4.4 s ran).
    """
    return bool(getattr(event, "is_user_annotation", False)) or event.name.startswith("texkit::")


def _union_seconds(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total / 1e6


def summarize(prof: Any, wall_seconds: float, top: int = 30) -> dict[str, Any]:
    """Kernel time by family and by phase, busy time and host gaps of one profiled step.

    Args:
        prof: a finished ``torch.profiler.profile`` (CPU activity, plus CUDA on a GPU).
        wall_seconds: the step's wall time measured around the profiled region.
        top: how many kernels to list by total time.

    Returns:
        ``{"wall_seconds", "device_busy_seconds", "host_gap_seconds", "kernel_seconds",
        "by_family": {family: seconds}, "by_phase": {phase: seconds}, "by_phase_family":
        {phase: {family: seconds}}, "top_kernels": [...], "kernel_launches", "source"}`` where
        ``source`` says whether the numbers are GPU kernels or (on the CPU) leaf op time.
    """
    events = prof.events()
    cpu_events = [e for e in events if getattr(e, "device_type", None) == torch.autograd.DeviceType.CPU]
    seq_phase: dict[int, str] = {}
    for e in cpu_events:  # forward ops: sequence number -> phase, for the backward nodes they create
        seq = getattr(e, "sequence_nr", -1)
        if seq is not None and seq >= 0 and seq not in seq_phase:
            phase = _phase_of(e, {})
            if phase not in ("other", "backward_other"):
                seq_phase[seq] = phase
    by_family: dict[str, float] = defaultdict(float)
    by_phase: dict[str, float] = defaultdict(float)
    by_phase_family: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    by_kernel: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    device_events = [e for e in events if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA and not _is_annotation(e)]
    intervals = [(e.time_range.start, e.time_range.end) for e in device_events]
    on_gpu = bool(device_events)
    launches = 0
    if on_gpu:  # families from every kernel, linked to a CPU op or not
        for e in device_events:
            seconds = (e.time_range.end - e.time_range.start) / 1e6
            by_family[family_of(e.name)] += seconds
            entry = by_kernel[e.name]
            entry[0] += seconds
            entry[1] += 1
            launches += 1
    for e in cpu_events:
        if on_gpu:
            items = [(k.name, k.duration / 1e6) for k in (getattr(e, "kernels", None) or [])]
        elif e.name.startswith("aten::"):
            items = [(e.name, e.self_cpu_time_total / 1e6)]  # CPU: an op's own time stands for its kernels
        else:
            items = []
        if not items:
            continue
        phase = _phase_of(e, seq_phase)
        for name, seconds in items:
            family = family_of(name)
            by_phase[phase] += seconds
            by_phase_family[phase][family] += seconds
            if not on_gpu:
                by_family[family] += seconds
                entry = by_kernel[name]
                entry[0] += seconds
                entry[1] += 1
                launches += 1
    kernel_seconds = sum(by_family.values())
    unlinked = kernel_seconds - sum(by_phase.values())
    if unlinked > 1e-3 * max(kernel_seconds, 1e-9):  # kernels the profiler did not tie to a CPU op
        by_phase["unattributed"] += unlinked
    busy = _union_seconds(intervals) if on_gpu else kernel_seconds
    ranked = sorted(by_kernel.items(), key=lambda kv: kv[1][0], reverse=True)[:top]
    return {
        "source": "GPU kernels (CUDA activity)" if on_gpu else "CPU leaf ops (no GPU)",
        "wall_seconds": wall_seconds,
        "kernel_seconds": kernel_seconds,
        "device_busy_seconds": busy,
        "host_gap_seconds": max(0.0, wall_seconds - busy),
        "kernel_launches": launches,
        "by_family": dict(sorted(by_family.items(), key=lambda kv: -kv[1])),
        "by_phase": dict(sorted(by_phase.items(), key=lambda kv: -kv[1])),
        "by_phase_family": {p: dict(sorted(f.items(), key=lambda kv: -kv[1])) for p, f in by_phase_family.items()},
        "top_kernels": [{"name": name[:160], "family": family_of(name), "seconds": s, "launches": n} for name, (s, n) in ranked],
    }
