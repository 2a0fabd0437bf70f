"""Does a collection adapter transfer to meshes it never saw? (issue 27; tiny generator, CPU)

Trains, with ``texkit train`` and curvature_color (the demo's settings at 64 texels, 30 steps):

* ``collection``: one adapter on 3 of the shared/demo meshes (built-in demo gourd, shared cow,
  built-in cylinder; ``[[meshes]]``, cycle sampling, one prompt ``"a glazed ceramic {name}"``);
* ``collection_x3``: the same with 3 times the steps (as many steps on each mesh as a one-mesh run);
* ``single_<mesh>``: one adapter per training mesh, each on that mesh alone, same steps and settings;

then one ``texkit eval`` of the five adapters against the base model on 2 held-out meshes (the shared
rabbit and balloon) x 4 held-out prompts x 4 seeds, and writes the summary rows to
``benchmarks/results/multimesh_generalisation_cpu.json`` (docs/guide/collections.md shows them).
This is the tiny model (1.6 M parameters, random weights trained only by the reward): it measures the
method's transfer mechanics, not what a full-size Stable Diffusion adapter would do.

    python benchmarks/collection_generalisation.py --work runs/generalisation   # about 20 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRAIN = {"demo": "demo", "cow": "cow.obj", "cylinder": "cylinder"}
HELD_OUT = ["rabbit.obj", "balloon.obj"]
PROMPTS = ["a wooden chess piece", "a marble bust", "a rusty metal kettle", "a knitted wool toy"]


def shared(name: str, assets: Path) -> str:
    """A built-in name as it is; a shared mesh file under ``assets``."""
    return str(assets / name) if "." in name else name


def run_toml(out: Path, meshes: list[str], steps: int) -> str:
    """The run config: the demo's settings (tiny generator, 4 + 4 views, tau -0.5, lr 0.03, fresh noise) at 64 texels."""
    tables = "".join(f'[[meshes]]\npath = "{m}"\n' for m in meshes) if len(meshes) > 1 else f'[mesh]\npath = "{meshes[0]}"\n'
    return f"""device = "cpu"
{tables}
[prompts]
text = ["a glazed ceramic {{name}}"]
[generator]
name = "tiny"
options = {{ steps = 3, seed = 0 }}
[cameras.paint]
elevation = [-20, -20, -20, -20]
azimuth = [0, 90, 180, -90]
[cameras.reward]
elevation = [-20, -20, -20, -20]
azimuth = [45, 135, -135, -45]
[texture]
size = 64
render_size = 64
[rewards.curvature_color]
tau = -0.5
[training]
steps = {steps}
lr = 0.03
checkpoint_every = 10
seed = 0
unet_checkpointing = false
resample = true
before_after = false
[output]
dir = "{out}"
grid_views = 4
"""


def cli(argv: list[str]) -> float:
    """Run ``texkit argv`` in this process; returns the seconds it took (a failure stops the script)."""
    from texkit.commands.cli import main

    start = time.perf_counter()
    try:
        main(argv)
    except SystemExit as ex:
        if ex.code:
            raise SystemExit(f"texkit {' '.join(argv)} failed ({ex.code})") from None
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/generalisation"), help="folder for the runs and the eval")
    parser.add_argument("--assets", type=Path, default=ROOT.parent / "shared" / "assets", help="the shared meshes")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "multimesh_generalisation_cpu.json")
    args = parser.parse_args(argv)
    if not (args.assets / "rabbit.obj").exists():
        args.assets = Path("/work/shared/assets")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    collection = [shared(m, args.assets) for m in TRAIN.values()]
    runs = {"collection": (collection, args.steps), "collection_x3": (collection, 3 * args.steps)}
    runs.update({f"single_{name}": ([shared(m, args.assets)], args.steps) for name, m in TRAIN.items()})
    seconds: dict[str, float] = {}
    for name, (meshes, steps) in runs.items():
        folder = work / name
        if (folder / "adapter").is_dir():
            continue  # trained by an earlier call
        config = work / f"{name}.toml"
        config.write_text(run_toml(folder, meshes, steps))
        seconds[name] = cli(["train", str(config), "--overwrite"])
    eval_dir = work / "eval"
    argv_eval = ["eval", "--out", str(eval_dir), "--num-seeds", "4", "--samples", "8"]
    for name in runs:
        argv_eval += ["--adapter", str(work / name)]
    for mesh in HELD_OUT:
        argv_eval += ["--mesh", shared(mesh, args.assets)]
    for prompt in PROMPTS:
        argv_eval += ["--prompt", prompt]
    seconds["eval"] = cli(argv_eval)
    summary = json.loads((eval_dir / "summary.json").read_text())
    label = {str(work / name): name for name in runs}
    rows = [
        {**{k: v for k, v in row.items() if k != "model"}, "model": label.get(row["model"], row["model"]), "mesh": Path(row["mesh"]).stem if row["mesh"] != "all" else "all"}
        for row in summary["rows"]
    ]
    record = {
        "benchmark": "collection generalisation (issue 27)",
        "model": "tiny generator (texkit's built-in test model, 1.6 M parameters), CPU",
        "machine": platform.processor() or platform.machine(),
        "train_meshes": list(TRAIN),
        "held_out_meshes": [Path(m).stem for m in HELD_OUT],
        "held_out_prompts": PROMPTS,
        "seeds": [0, 1, 2, 3],
        "steps": {name: steps for name, (_, steps) in runs.items()},
        "reward": "curvature_color (tau = -0.5)",
        "bootstrap": summary.get("bootstrap"),
        "rows": rows,
        "seconds": seconds,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    for row in rows:
        if row["mesh"] == "all":
            print(json.dumps(row))
    return record


if __name__ == "__main__":
    main()
