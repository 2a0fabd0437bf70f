"""Correctness of data-parallel training on several GPUs (NCCL), with `texkit train` under torchrun.

1. A 1-GPU run of 2 steps writes a checkpoint (``training.checkpoint_every = 2``).
2. A 2-GPU run of 3 steps from scratch: after it the LoRA weights and camera angles are bitwise
   equal on both ranks (``TEXKIT_RANK_SNAPSHOT_DIR`` snapshots) and differ from the start.
3. The 1-GPU run of step 1 is resumed with 2 GPUs up to step 4: the metrics hold every step exactly
   once, the resumed steps say ``world_size = 2``, and both ranks end bitwise equal.

The tiny generator is used (correctness, not speed); the renderer is the default for CUDA.
Prints one JSON object (``ok`` true when every check holds) and exits 1 when one fails.

    python benchmarks/gpu/check_multi_gpu.py [--gpus 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

CONFIG = """
[mesh]
path = "demo"
[prompts]
text = ["a vase", "a jar", "a cup", "a bowl"]
[generator]
name = "tiny"
options = {{steps = 2, seed = 0}}
[cameras]
paint = {{elevation = [-20.0, -20.0], azimuth = [0.0, 180.0]}}
reward = {{elevation = [-20.0], azimuth = [90.0]}}
learn = ["paint"]
[texture]
size = 64
render_size = 64
[rewards.curvature_color]
[training]
steps = 3
lr = 3e-3
checkpoint_every = 2
before_after = false
[output]
dir = "{out}"
grid_views = 1
"""


def launch(gpus: int, config: Path, run: Path, snapshots: Path, *extra: str, device: str = "cuda") -> subprocess.CompletedProcess:
    """``texkit train`` in ``gpus`` processes (torchrun; plain python for 1) on ``device``."""
    env = {**os.environ, "TEXKIT_RANK_SNAPSHOT_DIR": str(snapshots)}
    if device == "cpu":  # smoke test of this script without GPUs
        env.update({"TEXKIT_DIST_BACKEND": "gloo", "OMP_NUM_THREADS": "1"})
    train = ["-m", "texkit.commands.cli", "train", str(config), "--set", f'output.dir="{run}"', "--set", f'device="{device}"', *extra]
    if gpus == 1:
        cmd = [sys.executable, *train]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(gpus), "--master-port", "29517", *train]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def lockstep(snapshots: Path, gpus: int) -> dict[str, Any]:
    """Compare the ranks' end snapshots bitwise, and the end with the start."""
    start = [torch.load(snapshots / f"start_rank{r}.pt", weights_only=True) for r in range(gpus)]
    end = [torch.load(snapshots / f"end_rank{r}.pt", weights_only=True) for r in range(gpus)]
    keys = sorted(k for k in end[0] if k.startswith(("lora/", "camera/")))
    unequal = [k for k in keys for r in range(1, gpus) if not torch.equal(end[0][k], end[r][k])]
    trained = [k for k in keys if not torch.equal(start[0][k], end[0][k])]
    return {
        "compared_tensors": len(keys),
        "bitwise_equal_across_ranks": not unequal and bool(keys),
        "unequal": unequal[:5],
        "lora_changed": any(k.startswith("lora/") for k in trained),
        "cameras_changed": any(k.startswith("camera/") for k in trained),
        "step": [int(e["step"]) for e in end],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=2)
    parser.add_argument("--device", default="cuda", help="cpu: smoke test of the script (gloo)")
    parser.add_argument("--out", default=None, help="folder for the runs (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.out or tempfile.mkdtemp(prefix="texkit-multi-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    config = work / "cfg.toml"
    config.write_text(CONFIG.format(out=work / "unused"))
    record: dict[str, Any] = {"device": args.device, "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}

    single = launch(1, config, work / "resume", work / "snap_single", "--set", "training.steps=2", device=args.device)
    record["single_gpu_run"] = {"rc": single.returncode, "tail": (single.stdout + single.stderr)[-600:]}

    fresh = launch(args.gpus, config, work / "fresh", work / "snap_fresh", device=args.device)
    record["fresh_run"] = {"rc": fresh.returncode, "tail": (fresh.stdout + fresh.stderr)[-600:]}
    if fresh.returncode == 0:
        record["fresh_run"].update(lockstep(work / "snap_fresh", args.gpus))

    resumed = launch(args.gpus, config, work / "resume", work / "snap_resumed", "--resume", "--set", "training.steps=4", device=args.device)
    record["resumed_run"] = {"rc": resumed.returncode, "tail": (resumed.stdout + resumed.stderr)[-600:]}
    if resumed.returncode == 0:
        lines = [json.loads(line) for line in (work / "resume" / "metrics.jsonl").read_text().splitlines() if line]
        record["resumed_run"].update(lockstep(work / "snap_resumed", args.gpus))
        record["resumed_run"]["metric_steps"] = [m["step"] for m in lines]
        record["resumed_run"]["world_sizes"] = [m.get("world_size") for m in lines]
    fresh_ok = record["fresh_run"].get("bitwise_equal_across_ranks") and record["fresh_run"].get("lora_changed") and record["fresh_run"].get("cameras_changed")
    resumed_ok = (
        record["resumed_run"].get("bitwise_equal_across_ranks")
        and record["resumed_run"].get("metric_steps") == [1, 2, 3, 4]
        and record["resumed_run"].get("world_sizes") == [1, 1, args.gpus, args.gpus]
    )
    record["ok"] = bool(single.returncode == 0 and fresh_ok and resumed_ok)
    print(json.dumps(record, indent=2))
    return 0 if record["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
