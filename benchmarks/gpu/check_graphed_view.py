"""Can hand-captured CUDA graphs take the launch cost out of a batch-1 view? Time and gradients, one GPU.

Issue 29's batch-1 target (a compiled training step <= 6.5 s on an H100) is bound by the host: the
compiled batch-1 step spent 4.4 s of its 13.5 s in kernels, launching 359k of them
(benchmarks/results/throughput_h100.json, ``compiled_b1_profile``), most in the 60 denoising calls of a
step, their recomputation and their backward. CUDA graphs replay a recorded kernel sequence with one
launch. Inductor's own CUDA Graph Trees could not replay the training loop (calls 9 and 10:
non-reentrant view checkpointing made them assert; without it, the 10 calls of a view before their
backward were "pending, uninvoked backwards"). This script tries the hand-made route instead:

* ``torch.cuda.make_graphed_callables`` over K callables, one per denoising step of a view, sharing
  one memory pool. Their forwards must run in capture order and their backwards in reverse order,
  which is exactly the order of one view's K steps and their backward.
* the view is checkpointed *reentrantly* (``torch.utils.checkpoint(..., use_reentrant=True)``): its
  first pass runs the K graphed forwards without keeping anything; the backward pass runs them again
  and then their backwards, view by view, so the static buffers of one view are never overwritten by
  another view's replay before they are used.
* the merged LoRA weights (`texkit_diffusers.lora.MergedLoRA`, built once per view, differentiable in
  ``A`` and ``B``) enter every graphed call as arguments: the graph reads them from static buffers
  (one copy per call) and returns their gradients, which autograd carries on to ``A`` and ``B``.

It paints the denoising loop of one view (K DDIM steps with CFG, the ControlNet condition requiring
grad) three ways: ``compiled`` (the compiled denoising call, view checkpointed non-reentrantly as
texkit trains), ``compiled_reentrant`` (the same, reentrant: the graph-free baseline of the next row) and
``graphed`` (the compiled call captured per step), and prints one JSON line per way: seconds per view
(forward + backward), peak memory, the adapter and condition gradients relative to ``compiled``'s.

    python benchmarks/gpu/check_graphed_view.py --model /tmp/sd15            # full-size SD 1.5, fp16
    python benchmarks/gpu/check_graphed_view.py --ways compiled,compiled_reentrant --device cpu   # the tiny model, no graphs
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import torch
from random_weights import randomise_adapter_and_controlnet
from texkit_diffusers.compiled import inductor_options
from texkit_diffusers.sampler import draw_noise, sample_latents

import texkit
from texkit import PromptEmbedding

WAYS = ("compiled", "compiled_reentrant", "graphed")


class _Inputs:
    """One view's fixed inputs: noise, prompt embeddings, ControlNet condition ``(1, C, H, W)`` and the loss weights."""

    def __init__(self, gen: Any, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        device, dtype = gen.device, gen.dtype
        size = gen.resolution // gen.vae_scale_factor
        self.shape = (1, gen.unet.config.in_channels, size, size)
        dim = gen.unet.config.cross_attention_dim
        self.prompt = PromptEmbedding(cond=torch.randn(1, 77, dim, generator=g).to(device, dtype), uncond=torch.randn(1, 77, dim, generator=g).to(device, dtype))
        channels = gen.controlnet.config.conditioning_channels
        self.condition_leaf = torch.rand(1, channels, gen.resolution, gen.resolution, generator=g).to(device, dtype).requires_grad_(True)
        self.loss_weight = torch.randn(self.shape, generator=g).to(device, dtype)
        self.seed = seed

    def noise(self, gen: Any) -> Any:
        return draw_noise(self.shape, gen.options, gen.scheduler, torch.Generator(gen.device).manual_seed(self.seed), gen.device, gen.dtype, blending=False)


class _EagerDenoiser:
    """``(model_input, t, embeds, condition, scale) -> noise`` through a compiled denoising call, merged weights as set on the layers."""

    def __init__(self, compiled: Callable[..., torch.Tensor]) -> None:
        self.compiled = compiled

    def __call__(self, model_input: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, condition: torch.Tensor, scale: float) -> torch.Tensor:
        return self.compiled(model_input if model_input.requires_grad else model_input.detach().requires_grad_(True), t, embeds, condition, scale)


class _GraphedDenoiser:
    """The K denoising calls of a view, each replayed from its own captured CUDA graph.

    Built on the first view: ``make_graphed_callables`` warms each callable up and captures its forward
    and backward, with the merged LoRA weights as explicit arguments (``layers``: the adapted layers of
    `MergedLoRA`, whose ``_texkit_merged`` the callable points at its static argument while it runs).
    """

    def __init__(self, compiled: Callable[..., torch.Tensor], layers: list[Any], steps: int, scale: float) -> None:
        self.compiled, self.layers, self.steps, self.scale = compiled, layers, steps, scale
        self.graphed: tuple[Callable[..., torch.Tensor], ...] | None = None
        self.samples: list[tuple[torch.Tensor, ...]] = []
        self.index = 0

    def _call(self, model_input: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, condition: torch.Tensor, *weights: torch.Tensor) -> torch.Tensor:
        for layer, weight in zip(self.layers, weights):
            layer._texkit_merged = weight
        return self.compiled(model_input, t, embeds, condition, self.scale)

    def capture(self, args_per_step: list[tuple[torch.Tensor, ...]]) -> None:
        """Capture the K calls from sample arguments (clones with the real calls' ``requires_grad``)."""
        samples = tuple(tuple(a.detach().clone().requires_grad_(a.requires_grad) for a in args) for args in args_per_step)
        callables = tuple(self._call for _ in samples)
        self.graphed = torch.cuda.make_graphed_callables(callables, samples, num_warmup_iters=1)

    def __call__(self, model_input: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, condition: torch.Tensor, scale: float) -> torch.Tensor:
        model_input = model_input if model_input.requires_grad else model_input.detach().requires_grad_(True)
        weights = tuple(layer._texkit_merged for layer in self.layers)
        args = (model_input, t.reshape(()).clone(), embeds, condition, *weights)
        if self.graphed is None:  # recording pass: collect one argument set per step, run the compiled call
            self.samples.append(args)
            return self.compiled(model_input, t, embeds, condition, scale)
        out = self.graphed[self.index % self.steps](*args)
        self.index += 1
        return out


def paint_view(gen: Any, inputs: _Inputs, denoiser: Callable[..., torch.Tensor], reentrant: bool) -> torch.Tensor:
    """Loss of one checkpointed view: K DDIM steps (CFG) from fixed noise, final latents against fixed weights."""

    def view(condition: torch.Tensor) -> torch.Tensor:
        gen.merged_lora.refresh()
        latents = sample_latents(denoiser, gen.scheduler, inputs.prompt, condition, inputs.noise(gen), gen.options)
        return (latents.float() * inputs.loss_weight.float()).square().mean()

    # reentrant: the first pass keeps no graph; the backward runs the view again with grad, then its backward
    return torch.utils.checkpoint.checkpoint(view, inputs.condition_leaf * 1.0, use_reentrant=reentrant)


def _grads(gen: Any, inputs: _Inputs) -> list[torch.Tensor]:
    return [p.grad.detach().float().clone() for p in gen.trainable_parameters()] + [inputs.condition_leaf.grad.detach().float().clone()]


def _zero(gen: Any, inputs: _Inputs) -> None:
    for p in [*gen.trainable_parameters(), inputs.condition_leaf]:
        p.grad = None


def _relative(got: list[torch.Tensor], want: list[torch.Tensor]) -> dict[str, float]:
    adapter = max(float((g - w).abs().max()) for g, w in zip(got[:-1], want[:-1])) / max(float(w.abs().max()) for w in want[:-1])
    condition = float((got[-1] - want[-1]).abs().max()) / float(want[-1].abs().max())
    return {"adapter_grad_relative_difference": adapter, "condition_grad_relative_difference": condition}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_way(gen: Any, inputs: _Inputs, way: str, compiled: Callable[..., torch.Tensor], repeats: int) -> tuple[dict[str, Any], list[torch.Tensor]]:
    """Warm ``way`` up (compile, capture), then time ``repeats`` views (forward + backward)."""
    device = gen.device
    if way == "graphed":
        denoiser: Any = _GraphedDenoiser(compiled, gen.merged_lora.layers, gen.options.steps, gen.options.conditioning_scale)
        with torch.enable_grad():  # a recording pass collects each step's arguments (requires_grad as in training)
            gen.merged_lora.refresh()
            sample_latents(denoiser, gen.scheduler, inputs.prompt, inputs.condition_leaf * 1.0, inputs.noise(gen), gen.options)
        start = time.perf_counter()
        denoiser.capture(denoiser.samples)
        _sync(device)
        capture_seconds = time.perf_counter() - start
    else:
        denoiser, capture_seconds = _EagerDenoiser(compiled), 0.0
    reentrant = way != "compiled"
    _zero(gen, inputs)
    start = time.perf_counter()
    paint_view(gen, inputs, denoiser, reentrant).backward()  # warm-up: compiles the shapes on first use
    _sync(device)
    warmup_seconds = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = []
    for _ in range(repeats):
        _zero(gen, inputs)
        start = time.perf_counter()
        loss = paint_view(gen, inputs, denoiser, reentrant)
        loss.backward()
        _sync(device)
        seconds.append(time.perf_counter() - start)
    row = {
        "way": way,
        "view_seconds": min(seconds),
        "view_seconds_all": seconds,
        "warmup_seconds": warmup_seconds,
        "capture_seconds": capture_seconds,
        "loss": float(loss.detach()),
        "peak_allocated_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
    }
    return row, _grads(gen, inputs)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default=None, help="a saved full-size model folder with controlnet/ inside (bench_scaling.py --prepare); default: the tiny model")
    parser.add_argument("--ways", default=",".join(WAYS), help=f"comma-separated subset of {', '.join(WAYS)} (graphed needs CUDA)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-format", default="contiguous")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    common = {"compile": "off", "checkpointing": True, "device": str(device), "memory_format": args.memory_format, "merge_lora": True}
    if args.model:
        gen = texkit.get_registry().make_generator("stable-diffusion", model=args.model, controlnet=f"{args.model}/controlnet", dtype="fp16", **common)
    else:
        gen = texkit.get_registry().make_generator("tiny", **common)
    randomise_adapter_and_controlnet(gen, seed=3)
    compiled = torch.compile(gen.denoiser.eager, dynamic=False, **inductor_options(args.memory_format == "channels_last", device))
    inputs = _Inputs(gen, seed=7)
    rows, reference = [], None
    for way in args.ways.split(","):
        base = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "torch": torch.__version__, "model": args.model or "tiny", "steps": gen.options.steps}
        try:
            row, grads = run_way(gen, inputs, way, compiled, args.repeats)
        except Exception as err:  # a failed way is a result too: its first error line goes in the record
            row, grads = {"way": way, "error": f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0][:300]}"}, None
        if grads is not None:
            if reference is None:
                reference = grads
            row.update(_relative(grads, reference))
        print(json.dumps({**base, **row}), flush=True)
        rows.append({**base, **row})
    return rows


if __name__ == "__main__":
    main()
