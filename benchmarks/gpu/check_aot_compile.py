"""Can the compiled training call be saved whole (Dynamo's trace included) and loaded by a second process?

A second ``texkit train`` of the same config loads AOTAutograd's and Inductor's output from the compile
cache but traces the UNet and ControlNet with Dynamo again: 11.5 s of the 15.4 s before its first step
on an H100 (docs/performance.md, calls 6 and 8), which keeps that first step 2.7x a steady one.
``torch.compile(...).aot_compile(example_inputs)`` (experimental; torch 2.13 has it) compiles one call
ahead of time, Dynamo's output included, into an artifact that ``torch.compiler.load_compiled_function``
loads in another process without tracing. Two things it needs from texkit's call, found on the CPU:

* guards that can be serialized: Dynamo's guards on object identities (``ID_MATCH`` on the attention
  processors' code, ``MODULE_MATCH``, ``CLOSURE_MATCH``, ...) cannot, so the artifact keeps only the
  portable ones (``torch.compiler.keep_portable_guards_unsafe``: tensor metadata and global state);
* picklable module state: `MergedLoRA`'s per-layer forward is a ``functools.partial`` (a bound
  method of a module-level function is pickled by a name the layer does not have; texkit-diffusers
  sets the partial itself now).

``save`` compiles one training call (batch 2, latents and condition requiring grad) and writes the
artifact; ``load`` (a new process, other adapter weights) loads it, calls it, and compares output and
adapter + condition gradients with the eager call. One JSON line each.

    python benchmarks/gpu/check_aot_compile.py save --artifact /tmp/aot.bin && python benchmarks/gpu/check_aot_compile.py load --artifact /tmp/aot.bin
    python benchmarks/gpu/check_aot_compile.py save --model /tmp/sd15 --artifact /tmp/aot_full.bin    # full-size, fp16 on CUDA
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import torch
from random_weights import randomise_adapter_and_controlnet
from texkit_diffusers.compiled import inductor_options

import texkit


def _build(args: argparse.Namespace, seed: int) -> tuple[Any, tuple[Any, ...]]:
    device = torch.device(args.device)
    common = {"compile": "off", "checkpointing": True, "device": str(device), "merge_lora": True}
    if args.model:
        dtype = "fp16" if device.type == "cuda" else "fp32"
        gen = texkit.get_registry().make_generator("stable-diffusion", model=args.model, controlnet=f"{args.model}/controlnet", dtype=dtype, **common)
    else:
        gen = texkit.get_registry().make_generator("tiny", **common)
    randomise_adapter_and_controlnet(gen, seed)
    g = torch.Generator().manual_seed(0)
    size = gen.resolution // gen.vae_scale_factor
    latents = torch.randn(2, gen.unet.config.in_channels, size, size, generator=g).to(device, gen.dtype).requires_grad_(True)
    condition = torch.rand(2, gen.controlnet.config.conditioning_channels, gen.resolution, gen.resolution, generator=g).to(device, gen.dtype).requires_grad_(True)
    embeds = torch.randn(2, 77, gen.unet.config.cross_attention_dim, generator=g).to(device, gen.dtype)
    gen.merged_lora.refresh()
    return gen, (latents, torch.tensor(500, device=device), embeds, condition, 1.0)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("save", "load"))
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default=None, help="a saved full-size model folder (bench_scaling.py --prepare); default: the tiny model")
    args = parser.parse_args(argv)
    row: dict[str, Any] = {"mode": args.mode, "torch": str(torch.__version__), "device": args.device, "model": args.model or "tiny"}
    row["has_aot_compile"] = hasattr(torch.compile(lambda x: x), "aot_compile") and hasattr(torch.compiler, "load_compiled_function")
    try:
        if args.mode == "save":
            gen, call_args = _build(args, seed=1)
            options = inductor_options(False, torch.device(args.device)).get("options", {})
            start = time.perf_counter()
            compiled = torch.compile(
                gen.denoiser.eager, fullgraph=True, dynamic=False, options={**options, "guard_filter_fn": torch.compiler.keep_portable_guards_unsafe}
            ).aot_compile((call_args, {}))
            row["aot_compile_seconds"] = time.perf_counter() - start
            compiled.save_compiled_function(args.artifact)
            row["artifact_bytes"] = os.path.getsize(args.artifact)
        else:
            gen, call_args = _build(args, seed=2)  # other adapter weights than the saving process
            params = gen.trainable_parameters()
            start = time.perf_counter()
            with open(args.artifact, "rb") as f:
                loaded = torch.compiler.load_compiled_function(f)
            row["load_seconds"] = time.perf_counter() - start
            for attempt in ("first_call_seconds", "second_call_seconds"):
                gen.merged_lora.refresh()  # the merged weights' graph to the adapter is used up by each backward
                start = time.perf_counter()
                out = loaded(gen.denoiser, *call_args)
                grads = torch.autograd.grad(out.float().square().mean(), [*params, call_args[3]])
                _sync(args.device)
                row[attempt] = time.perf_counter() - start
            gen.merged_lora.refresh()
            want_out = gen.denoiser.eager(*call_args)
            want = torch.autograd.grad(want_out.float().square().mean(), [*params, call_args[3]])
            row["output_relative_difference"] = float((out - want_out).abs().max() / want_out.abs().max())
            row["adapter_grad_relative_difference"] = max(float((a - b).abs().max()) for a, b in zip(grads[:-1], want[:-1])) / max(float(b.abs().max()) for b in want[:-1])
            row["condition_grad_relative_difference"] = float((grads[-1] - want[-1]).abs().max() / want[-1].abs().max())
    except Exception as err:  # a failure is the answer for this torch: its first line goes in the record
        row["error"] = f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0][:300]}"
    print(json.dumps(row), flush=True)
    return row


if __name__ == "__main__":
    main()
