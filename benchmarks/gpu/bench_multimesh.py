"""Samples/s of collection training (issue 27): one mesh vs four, one mesh per batch vs mixed-mesh batches.

One `texkit.training.Trainer` is built on a 4-mesh collection (cow, rabbit, balloon, the built-in demo;
cycle sampling) with the full-size SD 1.5 + ControlNet generator with random weights (as
``bench_training.py``: same FLOPs and memory as the real model). Its `MeshBatcher` is then switched
between three modes, each measured with the trainer's own ``train_step`` (CUDA-synchronised wall clock):

* ``single``: every batch on the first mesh (cow), as a one-mesh run;
* ``per_batch``: ``mesh.batching = "per_batch"``: each step's batch paints one mesh, the four in turn;
* ``mixed``: ``mesh.batching = "mixed"``: every sample of a batch draws its own mesh (with cycle
  sampling and B = 4, the four meshes), painted as one group per mesh.

Every mode runs at each of ``--batch-sizes`` (``mixed`` only at ``--mixed-batches``), keyed
``mode@batch``. The first visit of each mesh (its texel maps are built then) and the first step at a
new batch size are untimed warm-up steps. samples/s = batch size / median step seconds;
``vs_single`` is a mode's samples/s over the one-mesh run's at the same batch, ``best_batch`` the
one-mesh run's fastest batch and ``per_batch_vs_single_at_best_batch`` the issue's criterion (within
10 %: >= 0.9); ``per_batch`` also reports its cow steps against ``single``'s (same mesh, so only the
switching between meshes differs). A measurement that would end past ``--budget-seconds`` (estimated
from the slowest step so far) is skipped and listed under ``skipped``. Prints the JSON record and
writes it after every measurement (a device time limit keeps what was measured).

    python benchmarks/gpu/bench_multimesh.py --out $OUT/multimesh.json          # on a CUDA machine
    python benchmarks/gpu/bench_multimesh.py --tiny --meshes demo,sphere,cylinder,cube --steps 1 \
        --texture-size 64 --batch-sizes 2,4 --mixed-batches 2 --out /tmp/multimesh.json   # CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import os
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
    """A shared mesh (``$TEXKIT_ASSETS``, beside the repository, /work/shared/assets or the carried
    ``.assets``); built-in names as they are."""
    if "." not in name:
        return name
    folders = [Path(os.environ["TEXKIT_ASSETS"])] if os.environ.get("TEXKIT_ASSETS") else []
    folders += [ROOT.parent / "shared" / "assets", Path("/work/shared/assets"), ROOT / ".assets"]
    for folder in folders:
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


def summarise(record: dict[str, Any]) -> None:
    """Ratios against the one-mesh run at the same batch, and the best batch of the one-mesh run."""
    modes = record["modes"]
    singles = {e["batch_size"]: e for e in modes.values() if e["mode"] == "single"}
    for entry in modes.values():
        base = singles.get(entry["batch_size"])
        if entry["mode"] != "single" and base:
            entry["vs_single"] = entry["samples_per_second"] / base["samples_per_second"]
            first = record["meshes"][0]
            same = [r["seconds"] for r in entry["steps"] if entry["mode"] == "per_batch" and r["meshes"] and r["meshes"][0] == first]
            if same:
                entry["first_mesh_vs_single"] = base["median_step_seconds"] / statistics.median(same)
    if singles:
        best = max(singles.values(), key=lambda e: e["samples_per_second"])
        record["best_batch"] = best["batch_size"]
        per_batch = modes.get(f"per_batch@{best['batch_size']}")
        record["per_batch_vs_single_at_best_batch"] = per_batch["vs_single"] if per_batch else None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random model on the CPU (smoke test)")
    parser.add_argument("--batch-sizes", default="4,8", help="batch sizes, in order (each runs every mode of --timed)")
    parser.add_argument("--mixed-batches", default="4", help="batch sizes at which the mixed mode runs")
    parser.add_argument("--budget-seconds", type=float, default=1e9, help="skip a measurement that would end past this many seconds")
    parser.add_argument("--steps", type=int, default=4, help="DDIM steps per painted view")
    parser.add_argument("--paint-views", type=int, default=2)
    parser.add_argument("--texture-size", type=int, default=512)
    parser.add_argument("--timed", default="single:3,per_batch:4,mixed:2", help="mode:timed steps, in order, at each batch size")
    parser.add_argument("--meshes", default=",".join(MESHES), help="comma-separated meshes (shared assets or built-in names)")
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
        torch.set_num_threads(1)  # the tiny model is launch-bound: more threads only contend
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
            "meshes": [{"path": asset(m)} for m in args.meshes.split(",")],
            "mesh": {"sampling": "cycle", "batching": "per_batch"},
            "prompts": {"text": ["a {name} with painted patterns", "a {name} made of polished marble"]},
            "generator": generator,
            "renderer": {"name": "torch"},
            "cameras": {"paint": {"elevation": [-15.0] * views, "azimuth": azimuths}, "reward": {"elevation": [-20.0, -20.0], "azimuth": [45.0, 225.0]}},
            "texture": {"size": args.texture_size, "render_size": render_size},
            "rewards": {"curvature_color": {"weight": 1.0}},
            "training": {"steps": 1000, "batch_size": int(args.batch_sizes.split(",")[0]), "mixed_precision": precision, "before_after": False},
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
        "batch_sizes": args.batch_sizes,
        "ddim_steps": args.steps,
        "paint_views": views,
        "reward_views": 2,
        "texture_size": args.texture_size,
        "setup_seconds": build - began,
        "build_seconds": time.perf_counter() - build,
        "modes": {},
        "skipped": [],
    }
    print(f"built in {record['build_seconds']:.1f} s (setup {record['setup_seconds']:.1f} s)", file=sys.stderr)

    def write() -> None:
        text = json.dumps(record, indent=2)
        if args.out:
            Path(args.out).write_text(text)

    seen: set[str] = set()  # meshes painted once already (their first visit builds texel maps: untimed)
    last_step = 0.0
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        trainer.config.training.batch_size = batch
        first_at_batch = True
        for spec in args.timed.split(","):
            mode, count = spec.split(":")
            if mode == "mixed" and batch not in [int(b) for b in args.mixed_batches.split(",") if b]:
                continue
            key = f"{mode}@{batch}"
            if mode == "single":
                trainer.batcher = MeshBatcher(trainer.session, None)
                fresh = [] if record["meshes"][0] in seen else [record["meshes"][0]]
            else:
                trainer.config.mesh.batching = mode
                trainer.batcher = MeshBatcher(trainer.session, loaded)
                fresh = [m for m in record["meshes"] if m not in seen]
            warmups = max(len(fresh), 1 if first_at_batch else 0) if mode != "mixed" else (1 if fresh or first_at_batch else 0)
            left = args.budget_seconds - (time.perf_counter() - began)
            needed = (warmups + int(count)) * last_step * (1.5 if mode == "mixed" else 1.0)
            if last_step and needed > left:
                record["skipped"].append(f"{key}: about {needed:.0f} s needed, {left:.0f} s left of --budget-seconds")
                print(f"skipped {key}", file=sys.stderr)
                write()
                continue
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            warm = timed_steps(trainer, warmups)
            rows = timed_steps(trainer, int(count))
            seen.update(m for r in warm + rows for m in r["meshes"])
            first_at_batch = False
            seconds = [r["seconds"] for r in rows]
            median = statistics.median(seconds)
            last_step = max(last_step, median) if mode != "mixed" else last_step
            entry: dict[str, Any] = {
                "mode": mode,
                "batch_size": batch,
                "warmup_seconds": [round(r["seconds"], 3) for r in warm],
                "steps": [{**r, "seconds": round(r["seconds"], 3)} for r in rows],
                "median_step_seconds": median,
                "samples_per_second": batch / median,
            }
            if device.type == "cuda":
                entry["peak_allocated_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            record["modes"][key] = entry
            print(f"{key}: {median:.2f} s/step, {entry['samples_per_second']:.3f} samples/s", file=sys.stderr)
            summarise(record)
            write()

    record["total_seconds"] = time.perf_counter() - began
    write()
    print(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main()
