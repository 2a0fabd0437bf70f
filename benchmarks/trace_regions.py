"""Dynamo's tracing time of one training denoising call (full-size SD 1.5 UNet + ControlNet), plain or with nested compile regions.

A second ``texkit train`` loads AOTAutograd/Inductor output from the compile cache but Dynamo traces
the whole UNet + ControlNet again (11.5 s on the H100's host, docs/performance.md). Hierarchical
compilation (``torch.compiler.nested_compile_region``) traces a marked block once and stamps the
traced graph out for every later call whose inputs match (same shapes, same parameter shapes), so
SD 1.5's 23 transformer blocks (UNet 16, ControlNet 7) would be traced at 4 shapes only. This
script measures it on the CPU.

The models: ``UNet2DConditionModel`` and a 6-channel ``ControlNetModel`` with SD 1.5's configs
(block_out_channels 320/640/1280/1280, cross_attention_dim 768, attention_head_dim 8,
layers_per_block 2, sample_size 64), random weights, fp32, wrapped in texkit's real
`DiffusionGenerator` (LoRA rank 4 on the UNet attention projections, merged LoRA, gradient
checkpointing on as in training; the VAE and text encoder are the tiny ones, they take no part in
the denoising call). The call: ``DenoiserCall.eager`` of the generator at batch 2 (CFG), latents
``(2, 4, 64, 64)``, timestep, embeds ``(2, 77, 768)``, condition ``(2, 6, 512, 512)``, gradients
on, latents and condition requiring grad (as ``compiled._needing_grad`` passes them), compiled
with ``torch.compile(fn, backend=..., dynamic=False)`` where the backend is Dynamo only: it
records the FX graph and does not run it (``--execute`` runs it eagerly, as ``backend="eager"``
would; the tracing time is the same, the wall time adds the run). Each variant runs in a fresh
process (no Dynamo state shared, as for a second run of texkit).

Read per variant: ``tracing_s`` (`texkit_diffusers.compiled.dynamo_phase_seconds`, Dynamo's
bytecode tracing, guards included), ``wall_s`` (the first call) and ``cpu_s`` (this process's CPU time in it: less sensitive to
other processes on a shared machine), the graphs Dynamo produced and its
graph breaks, the nodes of the top graph and of all its subgraphs, and the ``invoke_subgraph``
calls beside the distinct bodies traced (reuse happened where calls > bodies).

Variants (``--variants``, comma-separated): ``plain``; a ``+``-joined list of diffusers classes
whose instances become nested compile regions (``Transformer2DModel``, ``BasicTransformerBlock``,
``ResnetBlock2D``, ``Attention``, ...), e.g. ``Transformer2DModel+ResnetBlock2D``; either may end
in ``@knob=value`` for a ``torch._dynamo.config`` setting, e.g. ``plain@inline_inbuilt_nn_modules=0``.

    nice -n 10 .venv/bin/python benchmarks/trace_regions.py \\
        --variants plain,Transformer2DModel,BasicTransformerBlock,ResnetBlock2D,Transformer2DModel+ResnetBlock2D \\
        --out benchmarks/results/trace_regions_cpu.jsonl

    nice -n 10 .venv/bin/python benchmarks/trace_regions.py --check-instance-method --out benchmarks/results/trace_regions_cpu.jsonl

Appends one JSON line per variant to ``--out`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]


def full_size_denoiser_models() -> tuple[Any, Any]:
    """SD 1.5-shaped ``UNet2DConditionModel`` and 6-channel ``ControlNetModel``, random weights (fp32)."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2)
    controlnet = ControlNetModel(cross_attention_dim=768, attention_head_dim=8, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, conditioning_channels=6)
    return unet, controlnet


def build_generator() -> Any:
    """texkit's generator around the full-size UNet + ControlNet (tiny VAE, text encoder: unused here)."""
    from texkit_diffusers.generator import DiffusionGenerator
    from texkit_diffusers.tiny import build_tiny_components

    components = build_tiny_components(0)
    components["unet"], components["controlnet"] = full_size_denoiser_models()
    return DiffusionGenerator(components, resolution=512, device="cpu", dtype=torch.float32, checkpointing=True, compile="off")


