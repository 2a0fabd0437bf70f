"""The UNet + ControlNet call of one denoising step, optionally compiled with ``torch.compile``.

At batch 1 a training step is launch-bound: most of its time is the host issuing thousands of
small kernels (docs/performance.md). Compiling the denoising call fuses them. Shapes are static
within a run (one batch size, one resolution), so it compiles once per shape and grad mode
(``dynamic=False``); with gradients on, the latents and the condition always enter as requiring grad
(`_needing_grad`), so which of them carry gradients does not make another graph. Any compilation error falls back to eager, once, and the reason is kept for
the run record; compilation time is measured on its own (the first call of each compiled shape).

When to compile (the generator option ``compile``): on an H200 (full-size SD 1.5, fp16, training
step) compiling took a batch-1 step from 20.1 s to 11.5 s and a batch-16 step from 46.7 s to 38.6 s,
but costs about 90 s once per batch size and grad mode. That pays off over the hundreds of steps of
a training run, not for a one-off generation (no gradients, a few seconds of denoising). So
``"auto"`` (the default) compiles on CUDA once the generator is trained through: calls stay eager
until the first one made with gradients enabled (`torch.is_grad_enabled`; no input needs to require
grad), and from that call on every call with gradients goes through the compiled function. A
no-grad shape compiles only after `AUTO_NO_GRAD_EAGER_CALLS` eager calls: denoising steps outside
the truncation window repeat every step and are worth compiling, the 'after' generation at the end
of a run (views x steps calls, once) is not. On the CPU ``"auto"`` never compiles (there
compilation costs more than it saves). ``"on"`` compiles from the first call, ``"off"`` never.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from texkit.compile_cache import CompileCacheCounts, active_cache_dir, cache_counts, enable_compile_cache
from texkit_diffusers.precompiled import (
    PRECOMPILED_FOLDER,
    PrecompiledCalls,
    aot_compile_available,
    denoise,
    describe_error,
)

__all__ = [
    "COMPILE_MODES",
    "DenoiserCall",
    "backward_compiled_with_forward",
    "describe_error",
    "describe_first_call",
    "dynamo_phase_seconds",
    "inductor_options",
    "resolve_compile_mode",
    "starts_compiling",
]

log = logging.getLogger("texkit.diffusers")

COMPILE_MODES = ("auto", "on", "off")
COMPILED_REASON = "torch.compile (static shapes)"
AUTO_WAITING_REASON = "compile auto: eager until the first training call (compiles then, on CUDA)"
AUTO_NO_GRAD_EAGER_CALLS = 2000
"""Under ``"auto"``, eager calls of a no-grad shape before it compiles: about where compiling pays off.

