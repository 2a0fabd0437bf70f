"""Samples/s of collection training (issue 27): one mesh vs four, one mesh per batch vs mixed-mesh batches.

One `texkit.training.Trainer` is built on a 4-mesh collection (cow, rabbit, balloon, the built-in demo;
cycle sampling) with the full-size SD 1.5 + ControlNet generator with random weights (as
``bench_training.py``: same FLOPs and memory as the real model). Its `MeshBatcher` is then switched
between three modes, each measured with the trainer's own ``train_step`` (CUDA-synchronised wall clock):

* ``single``: every batch on the first mesh (cow), as a one-mesh run;
* ``per_batch``: ``mesh.batching = "per_batch"``: each step's batch paints one mesh, the four in turn;
* ``mixed``: ``mesh.batching = "mixed"``: every sample of a batch draws its own mesh (with cycle
  sampling and B = 4, the four meshes), painted as one group per mesh.

Each mode gets warm-up steps (the first visit of each mesh builds its texel maps) before its timed steps.
samples/s = batch size / median step seconds; ``per_batch`` also reports its cow steps against
``single``'s (same mesh, so only the switching between meshes differs). Prints the JSON record and
writes it after every mode (a device time limit keeps what was measured).

    python benchmarks/gpu/bench_multimesh.py --out $OUT/multimesh.json          # on a CUDA machine
    python benchmarks/gpu/bench_multimesh.py --tiny --out /tmp/multimesh.json   # CPU smoke test
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generator import full_size_components  # noqa: E402
from bench_training import save_components, versions  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MESHES = ["cow.obj", "rabbit.obj", "balloon.obj", "demo"]


def asset(name: str) -> str:
    """A shared mesh (beside the repository, or the carried ``.assets``); built-in names as they are."""
    if "." not in name:
        return name
    for folder in (ROOT.parent / "shared" / "assets", ROOT / ".assets"):
        if (folder / name).exists():
            return str(folder / name)
    raise SystemExit(f"{name} not found beside the repository or in .assets")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(trainer: Any, count: int) -> list[dict[str, Any]]:
    """``count`` train steps: seconds, the step's meshes and its loss."""
    device = trainer.session.device
    rows = []
    for _ in range(count):
        _sync(device)
        start = time.perf_counter()
        metrics = trainer.train_step()
        _sync(device)
        rows.append({"seconds": time.perf_counter() - start, "meshes": metrics.get("meshes", [trainer.batcher.session.mesh.name]), "loss": metrics["loss"]})
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random model on the CPU (smoke test)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4, help="DDIM steps per painted view")
    parser.add_argument("--paint-views", type=int, default=2)
    parser.add_argument("--texture-size", type=int, default=512)
    parser.add_argument("--timed", default="single:4,per_batch:8,mixed:2", help="mode:timed steps, in order")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before each mode (per_batch: one per mesh)")
    parser.add_argument("--out", default=None, help="also write the record here (after every mode)")
    args = parser.parse_args(argv)

    from rich.console import Console

    from texkit.config import parse_config
    from texkit.mesh_batch import MeshBatcher
    from texkit.training import Trainer

    began = time.perf_counter()
    device = torch.device("cpu" if args.tiny else "cuda")
    work = Path(tempfile.mkdtemp(prefix="texkit-bench-multimesh-"))
    if args.tiny:
        generator = {"name": "tiny", "options": {"steps": args.steps, "seed": 0}}
        precision, render_size = "fp32", 64
    else:
        torch.manual_seed(0)
        with torch.device(device):
            components = full_size_components()
        for name in ("unet", "controlnet", "vae", "text_encoder"):
            components[name].half()
        model_dir, controlnet_dir = save_components(components, work / "sd15-random")
        del components
        torch.cuda.empty_cache()
        options = {"model": model_dir, "controlnet": controlnet_dir, "resolution": 512, "steps": args.steps, "attention": "sdpa", "compile": "off"}
        generator = {"name": "stable-diffusion", "options": options}
        precision, render_size = "fp16", 512
    views = args.paint_views
    azimuths = [float(a) for a in range(0, 360, 360 // views)][:views]
    config = parse_config(
        {
            "meshes": [{"path": asset(m)} for m in MESHES],
            "mesh": {"sampling": "cycle", "batching": "per_batch"},
            "prompts": {"text": ["a {name} with painted patterns", "a {name} made of polished marble"]},
            "generator": generator,
            "renderer": {"name": "torch"},
            "cameras": {"paint": {"elevation": [-15.0] * views, "azimuth": azimuths}, "reward": {"elevation": [-20.0, -20.0], "azimuth": [45.0, 225.0]}},
            "texture": {"size": args.texture_size, "render_size": render_size},
            "rewards": {"curvature_color": {"weight": 1.0}},
            "training": {"steps": 1000, "batch_size": args.batch_size, "mixed_precision": precision, "before_after": False},
            "output": {"dir": str(work / "run")},
            "device": str(device),
        }
    )
    build = time.perf_counter()
    trainer = Trainer(config, work / "run", Console(stderr=True))
    loaded = trainer.batcher.loaded
    record: dict[str, Any] = {
        "benchmark": "multimesh",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "versions": versions(),
        "generator": generator["name"] + ("" if args.tiny else " (full-size SD 1.5 + ControlNet, random weights, fp16, sdpa, eager)"),
        "renderer": "torch",
        "meshes": [m.item.name for m in loaded],
        "faces": {m.item.name: int(m.mesh.faces.shape[0]) for m in loaded},
        "batch_size": args.batch_size,
        "ddim_steps": args.steps,
        "paint_views": views,
        "reward_views": 2,
        "texture_size": args.texture_size,
        "setup_seconds": build - began,
        "build_seconds": time.perf_counter() - build,
        "modes": {},
    }
    print(f"built in {record['build_seconds']:.1f} s (setup {record['setup_seconds']:.1f} s)", file=sys.stderr)

    def write() -> None:
        text = json.dumps(record, indent=2)
        if args.out:
            Path(args.out).write_text(text)

    for spec in args.timed.split(","):
        mode, count = spec.split(":")
        if mode == "single":
            trainer.batcher = MeshBatcher(trainer.session, None)
        else:
            trainer.config.mesh.batching = mode
            trainer.batcher = MeshBatcher(trainer.session, loaded)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        warm = timed_steps(trainer, args.warmup * (len(loaded) if mode == "per_batch" else 1))
        rows = timed_steps(trainer, int(count))
        seconds = [r["seconds"] for r in rows]
        median = statistics.median(seconds)
        entry: dict[str, Any] = {
            "warmup_seconds": [round(r["seconds"], 3) for r in warm],
            "steps": [{**r, "seconds": round(r["seconds"], 3)} for r in rows],
            "median_step_seconds": median,
            "samples_per_second": args.batch_size / median,
        }
        if device.type == "cuda":
            entry["peak_allocated_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        record["modes"][mode] = entry
        print(f"{mode}: {median:.2f} s/step, {entry['samples_per_second']:.3f} samples/s", file=sys.stderr)
        write()

    modes = record["modes"]
    if "single" in modes:
        base = modes["single"]["samples_per_second"]
        for mode in ("per_batch", "mixed"):
            if mode in modes:
                modes[mode]["vs_single"] = modes[mode]["samples_per_second"] / base
        if "per_batch" in modes:
            first = record["meshes"][0]
            same = [r["seconds"] for r in modes["per_batch"]["steps"] if r["meshes"] and r["meshes"][0] == first]
            if same:
                modes["per_batch"]["first_mesh_vs_single"] = modes["single"]["median_step_seconds"] / statistics.median(same)
    record["total_seconds"] = time.perf_counter() - began
    write()
    print(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main()
