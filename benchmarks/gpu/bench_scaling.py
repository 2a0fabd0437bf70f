"""Data-parallel scaling of reward fine-tuning: samples per second with N processes.

Run under torchrun, once per process count, and compare ``samples_per_s``::

    torchrun --nproc-per-node 1 benchmarks/gpu/bench_scaling.py > scaling_1.json
    torchrun --nproc-per-node 2 benchmarks/gpu/bench_scaling.py > scaling_2.json
    # CPU smoke test (gloo, tiny generator):
    python -m torch.distributed.run --nproc-per-node 2 benchmarks/gpu/bench_scaling.py --tiny

Each process runs the real :class:`texkit.training.Trainer` step (paint with the view loop,
reward, backward through the denoising steps, gradient all-reduce, AdamW): ``--warmup`` steps,
then ``--steps`` timed steps between barriers. One sample is one painted texture (a prompt and
its noise seeds); a step processes ``world_size x grad_accum`` samples. Without ``--tiny`` the
generator is SD 1.5-shaped (UNet, 6-channel ControlNet, VAE, CLIP text encoder) with *random*
weights (same FLOPs and memory as the real model, built by ``bench_generator.py``), 512 px views.
Rank 0 prints one JSON object; no checkpoints or outputs are written.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import texkit
from texkit import distributed
from texkit.config import parse_config
from texkit.registry import get_registry

RANDOM_SD15 = "sd15-random-bench"


class _RandomSD15Plugin:
    """Registers the full-size random-weight generator under :data:`RANDOM_SD15` (benchmark only)."""

    @staticmethod
    @texkit.hookimpl
    def texkit_register_generators(register: Any) -> None:
        register(RANDOM_SD15, _random_sd15)


def _random_sd15(steps: int = 10, device: str = "cuda", dtype: str = "fp16", truncation: Any = "all", checkpointing: bool = True, **_: Any) -> Any:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_generator import full_size_components
    from texkit_diffusers.generator import DTYPES, DiffusionGenerator
    from texkit_diffusers.sampler import SamplerOptions

    torch.manual_seed(0)  # same weights on every rank (the trainer broadcasts the LoRA anyway)
    with torch.device(device):
        components = full_size_components()
    options = SamplerOptions(steps=steps, truncation=truncation)
    return DiffusionGenerator(components, options, resolution=512, device=torch.device(device), dtype=DTYPES[dtype], checkpointing=checkpointing, name=RANDOM_SD15)


def build_config(args: argparse.Namespace, out: Path, device: str) -> dict[str, Any]:
    """The run config of the benchmark (tiny or full-size generator)."""
    views = args.views
    azimuths = [360.0 * k / views for k in range(views)]
    if args.tiny:
        generator = {"name": "tiny", "options": {"steps": args.ddim_steps, "seed": 0}}
    else:
        generator = {"name": RANDOM_SD15, "options": {"steps": args.ddim_steps}}
    return {
        "mesh": {"path": "demo"},
        "prompts": {"text": ["a vase", "a jar", "a cup", "a bowl"]},
        "generator": generator,
        "cameras": {"paint": {"elevation": [-20.0] * views, "azimuth": azimuths}, "reward": {"elevation": [-20.0], "azimuth": [90.0]}, "learn": ["paint"]},
        "texture": {"size": args.texture_size, "render_size": args.render_size},
        "rewards": {"curvature_color": {}},
        "training": {
            "steps": args.warmup + args.steps,
            "lr": 1e-4,
            "grad_accum": args.grad_accum,
            "truncation": args.truncation if args.truncation == "all" else int(args.truncation),
            "mixed_precision": "no" if args.tiny else args.dtype,
            "before_after": False,
        },
        "output": {"dir": str(out)},
        "device": device,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random generator (CPU smoke test)")
    parser.add_argument("--steps", type=int, default=5, help="timed optimiser steps")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--views", type=int, default=2, help="painting views per sample")
    parser.add_argument("--ddim-steps", type=int, default=None, help="default: 10, or 2 with --tiny")
    parser.add_argument("--truncation", default="1", help="backpropagate through the last N denoising steps, or 'all'")
    parser.add_argument("--texture-size", type=int, default=None, help="default: 512, or 64 with --tiny")
    parser.add_argument("--render-size", type=int, default=None, help="default: 512, or 64 with --tiny")
    parser.add_argument("--dtype", default="fp16", choices=["fp16", "bf16"], help="frozen weights (full-size model)")
    parser.add_argument("--device", default=None, help="default: cuda, or cpu with --tiny")
    args = parser.parse_args()
    args.ddim_steps = args.ddim_steps or (2 if args.tiny else 10)
    args.texture_size = args.texture_size or (64 if args.tiny else 512)
    args.render_size = args.render_size or (64 if args.tiny else 512)
    device = args.device or ("cpu" if args.tiny else "cuda")

    ctx = distributed.init_distributed(device)
    if not args.tiny:  # the session passes this rank's device (cuda:LOCAL_RANK) to the factory
        get_registry().register_plugin(_RandomSD15Plugin, distribution="bench_scaling")

    from texkit.training import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        cfg = parse_config(build_config(args, Path(tmp), device))
        trainer = Trainer(cfg, Path(tmp))
        dev = trainer.session.device
        for _ in range(args.warmup):
            trainer.train_step()
        times = []
        for _ in range(args.steps):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            distributed.barrier()
            start = time.perf_counter()
            trainer.train_step()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            distributed.barrier()
            times.append(time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
        peaks = distributed.all_gather_objects(peak)
        if ctx.is_main:
            step_s = statistics.median(times)
            print(
                json.dumps(
                    {
                        "config": "tiny" if args.tiny else "sd15-full-size-random",
                        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
                        "backend": ctx.backend,
                        "torch": torch.__version__,
                        "world_size": ctx.world_size,
                        "grad_accum": args.grad_accum,
                        "effective_batch": trainer.effective_batch,
                        "views": args.views,
                        "ddim_steps": args.ddim_steps,
                        "truncation": args.truncation,
                        "texture_size": args.texture_size,
                        "render_size": args.render_size,
                        "timed_steps": args.steps,
                        "step_seconds_median": round(step_s, 4),
                        "step_seconds": [round(t, 4) for t in times],
                        "samples_per_s": round(trainer.effective_batch / step_s, 4),
                        "samples_per_s_per_process": round(trainer.effective_batch / step_s / ctx.world_size, 4),
                        "peak_memory_gib_per_rank": peaks,
                    },
                    indent=2,
                )
            )
    distributed.cleanup()


if __name__ == "__main__":
    main()