Measured on an H100 (benchmarks/results/throughput_h100.json, ``generate_samples_8``): painting 8
samples (6 views x 10 DDIM steps = 60 denoising calls at batch 8) took 6.30 s eager and 4.88 s
compiled, about 24 ms saved per call, after a 52 s compile: break-even near 2200 calls. So
``texkit generate`` (60 calls per batch of samples) stays eager unless it paints some 30 batches,
while the no-grad denoising steps of a training step (outside the truncation window, e.g. 9 steps x 6
views = 54 calls a step) compile after about 40 steps of a run of hundreds."""


def inductor_options(channels_last: bool, device: torch.device, cpp_wrapper: bool = False) -> dict[str, Any]:
    """``torch.compile`` keyword arguments for the denoising call on ``device``.

    On the CPU, Inductor's layout optimisation is off: with it (torch 2.13, CPU), the compiled
    backward of a ResNet block followed by a nearest-neighbour upsampling and a convolution (the
    UNet's up blocks) gives a zero gradient while the forward is right, so a compiled training
    call got wrong adapter gradients (`benchmarks/gpu/check_compiled_grads.py`; on an H100 with
    torch 2.11 the gradients are right, benchmarks/results/h100_2026-12-07_issue29/call9). With
    ``channels_last`` on CUDA it is forced on (`DenoiserCall`'s ``channels_last``). With
    ``cpp_wrapper`` Inductor writes the code that launches the compiled kernels in C++ instead of
    Python (``cpp_wrapper``), which costs a C++ compile of that code once per graph and less host
    time per kernel launch at every call.
    """
    options: dict[str, Any] = {}
    if device.type == "cpu":
        options["layout_optimization"] = False
    elif channels_last:
        options["force_layout_optimization"] = True
    if cpp_wrapper:
        options["cpp_wrapper"] = True
    return {"options": options} if options else {}


def backward_compiled_with_forward() -> contextlib.AbstractContextManager[Any]:
    """Within this context, AOTAutograd compiles a graph's backward when it compiles its forward.

    By default it compiles the backward at the graph's first backward call, so a compiler error in
    the backward would stop the training step in ``loss.backward()``, out of `DenoiserCall`'s reach;
    compiled with the forward, the error reaches `DenoiserCall`'s fallback at the call.
    """
    import torch._functorch.config as functorch_config

    if not hasattr(functorch_config, "force_non_lazy_backward_lowering"):  # pragma: no cover - older torch
        return contextlib.nullcontext()
    return functorch_config.patch(force_non_lazy_backward_lowering=True)


def _check_mode(mode: str) -> None:
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile mode {mode!r} is not one of {', '.join(COMPILE_MODES)}")


def resolve_compile_mode(mode: str, device: torch.device) -> tuple[bool, str]:
    """Whether ``mode`` (``auto``/``on``/``off``) compiles at all on ``device`` (now or later), and why.

    ``"auto"`` on CUDA gives ``True`` with the reason that it waits for the first training call
    (`starts_compiling` says when a call starts compiling).
    """
    _check_mode(mode)
    if mode == "off":
        return False, "compile off (generator option compile='off')"
    if mode == "auto" and device.type != "cuda":
        return False, "compile off: 'auto' compiles on CUDA only (on the CPU compilation costs more than it saves)"
    if mode == "auto":
        return True, AUTO_WAITING_REASON
    return True, COMPILED_REASON


def starts_compiling(mode: str, device: torch.device, grad_enabled: bool) -> bool:
    """Whether a call made with grad mode ``grad_enabled`` on ``device`` starts compiling under ``mode``.

    Asked of calls made while still eager: ``"on"`` compiles from the first call, ``"auto"`` from
    the first call with gradients enabled on CUDA (the generator is being trained), ``"off"`` never.
    """
    _check_mode(mode)
    if mode == "on":
        return True
    return mode == "auto" and device.type == "cuda" and grad_enabled


def dynamo_phase_seconds() -> dict[str, float]:
    """Seconds torch's compiler spent so far in this process, by phase (sums over every compiled frame).

    ``tracing``: Dynamo turning the Python call into a graph (done again in every process: torch 2.11
    does not cache it); ``backend``: AOTAutograd and Inductor, or loading their output from the
    compile cache. Read from ``torch._dynamo.utils.compilation_time_metrics`` (empty dict where this
    torch build does not keep them).
    """
    try:
        from torch._dynamo.utils import compilation_time_metrics
    except ImportError:  # pragma: no cover - every torch 2.x has it
        return {}
    phases = {"tracing": "bytecode_tracing", "backend": "OutputGraph.call_user_compiler"}
    return {phase: float(sum(compilation_time_metrics.get(key, ()))) for phase, key in phases.items()}


def describe_first_call(seconds: float, before: dict[str, float], after: dict[str, float]) -> str:
    """``"15.4 s (tracing 6.0 s, compiling or loading 8.1 s, the rest 1.3 s)"`` for a compiled shape's first call.

    Args:
        seconds: wall time of the first call (compilation and the call itself).
        before: `dynamo_phase_seconds` just before the call.
        after: `dynamo_phase_seconds` just after it.
    """
    if not after:
        return f"{seconds:.1f} s"
    tracing = after["tracing"] - before.get("tracing", 0.0)
    backend = after["backend"] - before.get("backend", 0.0)
    rest = max(0.0, seconds - tracing - backend)
    return f"{seconds:.1f} s (tracing {tracing:.1f} s, compiling or loading {backend:.1f} s, the rest {rest:.1f} s)"


def _grad_words(grad: bool) -> str:
    """How the notes and the run record name a compiled shape's grad mode."""
    return "training" if grad else "no gradients"


def _needing_grad(x: torch.Tensor) -> torch.Tensor:
    """``x`` itself if it requires grad, else a detached copy that does (same storage, a new leaf).

    A compiled graph is specialised on which of its inputs require grad. In a training step the
    latents start without grad and get it after the first denoising step, and the ControlNet
    condition gets it from the second view on (it renders the texture the earlier views painted), so
    the same shape would compile up to four graphs (about a minute each for SD 1.5; found on an H100,
    benchmarks/results/h100_2026-12-07_issue29/call5). Passing every such input as requiring grad keeps
    one graph per shape; the only extra work is the input gradient of the first convolutions, and the
    gradient reaching a detached leaf goes nowhere, so the caller's values and gradients are unchanged.
    """
    return x if x.requires_grad else x.detach().requires_grad_(True)


class DenoiserCall:
    """``(latents, t, embeds, condition) -> noise prediction`` for one denoising step.

    Args:
        unet: ``UNet2DConditionModel``.
        controlnet: ``ControlNetModel``.
        compile_mode: ``"auto"`` (on CUDA: eager until the first call with gradients enabled,
            compiled from then on; never on the CPU), ``"on"`` (compiled from the first call) or
            ``"off"``.
        device: where the models run.
        before_compiled_call: run (eagerly) before each compiled call, for checks the compiled
            graph cannot make itself (the generator passes `MergedLoRA.drop_stale`).
        channels_last: run the compiled graph's convolutions channels-last (Inductor's
            ``force_layout_optimization``). Inductor's own rule leaves a network in NCHW when any
            convolution has at most half as many output as input channels, as the UNet's up blocks
            and ``conv_out`` do; cuDNN then transposes around every half-precision convolution (34 %
            of the GPU kernel time of a compiled batch-1 training step on an H100,
            benchmarks/results/h100_2026-12-07_issue29/call8). The generator passes True with
            ``memory_format = "channels_last"``. On CUDA only: on the CPU the layout optimisation
            stays off (`inductor_options`).
        cpp_wrapper: launch the compiled kernels from C++ code (Inductor's ``cpp_wrapper``) instead of
            Python: less host time per kernel launch, for a step bound by launching kernels (a
            compiled batch-1 training step on an H100 ran 4.4 s of kernels in 13.5 s,
            benchmarks/results/h100_2026-12-07_issue29/call8); one C++ compile per graph more.
        precompile: compile training calls ahead of time, Dynamo's trace included, into the compile
            cache folder, and load them from there in later runs (`texkit_diffusers.precompiled`):
            a second run then skips tracing. Needs a torch with ``aot_compile`` and the compile cache on;
            otherwise `precompile_reason` says why it is not used.

    Attributes:
        compiled: whether calls currently go through the compiled function (``False`` while
            ``"auto"`` waits for the first training call, and after a fallback to eager).
        waiting: ``"auto"`` on CUDA has not seen a training call yet (the next one compiles).
        reason: one line on why it is (or is not, not yet, or no longer) compiled.
        compile_seconds: wall time of the first call of every compiled shape (compilation included).
        cache: what torch's compile caches did for the compiled shapes so far (`texkit.compile_cache`):
            hits when an earlier run or ``texkit warmup`` compiled the same shape on this machine.
        first_calls: one entry per compiled shape, e.g. ``"2 latents, training: 15.4 s (tracing
            11.5 s, compiling or loading 3.0 s, the rest 0.9 s)"`` (`describe_first_call`), for the
            run record.
        precompiled: the training calls compiled ahead of time (`PrecompiledCalls`), or None.
        precompile_reason: why ``precompile`` is not in use ("" when it is, or was not asked for).

    Raises:
        ValueError: ``compile_mode`` is not ``auto``, ``on`` or ``off``.
    """

    def __init__(
        self,
        unet: Any,
        controlnet: Any,
        compile_mode: str = "auto",
        device: torch.device | str = "cpu",
        before_compiled_call: Callable[[], None] | None = None,
        channels_last: bool = False,
        precompile: bool = False,
        cpp_wrapper: bool = False,
    ) -> None:
        self.unet = unet
        self.cpp_wrapper = cpp_wrapper
        self.precompile = precompile
        self.precompiled: PrecompiledCalls | None = None
        self.precompile_reason = ""
        self.channels_last = channels_last
        self.controlnet = controlnet
        self.compile_mode = compile_mode
        self.device = torch.device(device)
        self.before_compiled_call = before_compiled_call
        will_compile, self.reason = resolve_compile_mode(compile_mode, self.device)
        self.compiled = False
        self.waiting = will_compile and compile_mode == "auto"
        self.compile_seconds = 0.0
        self.cache = CompileCacheCounts()
        self.first_calls: list[str] = []
        self._seen: set[tuple[Any, ...]] = set()
        self._eager_calls: dict[tuple[Any, ...], int] = {}
        self._compiled_fn: Callable[..., torch.Tensor] | None = None
        if will_compile and starts_compiling(compile_mode, self.device, grad_enabled=False):
            self._start_compiling()

    def eager(self, model_input: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, condition: torch.Tensor, scale: float) -> torch.Tensor:
        """ControlNet residuals, then the UNet's noise prediction ``(2B or B, 4, h, w)`` (`denoise`)."""
        return denoise(self.unet, self.controlnet, model_input, t, embeds, condition, scale)

    def _start_compiling(self) -> None:
        """Wrap `eager` in ``torch.compile`` (compilation itself happens at the first call of a shape).

        torch's compile caches go to texkit's folder first (`texkit.compile_cache`), so a shape
        compiled by an earlier run or ``texkit warmup`` on this machine is loaded, not compiled.
        """
        self.waiting = False
        self.compiled, self.reason = True, COMPILED_REASON
        try:
            enable_compile_cache()
            options = inductor_options(self.channels_last, self.device, self.cpp_wrapper)
            self._compiled_fn = torch.compile(self.eager, dynamic=False, **options)
        except Exception as err:  # torch.compile unavailable on this build/platform
            self._fall_back(err)
            return
        if self.precompile:
            self._start_precompiling(options.get("options", {}))

    def _start_precompiling(self, options: dict[str, Any]) -> None:
        """Serve training calls from artifacts compiled ahead of time (`PrecompiledCalls`), where this torch and the cache allow."""
        folder = active_cache_dir()
        if not aot_compile_available():
            self.precompile_reason = f"precompile unavailable: torch {torch.__version__} has no aot_compile / load_compiled_function"
        elif folder is None:
            self.precompile_reason = "precompile unavailable: the compile cache is off (TEXKIT_COMPILE_CACHE=off)"
        else:
            self.precompiled = PrecompiledCalls(folder / PRECOMPILED_FOLDER, options)
        if self.precompile_reason:
            log.warning("texkit-diffusers: %s", self.precompile_reason)

    def _drop_cpp_wrapper(self, err: BaseException) -> None:
        """Compile again with Inductor's Python wrapper after the C++ wrapper failed (e.g. torch 2.13's C++
        wrapper cannot launch the random-state operators AOTAutograd puts around random ops that activation
        checkpointing recomputes, which SDPA's kernels count as); `reason` says so."""
        error = describe_error(err)
        self.cpp_wrapper = False
        self._start_compiling()
        self.reason = f"{self.reason}; cpp_wrapper failed, Python wrapper used ({error})"
        log.warning("texkit-diffusers: cpp_wrapper failed, compiling with the Python wrapper (%s)", error)

    def _fall_back(self, err: BaseException) -> None:
        self.compiled = False
        self._compiled_fn = None
        self.reason = f"compile failed, running eager ({describe_error(err)})"
        log.warning("texkit-diffusers: %s", self.reason)

    def _note_compiled(self, latents: int, grad: bool, took: str, counts: CompileCacheCounts) -> None:
        """Add a compiled shape's cache counts to `cache` and say in one line how it went (``took``: `describe_first_call`)."""
        self.cache = self.cache + counts
        self.first_calls.append(f"{latents} latents, {_grad_words(grad)}: {took}")
        where = active_cache_dir()
        print(
            f"texkit-diffusers: note: denoising call for {latents} latents ({_grad_words(grad)}) ready in "
            f"{took}, {counts.describe()}" + (f" in {where}" if where is not None and (counts.hits or counts.misses) else ""),
            file=sys.stderr,
            flush=True,
        )

    def describe_cache(self) -> str:
        """The compile cache's part of the run record, e.g. ``"loaded from the compile cache (2 graphs) in
        ~/.cache/texkit/compile; first calls: 2 latents, training: 15.4 s (tracing 11.5 s, ...)"``."""
        where = active_cache_dir()
        text = self.cache.describe() + (f" in {where}" if where is not None else " (torch's default folder)")
        if self.precompiled is not None:
            text += f"; {self.precompiled.describe()}"
        elif self.precompile_reason:
            text += f"; {self.precompile_reason}"
        return text + (f"; first calls: {'; '.join(self.first_calls)}" if self.first_calls else "")

    def __call__(self, model_input: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, condition: torch.Tensor, scale: float) -> torch.Tensor:
        if self.waiting and starts_compiling(self.compile_mode, self.device, torch.is_grad_enabled()):
            log.info("texkit-diffusers: first training call, compiling the denoising call (compile='auto')")
            self._start_compiling()
        if self.compiled and self._compiled_fn is not None:
            key = (tuple(model_input.shape), model_input.dtype, torch.is_grad_enabled())
            if self.compile_mode == "auto" and not key[2] and key not in self._seen:
                calls = self._eager_calls[key] = self._eager_calls.get(key, 0) + 1
                if calls <= AUTO_NO_GRAD_EAGER_CALLS:  # not (yet) a repeating part of every step
                    return self.eager(model_input, t, embeds, condition, scale)
            if self.before_compiled_call is not None:
                self.before_compiled_call()
            first = key not in self._seen
            if first:  # what the first call compiles (or loads) is measured; later calls only run
                print(
                    f"texkit-diffusers: note: compiling the denoising call for {model_input.shape[0]} latents "
                    f"({_grad_words(key[2])}): once per run and batch size, about 1-2 minutes on a GPU",
                    file=sys.stderr,
                    flush=True,
                )
                start, counts_before, phases_before = time.perf_counter(), cache_counts(), dynamo_phase_seconds()
            if key[2]:
                model_input, condition = _needing_grad(model_input), _needing_grad(condition)
            try:
                out = None
                with backward_compiled_with_forward():  # a backward that fails to compile fails here, not in loss.backward()
                    if key[2] and self.precompiled is not None:  # None: no precompiled call serves it
                        out = self.precompiled(self.unet, self.controlnet, model_input, t, embeds, condition, scale)
                    if out is None:
                        out = self._compiled_fn(model_input, t, embeds, condition, scale)
            except Exception as err:  # a compiler error: this run continues eagerly (first without the C++ wrapper)
                if self.cpp_wrapper:
                    self._drop_cpp_wrapper(err)
                    return self(model_input, t, embeds, condition, scale)
                self._fall_back(err)
            else:
                if first:
                    self._seen.add(key)
                    if model_input.is_cuda:
                        torch.cuda.synchronize(model_input.device)
                    seconds = time.perf_counter() - start
                    self.compile_seconds += seconds
                    took = describe_first_call(seconds, phases_before, dynamo_phase_seconds())
                    if key[2] and self.precompiled is not None and self.precompiled.last_event:
                        took += f"; {self.precompiled.last_event}"
                    self._note_compiled(model_input.shape[0], key[2], took, cache_counts() - counts_before)
                return out
        return self.eager(model_input, t, embeds, condition, scale)