def call_inputs(batch: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """``(latents (B, 4, 64, 64), t, embeds (B, 77, 768), condition (B, 6, 512, 512), scale)`` of a training call."""
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(batch, 4, 64, 64, generator=g).requires_grad_(True)
    condition = torch.rand(batch, 6, 512, 512, generator=g).requires_grad_(True)
    embeds = torch.randn(batch, 77, 768, generator=g)
    return latents, torch.tensor(981), embeds, condition, 1.0


class GraphRecorder:
    """A Dynamo-only backend: keeps every FX graph it gets; runs it (``execute``) or returns zeros of its output shapes."""

    def __init__(self, execute: bool) -> None:
        self.execute = execute
        self.graphs: list[torch.fx.GraphModule] = []

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
        self.graphs.append(gm)
        if self.execute:
            return gm.forward
        outputs = next(n for n in gm.graph.nodes if n.op == "output").args[0]

        def zeros(*_: Any) -> list[Any]:
            return [torch.zeros(o.meta["example_value"].shape, dtype=o.meta["example_value"].dtype) if hasattr(o, "meta") and "example_value" in o.meta else None for o in outputs]

        return zeros


def graph_stats(graphs: list[torch.fx.GraphModule]) -> dict[str, Any]:
    """Nodes of the top graphs and of every subgraph, ``invoke_subgraph`` calls and distinct bodies, checkpoint regions."""
    invoke = torch.ops.higher_order.invoke_subgraph
    calls = 0
    bodies: set[str] = set()
    checkpoints = 0
    top_nodes = 0
    all_nodes = 0
    for gm in graphs:
        top_nodes += len(gm.graph.nodes)
        for module in gm.modules():
            if not isinstance(module, torch.fx.GraphModule):
                continue
            all_nodes += len(module.graph.nodes)
            for node in module.graph.nodes:
                if node.op != "call_function":
                    continue
                if node.target is invoke:
                    calls += 1
                    bodies.add(str(node.args[1]))
                elif "checkpoint" in str(node.target):
                    checkpoints += 1
    return {"top_graph_nodes": top_nodes, "all_graph_nodes": all_nodes, "invoke_subgraph_calls": calls, "invoke_subgraph_bodies": len(bodies), "checkpoint_regions": checkpoints}


def parse_variant(variant: str) -> tuple[list[str], dict[str, Any]]:
    """``"A+B@knob=1"`` -> (``["A", "B"]``, ``{"knob": True}``); ``"plain"`` has no regions."""
    spec, _, knobs = variant.partition("@")
    classes = [] if spec == "plain" else spec.split("+")
    settings: dict[str, Any] = {}
    for item in filter(None, knobs.split(",")):
        key, _, value = item.partition("=")
        settings[key] = {"0": False, "1": True}.get(value, value)
    return classes, settings


def run_one(variant: str, execute: bool) -> dict[str, Any]:
    """Build the models, mark the regions, trace one training call; the row of ``variant``."""
    from texkit_diffusers.compiled import dynamo_phase_seconds
    from texkit_diffusers.regions import mark_nested_regions

    classes, settings = parse_variant(variant)
    for key, value in settings.items():
        setattr(torch._dynamo.config, key, value)
    start = time.perf_counter()
    gen = build_generator()
    build_s = time.perf_counter() - start
    marked = mark_nested_regions((gen.unet, gen.controlnet), classes) if classes else {}
    latents, t, embeds, condition, scale = call_inputs()
    gen.merged_lora.refresh()  # once per painted view in training, with gradients to the adapter
    recorder = GraphRecorder(execute)
    fn = torch.compile(gen.denoiser.eager, backend=recorder, dynamic=False)
    torch._dynamo.utils.counters.clear()
    before = dynamo_phase_seconds()
    start, cpu_start = time.perf_counter(), time.process_time()
    error = None
    try:
        with torch.enable_grad():
            fn(latents, t, embeds, condition, scale)
    except Exception as err:  # a torch error is a result here: recorded, first lines kept
        error = f"{type(err).__name__}: " + " | ".join(str(err).strip().splitlines()[:3])[:600]
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    after = dynamo_phase_seconds()
    breaks = torch._dynamo.utils.counters["graph_break"]
    from torch._dynamo.utils import compilation_time_metrics

    region_phases = {k: round(sum(v), 3) for k, v in compilation_time_metrics.items() if "invoke_subgraph" in k}
    return {
        "variant": variant,
        "regions": classes,
        "dynamo_config": settings,
        "marked_modules": marked,
        "tracing_s": round(after["tracing"] - before["tracing"], 3),
        "backend_s": round(after["backend"] - before["backend"], 3),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "region_phases_s": region_phases,
        "executed": execute,
        "graphs": len(recorder.graphs),
        "graph_breaks": int(sum(breaks.values())),
        "graph_break_reasons": sorted(breaks)[:5],
        **graph_stats(recorder.graphs),
        "error": error,
        "build_s": round(build_s, 1),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }


def instance_method_check() -> dict[str, Any]:
    """Three ResNet blocks marked through an instance ``forward`` bound to the region (``types.MethodType``): compiled vs eager.

    The reason `texkit_diffusers.regions` swaps the class instead: with torch 2.13 (CPU) the reused
    bodies ran with the first block's weights.
    """
    import types

    from diffusers.models.resnet import ResnetBlock2D

    torch.manual_seed(0)
    blocks = torch.nn.ModuleList([ResnetBlock2D(in_channels=32, out_channels=32, temb_channels=64, groups=8) for _ in range(3)])
    x, temb = torch.randn(2, 32, 8, 8), torch.randn(2, 64)

    def call(x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        for block in blocks:
            x = block(x, temb)
        return x

    want = call(x, temb)
    region = torch.compiler.nested_compile_region(types.FunctionType(ResnetBlock2D.forward.__code__, ResnetBlock2D.forward.__globals__))
    for block in blocks:
        block.forward = types.MethodType(region, block)
    with torch.no_grad():
        got = torch.compile(call, backend="eager")(x, temb)
    return {"check": "3 ResnetBlock2D, region as an instance forward (types.MethodType), backend eager", "max_abs_difference": float((got - want).abs().max()), "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="plain,Transformer2DModel,BasicTransformerBlock,ResnetBlock2D,Transformer2DModel+ResnetBlock2D")
    parser.add_argument("--out", default=None, help="append the JSON lines here")
    parser.add_argument("--execute", action="store_true", help="run the traced graph eagerly (backend='eager')")
    parser.add_argument("--check-instance-method", action="store_true", help="only the instance-forward check (one row)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a single variant, in this process
    args = parser.parse_args()
    if args.check_instance_method:
        rows = [instance_method_check()]
        print(json.dumps(rows[0]))
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(rows[0]) + "\n")
        return
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.execute)))
        return
    for variant in args.variants.split(","):
        cmd = [sys.executable, __file__, "--one", variant] + (["--execute"] if args.execute else [])
        done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])[:600]
            row: dict[str, Any] = {"variant": variant, "error": f"exit {done.returncode}: {tail}"}
        else:
            row = json.loads(lines[-1])
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
