"""Data-parallel scaling of reward fine-tuning: samples per second with N processes.

Run under torchrun, once per process count, on the same saved model, and compare ``samples_per_s``
(``run_scaling.sh`` does all of it on one machine and writes ``scaling_<gpus>.json``)::

    python benchmarks/gpu/bench_scaling.py --prepare /tmp/sd15          # random full-size SD 1.5 + ControlNet
    torchrun --nproc-per-node 1 benchmarks/gpu/bench_scaling.py --model /tmp/sd15 --batch-size 1,8 > one.json
    torchrun --nproc-per-node 2 benchmarks/gpu/bench_scaling.py --model /tmp/sd15 --batch-size 1,8 > two.json
    # CPU smoke test (gloo, tiny generator):
    python -m torch.distributed.run --nproc-per-node 2 benchmarks/gpu/bench_scaling.py --tiny

Each process runs the real `texkit.training.Trainer` step at the method's settings (painting path
``front_short``: 6 views, reward path ``tilted_short``: 6 views, 10 DDIM steps, CFG 7.5, full
backprop, 1024 px texture, per-view + UNet checkpointing, fp16, rewards curvature_color + symmetry,
learnable painting cameras): paint the batch with the view loop, reward, backward through every
denoising step, gradient all-reduce, AdamW. For every ``--batch-size`` B (``training.batch_size``
samples per process and step): ``--warmup`` steps, then ``--steps`` timed steps between barriers.
A step processes ``world_size x B`` samples. The generator is the ``stable-diffusion`` factory
reading a diffusers folder of SD 1.5-shaped components with *random* weights (same FLOPs and memory
as the real model, ``--prepare``). Rank 0 prints one JSON object; no outputs are written.
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

from texkit import distributed
from texkit.cameras import CAMERA_PRESETS
from texkit.config import parse_config

sys.path.insert(0, str(Path(__file__).resolve().parent))


def prepare(folder: Path) -> None:
    """Save random full-size SD 1.5 + ControlNet components (fp16) in the diffusers layout."""
    from texkit_diffusers.attention import import_xformers_quietly

    import_xformers_quietly()  # before diffusers imports it: an xformers built for another torch says so in one line, not twelve
    from bench_generator import full_size_components
    from bench_training import save_components

    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        components = full_size_components()
    for name in ("unet", "controlnet", "vae", "text_encoder"):
        components[name].half()
    save_components(components, folder)


def default_mesh() -> str:
    """cow.obj of the shared assets (beside the repository, or the carried .assets), else the demo mesh."""
    from bench_training import default_mesh as training_mesh

    return training_mesh()


def build_config(args: argparse.Namespace, out: Path, device: str) -> dict[str, Any]:
    """The run config of the benchmark (tiny or full-size generator)."""
    cameras: dict[str, Any] = {"learn": ["paint"]}
    for which, preset in (("paint", args.paint_path), ("reward", args.reward_path)):
        elevation, azimuth = CAMERA_PRESETS[preset]
        cameras[which] = {"elevation": [float(e) for e in elevation], "azimuth": [float(a) for a in azimuth]}
    if args.tiny:
        generator = {"name": "tiny", "options": {"steps": args.ddim_steps, "seed": 0}}
    else:
        generator = {
            "name": "stable-diffusion",
            "options": {"model": args.model, "controlnet": str(Path(args.model) / "controlnet"), "steps": args.ddim_steps, "guidance_scale": 7.5, "attention": "sdpa"},
        }
    return {
        "mesh": {"path": args.mesh},
        "prompts": {"text": ["a cow with brown and white patches", "a cow made of polished marble", "a wooden cow", "a cow in camouflage"]},
        "generator": generator,
        "cameras": cameras,
        "texture": {"size": args.texture_size, "render_size": args.render_size},
        "rewards": {"curvature_color": {"weight": 1.0}, "symmetry": {"weight": 1.0}},
        "training": {
            "steps": 1000,
            "lr": 1e-4,
            "truncation": args.truncation if args.truncation == "all" else int(args.truncation),
            "mixed_precision": "fp32" if args.tiny else args.dtype,
            "view_checkpointing": args.view_checkpointing == "on",
            "unet_checkpointing": not args.tiny,
            "before_after": False,
        },
        "output": {"dir": str(out)},
        "device": device,
    }


class AllReduceTimer:
    """Times every gradient all-reduce of the trainer (`texkit.distributed.all_reduce_gradients`).

    The device is synchronised before the call starts the clock, so ``wait_seconds`` holds the time a
    rank waits in the collective for the slower ranks (stragglers) plus the transfer itself; the
    rank that arrives last waits only for the transfer.
    """

    def __init__(self) -> None:
        self.wait_seconds: list[float] = []
        self._original = distributed.all_reduce_gradients

    def __enter__(self) -> "AllReduceTimer":
        def timed(params: Any, local_ok: bool = True) -> bool:
            tensors = list(params)
            if tensors and tensors[0].is_cuda:
                torch.cuda.synchronize(tensors[0].device)
            start = time.perf_counter()
            ok = self._original(tensors, local_ok)
            if tensors and tensors[0].is_cuda:
                torch.cuda.synchronize(tensors[0].device)
            self.wait_seconds.append(time.perf_counter() - start)
            return ok

        distributed.all_reduce_gradients = timed
        return self

    def __exit__(self, *exc: Any) -> None:
        distributed.all_reduce_gradients = self._original


def timed_steps(trainer: Any, count: int) -> tuple[list[float], list[float], list[float]]:
    """``count`` optimiser steps, each timed between barriers (CUDA-synchronised).

    Returns:
        ``(step seconds, this rank's seconds up to the all-reduce, seconds in the all-reduce)``,
        one entry per step: a rank whose own work is short waits longer in the all-reduce.
    """
    dev = trainer.session.device
    times, own, reduce = [], [], []
    for _ in range(count):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        distributed.barrier()
        start = time.perf_counter()
        with AllReduceTimer() as timer:
            trainer.train_step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        end = time.perf_counter()
        distributed.barrier()
        times.append(time.perf_counter() - start)
        waited = sum(timer.wait_seconds)
        reduce.append(waited)
        own.append(end - start - waited)
    return times, own, reduce


def merge_runs(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One scaling record from runs with different process counts (same settings).

    Efficiency at batch size B = samples/s with N processes / (N x samples/s with 1 process).

    Raises:
        ValueError: no 1-process run, or runs whose settings differ.
    """
    by_world = {r["world_size"]: r for r in records}
    if 1 not in by_world:
        raise ValueError("merging needs the 1-process run")
    base = by_world[1]
    settings = ("config", "paint_path", "reward_path", "mesh", "ddim_steps", "truncation", "texture_size", "render_size", "mixed_precision", "view_checkpointing")
    for record in records:
        for key in settings:
            if record.get(key) != base.get(key):
                raise ValueError(f"cannot merge runs with different {key}: {record.get(key)!r} != {base.get(key)!r}")
    single = {row["batch_size_per_process"]: row for row in base["results"] if "samples_per_s" in row}
    table = []
    for world, record in sorted(by_world.items()):
        for row in record["results"]:
            if "samples_per_s" not in row:
                continue
            batch = row["batch_size_per_process"]
            entry = {
                "gpus": world,
                "batch_size_per_gpu": batch,
                "step_seconds": row["step_seconds_median"],
                "samples_per_s": row["samples_per_s"],
                "peak_gib_per_gpu": max(row["peak_memory_gib_per_rank"]),
            }
            if batch in single:
                entry["efficiency"] = round(row["samples_per_s"] / (world * single[batch]["samples_per_s"]), 3)
            table.append(entry)
    return {"benchmark": "data_parallel_scaling", **{k: base[k] for k in settings}, "devices": by_world[max(by_world)]["devices"], "table": table, "runs": records}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merge", nargs="+", default=None, help="print one record (with efficiencies) from these run records; runs nothing")
    parser.add_argument("--prepare", default=None, help="save the random full-size model into this folder and exit")
    parser.add_argument("--model", default=None, help="folder written by --prepare (full-size runs)")
    parser.add_argument("--tiny", action="store_true", help="tiny random generator (CPU smoke test)")
    parser.add_argument("--batch-size", default="1", help="samples per process and step, e.g. 1,8")
    parser.add_argument("--steps", type=int, default=2, help="timed optimiser steps per batch size")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before each batch size")
    parser.add_argument("--paint-path", default="front_short")
    parser.add_argument("--reward-path", default="tilted_short")
    parser.add_argument("--view-checkpointing", default="on", choices=["on", "off"])
    parser.add_argument("--mesh", default=None, help="default: ../shared/assets/cow.obj, else the demo mesh")
    parser.add_argument("--ddim-steps", type=int, default=None, help="default: 10, or 2 with --tiny")
    parser.add_argument("--truncation", default="all", help="backpropagate through the last N denoising steps, or 'all'")
    parser.add_argument("--texture-size", type=int, default=None, help="default: 1024, or 64 with --tiny")
    parser.add_argument("--render-size", type=int, default=None, help="default: 512, or 64 with --tiny")
    parser.add_argument("--dtype", default="fp16", choices=["fp16", "bf16"], help="frozen weights (full-size model)")
    parser.add_argument("--device", default=None, help="default: cuda, or cpu with --tiny")
    args = parser.parse_args()
    if args.merge:
        print(json.dumps(merge_runs([json.loads(Path(name).read_text()) for name in args.merge]), indent=2))
        return
    if args.prepare:
        prepare(Path(args.prepare))
        return
    if not args.tiny and not args.model:
        raise SystemExit("give --model FOLDER (written by --prepare) or --tiny")
    args.ddim_steps = args.ddim_steps or (2 if args.tiny else 10)
    args.texture_size = args.texture_size or (64 if args.tiny else 1024)
    args.render_size = args.render_size or (64 if args.tiny else 512)
    args.mesh = args.mesh or ("demo" if args.tiny else default_mesh())
    device = args.device or ("cpu" if args.tiny else "cuda")
    batch_sizes = [int(b) for b in args.batch_size.split(",") if b]

    ctx = distributed.init_distributed(device)
    from texkit.training import Trainer

    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(parse_config(build_config(args, Path(tmp), device)), Path(tmp))
        build_seconds = time.perf_counter() - began
        dev = trainer.session.device
        rows = []
        for batch in batch_sizes:
            trainer.config.training.batch_size = batch
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            row: dict[str, Any] = {"batch_size_per_process": batch}
            try:
                timed_steps(trainer, args.warmup)
                times, own, reduce = timed_steps(trainer, args.steps)
            except torch.OutOfMemoryError as err:
                row["error"] = f"out of memory: {str(err).strip().splitlines()[0][:200]}"
                rows.append(row)
                break
            step_s = statistics.median(times)
            samples = ctx.world_size * batch
            peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
            row.update(
                {
                    "samples_per_step": samples,
                    "step_seconds_median": round(step_s, 4),
                    "step_seconds": [round(t, 4) for t in times],
                    "samples_per_s": round(samples / step_s, 4),
                    "peak_memory_gib_per_rank": distributed.all_gather_objects(None if peak is None else round(peak, 2)),
                    # per rank: seconds of its own work per step (without the all-reduce) and in the all-reduce
                    "own_seconds_per_rank": distributed.all_gather_objects([round(t, 3) for t in own]),
                    "all_reduce_seconds_per_rank": distributed.all_gather_objects([round(t, 3) for t in reduce]),
                }
            )
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
        names = distributed.all_gather_objects(torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu")
        if ctx.is_main:
            print(
                json.dumps(
                    {
                        "config": "tiny" if args.tiny else "sd15-full-size-random",
                        "devices": names,
                        "backend": ctx.backend,
                        "torch": torch.__version__,
                        "world_size": ctx.world_size,
                        "paint_path": args.paint_path,
                        "reward_path": args.reward_path,
                        "mesh": Path(args.mesh).name,
                        "ddim_steps": args.ddim_steps,
                        "truncation": args.truncation,
                        "texture_size": args.texture_size,
                        "render_size": args.render_size,
                        "mixed_precision": "fp32" if args.tiny else args.dtype,
                        "view_checkpointing": args.view_checkpointing,
                        "generator": trainer.session.describe_generator(),
                        "build_seconds": round(build_seconds, 1),
                        "warmup_steps": args.warmup,
                        "timed_steps": args.steps,
                        "results": rows,
                    },
                    indent=2,
                )
            )
    distributed.cleanup()


if __name__ == "__main__":
    main()
